"""A variant's files (checkpoints, history.h5, config.json, metadata.json): one writer for
training, the legacy import and synthetic variants, and readers that check config.json and
metadata.json against their schemas (``tdw/schemas/variant_config.schema.json``,
``metadata.schema.json``)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np

from tdw.io.atomic import link_or_copy, write_json
from tdw.io.checkpoint import content_hash, recorded_hash, save_checkpoint
from tdw.io.history import write_history
from tdw.layout import VariantLayout

METADATA_SCHEMA = "metadata.schema.json"
CONFIG_SCHEMA = "variant_config.schema.json"


class VariantFileError(ValueError):
    """A config.json or metadata.json that does not match its schema; the message names the
    file and the key."""


@dataclass
class History:
    """Per-epoch losses: ``train_loss`` [train_epoch], ``test_loss`` [test_epoch]."""

    train_loss: np.ndarray
    train_epoch: np.ndarray
    test_loss: np.ndarray
    test_epoch: np.ndarray
    attrs: dict = field(default_factory=dict)
    # measures logged between checkpoints, {name: (array, dims)} on the track_epoch axis (tdw.train.tracking)
    tracked: dict = field(default_factory=dict)

    def last(self, which: str) -> float | None:
        values = np.asarray(getattr(self, f"{which}_loss"))
        return float(values[-1]) if len(values) else None


@cache
def _validator(schema: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(resources.files("tdw.schemas").joinpath(schema).read_text()))


def check(obj: object, schema: str, source: str) -> None:
    """Raise ``VariantFileError`` naming ``source``, the first wrong key and what is expected."""
    errors = sorted(_validator(schema).iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(k) for k in err.absolute_path) or "(top level)"
        expected = err.schema.get("description", "") if isinstance(err.schema, dict) else ""
        raise VariantFileError(f"{source}: key {key!r}: {err.message}" + (f" (expected: {expected})" if expected else ""))


def _read(path: str | os.PathLike, schema: str) -> dict:
    try:
        obj = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise VariantFileError(f"{path}: not valid JSON: {err}") from err
    check(obj, schema, str(path))
    return obj


def read_metadata_json(path: str | os.PathLike) -> dict:
    """A variant's metadata.json, checked against ``metadata.schema.json``."""
    return _read(path, METADATA_SCHEMA)


def read_variant_config(path: str | os.PathLike) -> dict:
    """A variant's config.json, checked against ``variant_config.schema.json``."""
    return _read(path, CONFIG_SCHEMA)


def _checkpoint_hash(source: Path | Mapping[str, np.ndarray]) -> str:
    """The content hash a checkpoint has (a file: as its header records it) or will have (weights)."""
    if isinstance(source, Mapping):
        return content_hash({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in source.items()})
    return recorded_hash(source)


def variant_config(run: dict) -> dict:
    """A trained variant's ``config.json`` from its train job's parameters
    (``rules/common.smk: train_params``: family, operation, model, train, variant, and relabel
    or recipe where the family has one). The trainer writes it; the workflow compares it with a
    variant already on disk (``tdw.workflow.identity``). For an imported variant (its
    ``variant`` has ``legacy_test_every``; ``legacy_path`` names the file) the file defines it:
    the train fraction and the source, not a recipe."""
    v = run["variant"]
    task = {"operation": run["operation"], "p": v["p"]}
    if run.get("relabel") and "recipe" not in run:
        task["relabel"] = run["relabel"]
    config = {
        "family": run["family"],
        "variant": v["name"],
        "task": task,
        "seed": v["seed"],
        "data_seed": v.get("data_seed", v["seed"]),
        "architecture": run["model"],
        "train": run["train"] | {"train_frac": v["train_frac"]},
        "checkpoint_epochs": list(v["epochs"]),
    }
    if "recipe" in run:
        config["recipe"] = run["recipe"]
    if "legacy_test_every" in v:  # an imported variant: its file defines it, not a recipe
        config["train"] = {"train_frac": v["train_frac"]}
        config["legacy_source"] = run["legacy_path"]
        del config["data_seed"]
    return config


def write_variant_files(
    layout: VariantLayout,
    config: dict,
    history: History,
    checkpoints: Mapping[int, Path | dict[str, np.ndarray]],
    metadata_fields: dict,
    checkpoint_meta: dict | None = None,
) -> dict:
    """Write a variant's checkpoints, history.h5, config.json and metadata.json (last, so a
    variant with a metadata.json is complete). Returns the metadata.

    ``config``: the variant's full description (``variant_config.schema.json``);
    ``checkpoints``: epoch -> a finished checkpoint file (hard-linked into place) or weights
    (saved as float32 with ``checkpoint_meta`` and the epoch in the header); each one's content
    hash goes into the checkpoint table (``tdw.io.checkpoint``); ``metadata_fields``:
    ``source``, ``final_epoch``, ``provenance`` and optionally ``timings``, ``legacy_source``.
    The family, the variant, the checkpoint table and the final losses are filled in here.
    """
    fields = dict(metadata_fields)
    final_epoch = fields.pop("final_epoch")
    epochs = sorted(checkpoints)
    table = [
        {"index": i, "epoch": e, "file": layout.checkpoint_entry(e), "content_sha256": _checkpoint_hash(checkpoints[e])}
        for i, e in enumerate(epochs)
    ]
    metadata = {
        "family": config["family"],
        "variant": config["variant"],
        **{k: fields.pop(k) for k in ("source", "legacy_source") if k in fields},
        "checkpoints": table,
        "final": {"epoch": final_epoch, "train_loss": history.last("train"), "test_loss": history.last("test")},
        **fields,
    }
    # What is written is what readers accept: a writer's mistake fails here, not in a later job.
    check(config, CONFIG_SCHEMA, f"{layout.config} (to be written)")
    check(metadata, METADATA_SCHEMA, f"{layout.metadata} (to be written)")
    for epoch in epochs:
        source = checkpoints[epoch]
        if isinstance(source, Mapping):
            save_checkpoint(layout.checkpoint(epoch), source, (checkpoint_meta or {}) | {"epoch": epoch})
        else:
            link_or_copy(source, layout.checkpoint(epoch))
    write_history(
        layout.history,
        history.train_loss,
        history.train_epoch,
        history.test_loss,
        history.test_epoch,
        history.attrs,
        history.tracked,
    )
    write_json(layout.config, config)
    write_json(layout.metadata, metadata)
    return metadata
