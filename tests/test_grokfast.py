"""Grokfast gradient filters in training: the trainer's filtered gradients against a literal
float64 reference loop, resume with the filter's state, the config's checks."""

from pathlib import Path

import numpy as np
import pytest
import torch

from tdw.config import ConfigError, TrainConfig, Variant, resolve
from tdw.io.checkpoint import load_weights, read_metadata
from tdw.io.history import read_history
from tdw.layout import VariantLayout
from tdw.models.architecture import ModelConfig
from tdw.models.fastpath import last_logits
from tdw.models.weights import init_params
from tdw.tasks import modular as data
from tdw.train.grokfast import GradFilter, check_grokfast
from tdw.train.state import TrainState
from tdw.train.trainer import TrainJob, stacked_cross_entropy, stacked_logits, train_variants

ROOT = Path(__file__).resolve().parents[1]
TINY = ModelConfig(p=7, d_model=16, n_heads=2, d_mlp=24)
EMA = [{"kind": "ema", "alpha": 0.98, "lamb": 2.0}, {"kind": "ema", "alpha": 0.8, "lamb": 5.0}]
MA = [{"kind": "ma", "window": 4, "lamb": 5.0}, {"kind": "ma", "window": 4, "lamb": 0.5}]


def _split(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx, _ = data.split(7, 0.5, seed)
    return torch.from_numpy(data.tokens(7, idx)), torch.from_numpy(data.labels(7, idx, "add"))


def _reference(seed: int, train: TrainConfig, steps: int) -> list[dict[str, np.ndarray]]:
    """One model, float64: gradient, the filter as the paper writes it, torch's AdamW."""
    params = {k: v.to(torch.float64).requires_grad_(True) for k, v in init_params(TINY, seed).items()}
    opt = torch.optim.AdamW(
        list(params.values()), lr=train.lr, betas=train.betas, eps=train.eps, weight_decay=train.weight_decay, foreach=False
    )
    x, y = _split(seed)
    spec, g_bar, past, stepped = train.grokfast, {}, {k: [] for k in params}, []
    for epoch in range(steps):
        logprobs = torch.log_softmax(last_logits(params, TINY, x).to(torch.float64), -1)
        loss = -logprobs[torch.arange(len(y)), y].mean()
        grads = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
        out = {}
        for k, g in grads.items():
            g = g.numpy()
            if spec["kind"] == "ema":
                g_bar[k] = g if k not in g_bar else spec["alpha"] * g_bar[k] + (1 - spec["alpha"]) * g
                out[k] = g + spec["lamb"] * g_bar[k]
            else:
                past[k].append(g)
                full = len(past[k]) >= spec["window"]
                out[k] = g + spec["lamb"] * np.mean(past[k][-spec["window"] :], axis=0) if full else g
        stepped.append(out)
        opt.param_groups[0]["lr"] = train.lr * min(epoch / train.warmup_steps, 1.0)
        for k, p in params.items():
            p.grad = torch.from_numpy(out[k])
        opt.step()
    return stepped


@pytest.mark.parametrize("specs", [EMA, MA], ids=["ema", "ma"])
def test_filtered_gradients_equal_a_float64_reference_loop(specs, one_thread):
    """Two stacked models (p = 7) with their own alpha/lamb and recipes: the gradients the
    trainer steps on equal the reference loop's to 1e-12 at every one of 12 steps."""
    trains = [
        TrainConfig(train_frac=0.5, grokfast=specs[0]),
        TrainConfig(train_frac=0.5, lr=2e-3, warmup_steps=3, grokfast=specs[1]),
    ]
    state = TrainState([{k: v.to(torch.float64) for k, v in init_params(TINY, s).items()} for s in (0, 1)], trains)
    xs, ys = zip(*(_split(s) for s in (0, 1)), strict=True)
    x, y = torch.stack(xs), torch.stack(ys)
    got = [state.step(stacked_cross_entropy(stacked_logits(state.params, TINY, x), y), epoch) for epoch in range(12)]
    for i in (0, 1):
        for step, ref in enumerate(_reference(i, trains[i], 12)):
            for k, want in ref.items():
                np.testing.assert_allclose(
                    got[step][k][i].numpy(), want, rtol=0, atol=1e-12, err_msg=f"model {i} step {step} {k}"
                )
    # the filter did something: the stepped gradient is not the raw one
    raw = dict(
        zip(
            state.params,
            torch.autograd.grad(
                stacked_cross_entropy(stacked_logits(state.params, TINY, x), y).sum(), list(state.params.values())
            ),
            strict=True,
        )
    )
    assert any(not torch.equal(state.filter(raw)[k], raw[k]) for k in raw)


def test_default_off_changes_nothing():
    """No filter: the gradients pass through untouched and config.json has no grokfast key
    (a run without the filter is described as before)."""
    grads = {"w": torch.randn(2, 3)}
    assert GradFilter([None, None])(grads) is grads
    assert "grokfast" not in TrainConfig().to_dict()
    assert TrainConfig(grokfast=EMA[0]).to_dict()["grokfast"] == EMA[0]


def _job(i: int, spec: dict, root: Path, epochs: tuple[int, ...]) -> TrainJob:
    train = TrainConfig(train_frac=0.5, grokfast=spec)
    variant = Variant(f"p23_g{i}", 23, i, 0.5, epochs)
    return TrainJob("modadd", "add", ModelConfig(p=23), train, variant, root / variant.name)


@pytest.mark.parametrize(
    "specs", [EMA, [{"kind": "ma", "window": 15, "lamb": 5.0}, {"kind": "ma", "window": 15, "lamb": 1.0}]], ids=["ema", "ma"]
)
def test_resume_with_the_filter_is_bit_identical(tmp_path, specs, one_thread):
    """24 epochs straight against 12, then a longer schedule resumed from the snapshot (the
    moving-average window only partly filled at the resume): weights and histories bitwise
    equal; the checkpoint header records the filter."""
    train_variants([_job(i, s, tmp_path / "straight", (0, 12, 24)) for i, s in enumerate(specs)])
    train_variants([_job(i, s, tmp_path / "resumed", (0, 12)) for i, s in enumerate(specs)])
    out = train_variants([_job(i, s, tmp_path / "resumed", (0, 12, 24)) for i, s in enumerate(specs)])
    assert out[0]["timings"]["resumed_from_epoch"] == 12
    for i, spec in enumerate(specs):
        a, b = (VariantLayout.at(tmp_path / root / f"p23_g{i}") for root in ("straight", "resumed"))
        wa, wb = load_weights(a.checkpoint(24)), load_weights(b.checkpoint(24))
        for key in wa:
            np.testing.assert_array_equal(wb[key], wa[key], err_msg=key)
        ha, hb = read_history(a.history), read_history(b.history)
        for key in ha:
            np.testing.assert_array_equal(hb[key], ha[key], err_msg=key)
        assert read_metadata(b.checkpoint(24))["config"]["train"]["grokfast"] == spec
    # without the filter's state the resumed run would differ: the filter shapes the trajectory
    train_variants([_job(i, None, tmp_path / "off", (0, 12, 24)) for i in (0, 1)])
    off = load_weights(VariantLayout.at(tmp_path / "off" / "p23_g0").checkpoint(24))
    on = load_weights(VariantLayout.at(tmp_path / "straight" / "p23_g0").checkpoint(24))
    assert any(np.abs(off[k] - on[k]).max() > 1e-4 for k in off)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"kind": "sma", "window": 3, "lamb": 1.0}, "kind 'ema' or 'ma'"),
        ({"kind": "ema", "alpha": 1.0, "lamb": 1.0}, "0 <= alpha < 1"),
        ({"kind": "ma", "window": 0, "lamb": 1.0}, "integer >= 1"),
        ({"kind": "ema", "window": 3, "lamb": 1.0}, "exactly the keys"),
    ],
)
def test_bad_filters_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        check_grokfast(spec)


def test_config_file_checks_the_filter():
    """A config's train.grokfast is checked against the schema while the DAG is built."""
    base = {"family": "modadd", "sweep": {"p": [31], "seed": [0]}, "checkpoints": [0, 10]}
    ok = resolve(base | {"train": {"grokfast": EMA[0]}}, "cfg.yaml", str(ROOT / "families"))
    assert ok.train.grokfast == EMA[0]
    with pytest.raises(ConfigError, match="grokfast"):
        resolve(base | {"train": {"grokfast": {"kind": "ema", "alpha": 1.5, "lamb": 2.0}}}, "cfg.yaml", str(ROOT / "families"))
