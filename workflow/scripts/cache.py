"""Snakemake adapter: the shared forward pass over one probe, one cache file per checkpoint
(rules/cache.smk)."""

from pathlib import Path

import torch

from tdw.cache.forward import cache_checkpoints
from tdw.config import Variant, load_family
from tdw.models.architecture import ModelConfig
from tdw.progress import job_log
from tdw.train.early_stop import reached_files

run = snakemake.params.run  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821
with job_log(snakemake.log[0], f"forward_cache {run['variant']} {snakemake.wildcards.probe}"):  # noqa: F821
    family = load_family(snakemake.wildcards.family, str(Path(snakemake.scriptdir).parents[1] / "families"))  # noqa: F821
    model = ModelConfig(**run["model"]) if "model" in run else None  # absent: the family's at p
    variant = Variant(run["variant"], run["p"], run["seed"], run["train_frac"], (), data_seed=run.get("data_seed"), model=model)
    # the checkpoints metadata.json lists (the epochs reached, with early stopping) and their caches
    checkpoints, caches = reached_files(snakemake.input.manifest, snakemake.wildcards.probe)  # noqa: F821
    seconds = cache_checkpoints(family, variant, snakemake.wildcards.probe, checkpoints, caches)  # noqa: F821
    print(f"{len(seconds)} checkpoints, {sum(seconds):.2f} s, max {max(seconds):.3f} s per checkpoint")
