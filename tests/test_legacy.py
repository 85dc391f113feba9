"""Import of the original code's pickled runs (both fixtures) and refusal of unsafe pickles."""

import pickle

import numpy as np
import pytest
import torch
from legacy_files import legacy_file

from tdw.cache.forward import cache_checkpoints
from tdw.config import Variant, load_family
from tdw.io.checkpoint import load_weights, read_metadata
from tdw.io.h5 import open_h5
from tdw.io.history import read_history
from tdw.layout import VariantLayout
from tdw.models.tail import finish_forward
from tdw.tasks import modular as data
from tdw.train.legacy import LegacyFormatError, final_epoch, import_variant, read_legacy

FIXTURES = {"mod_addition_no_wd.pth": 4999, "low_precision_mod_addition.pth": 49999}


@pytest.mark.parametrize("name,epoch", FIXTURES.items())
def test_final_epoch(legacy_dir, name, epoch):
    assert final_epoch(legacy_dir / name) == epoch


@pytest.mark.parametrize("name,epoch", FIXTURES.items())
def test_import_converts_weights_and_keeps_history(legacy_dir, tmp_path, name, epoch):
    family = load_family("modadd")
    variant = Variant("legacy", 113, 0, 0.3, (epoch,), str(legacy_dir / name))
    import_variant(variant.legacy_path, family, variant, tmp_path)
    original = read_legacy(legacy_dir / name)
    ck = VariantLayout.at(tmp_path).checkpoint(epoch)
    w = load_weights(ck)
    m = {k: v.numpy() for k, v in original["model"].items()}
    np.testing.assert_array_equal(w["embed.W_E"], m["embed.W_E"].T)
    np.testing.assert_array_equal(w["blocks.0.attn.W_Q"][2], m["blocks.0.attn.W_Q"][2].T)
    # W_O: original [d_model, heads * d_head] -> [heads, d_head, d_model]
    np.testing.assert_array_equal(w["blocks.0.attn.W_O"][1], m["blocks.0.attn.W_O"][:, 32:64].T)
    np.testing.assert_array_equal(w["blocks.0.mlp.W_in"], m["blocks.0.mlp.W_in"].T)
    assert "blocks.0.attn.mask" not in w
    assert read_metadata(ck)["epoch"] == epoch
    hist = read_history(VariantLayout.at(tmp_path).history)
    np.testing.assert_allclose(hist["train_loss"], [float(x) for x in original["train_losses"]])
    np.testing.assert_allclose(hist["test_loss"], [float(x) for x in original["test_losses"]])
    if name.startswith("low_precision"):
        assert hist["test_epoch"][:3].tolist() == [0, 10, 20]  # test loss every 10 epochs


@pytest.mark.parametrize(
    "name,epoch,seed,train_rel",
    [("mod_addition_no_wd.pth", 4999, 0, 0.05), ("low_precision_mod_addition.pth", 49999, 1, 0.1)],
)
def test_imported_model_reproduces_the_recorded_train_loss(legacy_dir, tmp_path, name, epoch, seed, train_rel):
    """Converted weights run through the workbench (hooked forward -> cache -> tail) give the
    final train loss the original run recorded, on the split of Python's seeded shuffle with
    train fraction 0.3 (seed 0 for the no-weight-decay run: 1.67e-10 vs 1.68e-10 recorded;
    seed 1 for the low-precision run: 3.05e-4 vs 2.97e-4; the files store no config)."""
    family = load_family("modadd")
    variant = Variant("legacy", 113, seed, 0.3, (epoch,), str(legacy_dir / name))
    import_variant(variant.legacy_path, family, variant, tmp_path)
    ck = VariantLayout.at(tmp_path).checkpoint(epoch)
    out = tmp_path / "cache.h5"
    cache_checkpoints(family, variant, "full", [ck], [out])
    with open_h5(out) as fh:
        resid_mid, index = fh["blocks.0.hook_resid_mid"][()], fh["pair_index"][()]
        assert fh["blocks.0.hook_resid_mid"].attrs["dims"] == "batch d_model"
    assert index.tolist() == list(range(113 * 113))
    logits = finish_forward(resid_mid, load_weights(ck), family.model_config(113))["logits"]
    labels = data.labels(113, index)
    logp = torch.from_numpy(logits).double().log_softmax(-1).numpy()
    loss = -logp[np.arange(len(labels)), labels]
    train, _ = data.split(113, 0.3, seed)
    recorded = read_legacy(legacy_dir / name)["train_losses"][-1]
    assert loss[train].mean() == pytest.approx(float(recorded), rel=train_rel)
    assert (logits[train, :113].argmax(1) == labels[train]).mean() == 1.0


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_that_needs_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "extra": Payload()}, path)
    with pytest.raises(LegacyFormatError, match="refused"):
        read_legacy(path)


