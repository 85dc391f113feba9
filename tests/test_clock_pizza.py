"""The clock-vs-pizza measures against independent computations: torch autograd for the
embedding gradients, closed forms for distance irrelevance, explicit least squares over the
[p^2, p] template tensors for the template fractions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from handmade import write_caches, write_run

from tdw.analyzers.clock_pizza import distance_irrelevance, embedding_gradients, gradient_symmetricity, template_fractions
from tdw.analyzers.runner import run_analyzer
from tdw.io.h5 import load_artifact
from tdw.models.architecture import ModelConfig
from tdw.models.hooked import HookedModAdd
from tdw.models.weights import init_params

P = 11


def _weights(cfg: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    g = torch.Generator().manual_seed(seed + 1)
    params = {k: v + 0.5 * torch.randn(v.shape, generator=g) for k, v in init_params(cfg, seed).items()}
    return {k: v.double().numpy() for k, v in params.items()}


def _autograd(weights: dict[str, np.ndarray], cfg: ModelConfig, triples: np.ndarray) -> np.ndarray:
    """d logit_c / d (embedding at positions 0 and 1) through the hooked model: [n, 2, d_model]."""
    model = HookedModAdd.from_params(cfg, {k: torch.tensor(v) for k, v in weights.items()}).double()
    tokens = torch.tensor(np.c_[triples[:, :2], np.full(len(triples), cfg.p)])
    emb = torch.tensor(weights["embed.W_E"])[tokens].requires_grad_(True)  # [n, pos, d_model]
    logits = model.run_with_hooks(tokens, fwd_hooks=[("hook_embed", lambda x, hook: emb)])[:, -1]
    logits[torch.arange(len(triples)), torch.tensor(triples[:, 2])].sum().backward()
    return emb.grad[:, :2].numpy()


@pytest.mark.parametrize("rate", [1.0, 0.3, 0.0])
def test_embedding_gradients_equal_autograd(rate):
    cfg = ModelConfig(p=P, d_model=32, n_heads=4, d_mlp=64, attention_rate=rate)
    weights = _weights(cfg)
    triples = np.random.default_rng(0).integers(0, P, size=(40, 3))
    ours = embedding_gradients(weights, cfg, triples[:, 0], triples[:, 1], triples[:, 2])
    ref = _autograd(weights, cfg, triples)
    assert np.abs(ref).max() > 0.1
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)
    cos = (ref[:, 0] * ref[:, 1]).sum(-1) / np.linalg.norm(ref[:, 0], axis=-1) / np.linalg.norm(ref[:, 1], axis=-1)
    assert gradient_symmetricity(weights, cfg, triples) == pytest.approx(cos.mean(), abs=1e-12)
    if rate == 1.0:  # softmax attention of random weights: clearly not symmetric
        assert cos.mean() < 0.9


def test_uniform_attention_is_symmetric_whatever_the_weights():
    """At rate 0 the output depends on x_a + x_b only: both gradients are equal."""
    cfg = ModelConfig(p=P, d_model=32, n_heads=4, d_mlp=64, attention_rate=0.0)
    triples = np.random.default_rng(1).integers(0, P, size=(50, 3))
    assert gradient_symmetricity(_weights(cfg, seed=4), cfg, triples) == pytest.approx(1.0, abs=1e-12)


def test_a_model_symmetric_in_a_and_b_has_symmetricity_one():
    """Softmax attention with a zero query and no position embedding treats a and b alike."""
    cfg = ModelConfig(p=P, d_model=32, n_heads=4, d_mlp=64)
    weights = _weights(cfg) | {"blocks.0.attn.W_Q": np.zeros((4, 32, 8)), "pos_embed.W_pos": np.zeros((3, 32))}
    triples = np.random.default_rng(2).integers(0, P, size=(50, 3))
    assert gradient_symmetricity(weights, cfg, triples) == pytest.approx(1.0, abs=1e-12)


def _grid(p: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.divmod(np.arange(p * p), p)
    return (a + b) % p, (a - b) % p


def test_distance_irrelevance_closed_forms():
    p = 13
    s, d = _grid(p)
    rng = np.random.default_rng(0)
    f, g = rng.normal(size=p), rng.normal(size=p)
    assert distance_irrelevance(f[s], p) == pytest.approx(1.0, abs=1e-12)  # the sum only: distance irrelevant
    assert distance_irrelevance(g[d], p) == pytest.approx(0.0, abs=1e-12)  # the distance only
    # additive: within each distance the spread is std(f); overall sqrt(var f + var g)
    assert distance_irrelevance(f[s] + g[d], p) == pytest.approx(f.std() / np.sqrt(f.var() + g.var()), rel=1e-12)
    assert distance_irrelevance(np.ones(p * p), p) == 0.0


def _explicit_fraction(logits: np.ndarray, templates: list[np.ndarray]) -> float:
    """Least squares of the per-input-centred logits on explicit [p^2, p] templates."""
    y = (logits - logits.mean(1, keepdims=True)).ravel()
    x = np.stack([t.ravel() for t in templates], 1)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(np.sum((x @ coef) ** 2) / np.sum(y**2))


def _templates(p: int, k: int) -> dict[str, list[np.ndarray]]:
    a, b = np.divmod(np.arange(p * p), p)
    phase = 2 * np.pi * k * ((a + b)[:, None] - np.arange(p)[None]) / p  # [pair, class]
    g = np.abs(np.cos(np.pi * k * (a - b) / p))[:, None]
    return {"clock": [np.cos(phase), np.sin(phase)], "pizza": [g * np.cos(phase), g * np.sin(phase)]}


def test_template_fractions_equal_explicit_least_squares():
    p = 11
    rng = np.random.default_rng(3)
    t3, t4 = _templates(p, 3), _templates(p, 4)
    logits = 2 * t3["clock"][0] + 1.5 * t4["pizza"][1] + rng.normal(size=(p * p, p)) + rng.normal(size=(p * p, 1))
    clock, pizza = template_fractions(logits, p)
    assert clock.shape == pizza.shape == (p // 2,)
    for k in range(1, p // 2 + 1):
        t = _templates(p, k)
        assert clock[k - 1] == pytest.approx(_explicit_fraction(logits, t["clock"]), rel=1e-9, abs=1e-12)
        assert pizza[k - 1] == pytest.approx(_explicit_fraction(logits, t["pizza"]), rel=1e-9, abs=1e-12)
    # orthogonal across frequencies: the fractions add up
    both = _explicit_fraction(logits, t3["clock"] + t4["clock"])
    assert clock[2] + clock[3] == pytest.approx(both, rel=1e-9)


def test_a_pure_clock_and_a_pure_pizza():
    p = 13
    clock_logits = _templates(p, 5)["clock"][0]
    pizza_logits = _templates(p, 2)["pizza"][0]
    clock, pizza = template_fractions(clock_logits, p)
    assert clock[4] == pytest.approx(1.0) and np.delete(clock, 4).max() < 1e-12
    assert pizza[4] < 0.95  # a clock is only partly a pizza
    clock, pizza = template_fractions(pizza_logits, p)
    assert pizza[1] == pytest.approx(1.0) and clock[1] < 0.95


def test_artifact_over_checkpoints(tmp_path):
    ckpts = write_run(tmp_path, 23, (3, 7), epochs=(0, 10, 20))
    caches = write_caches(ckpts, tmp_path / "cache")
    out = tmp_path / "clock_pizza.h5"
    run_analyzer("clock_pizza", {"n_triples": 30}, ckpts, caches, out, {})
    art = load_artifact(out)
    assert list(art["epoch"]) == [0, 10, 20]
    assert art["triples"].shape == (30, 3) and list(art["key_frequency"]) == [3, 7]
    assert art["clock_fraction"].shape == (3, 11)
    np.testing.assert_allclose(art["clock_fraction_keys"], art["clock_fraction"][:, [2, 6]].sum(1))
    # the hand-made model computes sum_k cos(w_k (a + b - c)) approximately: clock-like logits
    assert art["clock_fraction_keys"][-1] > 0.8
    assert 0 <= art["distance_irrelevance"].min() and np.all(np.abs(art["gradient_symmetricity"]) <= 1)


def test_figure_plots_the_artifact(tmp_path):
    from tdw.config import load_family
    from tdw.figures import builder

    ckpts = write_run(tmp_path, 23, (3, 7), epochs=(0, 10, 20))
    caches = write_caches(ckpts, tmp_path / "cache")
    run_analyzer("clock_pizza", {}, ckpts, caches, tmp_path / "cp.h5", {})
    art = load_artifact(tmp_path / "cp.h5")
    params = load_family("modadd").spec["figures"]["clock_pizza"]["params"]
    fig = builder("clock_pizza")({"artifact": art}, params, "t")
    names = ["gradient_symmetricity", "distance_irrelevance", "clock_fraction_keys", "pizza_fraction_keys"]
    for trace, name in zip(fig.data, names, strict=True):
        np.testing.assert_array_equal(trace.x, art["epoch"])
        np.testing.assert_array_equal(trace.y, art[name])
    assert "k = 3, 7" in fig.layout.annotations[1].text
    assert fig.layout.xaxis.title.text == "epoch" and fig.layout.yaxis2.title.text == "fraction of variance"


def test_subtraction_swaps_the_roles_of_sum_and_difference():
    """For a - b, b -> -b maps the task to addition: the clock's logits go as cos(w (a - b - c))
    and its correct logit ignores a + b; the pizza's correct logit is a function of a + b."""
    p = 13
    a, b = np.divmod(np.arange(p * p), p)
    phase = 2 * np.pi * 4 * ((a - b)[:, None] - np.arange(p)[None]) / p
    clock, _ = template_fractions(np.cos(phase), p, "sub")
    assert clock[3] == pytest.approx(1.0)
    assert template_fractions(np.cos(phase), p, "add")[0].max() < 0.1
    f = np.random.default_rng(5).normal(size=p)
    assert distance_irrelevance(f[(a - b) % p], p, "sub") == pytest.approx(1.0)
    assert distance_irrelevance(f[(a + b) % p], p, "sub") == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [("n_triples", 0, "1 <= value <= 10000000"), ("n_triples", -5, "1 <= value"), ("seed", -1, "a seed >= 0")],
)
def test_bad_parameters_are_refused_when_the_config_resolves(key, value, says):
    from tdw.config import ConfigError, resolve

    config = {"family": "modadd", "sweep": {"p": [13], "seed": [0]}, "analyzers": {"clock_pizza": {key: value}}}
    with pytest.raises(ConfigError) as info:
        resolve(config, "cfg.yaml")
    message = str(info.value)
    assert "cfg.yaml" in message and "analyzer 'clock_pizza'" in message and f"parameter {key!r}" in message
    assert f"{value!r} is out of range" in message and says in message


def test_zero_triples_stop_the_workflow_before_any_job(tmp_path):
    """Snakemake refuses the config while it builds the DAG: nothing runs, nothing is written."""
    from workflow_runs import run_snakemake, write_config

    config = write_config(tmp_path, [7], [0], [0, 5], analyzers={"clock_pizza": {"n_triples": 0}})
    out = run_snakemake(tmp_path, config, "--cores", "1", target_list=[], timeout=120)
    assert out.returncode != 0
    says = f"{config}: key 'analyzers.clock_pizza' (analyzer 'clock_pizza'): parameter 'n_triples': 0 is out of range"
    assert says in out.stderr, out.stderr[-2000:]
    # Snakemake's own bookkeeping (.snakemake) aside: no results, no logs
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".snakemake") == ["sweep.yaml"]
