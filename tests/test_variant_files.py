"""A variant's files from the one writer (tdw.io.variant), as training and synthetic variants
write them, and the schema checks of config.json and metadata.json when they are read."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tdw.config import TrainConfig, Variant
from tdw.io.checkpoint import content_hash, load_weights, read_metadata
from tdw.io.history import read_history
from tdw.io.variant import (
    CONFIG_SCHEMA,
    History,
    VariantFileError,
    _validator,
    read_metadata_json,
    read_variant_config,
    write_variant_files,
)
from tdw.layout import VariantLayout
from tdw.models.architecture import ModelConfig
from tdw.train.synthetic import make_variant


def test_trained_variant_files(tmp_path):
    from tdw.train.trainer import TrainJob, train_variant

    variant = Variant("p7_seed1", 7, 1, 0.5, (0, 2, 3))
    files = VariantLayout(tmp_path / "results", "modadd", variant.name)
    job = TrainJob(
        "modadd", "add", ModelConfig(p=7, d_model=16, n_heads=2, d_mlp=32), TrainConfig(train_frac=0.5), variant, files.dir
    )
    summary = train_variant(job)
    meta, cfg = read_metadata_json(files.metadata), read_variant_config(files.config)
    assert meta == summary and cfg == job.run_config()
    assert meta["source"] == "trained" and meta["family"] == "modadd" and meta["variant"] == "p7_seed1"
    table = [{k: c[k] for k in ("index", "epoch", "file")} for c in meta["checkpoints"]]
    assert table == [{"index": i, "epoch": e, "file": files.checkpoint_entry(e)} for i, e in enumerate((0, 2, 3))]
    # the table records each checkpoint's content hash, as its header does, and the tensors hash to it
    for c in meta["checkpoints"]:
        path = files.dir / c["file"]
        assert c["content_sha256"] == read_metadata(path)["content_sha256"] == content_hash(load_weights(path))
    hist = read_history(files.history)
    assert hist["train_epoch"].tolist() == [0, 1, 2, 3]
    assert meta["final"] == {"epoch": 3, "train_loss": hist["train_loss"][-1], "test_loss": hist["test_loss"][-1]}
    assert meta["timings"]["epochs_trained"] == 3 and meta["timings"]["total_seconds"] >= meta["timings"]["train_seconds"]
    for e in (0, 2, 3):
        # the output is a hard link to the checkpoint kept for resuming
        assert files.checkpoint(e).stat().st_ino == (files.state_checkpoints / files.checkpoint(e).name).stat().st_ino
        assert read_metadata(files.checkpoint(e))["epoch"] == e


def test_synthetic_variant_files(tmp_path):
    files = VariantLayout.at(make_variant(tmp_path, p=11, n_checkpoints=3, n_epochs=40))
    meta, cfg = read_metadata_json(files.metadata), read_variant_config(files.config)
    assert meta["source"] == "synthetic" and [c["epoch"] for c in meta["checkpoints"]] == [0, 20, 40]
    assert cfg["task"] == {"operation": "add", "p": 11} and cfg["checkpoint_epochs"] == [0, 20, 40]
    assert load_weights(files.dir / meta["checkpoints"][1]["file"])["embed.W_E"].shape == (12, 128)
    assert files.artifact("full", "embedding_frequencies").exists()


@pytest.fixture
def written(tmp_path):
    return VariantLayout.at(make_variant(tmp_path / "modadd", p=13, n_checkpoints=2, n_epochs=10))


def _edit(path, change):
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


def test_metadata_missing_a_key_names_file_and_key(written):
    _edit(written.metadata, lambda m: m["final"].pop("test_loss"))
    with pytest.raises(VariantFileError, match=rf"{written.metadata}: key 'final': 'test_loss' is a required property"):
        read_metadata_json(written.metadata)


def test_metadata_with_a_wrong_value_names_file_and_key(written):
    _edit(written.metadata, lambda m: m["checkpoints"][1].update(epoch="10"))
    with pytest.raises(VariantFileError, match=rf"{written.metadata}: key 'checkpoints.1.epoch': '10' is not of type 'integer'"):
        read_metadata_json(written.metadata)
    _edit(written.metadata, lambda m: (m["checkpoints"][1].update(epoch=10), m.update(source="copied")))
    with pytest.raises(VariantFileError, match=r"key 'source': 'copied' is not one of"):
        read_metadata_json(written.metadata)


def test_config_with_an_unknown_or_wrong_key_names_file_and_key(written):
    _edit(written.config, lambda c: c.update(sede=1))
    with pytest.raises(VariantFileError, match=rf"{written.config}: key '\(top level\)': Additional properties .*'sede'"):
        read_variant_config(written.config)
    _edit(written.config, lambda c: (c.pop("sede"), c["task"].update(p=2)))
    with pytest.raises(VariantFileError, match=r"key 'task.p': 2 is less than the minimum of 3"):
        read_variant_config(written.config)


def test_unreadable_json_names_the_file(written):
    written.metadata.write_text('{"family": ')
    with pytest.raises(VariantFileError, match=rf"{written.metadata}: not valid JSON"):
        read_metadata_json(written.metadata)


def test_the_report_and_views_read_through_the_schema(written):
    from tdw.figures.views import checkpoint_epochs
    from tdw.pages.report import load_metadata

    assert checkpoint_epochs(written.metadata) == [0, 10]
    _edit(written.metadata, lambda m: m.pop("checkpoints"))
    for read in (checkpoint_epochs, load_metadata):
        with pytest.raises(VariantFileError, match="'checkpoints' is a required property"):
            read(written.metadata)


def test_the_writer_refuses_a_bad_config_before_writing(tmp_path):
    files = VariantLayout(tmp_path, "modadd", "v")
    history = History(np.ones(3), np.arange(3), np.ones(3), np.arange(3))
    config = {
        "family": "modadd",
        "variant": "v",
        "task": {"operation": "pow", "p": 5},
        "seed": 0,
        "architecture": ModelConfig(p=5).to_dict(),
        "train": {"train_frac": 0.3},
        "checkpoint_epochs": [0],
    }
    with pytest.raises(VariantFileError, match=r"config.json \(to be written\): key 'task.operation'"):
        write_variant_files(files, config, history, {0: {"w": np.zeros(2)}}, {"source": "synthetic", "final_epoch": 2})
    assert not files.dir.exists()


def test_schema_lists_every_field_of_the_architecture_and_recipe():
    props = _validator(CONFIG_SCHEMA).schema["properties"]
    assert set(props["architecture"]["properties"]) == {f.name for f in dataclasses.fields(ModelConfig)}
    assert set(props["train"]["properties"]) == {f.name for f in dataclasses.fields(TrainConfig)}
