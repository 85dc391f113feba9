"""Snakemake adapter: train one variant (rules/train.smk)."""

from pathlib import Path

from tdw.architecture import ModelConfig
from tdw.config import TrainConfig, Variant
from tdw.joblog import job_log
from tdw.train import TrainJob, train_variant

run = snakemake.params.run  # noqa: F821
with job_log(snakemake.log[0], f"train {run['variant']['name']}"):  # noqa: F821
    v = run["variant"]
    job = TrainJob(
        family=run["family"],
        operation=run["operation"],
        model=ModelConfig(**run["model"]),
        train=TrainConfig(**(run["train"] | {"betas": tuple(run["train"]["betas"])})),
        variant=Variant(v["name"], v["p"], v["seed"], v["train_frac"], tuple(v["epochs"])),
        out_dir=Path(snakemake.output.metadata).parent,  # noqa: F821
        code_hash=snakemake.params.code,  # noqa: F821
    )
    train_variant(job, threads=snakemake.threads)  # noqa: F821
