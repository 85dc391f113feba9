"""Stacked training with per-model hyperparameters: the stacked AdamW against torch's own
AdamW, and variants that differ in seed, lr, weight decay, betas, eps and warm-up trained as
one stacked model against each trained alone (CPU, bitwise)."""

import numpy as np
import pytest
import torch

from tdw.config import TrainConfig, Variant
from tdw.io.checkpoint import load_weights, read_metadata
from tdw.io.history import read_history
from tdw.layout import VariantLayout
from tdw.models.architecture import ModelConfig
from tdw.models.fastpath import last_logits
from tdw.models.weights import init_params
from tdw.tasks import modular as data
from tdw.train.optim import AdamWHyper, StackedAdamW
from tdw.train.trainer import TrainJob, stacked_cross_entropy, train_variant, train_variants

HYPERS = [  # lr, weight decay, betas, eps, warm-up
    TrainConfig(train_frac=0.5),
    TrainConfig(train_frac=0.5, lr=3e-3, weight_decay=0.3, betas=(0.8, 0.999), eps=1e-6, warmup_steps=0),
    TrainConfig(train_frac=0.5, lr=7e-4, weight_decay=0.0, betas=(0.95, 0.9), eps=1e-7, warmup_steps=3),
]


def _job(i: int, train: TrainConfig, root, epochs=(0, 15, 30), p=23) -> TrainJob:
    variant = Variant(f"p{p}_v{i}", p, i, train.train_frac, epochs)
    return TrainJob("modadd", "add", ModelConfig(p=p), train, variant, root / variant.name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stacked_adamw_equals_torch_adamw_per_model(dtype, one_thread):
    """Three models with different lr, weight decay, betas, eps and warm-up stepped together
    end bit-identical to three ``torch.optim.AdamW(foreach=False)``, gradients spanning six
    orders of magnitude."""
    gen = torch.Generator().manual_seed(0)
    shapes = {"a": (5, 7, 9), "b": (13,), "c": (4, 4)}
    init = {k: torch.randn(3, *s, dtype=dtype, generator=gen) for k, s in shapes.items()}
    stacked = {k: v.clone() for k, v in init.items()}
    hypers = [AdamWHyper(t.lr, t.betas, t.eps, t.weight_decay) for t in HYPERS]
    opt = StackedAdamW(stacked, hypers)
    singles = [{k: v[i].clone().requires_grad_(True) for k, v in init.items()} for i in range(3)]
    refs = [
        torch.optim.AdamW(list(s.values()), lr=h.lr, betas=h.betas, eps=h.eps, weight_decay=h.weight_decay, foreach=False)
        for s, h in zip(singles, hypers, strict=True)
    ]
    for step in range(40):
        scale = 10.0 ** torch.randint(-5, 2, (1,), generator=gen).item()
        grads = {k: scale * torch.randn(v.shape, dtype=dtype, generator=gen) for k, v in init.items()}
        lrs = [t.lr * (min(step / t.warmup_steps, 1.0) if t.warmup_steps else 1.0) for t in HYPERS]
        opt.step(grads, lrs)
        for i, (single, ref) in enumerate(zip(singles, refs, strict=True)):
            for k, p in single.items():
                p.grad = grads[k][i].clone()
            ref.param_groups[0]["lr"] = lrs[i]
            ref.step()
    for i, (single, ref) in enumerate(zip(singles, refs, strict=True)):
        for k, p in single.items():
            assert torch.equal(stacked[k][i], p.detach()), (i, k)
            assert torch.equal(opt.exp_avg[k][i], ref.state[p]["exp_avg"]), (i, k)
            assert torch.equal(opt.exp_avg_sq[k][i], ref.state[p]["exp_avg_sq"]), (i, k)


def test_trainer_equals_a_torch_adamw_loop(tmp_path, one_thread):
    """One variant trained by the workbench ends bit-identical to a plain loop with torch's
    AdamW (the optimizer the trainer used before it had its own), warm-up included."""
    tc = HYPERS[2]
    job = _job(0, tc, tmp_path, epochs=(0, 20))
    train_variant(job)
    params = {k: v.clone().requires_grad_(True) for k, v in init_params(job.model, 0).items()}
    opt = torch.optim.AdamW(list(params.values()), lr=tc.lr, betas=tc.betas, eps=tc.eps, weight_decay=tc.weight_decay)
    train_idx, _ = data.split(23, 0.5, 0)
    x, y = torch.from_numpy(data.tokens(23, train_idx)), torch.from_numpy(data.labels(23, train_idx, "add"))
    for epoch in range(20):
        opt.param_groups[0]["lr"] = tc.lr * min(epoch / tc.warmup_steps, 1.0)
        stacked_cross_entropy(last_logits(params, job.model, x)[None], y[None]).sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    got = load_weights(job.layout.checkpoint(20))
    for k, v in params.items():
        np.testing.assert_array_equal(got[k], v.detach().numpy(), err_msg=k)


def test_variants_with_different_hyperparameters_train_bit_identically(tmp_path, one_thread):
    """Three variants differing in seed, lr, weight decay, betas, eps and warm-up, trained as
    one stacked model: every checkpoint and history bitwise equal to training each alone, and
    each checkpoint header records its own recipe."""
    together = train_variants([_job(i, t, tmp_path / "stacked") for i, t in enumerate(HYPERS)])
    assert together[0]["timings"]["trained_together"] == ["p23_v0", "p23_v1", "p23_v2"]
    for i, t in enumerate(HYPERS):
        train_variant(_job(i, t, tmp_path / "single"))
    for i, t in enumerate(HYPERS):
        a, b = (VariantLayout.at(tmp_path / root / f"p23_v{i}") for root in ("single", "stacked"))
        for epoch in (0, 15, 30):
            wa, wb = load_weights(a.checkpoint(epoch)), load_weights(b.checkpoint(epoch))
            for key in wa:
                np.testing.assert_array_equal(wb[key], wa[key], err_msg=f"{b.checkpoint(epoch)} {key}")
        ha, hb = read_history(a.history), read_history(b.history)
        for key in ha:
            np.testing.assert_array_equal(hb[key], ha[key], err_msg=key)
        header = read_metadata(b.checkpoint(30))["config"]["train"]
        assert (header["lr"], header["weight_decay"], header["warmup_steps"]) == (t.lr, t.weight_decay, t.warmup_steps)
    # the recipes really differ: a variant's seed trained with another's recipe ends elsewhere
    train_variant(_job(1, HYPERS[0], tmp_path / "recipe0"))
    w0, w1 = (load_weights(VariantLayout.at(tmp_path / root / "p23_v1").checkpoint(30)) for root in ("recipe0", "stacked"))
    assert all(np.abs(w0[k] - w1[k]).max() > 1e-4 for k in w0 if np.abs(w0[k]).max() > 0)


@pytest.mark.parametrize(
    "change",
    [
        {"train": TrainConfig(train_frac=0.4)},
        {"train": TrainConfig(train_frac=0.5, test_loss_every=2)},
        {"train": TrainConfig(train_frac=0.5, grokfast={"kind": "ema", "alpha": 0.9, "lamb": 1.0})},
        {"epochs": (0, 15, 31)},
        {"p": 29},
    ],
)
def test_variants_that_differ_in_shape_or_schedule_are_refused(tmp_path, change):
    train = change.get("train", HYPERS[0])
    other = _job(1, train, tmp_path, change.get("epochs", (0, 15, 30)), change.get("p", 23))
    with pytest.raises(ValueError, match="differ in more than the seed"):
        train_variants([_job(0, HYPERS[0], tmp_path), other])
