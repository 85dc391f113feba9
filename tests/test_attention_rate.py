"""The attention rate: attention = rate * softmax + (1 - rate) * uniform over the visible
positions, in the hooked model, the training fast path and the sweep."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tdw import config
from tdw.models.architecture import ModelConfig
from tdw.models.fastpath import last_logits
from tdw.models.hooked import HookedModAdd
from tdw.models.weights import init_params
from tdw.tasks import modular as data
from tdw.validation import ConfigError


def _perturbed(cfg: ModelConfig, seed: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {k: v + 0.5 * torch.randn(v.shape, generator=g) for k, v in init_params(cfg, seed).items()}


def test_rate_zero_attends_uniformly_over_the_visible_positions():
    cfg = ModelConfig(p=7, attention_rate=0.0)
    model = HookedModAdd.from_params(cfg, _perturbed(cfg))
    _, cache = model.run_with_cache(torch.from_numpy(data.tokens(7, np.arange(49))))
    pattern = cache["blocks.0.attn.hook_pattern"]  # [batch, head, query, key]
    by_hand = torch.tensor([[1, 0, 0], [1 / 2, 1 / 2, 0], [1 / 3, 1 / 3, 1 / 3]])
    torch.testing.assert_close(pattern, by_hand.expand_as(pattern), rtol=0, atol=1e-7)


def test_rate_zero_output_is_the_mean_of_the_visible_values():
    """With uniform attention, head h's output at `=` is mean_j (x_j W_V[h]) W_O[h], by hand."""
    cfg = ModelConfig(p=7, attention_rate=0.0)
    params = _perturbed(cfg)
    model = HookedModAdd.from_params(cfg, params)
    tokens = torch.from_numpy(data.tokens(7, np.arange(49)))
    _, cache = model.run_with_cache(tokens)
    x = params["embed.W_E"][tokens] + params["pos_embed.W_pos"]  # [batch, pos, d_model]
    v = torch.einsum("bpd,hde->bphe", x, params["blocks.0.attn.W_V"])
    out = torch.einsum("bhe,hed->bd", v.mean(1), params["blocks.0.attn.W_O"])
    torch.testing.assert_close(cache["blocks.0.hook_attn_out"][:, -1], out, rtol=1e-5, atol=1e-5)


def test_rate_one_is_softmax_attention_bit_for_bit():
    cfg, plain = ModelConfig(p=11, attention_rate=1.0), ModelConfig(p=11)
    params = _perturbed(cfg)
    tokens = torch.from_numpy(data.tokens(11, np.arange(121)))
    assert torch.equal(last_logits(params, cfg, tokens), last_logits(params, plain, tokens))
    _, cache = HookedModAdd.from_params(cfg, params).run_with_cache(tokens)
    scores = cache["blocks.0.attn.hook_attn_scores"]
    assert torch.equal(cache["blocks.0.attn.hook_pattern"], scores.softmax(-1))


@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_fast_path_equals_hooked_model_at_a_partial_rate(rate):
    cfg = ModelConfig(p=23, attention_rate=rate)
    params = _perturbed(cfg)
    tokens = torch.from_numpy(data.tokens(cfg.p, np.arange(cfg.p**2)))
    full = HookedModAdd.from_params(cfg, params)(tokens)[:, -1]
    fast = last_logits(params, cfg, tokens)
    scale = full.abs().max().item()
    assert scale > 1.0
    assert (fast - full).abs().max().item() < 1e-5 * scale
    # and the rate matters: softmax attention gives other logits
    assert (last_logits(params, ModelConfig(p=23), tokens) - fast).abs().max().item() > 1e-2 * scale


def test_blended_pattern_is_the_convex_combination():
    cfg = ModelConfig(p=7, attention_rate=0.3)
    params = _perturbed(cfg)
    tokens = torch.from_numpy(data.tokens(7, np.arange(49)))
    _, soft = HookedModAdd.from_params(ModelConfig(p=7), params).run_with_cache(tokens)
    _, blend = HookedModAdd.from_params(cfg, params).run_with_cache(tokens)
    uniform = torch.tensor([1 / 3, 1 / 3, 1 / 3])
    expect = 0.3 * soft["blocks.0.attn.hook_pattern"][:, :, -1] + 0.7 * uniform
    torch.testing.assert_close(blend["blocks.0.attn.hook_pattern"][:, :, -1], expect, rtol=0, atol=1e-6)


def test_default_rate_is_left_out_of_the_recorded_architecture():
    assert "attention_rate" not in ModelConfig(p=7).to_dict()
    assert ModelConfig(p=7, attention_rate=0.0).to_dict()["attention_rate"] == 0.0
    assert ModelConfig(**ModelConfig(p=7, attention_rate=0.25).to_dict()).attention_rate == 0.25


