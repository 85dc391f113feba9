"""Import of the original code's pickled runs (both fixtures) and refusal of unsafe pickles."""

import pickle

import numpy as np
import pytest
import torch

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
