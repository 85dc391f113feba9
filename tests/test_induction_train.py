"""The sequence task, the attention-only model and the minibatch recipe: batches are a pure
function of (seed, step) and hold a repeated segment; the attention-only model's hook names
are TransformerLens's; training resumed from a snapshot ends bit-identical to a run that
was never stopped; the loss is the next-token cross-entropy computed independently."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tdw.config import TrainConfig, Variant
from tdw.io.checkpoint import load_weights
from tdw.io.history import read_history
from tdw.io.variant import read_variant_config
from tdw.models import hooks
from tdw.models.architecture import ModelConfig
from tdw.models.weights import init_params, param_shapes
from tdw.tasks import sequence as task
from tdw.train.sequence import next_token_loss
from tdw.train.trainer import TrainJob, train_variant

CFG = ModelConfig(p=11, n_layers=2, d_model=16, n_heads=2, d_mlp=4, n_ctx=12, unembed_equals=False, attn_only=True)
RECIPE = {"recipe": "minibatch", "batch_size": 4, "eval_size": 8, "segment_min": 3}


def _longest_repeat(row: np.ndarray) -> int:
    """The longest segment that occurs twice without overlap, by brute force."""
    n, best = len(row), 0
    for length in range(1, n // 2 + 1):
        for a in range(n - 2 * length + 1):
            for c in range(a + length, n - length + 1):
                if np.array_equal(row[a : a + length], row[c : c + length]):
                    best = length
    return best


def test_batches_are_a_pure_function_of_seed_and_step_and_repeat_a_segment():
    a = task.batch(11, 12, 16, seed=3, step=7, segment_min=3)
    assert a.shape == (16, 12) and a.dtype == np.int64 and a.min() >= 0 and a.max() < 11
    np.testing.assert_array_equal(a, task.batch(11, 12, 16, seed=3, step=7, segment_min=3))
    assert not np.array_equal(a, task.batch(11, 12, 16, seed=3, step=8, segment_min=3))
    assert not np.array_equal(a, task.batch(11, 12, 16, seed=4, step=7, segment_min=3))
    assert not np.array_equal(a, task.batch(11, 12, 16, seed=3, step=7, segment_min=3, stream=task.EVAL))
    assert all(_longest_repeat(row) >= 3 for row in a)
    with pytest.raises(ValueError, match="segment_min 7"):
        task.batch(11, 12, 2, 0, 0, segment_min=7)


def test_attention_only_model_has_transformer_lens_hooks_and_no_mlp():
    from tdw.models.hooked import HookedModAdd

    model = HookedModAdd(CFG)
    assert sorted(model.hook_dict) == sorted(hooks.hook_names(CFG))
    assert "blocks.1.hook_resid_mid" not in model.hook_dict and "blocks.0.mlp.hook_post" not in model.hook_dict
    assert not any(".mlp." in k for k in param_shapes(CFG))
    assert param_shapes(CFG)["embed.W_E"] == (12, 16) and param_shapes(CFG)["unembed.W_U"] == (16, 11)
    # the MLP model's description is what it was before attn_only existed
    assert "attn_only" not in ModelConfig(p=11).to_dict() and CFG.to_dict()["attn_only"] is True
    logits, cache = model.run_with_cache(torch.from_numpy(task.batch(11, 12, 3, 0, 0, 3)))
    assert logits.shape == (3, 12, 11) and cache["blocks.1.attn.hook_pattern"].shape == (3, 2, 12, 12)


def test_next_token_loss_is_the_mean_cross_entropy_at_every_position():
    rng = np.random.default_rng(0)
    logits, tokens = rng.normal(size=(2, 5, 7)), rng.integers(0, 7, size=(2, 5))
    expected = np.mean(
        [math.log(np.exp(logits[b, t]).sum()) - logits[b, t, tokens[b, t + 1]] for b in range(2) for t in range(4)]
    )
    got = next_token_loss(torch.from_numpy(logits), torch.from_numpy(tokens)).item()
    assert got == pytest.approx(expected, rel=1e-12)


def _job(out: Path, epochs: tuple[int, ...]) -> TrainJob:
    variant = Variant("v11_seed0", 11, 0, 0.5, epochs)
    train = TrainConfig(lr=3e-3, weight_decay=0.1, warmup_steps=2, test_loss_every=2)
    return TrainJob("induction", "induction", CFG, train, variant, out, "code", recipe=dict(RECIPE))


def test_minibatch_training_resumes_bit_identical(tmp_path):
    torch.set_num_threads(1)
    clean = train_variant(_job(tmp_path / "clean", (0, 10, 20)))
    assert clean["source"] == "trained"
    train_variant(_job(tmp_path / "killed", (0, 10)))  # stands for a run stopped after its snapshot at step 10
    resumed = train_variant(_job(tmp_path / "killed", (0, 10, 20)))
    assert resumed["timings"]["resumed_from_epoch"] == 10
    for step in (0, 10, 20):
        name = f"checkpoints/checkpoint_epoch_{step:05d}.safetensors"
        a, b = load_weights(tmp_path / "clean" / name), load_weights(tmp_path / "killed" / name)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")
    ha, hb = read_history(tmp_path / "clean" / "history.h5"), read_history(tmp_path / "killed" / "history.h5")
    for key in ha:
        np.testing.assert_array_equal(ha[key], hb[key])
    assert len(ha["train_loss"]) == 21 and list(ha["test_epoch"]) == list(range(0, 21, 2))
    # step 0's loss is that of the initial weights on step 0's batch, computed here independently
    from tdw.models.hooked import HookedModAdd

    model = HookedModAdd.from_params(CFG, init_params(CFG, 0))
    tokens = torch.from_numpy(task.batch(11, 12, 4, 0, 0, 3))
    with torch.no_grad():
        assert ha["train_loss"][0] == pytest.approx(next_token_loss(model(tokens), tokens).item(), rel=1e-6)
    config = read_variant_config(tmp_path / "clean" / "config.json")
    assert config["recipe"] == RECIPE and config["task"] == {"operation": "induction", "p": 11}


def test_prompt_probe_cache_and_losses_match_the_unpadded_forward(root, tmp_path):
    """The prompts probe through the shared forward pass and the loss analyzer: padded rows,
    their lengths, and per-position losses equal to each prompt run alone (causal attention)."""
    from tdw.analyzers.runner import run_analyzer
    from tdw.cache.forward import cache_checkpoints
    from tdw.config import load_family
    from tdw.io.h5 import load_artifact, open_h5
    from tdw.models.hooked import HookedModAdd

    torch.set_num_threads(1)
    family = load_family("induction", str(root / "families"))
    cfg = family.model_config(31)
    variant = Variant("v31_seed0", 31, 0, 0.3, (0, 3))
    train = TrainConfig(lr=3e-3, weight_decay=0.1, warmup_steps=1)
    job = TrainJob(
        "induction", "induction", cfg, train, variant, tmp_path / "v", "code", recipe=task.recipe_values(family.spec["training"])
    )
    train_variant(job)
    ckpts = [tmp_path / "v" / "checkpoints" / f"checkpoint_epoch_{e:05d}.safetensors" for e in (0, 3)]
    caches = [tmp_path / f"prompts_{e}.h5" for e in (0, 3)]
    cache_checkpoints(family, variant, "prompts", ckpts, caches)
    lines = [x for x in (family.root / "prompts.txt").read_text().splitlines() if x]
    with open_h5(caches[1]) as fh:
        assert list(fh["length"][()]) == [len(x) for x in lines]
        assert fh["blocks.1.attn.hook_pattern"].shape == (len(lines), 4, 32, 32)
    run_analyzer("induction_loss", {}, ckpts, caches, tmp_path / "loss.h5", {})
    art = load_artifact(tmp_path / "loss.h5")
    model = HookedModAdd.from_params(cfg, {k: torch.from_numpy(v) for k, v in load_weights(ckpts[1]).items()})
    alphabet = family.spec["tokenizer"]["alphabet"]
    per_position: dict[int, list[float]] = {}
    with torch.no_grad():
        for line in lines:
            tokens = torch.tensor([[alphabet.index(c) for c in line]])
            logprobs = model(tokens)[0, :-1].double().log_softmax(-1)
            for t, value in enumerate((-logprobs.gather(-1, tokens[0, 1:, None])[:, 0]).tolist()):
                per_position.setdefault(t, []).append(value)
    expected = [np.mean(per_position[t]) if t in per_position else np.nan for t in range(31)]
    np.testing.assert_allclose(art["loss_by_position"][-1], expected, rtol=1e-4)
