"""The MLP model (``tdw.models.mlp``) and its family ``modadd_mlp``: hook names from the module
tree, the training fast path against ``run_with_cache``, a hand-built model that computes
a + b mod p exactly, stacked training bitwise equal to training alone, the analyzers that
apply (and a clear refusal of those that do not), the workflow's report, and grokking on the
family's default config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from handmade import write_caches

from tdw.analyzers import check_family_analyzers
from tdw.analyzers.runner import run_analyzer
from tdw.config import ConfigError, TrainConfig, Variant, expand_schedule, load, load_family, resolve
from tdw.io.checkpoint import checkpoint_name, load_weights, save_checkpoint
from tdw.io.h5 import load_artifact
from tdw.io.history import read_history
from tdw.layout import VariantLayout
from tdw.models import hooks
from tdw.models.architecture import ModelConfig
from tdw.models.build import build_model
from tdw.models.fastpath import last_logits
from tdw.models.weights import init_params, param_shapes
from tdw.tasks import modular as data
from tdw.train.trainer import TrainJob, train_variant, train_variants

SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def _cfg(p: int = 7, combine: str = "concat", act: str = "relu", **kw) -> ModelConfig:
    return ModelConfig(
        p=p, d_model=8, d_mlp=16, n_heads=1, act=act, unembed_equals=False, model="mlp", embed_combine=combine, **kw
    )


def _grid_tokens(p: int) -> torch.Tensor:
    return torch.from_numpy(data.tokens(p, np.arange(p * p)))


@pytest.mark.parametrize("combine", ["concat", "sum"])
def test_hook_names_are_the_module_tree(combine):
    cfg = _cfg(combine=combine)
    model = build_model(cfg)
    assert type(model).__name__ == "HookedMLP"
    assert sorted(model.hook_dict) == sorted(hooks.hook_names(cfg))
    assert hooks.hook_names(cfg) == ("hook_embed", "mlp.hook_pre", "mlp.hook_post", "hook_logits")
    assert {k: tuple(v.shape) for k, v in model.named_parameters()} == param_shapes(cfg)
    assert param_shapes(cfg)["mlp.W_in"] == ((16 if combine == "concat" else 8), 16)
    # analyzers name the last block's MLP; on the MLP model that is its one hidden layer
    assert hooks.resolve(hooks.hook(hooks.LAST, hooks.MLP_POST), cfg) == "mlp.hook_post"
    assert hooks.resolve(hooks.hook(0, hooks.MLP_PRE), cfg) == "mlp.hook_pre"
    assert hooks.resolve(hooks.hook(hooks.LAST, hooks.RESID_MID), cfg) == "blocks.0.hook_resid_mid"  # it has none
    assert hooks.resolve(hooks.hook(hooks.LAST, hooks.MLP_POST), ModelConfig(p=7)) == "blocks.0.mlp.hook_post"


@pytest.mark.parametrize(("combine", "act"), [("concat", "relu"), ("sum", "gelu")])
def test_run_with_cache_equals_fast_path(combine, act):
    """The trainer's logits (fast path) are the hooked model's, and the cached activations
    are the closed form: pre = [W_E[a], W_E[b]] W_in + b_in (or W_E[a] + W_E[b]), logits = act(pre) W_U."""
    p = 11
    cfg = _cfg(p, combine, act)
    params = init_params(cfg, seed=3)
    params["mlp.b_in"] = torch.randn(cfg.d_mlp, generator=torch.Generator().manual_seed(1))
    tokens = _grid_tokens(p)
    with torch.no_grad():
        logits, cache = build_model(cfg, params).run_with_cache(tokens)
        fast = last_logits(params, cfg, tokens)
    assert logits.shape == (p * p, 1, p) and cache["mlp.hook_post"].shape == (p * p, 1, cfg.d_mlp)
    torch.testing.assert_close(logits[:, -1], fast, rtol=0, atol=1e-6)
    w = {k: v.double().numpy() for k, v in params.items()}
    a, b = tokens[:, 0].numpy(), tokens[:, 1].numpy()
    x = (
        np.concatenate([w["embed.W_E"][a], w["embed.W_E"][b]], 1)
        if combine == "concat"
        else w["embed.W_E"][a] + w["embed.W_E"][b]
    )
    pre = x @ w["mlp.W_in"] + w["mlp.b_in"]
    post = np.maximum(pre, 0) if act == "relu" else torch.nn.functional.gelu(torch.from_numpy(pre)).numpy()
    np.testing.assert_allclose(cache["hook_embed"].numpy(), np.stack([w["embed.W_E"][a], w["embed.W_E"][b]], 1), atol=1e-6)
    np.testing.assert_allclose(cache["mlp.hook_pre"][:, 0].numpy(), pre, atol=1e-5)
    np.testing.assert_allclose(cache["hook_logits"][:, 0].numpy(), post @ w["unembed.W_U"], atol=1e-5)


def handmade_adder(p: int) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """An MLP that computes a + b mod p exactly: one-hot embeddings, neuron (i, j) fires 1
    exactly on the pair (i, j) (pre = [a = i] + [b = j] - 1), W_U sends it to (i + j) mod p."""
    cfg = ModelConfig(p=p, d_model=p, d_mlp=p * p, n_heads=1, unembed_equals=False, model="mlp")
    i, j = np.divmod(np.arange(p * p), p)
    w_in = np.zeros((2 * p, p * p), dtype=np.float32)
    w_in[i, np.arange(p * p)] = 1
    w_in[p + j, np.arange(p * p)] = 1
    w_u = np.zeros((p * p, p), dtype=np.float32)
    w_u[np.arange(p * p), (i + j) % p] = 1
    params = {"embed.W_E": np.eye(p), "mlp.W_in": w_in, "mlp.b_in": -np.ones(p * p), "unembed.W_U": w_u}
    return cfg, {k: torch.tensor(v, dtype=torch.float32) for k, v in params.items()}


def test_handmade_adder_has_the_known_output(tmp_path):
    """Logits are one-hot at (a + b) mod p on every pair; hook_post is the one-hot pair index;
    through the cache, ablating the neuron of pair (2, 3) costs exactly that row's loss."""
    p = 5
    cfg, params = handmade_adder(p)
    tokens = _grid_tokens(p)
    labels = data.labels(p, np.arange(p * p), "add")
    with torch.no_grad():
        logits, cache = build_model(cfg, params).run_with_cache(tokens)
    np.testing.assert_array_equal(logits[:, 0].numpy(), np.eye(p)[labels])
    np.testing.assert_array_equal(last_logits(params, cfg, tokens).numpy(), np.eye(p)[labels])
    np.testing.assert_array_equal(cache["mlp.hook_post"][:, 0].numpy(), np.eye(p * p))
    config = {"task": {"operation": "add", "p": p}, "seed": 0, "architecture": cfg.to_dict(), "train": {"train_frac": 0.5}}
    ckpt = tmp_path / checkpoint_name(0)
    save_checkpoint(ckpt, {k: v.numpy() for k, v in params.items()}, {"epoch": 0, "config": config})
    spec = load_family("modadd_mlp").spec["cache"]
    caches = write_caches([ckpt], tmp_path / "cache", spec=spec)
    run_analyzer("ablations", {"top_neurons": p * p}, [ckpt], caches, tmp_path / "abl.h5", {})
    out = load_artifact(tmp_path / "abl.h5")
    groups = [g.decode() for g in out["group"]]
    assert not any(g.startswith("head_") for g in groups)
    assert not out["dead"][0].any() and not out["always_on"][0].any()
    # base loss: every row's logits are one-hot, loss = log(e + p - 1) - 1 per row
    row_loss = np.log(np.e + p - 1) - 1
    np.testing.assert_allclose(out["base_loss"][0, 0], row_loss, rtol=1e-6)
    # zero-ablating neuron (2, 3) leaves row 2p+3 with flat logits: loss log p there, on 1 of p^2 rows
    g = groups.index(f"neuron_{2 * p + 3}")
    np.testing.assert_allclose(out["loss_change"][0, g, 0, 0], (np.log(p) - row_loss) / p**2, rtol=1e-6)


