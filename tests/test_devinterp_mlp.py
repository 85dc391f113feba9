"""The devinterp grokking example as a family (modadd_mlp_devinterp): its model (one shared
embedding, a biased linear map per operand, GELU, an unbiased unembedding) against the
example's torch modules, torch's default initialisation, Adam with coupled L2 weight decay
against torch.optim.Adam, the grid tasks' seeded minibatch recipe (pure in the step, resumed
bit-identically, the example's training loop on the same batches), the family and config, and
the LLC of an MLP checkpoint against devinterp 2.0.1 with the example's SGLD settings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tdw.config import ConfigError, TrainConfig, Variant, load, load_family
from tdw.io.checkpoint import load_weights, save_checkpoint
from tdw.io.history import read_history
from tdw.models.architecture import ModelConfig
from tdw.models.build import build_model
from tdw.models.fastpath import last_logits
from tdw.models.weights import init_params, param_shapes
from tdw.tasks import modular as data
from tdw.train.optim import AdamWHyper, StackedAdamW
from tdw.train.trainer import TrainJob, train_variant

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cfg(p: int = 11, d_model: int = 6, d_mlp: int = 16, **kw) -> ModelConfig:
    options = {"input_bias": "per_operand", "init": "torch"} | kw
    return ModelConfig(p=p, d_model=d_model, d_mlp=d_mlp, n_heads=1, act="gelu", unembed_equals=False, model="mlp", **options)


class ExampleMLP(nn.Module):
    """The example's module: embedding, linear1l(e_a) + linear1r(e_b), GELU, linear2 without bias."""

    def __init__(self, p: int, d_model: int, d_mlp: int):
        super().__init__()
        self.embedding = nn.Embedding(p, d_model)
        self.linear1r = nn.Linear(d_model, d_mlp, bias=True)
        self.linear1l = nn.Linear(d_model, d_mlp, bias=True)
        self.linear2 = nn.Linear(d_mlp, p, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear1l(self.embedding(x[..., 0])) + self.linear1r(self.embedding(x[..., 1]))
        return self.linear2(nn.functional.gelu(h))

    def workbench_params(self) -> dict[str, torch.Tensor]:
        return {
            "embed.W_E": self.embedding.weight.detach().clone(),
            "mlp.W_in": torch.cat([self.linear1l.weight.T, self.linear1r.weight.T], 0).detach().clone(),
            "mlp.b_in_a": self.linear1l.bias.detach().clone(),
            "mlp.b_in_b": self.linear1r.bias.detach().clone(),
            "unembed.W_U": self.linear2.weight.T.detach().clone(),
        }


def test_per_operand_model_is_the_examples_module():
    cfg = _cfg()
    torch.manual_seed(3)
    example = ExampleMLP(11, 6, 16)
    params = example.workbench_params()
    assert {k: tuple(v.shape) for k, v in params.items()} == param_shapes(cfg)
    tokens = torch.from_numpy(data.tokens(11, np.arange(121)))
    expected = example(tokens[:, :2])
    torch.testing.assert_close(last_logits(params, cfg, tokens), expected, rtol=1e-5, atol=1e-6)
    hooked = build_model(cfg, params)
    torch.testing.assert_close(hooked(tokens)[:, -1], expected, rtol=1e-5, atol=1e-6)
    # the two biases enter only through their sum: moving bias between them changes nothing
    shifted = params | {"mlp.b_in_a": params["mlp.b_in_a"] + 0.5, "mlp.b_in_b": params["mlp.b_in_b"] - 0.5}
    torch.testing.assert_close(last_logits(shifted, cfg, tokens), expected, rtol=1e-5, atol=1e-5)


def test_torch_initialisation_has_torchs_default_distributions():
    cfg = _cfg(p=53, d_model=12, d_mlp=48)
    w = init_params(cfg, 0)
    assert list(w) == list(param_shapes(cfg)) and set(w) == {"embed.W_E", "mlp.W_in", "mlp.b_in_a", "mlp.b_in_b", "unembed.W_U"}
    assert abs(w["embed.W_E"].std().item() - 1.0) < 0.08 and abs(w["embed.W_E"].mean().item()) < 0.1  # N(0, 1), 636 values
    for name, fan_in in (("mlp.W_in", 12), ("mlp.b_in_a", 12), ("mlp.b_in_b", 12), ("unembed.W_U", 48)):
        bound = 1 / math.sqrt(fan_in)
        values = w[name].flatten()
        assert values.abs().max().item() <= bound, name
        if values.numel() > 1000:  # U(-b, b): variance b^2 / 3, the largest |value| near b
            assert abs(values.var().item() / (bound**2 / 3) - 1) < 0.1 and values.abs().max().item() > 0.98 * bound, name
    np.testing.assert_array_equal(init_params(cfg, 0)["mlp.W_in"].numpy(), w["mlp.W_in"].numpy())  # seeded
    torch.manual_seed(0)  # the example's modules built after torch.manual_seed(0): the same weights, bit for bit
    for name, value in ExampleMLP(53, 12, 48).workbench_params().items():
        np.testing.assert_array_equal(w[name].numpy(), value.numpy(), err_msg=name)
    assert not torch.equal(init_params(cfg, 1)["mlp.W_in"], w["mlp.W_in"])
    # the options keep every existing MLP variant as it was: absent from its description
    plain = ModelConfig(p=7, d_model=8, d_mlp=16, n_heads=1, unembed_equals=False, model="mlp")
    assert "input_bias" not in plain.to_dict() and "init" not in plain.to_dict()
    assert cfg.to_dict()["input_bias"] == "per_operand" and cfg.to_dict()["init"] == "torch"
    with pytest.raises(ValueError, match="options of the MLP model"):
        ModelConfig(p=7, init="torch")
    with pytest.raises(ValueError, match="needs embed_combine 'concat'"):
        _cfg(embed_combine="sum")


def test_coupled_l2_is_torch_adam_bitwise_and_per_model_in_a_stack():
    gen = torch.Generator().manual_seed(0)
    start = {"a": torch.randn(5, 7, generator=gen), "b": torch.randn(3, generator=gen)}
    settings = [(5e-3, 2e-4, True), (1e-2, 3e-2, True), (5e-3, 1e-1, False)]
    refs, opts = [], []
    for lr, wd, coupled in settings:
        ref = {k: v.clone().requires_grad_(True) for k, v in start.items()}
        kind = torch.optim.Adam if coupled else torch.optim.AdamW
        refs.append(ref)
        opts.append(kind(ref.values(), lr=lr, weight_decay=wd, betas=(0.9, 0.999), eps=1e-8, foreach=False))
    alone = {k: v.clone()[None] for k, v in start.items()}
    alone_opt = StackedAdamW(alone, [AdamWHyper(5e-3, (0.9, 0.999), 1e-8, 2e-4, True)])
    stack = {k: torch.stack([v] * 3) for k, v in start.items()}
    stack_opt = StackedAdamW(stack, [AdamWHyper(lr, (0.9, 0.999), 1e-8, wd, c) for lr, wd, c in settings])
    for _ in range(40):
        grads = {k: torch.randn(v.shape, generator=gen) for k, v in start.items()}
        for ref, opt in zip(refs, opts, strict=True):
            for k in ref:
                ref[k].grad = grads[k].clone()
            opt.step()
        alone_opt.step({k: g[None] for k, g in grads.items()}, [5e-3])
        stack_opt.step({k: torch.stack([g] * 3) for k, g in grads.items()}, [s[0] for s in settings])
    for k in start:  # one model: torch.optim.Adam's own operations, bit for bit
        np.testing.assert_array_equal(alone[k][0].numpy(), refs[0][k].detach().numpy())
        for i in range(3):  # a stack of differing decays: each model its own optimizer's
            np.testing.assert_allclose(stack[k][i].numpy(), refs[i][k].detach().numpy(), rtol=1e-5, atol=1e-7)
    # L2 and decoupled decay are different optimizers: the same lr and decay end elsewhere
    assert not np.allclose(refs[0]["a"].detach().numpy(), start["a"].numpy(), atol=1e-3)
    with pytest.raises(ConfigError, match="weight_decay_mode 'coupled'"):
        TrainConfig(weight_decay_mode="coupled")
    assert "weight_decay_mode" not in TrainConfig().to_dict()


def test_minibatch_rows_are_a_pure_function_of_seed_and_step():
    rows = data.minibatch_rows(100, 16, 3, 7)
    assert rows.dtype == np.int64 and len(rows) == 16 and len(set(rows.tolist())) == 16 and 0 <= rows.min() and rows.max() < 100
    np.testing.assert_array_equal(rows, data.minibatch_rows(100, 16, 3, 7))
    assert not np.array_equal(rows, data.minibatch_rows(100, 16, 3, 8))
    assert not np.array_equal(rows, data.minibatch_rows(100, 16, 4, 7))
    assert sorted(data.minibatch_rows(10, 16, 0, 0).tolist()) == list(range(10))  # a batch past the split: all of it
    # over many steps every row is drawn about equally often (uniform without replacement)
    counts = np.bincount(np.concatenate([data.minibatch_rows(100, 16, 0, s) for s in range(2000)]), minlength=100)
    assert abs(counts.mean() - 320) < 1e-9 and counts.std() < 4 * math.sqrt(320)
    assert data.minibatch_values({"recipe": "minibatch"}) == {"recipe": "minibatch", "batch_size": 128}
    with pytest.raises(ValueError, match="takes \\['batch_size'\\]; got \\['segment_min'\\]"):
        data.minibatch_values({"recipe": "minibatch", "segment_min": 2})


RECIPE = {"recipe": "minibatch", "batch_size": 16}
TRAIN = TrainConfig(
    train_frac=0.4,
    lr=5e-3,
    weight_decay=2e-4,
    betas=(0.9, 0.999),
    eps=1e-8,
    warmup_steps=0,
    test_loss_every=5,
    weight_decay_mode="l2",
)


def _job(out: Path, epochs: tuple[int, ...]) -> TrainJob:
    variant = Variant("p11_seed0", 11, 0, 0.4, epochs)
    return TrainJob("modadd_mlp_devinterp", "add", _cfg(), TRAIN, variant, out, "code", recipe=dict(RECIPE))


def test_minibatch_training_resumes_bit_identical(tmp_path):
    clean = train_variant(_job(tmp_path / "clean", (0, 20, 40)))
    assert clean["source"] == "trained" and clean["timings"]["resumed_from_epoch"] == 0
    train_variant(_job(tmp_path / "killed", (0, 20)))  # a run stopped after its snapshot at step 20
    resumed = train_variant(_job(tmp_path / "killed", (0, 20, 40)))
    assert resumed["timings"]["resumed_from_epoch"] == 20
    for step in (0, 20, 40):
        name = f"checkpoints/checkpoint_epoch_{step:05d}.safetensors"
        a, b = load_weights(tmp_path / "clean" / name), load_weights(tmp_path / "killed" / name)
        assert set(a) == set(param_shapes(_cfg()))
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")
    ha, hb = read_history(tmp_path / "clean" / "history.h5"), read_history(tmp_path / "killed" / "history.h5")
    for key in ha:
        np.testing.assert_array_equal(ha[key], hb[key])
    assert len(ha["train_loss"]) == 41 and list(ha["test_epoch"]) == list(range(0, 41, 5))
    w0 = load_weights(tmp_path / "clean" / "checkpoints/checkpoint_epoch_00040.safetensors")
    w1 = load_weights(tmp_path / "clean" / "checkpoints/checkpoint_epoch_00020.safetensors")
    assert not np.array_equal(w0["mlp.W_in"], w1["mlp.W_in"])


def test_training_is_the_examples_loop_on_the_same_batches(tmp_path):
    """The example's module, torch.optim.Adam(weight_decay=2e-4) and nn.CrossEntropyLoss on the
    batches the recipe draws end where the workbench's trainer ends (float64 log-softmax against
    torch's float32 cross-entropy: equal to rounding)."""
    steps = 30
    result = train_variant(_job(tmp_path / "run", (0, steps)))
    assert result["source"] == "trained"
    job = _job(tmp_path / "run", (0, steps))
    start = init_params(job.model, 0)
    example = ExampleMLP(11, 6, 16)
    with torch.no_grad():
        example.embedding.weight.copy_(start["embed.W_E"])
        example.linear1l.weight.copy_(start["mlp.W_in"][:6].T)
        example.linear1r.weight.copy_(start["mlp.W_in"][6:].T)
        example.linear1l.bias.copy_(start["mlp.b_in_a"])
        example.linear1r.bias.copy_(start["mlp.b_in_b"])
        example.linear2.weight.copy_(start["unembed.W_U"].T)
    opt = torch.optim.Adam(example.parameters(), lr=5e-3, weight_decay=2e-4)
    train_idx, _ = data.split(11, 0.4, 0)
    x = torch.from_numpy(data.tokens(11, train_idx))[:, :2]
    y = torch.from_numpy(data.labels(11, train_idx))
    history = read_history(tmp_path / "run" / "history.h5")
    for step in range(steps):
        rows = torch.from_numpy(data.minibatch_rows(len(train_idx), 16, 0, step))
        opt.zero_grad()
        loss = nn.functional.cross_entropy(example(x[rows]), y[rows])
        assert loss.item() == pytest.approx(history["train_loss"][step], rel=1e-5)
        loss.backward()
        opt.step()
    ours = load_weights(tmp_path / "run" / f"checkpoints/checkpoint_epoch_{steps:05d}.safetensors")
    for name, value in example.workbench_params().items():
        np.testing.assert_allclose(ours[name], value.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    assert not np.allclose(ours["mlp.W_in"], start["mlp.W_in"].numpy(), atol=1e-3)  # it did train


def test_family_and_config_are_the_examples():
    family = load_family("modadd_mlp_devinterp", str(ROOT / "families"))
    cfg = family.model_config(53)
    assert (cfg.model, cfg.d_model, cfg.d_mlp, cfg.act, cfg.embed_combine) == ("mlp", 12, 48, "gelu", "concat")
    assert (cfg.input_bias, cfg.init, cfg.d_vocab, cfg.d_vocab_out) == ("per_operand", "torch", 53, 53)
    assert sum(math.prod(s) for s in param_shapes(cfg).values()) == 53 * 12 + 2 * (12 * 48 + 48) + 48 * 53
    wb = load(str(ROOT / "config" / "devinterp_grokking.yaml"))
    assert [v.seed for v in wb.variants] == [0, 1, 2, 3]
    v = wb.variants[0]
    assert (v.p, v.train_frac, v.epochs[-1], len(v.epochs), v.epochs[1]) == (53, 0.4, 25000, 101, 250)
    assert (wb.train.lr, wb.train.weight_decay, wb.train.weight_decay_mode, wb.train.warmup_steps) == (5e-3, 2e-4, "l2", 0)
    assert wb.train.betas == (0.9, 0.999)
    llc = wb.analyzer_params("llc")
    expected = {"epsilon": 3e-3, "nbeta": 2.0, "gamma": 5.0, "chains": 1, "draws": 500, "burn_in": 0, "batch_size": 128}
    assert {k: llc[k] for k in expected} == expected


def _trained_mlp_checkpoint(root: Path) -> Path:
    """A small per-operand MLP trained full batch to a low train loss, with its run config."""
    p, frac = 11, 0.6
    cfg = _cfg(p=p, d_model=8, d_mlp=24)
    params = {k: v.clone().requires_grad_(True) for k, v in init_params(cfg, 0).items()}
    train_idx, _ = data.split(p, frac, 0)
    x, y = torch.from_numpy(data.tokens(p, train_idx)), torch.from_numpy(data.labels(p, train_idx))
    opt = torch.optim.Adam(params.values(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(last_logits(params, cfg, x), y).backward()
        opt.step()
    config = {"task": {"operation": "add", "p": p}, "seed": 0, "architecture": cfg.to_dict(), "train": {"train_frac": frac}}
    path = root / "checkpoint_epoch_00200.safetensors"
    save_checkpoint(path, {k: v.detach().numpy() for k, v in params.items()}, {"epoch": 200, "config": config})
    return path


def test_llc_of_an_mlp_checkpoint_agrees_with_devinterp(tmp_path):
    from llc_devinterp import devinterp_llc

    from tdw.analyzers import llc as llc_analyzer
    from tdw.analyzers.runner import checkpoint_view
    from tdw.params import resolve_params

    view = checkpoint_view(_trained_mlp_checkpoint(tmp_path), None)
    assert view.model.input_bias == "per_operand"
    # the example's sampler (step 3e-3, n*beta 2, localisation 5, no burn-in), more chains, fewer draws
    chosen = {
        "epsilon": 3e-3,
        "gamma": 5.0,
        "nbeta": 2.0,
        "chains": 5,
        "draws": 100,
        "burn_in": 0,
        "batch_size": 18,
        "seed": 1,
        "divergence_rise": 1000.0,
    }
    ours, s = llc_analyzer.estimate(view, resolve_params(llc_analyzer.PARAMS, chosen, "test"))
    ref = devinterp_llc(view.model, view.weights, view.split()[0], "add", s)
    assert not ours.diverged.any()
    assert ours.init_loss == pytest.approx(ref["init_loss"], rel=1e-4)  # 4 batches of 18 cover the 72 rows: L_n(w*)
    se = math.sqrt(ours.llc.var(ddof=1) / len(ours.llc) + ref["llc"].var(ddof=1) / len(ref["llc"]))
    assert abs(ours.llc_mean - ref["llc"].mean()) <= 2.5 * se, (ours.llc, ref["llc"])
    assert ours.llc_mean > 0.5  # a real signal, not two estimates of zero
