"""Where a variant's files lie: the one definition of the results layout.

    <results>/<family>/<variant>/
      checkpoints/checkpoint_epoch_<epoch:05d>.safetensors
      history.h5, metadata.json, config.json
      cache/<probe>/epoch_<epoch:05d>.h5
      artifacts/<probe>/<analyzer>.h5
      figures/<figure>.<ext>
      reports/<report>.html
      train_state/{key.json, snapshot.safetensors, checkpoints/}
    <results>/<family>/compare/<report>.html, <results>/<family>/sweeps/<sweep>.html,
    <results>/<family>/storage.json
    <results>/<family>/replaced/<variant>-<UTC time>/   variant folders set aside by ``replace``
    <results>/logs/<family>/<rule>/<job>.<ext>

Every path is built here, by the workflow's rules (called with ``"{variant}"``, ``"{probe}"``
... to give their wildcard patterns), the trainer, the legacy import, the storage report,
the dashboard and the tests. Renaming a folder or file is one edit here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

RESULTS = "results"  # the default results root (a config's `results` key overrides it)
LOGS = "logs"  # job logs, in the results folder beside the families: two results folders never share a log

# A variant's sub-folders, by what they hold (the storage report's categories).
FOLDERS = {
    "checkpoints": "checkpoints",
    "cache": "cache",
    "artifacts": "artifacts",
    "figures": "figures",
    "reports": "reports",
    "train_state": "train_state",
}
FILES = {
    "history": "history.h5",
    "metadata": "metadata.json",
    "config": "config.json",
    "snapshot": "snapshot.safetensors",  # in train_state/
    "state_key": "key.json",  # in train_state/
}
# Beside the variant folders; ``replaced`` holds variant folders set aside by ``--config replace=...``.
FAMILY_FILES = {"compare": "compare", "sweeps": "sweeps", "storage": "storage.json", "replaced": "replaced"}


def checkpoint_name(epoch: int) -> str:
    """``checkpoint_epoch_<epoch:05d>.safetensors``."""
    return f"checkpoint_epoch_{epoch:05d}.safetensors"


def cache_name(epoch: int) -> str:
    """``epoch_<epoch:05d>.h5``."""
    return f"epoch_{epoch:05d}.h5"


@dataclass(frozen=True)
class VariantLayout:
    """The files of one variant under ``results/family/variant``. Any field may be a
    wildcard (``"{variant}"``): the paths are then Snakemake patterns."""

    results: str | os.PathLike
    family: str
    variant: str

    @classmethod
    def at(cls, variant_dir: str | os.PathLike) -> VariantLayout:
        """The layout of an existing variant folder (``<results>/<family>/<variant>``)."""
        d = Path(variant_dir)
        return cls(d.parent.parent, d.parent.name, d.name)

    @property
    def dir(self) -> Path:
        return Path(self.results) / self.family / self.variant

    def folder(self, kind: str) -> Path:
        """A sub-folder by kind (a key of ``FOLDERS``)."""
        return self.dir / FOLDERS[kind]

    def checkpoint(self, epoch: int) -> Path:
        return self.folder("checkpoints") / checkpoint_name(epoch)

    def checkpoint_entry(self, epoch: int) -> str:
        """A checkpoint's path relative to the variant folder (metadata.json's ``file``)."""
        return f"{FOLDERS['checkpoints']}/{checkpoint_name(epoch)}"

    @property
    def history(self) -> Path:
        return self.dir / FILES["history"]

    @property
    def metadata(self) -> Path:
        return self.dir / FILES["metadata"]

    @property
    def config(self) -> Path:
        return self.dir / FILES["config"]

    def cache_dir(self, probe: str) -> Path:
        return self.folder("cache") / probe

    def cache(self, probe: str, epoch: int) -> Path:
        return self.cache_dir(probe) / cache_name(epoch)

    def artifact_dir(self, probe: str) -> Path:
        return self.folder("artifacts") / probe

    def artifact(self, probe: str, analyzer: str) -> Path:
        return self.artifact_dir(probe) / f"{analyzer}.h5"

    def figure(self, name: str, ext: str) -> Path:
        return self.folder("figures") / f"{name}.{ext}"

    def report(self, name: str) -> Path:
        return self.folder("reports") / f"{name}.html"

    @property
    def train_state(self) -> Path:
        return self.folder("train_state")

    @property
    def state_key(self) -> Path:
        return self.train_state / FILES["state_key"]

    @property
    def snapshot(self) -> Path:
        return self.train_state / FILES["snapshot"]

    @property
    def state_checkpoints(self) -> Path:
        """Every checkpoint training has written; ``checkpoints/`` holds hard links into it."""
        return self.train_state / FOLDERS["checkpoints"]

    def is_variant_dir(self) -> bool:
        """Whether the folder holds a variant's files (metadata, config, checkpoints or train state)."""
        marks = (self.metadata, self.config, self.folder("checkpoints"), self.train_state)
        return self.dir.is_dir() and any(m.exists() for m in marks)


@dataclass(frozen=True)
class FamilyLayout:
    """A family's results folder (``results/family``), its comparison and sweep pages and its job logs."""

    results: str | os.PathLike
    family: str

    @property
    def dir(self) -> Path:
        return Path(self.results) / self.family

    def variant(self, name: str) -> VariantLayout:
        return VariantLayout(self.results, self.family, name)

    def compare(self, report: str) -> Path:
        return self.dir / FAMILY_FILES["compare"] / f"{report}.html"

    def sweep(self, name: str) -> Path:
        """The sweep page of sweep file ``name`` (``families/<family>/sweeps/<name>.json``)."""
        return self.dir / FAMILY_FILES["sweeps"] / f"{name}.html"

    @property
    def storage(self) -> Path:
        return self.dir / FAMILY_FILES["storage"]

    def replaced(self, variant: str, stamp: str) -> Path:
        """Where a replaced variant's folder is set aside: ``replaced/<variant>-<stamp>``."""
        return self.dir / FAMILY_FILES["replaced"] / f"{variant}-{stamp}"

    def log(self, rule: str, job: str, ext: str = "log") -> Path:
        """``<results>/logs/<family>/<rule>/<job>.<ext>`` (``ext``: ``log`` or ``bench.tsv``)."""
        return Path(self.results) / LOGS / self.family / rule / f"{job}.{ext}"

    def variants(self) -> list[VariantLayout]:
        """The variant folders present on disk, by name."""
        if not self.dir.is_dir():
            return []
        found = (self.variant(d.name) for d in sorted(self.dir.iterdir()))
        return [v for v in found if v.is_variant_dir()]


def find_variants(results: str | os.PathLike) -> list[VariantLayout]:
    """Every variant with a metadata.json under ``results``, by family and name."""
    return [v for f in sorted(Path(results).glob("*")) for v in FamilyLayout(results, f.name).variants() if v.metadata.exists()]


# The files the workbench reads from a Hugging Face ``save_pretrained`` directory (a step of a
# checkpoint series, ``tdw.models.hf``): its config, and its weights (the first that exists).
HF_CONFIG = "config.json"
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