def test_out_of_range_rate_is_refused_by_the_model():
    with pytest.raises(ValueError, match=r"attention_rate 1.5: expected a number in \[0, 1\]"):
        ModelConfig(p=7, attention_rate=1.5)


def _resolve(sweep: dict) -> config.Workbench:
    return config.resolve({"family": "modadd", "sweep": sweep, "checkpoints": [0, 10]}, "cfg.yaml", "families")


def test_swept_rate_names_variants_and_sets_their_model():
    wb = _resolve({"p": [7], "attention_rate": [0, 1]})
    assert [v.name for v in wb.variants] == ["p7_seed0_attn0", "p7_seed0"]
    assert [v.model.attention_rate for v in wb.variants] == [0.0, 1.0]
    assert isinstance(wb.variants[0].model.attention_rate, float)


@pytest.mark.parametrize(
    "sweep,needles",
    [
        (
            {"p": [7], "attention_rate": [0, 1.5]},
            ["cfg.yaml", "'sweep.attention_rate.1'", "1.5 is greater than the maximum of 1"],
        ),
        ({"p": [7], "attention_rate": [-0.1]}, ["cfg.yaml", "'sweep.attention_rate.0'", "-0.1 is less than the minimum of 0"]),
        ({"p": [7], "include": [{"p": 7, "attention_rate": 2}]}, ["'sweep.include.0.attention_rate'", "2 is greater"]),
    ],
)
def test_out_of_range_swept_rate_is_refused_at_dag_build(sweep, needles):
    with pytest.raises(ConfigError) as err:
        _resolve(sweep)
    for needle in needles:
        assert needle in str(err.value), (needle, str(err.value))


def test_out_of_range_family_rate_is_refused_naming_the_family_file(tmp_path):
    import json
    import shutil

    from tdw.families import load_family

    families = tmp_path / "families"
    shutil.copytree("families", families)
    (families / "uniform").mkdir()
    spec = {"extends": "modadd", "name": "uniform", "architecture": {"attention_rate": 1.2}}
    (families / "uniform" / "family.json").write_text(json.dumps(spec))
    with pytest.raises(ConfigError) as err:
        load_family("uniform", str(families))
    msg = str(err.value)
    assert (
        "uniform/family.json" in msg and "'architecture.attention_rate'" in msg and "1.2 is greater than the maximum of 1" in msg
    )
    spec["architecture"]["attention_rate"] = 0.5  # in range: the family's models blend
    (families / "uniform" / "family.json").write_text(json.dumps(spec))
    load_family.cache_clear()
    assert load_family("uniform", str(families)).model_config(7).attention_rate == 0.5


def test_a_blended_variant_trains_records_its_rate_and_caches_the_blended_pattern(tmp_path):
    import json

    import h5py

    from tdw.cache.forward import cache_checkpoints
    from tdw.config import TrainConfig, Variant
    from tdw.families import load_family
    from tdw.train.trainer import TrainJob, train_variant

    cfg = ModelConfig(p=7, d_model=16, n_heads=4, d_mlp=32, attention_rate=0.5)
    variant = Variant("p7_seed0_attn0.5", 7, 0, 0.5, (0, 3), model=cfg)
    job = TrainJob("modadd", "add", cfg, TrainConfig(train_frac=0.5), variant, tmp_path / variant.name)
    train_variant(job)
    config_json = json.loads((tmp_path / variant.name / "config.json").read_text())
    assert config_json["architecture"]["attention_rate"] == 0.5
    plain = TrainJob("modadd", "add", ModelConfig(p=7, d_model=16, n_heads=4, d_mlp=32), job.train, variant, job.out_dir)
    assert job.key() != plain.key()
    # epoch 0's train loss is the hooked model's at the blended rate on the initial weights
    train_idx, _ = data.split(7, 0.5, 0)
    model = HookedModAdd.from_params(cfg, init_params(cfg, 0))
    logits = model(torch.from_numpy(data.tokens(7, train_idx)))[:, -1].double()
    want = torch.nn.functional.cross_entropy(logits, torch.from_numpy(data.labels(7, train_idx))).item()
    with h5py.File(job.layout.history, "r") as fh:
        assert fh["train_loss"][0] == pytest.approx(want, rel=1e-6)
    ckpt, cache = job.layout.checkpoint(3), tmp_path / "cache.h5"
    cache_checkpoints(load_family("modadd"), variant, "full", [ckpt], [cache])
    with h5py.File(cache, "r") as fh:
        pattern = fh["blocks.0.attn.hook_pattern"][()]  # [batch, head, key_pos] from `=`
    assert pattern.min() >= 0.5 / 3 - 1e-6 and np.allclose(pattern.sum(-1), 1, atol=1e-5)
