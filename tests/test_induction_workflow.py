"""The induction family through the real workflow: the tiny config builds every target
(caches keep tokens, lengths, every layer's pattern and the logits at every position); on
the default config the induction heads form during training and the transitions analyzer
reports the phase change as an interval bounded by checkpoints, where the best head's
induction score rises and the loss on repeated tokens falls; head ablation finds the circuit
(the previous-token head costs the repeated tokens most, each induction head some, the
first-seen tokens none) and the second layer's attention output gains dimensions."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from tdw.io.h5 import load_artifact
from tdw.layout import RESULTS, VariantLayout

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

pytestmark = pytest.mark.slow


def _run(workdir: Path, config: str, *targets: str) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / config, workdir / "config.yaml")
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--configfile", "config.yaml", "--cores", "2", *targets]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_tiny_induction_config_builds_every_target(tmp_path):
    _run(tmp_path, "tests/configs/tiny_induction.yaml")
    files = VariantLayout(tmp_path / RESULTS, "induction", "v31_seed0")
    assert files.report("default").exists()
    for fig in (
        "loss_curves",
        "induction",
        "induction_loss",
        "transitions",
        "weight_norms",
        "head_ablations",
        "dimensionality",
        "attention_offsets",
    ):
        assert files.figure(fig, "png").exists()
    with h5py.File(files.cache("repeated", 10)) as fh:
        assert fh["tokens"].shape == (64, 32) and list(fh["length"][()]) == [32] * 64
        assert fh["blocks.1.attn.hook_pattern"].shape == (64, 4, 32, 32)
        assert fh["logits"].shape == (64, 32, 31)
        assert fh["blocks.1.hook_resid_post"].shape == fh["blocks.0.hook_attn_out"].shape == (64, 32, 64)
        # causal: no attention to later positions; rows of the pattern sum to 1
        pattern = fh["blocks.0.attn.hook_pattern"][()]
        assert np.abs(np.triu(pattern, 1)).max() == 0.0
        np.testing.assert_allclose(pattern.sum(-1), 1.0, rtol=1e-5)
    art = load_artifact(files.artifact("repeated", "induction"))
    assert art["induction_score"].shape == (3, 2, 4) and list(art["epoch"]) == [0, 5, 10]
    for name in ("induction", "induction_loss"):  # artifacts open in xarray with their named axes
        with xr.open_dataset(files.artifact("repeated", name), engine="h5netcdf") as ds:
            assert ds["epoch"].dims == ("epoch",)
    with xr.open_dataset(files.artifact("repeated", "induction"), engine="h5netcdf") as ds:
        assert ds["mean_pattern"].dims == ("epoch", "layer", "head", "query_pos", "key_pos")
    # head ablation's unablated numpy pass gives the losses induction_loss reads from the cached logits
    abl, loss = (
        load_artifact(files.artifact("repeated", "ablations")),
        load_artifact(files.artifact("repeated", "induction_loss")),
    )
    assert abl["loss_change"].shape == (3, 2, 4, 2, 3)
    np.testing.assert_allclose(
        abl["base_loss"], np.stack([loss["loss"], loss["loss_repeated"], loss["loss_first_seen"]], 1), rtol=1e-5
    )


TARGETS = [
    # config/induction.yaml's recipe (weight decay 0.1, lr 3e-3) is in its variant's name
    str(VariantLayout(RESULTS, "induction", "v31_seed0_wd0.1_lr0.003").artifact("repeated", a))
    for a in ("transitions", "induction", "induction_loss", "ablations", "dimensionality")
]


def check_phase_change(workdir: Path) -> None:
    """The transitions interval brackets the induction heads' formation (measured on the
    default config: interval 450..1400; best head 0.15 -> 0.67; repeated-token loss 3.0 -> 1.2)."""
    trans = load_artifact(workdir / TARGETS[0])
    names = [b.decode() for b in trans["boundary"]]
    lo = int(trans["boundary_lo"][names.index("cleanup_start")])
    hi = int(trans["boundary_hi"][names.index("cleanup_end")])
    assert bool(trans["grokked"]) and 0 < lo < hi < 2000
    ind, loss = load_artifact(workdir / TARGETS[1]), load_artifact(workdir / TARGETS[2])
    epochs = list(ind["epoch"])
    scores = ind["induction_score"].reshape(len(epochs), -1)  # [epoch, layer * head]
    best = scores[-1].argmax()  # the head that ends as the best induction head
    assert best >= ind["induction_score"].shape[2]  # it is in the second layer
    assert scores[epochs.index(lo), best] < 0.3 and scores[-1, best] > 0.5
    assert ind["previous_token_score"][-1, 0].max() > 0.3  # and a first-layer head attends to the previous token
    repeated = loss["loss_repeated"]
    assert repeated[epochs.index(hi)] < repeated[epochs.index(lo)] - 0.5
    assert loss["icl_score"][0] > -0.2 and loss["icl_score"][-1] < -1.0


def check_circuit(workdir: Path) -> None:
    """Mean ablation at the last step (measured on the default config: the previous-token head
    L0H2 costs the repeated tokens 1.55, each second-layer head 0.46..0.67, first-seen tokens
    -0.08..0.11), and the second layer's attention output's participation ratio 5.1 -> 22.9."""
    ind, abl, dim = (load_artifact(workdir / t) for t in TARGETS[1:2] + TARGETS[3:])
    mean, subsets = [m.decode() for m in abl["mode"]].index("mean"), [s.decode() for s in abl["subset"]]
    repeated = abl["loss_change"][-1, :, :, mean, subsets.index("repeated")]  # [layer, head]
    first = abl["loss_change"][-1, :, :, mean, subsets.index("first_seen")]
    assert np.abs(abl["loss_change"][0]).max() < 0.02  # at initialisation no head matters
    # the largest cost: the first-layer head with the highest previous-token score (it feeds every induction head)
    prev = ind["previous_token_score"][-1, 0]
    assert np.unravel_index(repeated.argmax(), repeated.shape) == (0, prev.argmax()) and prev.max() > 0.3
    # every second-layer head is an induction head and costs the repeated tokens, not the first-seen ones
    assert ind["induction_score"][-1, 1].min() > 0.5 and repeated[1].min() > 0.3
    assert np.abs(first).max() < 0.2 and repeated.max() > 1.0
    hooks = [h.decode() for h in dim["hook"]]
    ratio = dim["participation_ratio"][:, hooks.index("blocks.1.hook_attn_out")]
    assert ratio[-1] > 3 * ratio[0]


def test_default_config_shows_the_induction_phase_change(tmp_path):
    _run(tmp_path, "config/induction.yaml", *TARGETS)
    check_phase_change(tmp_path)
    check_circuit(tmp_path)