def test_non_checkpoint_file_is_rejected_with_its_name(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(pickle.dumps([1, 2, 3]) + b"\x00" * 10)
    with pytest.raises(LegacyFormatError, match="junk.pth"):
        read_legacy(path)


def legacy_config(path, **entry):
    cfg = {"family": "modadd", "legacy": [{"name": "old", "path": str(path)} | entry]}
    return cfg


def resolve_error(cfg, family="modadd"):
    from tdw.config import ConfigError, resolve

    with pytest.raises(ConfigError) as info:
        resolve(cfg | {"family": family}, "cfg.yaml")
    return str(info.value)


def original_test_epochs(n_train, every):
    """The original training loop: the train loss at every epoch, the test loss every k."""
    return [epoch for epoch in range(n_train) if epoch % every == 0]


@pytest.mark.parametrize("n_train,every", [(107_791, 10), (50_000, 10), (1_000, 1), (1_001, 7)])
def test_test_loss_epochs_follow_the_spacing_of_the_original_loop(tmp_path, n_train, every):
    from tdw.config import resolve

    expected = original_test_epochs(n_train, every)
    path = legacy_file(tmp_path / "run.pth", n_train, len(expected))
    assert (n_train, len(expected)) != (107_791, 10_780) or expected[-1] == 107_790  # 10 % further than 97,011
    wb = resolve(legacy_config(path, p=7), "cfg.yaml")
    variant = wb.variants[0]
    assert variant.legacy_test_every == every and variant.epochs == (n_train - 1,)
    import_variant(path, load_family("modadd"), variant, tmp_path / "out")
    hist = read_history(tmp_path / "out" / "history.h5")
    assert hist["test_epoch"].tolist() == expected
    assert hist["train_epoch"].tolist() == list(range(n_train))


def test_ambiguous_test_loss_spacing_needs_test_loss_every(tmp_path):
    # A test loss every 1000 epochs over 50,000: 50 test losses, as every 1001 ... 1020 gives.
    fits = [k for k in range(1, 50_000) if len(range(0, 50_000, k)) == 50]  # epochs 0, k, 2k, ... below 50,000
    assert fits == list(range(1000, 1021))
    path = legacy_file(tmp_path / "sparse.pth", 50_000, 50)
    err = resolve_error(legacy_config(path))
    assert "'legacy.0.test_loss_every'" in err and "sparse.pth" in err and "1000, 1001, ..., 1020" in err
    err = resolve_error(legacy_config(path, test_loss_every=999))
    assert "'legacy.0.test_loss_every'" in err and "every 999 epochs" in err and "gives 51 test losses" in err
    from tdw.config import resolve

    variant = resolve(legacy_config(path, test_loss_every=1000), "cfg.yaml").variants[0]
    assert variant.legacy_test_every == 1000
    import_variant(path, load_family("modadd"), variant, tmp_path / "out")
    assert read_history(tmp_path / "out" / "history.h5")["test_epoch"].tolist() == original_test_epochs(50_000, 1000)


STORED = {"p": 7, "seed": 3, "frac_train": 0.4, "fn_name": "add", "weight_decay": 1.0, "lr": 1e-3, "d_model": 128}


def test_stored_config_gives_p_seed_and_train_fraction(tmp_path):
    from tdw.config import resolve

    path = legacy_file(tmp_path / "stored.pth", config=STORED)
    v = resolve(legacy_config(path), "cfg.yaml").variants[0]
    assert (v.p, v.seed, v.train_frac) == (7, 3, 0.4)
    same = resolve(legacy_config(path, p=7, seed=3, train_frac=0.4), "cfg.yaml").variants[0]
    assert same == v


@pytest.mark.parametrize(
    "entry,needles",
    [
        ({"p": 11}, ["'legacy.0.p'", "p = 11 here", "stores p = 7"]),
        ({"seed": 0}, ["'legacy.0.seed'", "seed = 0 here", "stores seed = 3"]),
        ({"train_frac": 0.3}, ["'legacy.0.train_frac'", "train_frac = 0.3 here", "stores frac_train = 0.4"]),
    ],
)
def test_entry_that_contradicts_the_stored_config_is_refused(tmp_path, entry, needles):
    path = legacy_file(tmp_path / "stored.pth", config=STORED)
    err = resolve_error(legacy_config(path, **entry))
    assert all(n in err for n in ["cfg.yaml", "stored.pth", *needles]), err


def test_stored_task_must_be_the_family_task(tmp_path):
    from tdw.config import resolve

    path = legacy_file(tmp_path / "sub.pth", config=STORED | {"fn_name": "subtract"})
    err = resolve_error(legacy_config(path))
    assert "'legacy.0.path'" in err and "fn_name = 'subtract'" in err and "'add'" in err
    assert resolve(legacy_config(path) | {"family": "modsub"}, "cfg.yaml").variants[0].p == 7
    # The original Config computes d_vocab = 114 from its default p: a p = 7 run has 114 tokens.
    quirk = legacy_file(tmp_path / "quirk.pth", p=113, config=STORED)
    assert "stores p = 7 in its config, but its embedding has 114 tokens (p = 113)" in resolve_error(legacy_config(quirk))


@pytest.mark.parametrize(
    "content,needles",
    [
        (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), ["not a zip archive or pickle"]),
        (b"p: 113\nseed: 0\nthis is a config, not a checkpoint\n", ["is not a torch checkpoint: it starts with text", "'p: 113"]),
        (b"", ["is empty"]),
    ],
)
def test_file_that_is_no_torch_checkpoint_is_named_at_dag_build(tmp_path, content, needles):
    path = tmp_path / "download.pth"
    path.write_bytes(content)
    err = resolve_error(legacy_config(path, p=113))
    assert all(n in err for n in ["cfg.yaml", "'legacy.0.path'", "download.pth", *needles]), err