def _job(i: int, train: TrainConfig, root: Path, p: int = 13, epochs=(0, 10, 20)) -> TrainJob:
    variant = Variant(f"p{p}_v{i}", p, i, train.train_frac, epochs)
    return TrainJob("modadd_mlp", "add", _cfg(p), train, variant, root / variant.name)


def test_stacked_mlp_training_is_bitwise_training_alone(tmp_path, one_thread):
    """Two MLP variants (other seed, lr and weight decay) trained as one stack end with the
    weights and losses of each trained alone, bit for bit (CPU)."""
    trains = [TrainConfig(train_frac=0.5, lr=3e-3), TrainConfig(train_frac=0.5, lr=1e-3, weight_decay=0.3, warmup_steps=0)]
    alone = [_job(i, t, tmp_path / "alone") for i, t in enumerate(trains)]
    for job in alone:
        train_variant(job)
    together = [_job(i, t, tmp_path / "stack") for i, t in enumerate(trains)]
    train_variants(together)
    for a, s in zip(alone, together, strict=True):
        for epoch in (0, 10, 20):
            wa, ws = load_weights(a.layout.checkpoint(epoch)), load_weights(s.layout.checkpoint(epoch))
            assert sorted(wa) == sorted(param_shapes(a.model))
            for k in wa:
                np.testing.assert_array_equal(wa[k], ws[k], err_msg=f"{a.variant.name} {k} epoch {epoch}")
        ha, hs = read_history(a.layout.history), read_history(s.layout.history)
        np.testing.assert_array_equal(ha["train_loss"], hs["train_loss"])
        np.testing.assert_array_equal(ha["test_loss"], hs["test_loss"])
    assert read_history(alone[0].layout.history)["train_loss"][-1] < read_history(alone[0].layout.history)["train_loss"][0]
    assert not np.array_equal(
        load_weights(alone[0].layout.checkpoint(20))["mlp.W_in"], load_weights(alone[1].layout.checkpoint(20))["mlp.W_in"]
    )
    config = json.loads(alone[0].layout.config.read_text())
    assert config["architecture"]["model"] == "mlp" and config["architecture"]["embed_combine"] == "concat"


