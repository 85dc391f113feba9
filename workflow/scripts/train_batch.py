"""Snakemake adapter: train the seeds of one prime together in one process (rules/train.smk)."""

from pathlib import Path

import torch

from tdw.progress import job_log
from tdw.train.trainer import TrainJob, train_variants, training_threads

runs = snakemake.params.runs  # noqa: F821
with job_log(snakemake.log[0], "train_batch " + ", ".join(r["variant"]["name"] for r in runs)):  # noqa: F821
    jobs = [
        TrainJob.from_params(run, Path(metadata).parent, snakemake.params.code)  # noqa: F821
        for run, metadata in zip(runs, snakemake.output.metadata, strict=True)  # noqa: F821
    ]
    torch.set_num_threads(training_threads(jobs, snakemake.threads))  # noqa: F821
    train_variants(jobs)
