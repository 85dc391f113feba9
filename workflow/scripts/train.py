"""Snakemake adapter: train one variant (rules/train.smk)."""

from pathlib import Path

import torch

from tdw.progress import job_log
from tdw.train.trainer import TrainJob, train_variant, training_threads

run = snakemake.params.run  # noqa: F821
with job_log(snakemake.log[0], f"train {run['variant']['name']}"):  # noqa: F821
    job = TrainJob.from_params(run, Path(snakemake.output.metadata).parent, snakemake.params.code)  # noqa: F821
    torch.set_num_threads(training_threads([job], snakemake.threads))  # noqa: F821
    train_variant(job)