def test_transformer_config_is_described_as_before():
    assert "model" not in ModelConfig(p=7).to_dict() and "embed_combine" not in ModelConfig(p=7).to_dict()
    assert ModelConfig(**ModelConfig(p=7).to_dict()) == ModelConfig(p=7)
    assert ModelConfig(**_cfg().to_dict()) == _cfg()


def test_family_offers_what_applies_and_refuses_attention(root, tmp_path):
    family = load_family("modadd_mlp", str(root / "families"))
    offered = set(family.spec["analyzers"])
    on_request = {"cka", "essential_dynamics", "sharpness", "interventions"}
    assert offered == {
        "embedding_frequencies", "neuron_activations", "neuron_clusters", "dimensionality",
        "transitions", "geometry", "ablations", "weight_norms", *on_request,
    }  # fmt: skip
    assert {k for k, v in family.spec["analyzers"].items() if v.get("on_request")} == on_request
    wb = load(root / "tests" / "configs" / "tiny_modadd_mlp.yaml", str(root / "families"))
    assert set(wb.analyzers) == offered - on_request and wb.variants[0].model == family.model_config(13)
    # a config asking for attention: stopped, naming the key, the value and what the family offers
    config = yaml.safe_load((root / "tests" / "configs" / "tiny_modadd_mlp.yaml").read_text()) | {"analyzers": ["attention"]}
    with pytest.raises(ConfigError, match=r"my.yaml: key 'analyzers': unknown analyzer 'attention'; the family offers"):
        resolve(config, "my.yaml", str(root / "families"))
    # a family file offering attention (or progress measures) on the MLP: stopped at load
    for name in ("attention", "progress_measures"):
        bad = json.loads((root / "families" / "modadd_mlp" / "family.json").read_text())
        bad["analyzers"][name] = {"probes": ["full"]}
        with pytest.raises(
            ConfigError, match=rf"fam.json: key 'analyzers.{name}': the analyzer supports models \['transformer'\], not 'mlp'"
        ):
            check_family_analyzers(bad, "fam.json")
    # dimensionality's hooks must be cached: the transformer's default (resid_mid) is not
    bad = json.loads((root / "families" / "modadd_mlp" / "family.json").read_text())
    bad["analyzers"]["dimensionality"].pop("params")
    with pytest.raises(ConfigError, match=r"analyzers.dimensionality': reads 'blocks.\{last\}.hook_resid_mid'"):
        check_family_analyzers(bad, "fam.json")