def test_damaged_checkpoint_and_wrong_p_are_found_at_dag_build(legacy_dir, tmp_path):
    original = legacy_dir / "low_precision_mod_addition.pth"
    broken = tmp_path / "broken.pth"
    broken.write_bytes(original.read_bytes()[:4000])
    err = resolve_error(legacy_config(broken, p=113))
    assert "'legacy.0.path'" in err and "broken.pth: not a readable torch checkpoint" in err
    err = resolve_error(legacy_config(original, p=97))
    assert "'legacy.0.p'" in err and "p = 97 here" in err and "114 tokens: p = 113" in err
    err = resolve_error(legacy_config(original, epoch=100))
    assert "'legacy.0.epoch'" in err and "no model at epoch 100" in err and "[49999]" in err


def test_wrong_p_and_architecture_are_found_at_dag_build(tmp_path):
    path = legacy_file(tmp_path / "run.pth")
    assert "'legacy.0.p'" in resolve_error(legacy_config(path, p=11))
    err = resolve_error(legacy_config(path), family="modadd_2layer")
    assert "'legacy.0.path'" in err and "one-layer model without LayerNorm" in err


def test_inspection_is_cached_until_the_file_changes(tmp_path):
    from tdw.train.legacy import inspect_legacy

    path = legacy_file(tmp_path / "run.pth", 100, 10)
    first = inspect_legacy(path)
    assert (first.final_epoch, first.epochs, first.p, first.n_train_losses, first.n_test_losses) == (99, (99,), 7, 100, 10)
    assert inspect_legacy(path) is first
    legacy_file(path, 200, 20, epoch=150)
    again = inspect_legacy(path)
    assert (again.final_epoch, again.n_train_losses, again.n_test_losses) == (150, 200, 20)


def test_history_that_is_not_numbers_is_found_at_dag_build(tmp_path):
    path = legacy_file(tmp_path / "run.pth", 10, 10)
    obj = torch.load(path, weights_only=True)
    torch.save(obj | {"test_losses": [*obj["test_losses"][:9], "nan?"]}, path)
    err = resolve_error(legacy_config(path))
    assert "'legacy.0.path'" in err and "run.pth: 'test_losses' holds a value that is not a number" in err