def test_runner_refuses_an_analyzer_for_another_model(tmp_path):
    cfg = _cfg(7)
    config = {"task": {"operation": "add", "p": 7}, "seed": 0, "architecture": cfg.to_dict(), "train": {"train_frac": 0.5}}
    ckpt = tmp_path / checkpoint_name(0)
    save_checkpoint(ckpt, {k: v.numpy() for k, v in init_params(cfg, 0).items()}, {"epoch": 0, "config": config})
    with pytest.raises(ValueError, match=r"analyzer 'progress_measures' supports models \['transformer'\]; .* is 'mlp'"):
        run_analyzer("progress_measures", {}, [ckpt], [ckpt], tmp_path / "x.h5", {})
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.slow
def test_workflow_runs_the_family_and_renders_its_report(root, tmp_path):
    """The tiny config through Snakemake: every analyzer's artifact, the report with every view."""
    if not SNAKEMAKE.exists():
        pytest.skip("snakemake not installed next to this python")
    results = tmp_path / "results"
    cmd = [str(SNAKEMAKE), "--cores", "2", "--configfile", "tests/configs/tiny_modadd_mlp.yaml", "--config", f"results={results}"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = VariantLayout(results, "modadd_mlp", "p13_seed0_frac0.5")
    clusters = load_artifact(files.artifact("full", "neuron_clusters"))
    assert clusters["fve"].shape == (3, 128, 6)
    np.testing.assert_allclose(clusters["fve"][-1], dft_fve(files.checkpoint(10), 13), atol=1e-4)
    dims = load_artifact(files.artifact("full", "dimensionality"))
    assert [h.decode() for h in dims["hook"]] == ["mlp.hook_pre", "mlp.hook_post", "logits"]
    norms = load_artifact(files.artifact("full", "weight_norms"))
    assert [n.decode() for n in norms["parameter"]] == sorted(param_shapes(family_cfg(root, 13)))
    report = files.report("default").read_text()
    for view in ("loss_curves", "neuron_clusters", "dimensionality", "geometry", "ablations", "weight_norms"):
        assert view in report
    assert "attention" not in [f.stem for f in files.folder("figures").glob("*.html")]


def dft_fve(ckpt: Path, p: int) -> np.ndarray:
    """FVE [neuron, frequency] computed independently: hook_post from the weights in numpy,
    centred, then the complex 2D DFT's energy at indices {0, k, p - k}^2 over the total (the
    span of const, cos k and sin k in each of a and b)."""
    w = {k: v.astype(np.float64) for k, v in load_weights(ckpt).items()}
    a, b = np.divmod(np.arange(p * p), p)
    post = np.maximum(np.concatenate([w["embed.W_E"][a], w["embed.W_E"][b]], 1) @ w["mlp.W_in"] + w["mlp.b_in"], 0)
    grid = (post - post.mean(0)).reshape(p, p, -1)
    energy = np.abs(np.fft.fft2(grid, axes=(0, 1))) ** 2
    out = [energy[np.ix_([0, k, p - k], [0, k, p - k])].sum((0, 1)) / energy.sum((0, 1)) for k in range(1, p // 2 + 1)]
    return np.stack(out, 1)


def family_cfg(root: Path, p: int) -> ModelConfig:
    return load_family("modadd_mlp", str(root / "families")).model_config(p)


@pytest.mark.slow
def test_default_config_shows_delayed_generalisation(root, tmp_path):
    """config/modadd_mlp.yaml's seed 0 (p = 53, half the pairs in training): the train set is
    memorised (train loss < 0.1, epoch 595) while the test loss is still above 1 (3.3); test
    loss falls below 0.1 hundreds of epochs later (1,207) and is below 0.05 at the end."""
    wb = load(root / "config" / "modadd_mlp.yaml", str(root / "families"))
    variant = wb.variant("p53_seed0_wd2_frac0.5_lr0.003")
    raw = yaml.safe_load((root / "config" / "modadd_mlp.yaml").read_text())
    assert variant.epochs == expand_schedule(raw["checkpoints"], "config")
    job = TrainJob("modadd_mlp", "add", wb.family.model_config(53), wb.train, variant, tmp_path / variant.name)
    train_variant(job)
    hist = read_history(job.layout.history)
    memorised = int(np.argmax(hist["train_loss"] < 0.1))
    generalised = int(hist["test_epoch"][np.argmax(hist["test_loss"] < 0.1)])
    assert hist["train_loss"][memorised] < 0.1 and hist["test_loss"][-1] < 0.05
    assert hist["test_loss"][list(hist["test_epoch"]).index(memorised)] > 1.0
    assert generalised - memorised > 300, (memorised, generalised)


def test_vmapped_stack_equals_per_slice():
    """The vectorised stack (the CUDA default, run here on the CPU) gives each slice's logits."""
    from tdw.train.trainer import stacked_logits

    cfg = _cfg(11)
    params = {k: torch.stack([init_params(cfg, s)[k] for s in (0, 1)]) for k in param_shapes(cfg)}
    tokens = torch.stack([_grid_tokens(11), _grid_tokens(11).flip(0)])
    fast = stacked_logits(params, cfg, tokens, vectorize=True)
    for i in range(2):
        torch.testing.assert_close(fast[i], last_logits({k: v[i] for k, v in params.items()}, cfg, tokens[i]), rtol=0, atol=1e-5)
