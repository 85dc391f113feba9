"""Reading a Hugging Face ``save_pretrained`` directory (GPT-2, GPT-NeoX) into TransformerLens
weights, and the converted model's forward against the Hugging Face model on tiny random models
built here (nothing is downloaded).

Logits are compared in float32 with atol 1e-4: both sides compute the same float32 arithmetic
in a different order (einsums over heads against one fused matmul, a different softmax mask), so
they differ by rounding reassociation, of order 1e-6 relative on logits of order 1."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"

from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM  # noqa: E402

from tdw.models.hf import HFSeriesError, read_series_step  # noqa: E402
from tdw.models.hf_forward import run_with_cache, to_torch  # noqa: E402

ATOL = 1e-4


def _save(model: torch.nn.Module, path: object, safe: bool = True) -> None:
    model.save_pretrained(str(path), safe_serialization=safe)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> tuple[GPT2LMHeadModel, object]:
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=97, n_positions=32)
    model = GPT2LMHeadModel(cfg).eval()
    path = tmp_path_factory.mktemp("gpt2")
    _save(model, path)
    return model, path


def _neox_model(tied: bool, parallel: bool = True) -> GPTNeoXForCausalLM:
    cfg = GPTNeoXConfig(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=32,
        rotary_pct=0.5,
        rotary_emb_base=10000,
        use_parallel_residual=parallel,
        hidden_act="gelu",
        tie_word_embeddings=tied,
        attn_implementation="eager",  # returns the attention pattern
    )
    model = GPTNeoXForCausalLM(cfg).eval()
    with torch.no_grad():  # random non-zero biases so that wrong slicing shows
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.1)
    return model


@pytest.fixture(scope="module")
def neox(tmp_path_factory: pytest.TempPathFactory) -> tuple[GPTNeoXForCausalLM, object]:
    torch.manual_seed(1)
    model = _neox_model(tied=False)
    path = tmp_path_factory.mktemp("neox")
    _save(model, path)
    return model, path


def _compare_logits(model: torch.nn.Module, path: object, vocab: int) -> float:
    arch, weights = read_series_step(path)  # type: ignore[arg-type]
    tokens = torch.randint(0, vocab, (3, 16), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model(tokens).logits
        got, cache = run_with_cache(arch, to_torch(weights), tokens)
    diff = float((got - expected).abs().max())
    assert diff < ATOL, diff
    assert float(expected.abs().max()) > 0.1  # the comparison is not between near-zero logits
    return diff


def test_gpt2_logits_equal_hf(gpt2: tuple[GPT2LMHeadModel, object]) -> None:
    model, path = gpt2
    _compare_logits(model, path, 97)


def test_neox_logits_equal_hf(neox: tuple[GPTNeoXForCausalLM, object]) -> None:
    model, path = neox
    arch, _ = read_series_step(path)  # type: ignore[arg-type]
    assert arch["rotary_dim"] == 4 and arch["parallel_attn_mlp"] and arch["act_fn"] == "gelu"
    _compare_logits(model, path, 97)


def test_neox_sequential_tied_logits_equal_hf(tmp_path: object) -> None:
    torch.manual_seed(2)
    model = _neox_model(tied=True, parallel=False)
    _save(model, tmp_path, safe=False)  # pytorch_model.bin, read with weights_only=True
    arch, weights = read_series_step(tmp_path)  # type: ignore[arg-type]
    assert arch["tied_embeddings"] and not arch["parallel_attn_mlp"]
    np.testing.assert_array_equal(weights["unembed.W_U"], weights["embed.W_E"].T)
    _compare_logits(model, tmp_path, 97)


def test_gpt2_tied_unembedding(gpt2: tuple[GPT2LMHeadModel, object]) -> None:
    model, path = gpt2
    _, weights = read_series_step(path)  # type: ignore[arg-type]
    wte = model.transformer.wte.weight.detach().numpy()
    np.testing.assert_array_equal(weights["unembed.W_U"], wte.T)
    np.testing.assert_array_equal(weights["embed.W_E"], wte)


def test_gpt2_qkv_slices(gpt2: tuple[GPT2LMHeadModel, object]) -> None:
    """Head h's Q/K/V are columns [j*d + h*dh, j*d + (h+1)*dh) of the Conv1D weight [d, 3d]."""
    model, path = gpt2
    _, weights = read_series_step(path)  # type: ignore[arg-type]
    d, nh = 32, 4
    dh = d // nh
    for layer in range(2):
        attn = model.transformer.h[layer].attn
        c_w = attn.c_attn.weight.detach().numpy()
        c_b = attn.c_attn.bias.detach().numpy()
        o_w = attn.c_proj.weight.detach().numpy()
        for j, name in enumerate("QKV"):
            for h in range(nh):
                cols = slice(j * d + h * dh, j * d + (h + 1) * dh)
                w_tl = weights[f"blocks.{layer}.attn.W_{name}"][h]
                np.testing.assert_array_equal(w_tl, c_w[:, cols])
                np.testing.assert_array_equal(weights[f"blocks.{layer}.attn.b_{name}"][h], c_b[cols])
        for h in range(nh):
            np.testing.assert_array_equal(weights[f"blocks.{layer}.attn.W_O"][h], o_w[h * dh : (h + 1) * dh, :])


def test_neox_qkv_slices(neox: tuple[GPTNeoXForCausalLM, object]) -> None:
    """Head h's component j (q, k, v) is rows [h*3*dh + j*dh, h*3*dh + (j+1)*dh) of the Linear
    weight [3d, d] (per-head interleaving), transposed to [d, dh]."""
    model, path = neox
    _, weights = read_series_step(path)  # type: ignore[arg-type]
    d, nh = 32, 4
    dh = d // nh
    for layer in range(2):
        att = model.gpt_neox.layers[layer].attention
        w = att.query_key_value.weight.detach().numpy()
        b = att.query_key_value.bias.detach().numpy()
        dense = att.dense.weight.detach().numpy()
        for h in range(nh):
            for j, name in enumerate("QKV"):
                rows = slice(h * 3 * dh + j * dh, h * 3 * dh + (j + 1) * dh)
                np.testing.assert_array_equal(weights[f"blocks.{layer}.attn.W_{name}"][h], w[rows].T)
                np.testing.assert_array_equal(weights[f"blocks.{layer}.attn.b_{name}"][h], b[rows])
            np.testing.assert_array_equal(weights[f"blocks.{layer}.attn.W_O"][h], dense[:, h * dh : (h + 1) * dh].T)
    # untied: the unembedding is embed_out, not the embedding
    np.testing.assert_array_equal(weights["unembed.W_U"], model.lm_head.weight.detach().numpy().T)
    assert not np.allclose(weights["unembed.W_U"], weights["embed.W_E"].T)


def test_hooks_and_pattern(neox: tuple[GPTNeoXForCausalLM, object]) -> None:
    """The pattern hook equals Hugging Face's attention weights; a parallel block has no
    ``hook_resid_mid``; a hook's result replaces the activation."""
    model, path = neox
    arch, weights = read_series_step(path)  # type: ignore[arg-type]
    tokens = torch.randint(0, 97, (2, 10), generator=torch.Generator().manual_seed(7))
    tw = to_torch(weights)
    with torch.no_grad():
        hf = model(tokens, output_attentions=True)
        logits, cache = run_with_cache(arch, tw, tokens)
    assert hf.attentions is not None
    for layer in range(2):
        got = cache[f"blocks.{layer}.attn.hook_pattern"]
        assert float((got - hf.attentions[layer]).abs().max()) < 1e-5
        assert f"blocks.{layer}.hook_resid_mid" not in cache
    # zeroing every block's output leaves the embedding as the final residual stream
    zero = {
        f"blocks.{layer}.{name}": (lambda x, _n: torch.zeros_like(x))
        for layer in range(2)
        for name in ("hook_attn_out", "hook_mlp_out")
    }
    with torch.no_grad():
        _, ablated = run_with_cache(arch, tw, tokens, hooks=zero)
    np.testing.assert_allclose(ablated["blocks.1.hook_resid_post"].numpy(), tw["embed.W_E"][tokens].numpy(), atol=0)


def test_missing_weight_file_refused(tmp_path: object, gpt2: tuple[GPT2LMHeadModel, object]) -> None:
    _, path = gpt2
    empty = tmp_path / "step100"  # type: ignore[operator]
    empty.mkdir()
    (empty / "config.json").write_text((path / "config.json").read_text())  # type: ignore[operator]
    with pytest.raises(HFSeriesError, match="step100.*model.safetensors or pytorch_model.bin"):
        read_series_step(empty)


def test_unreadable_weight_file_refused(tmp_path: object, gpt2: tuple[GPT2LMHeadModel, object]) -> None:
    _, path = gpt2
    (tmp_path / "config.json").write_text((path / "config.json").read_text())  # type: ignore[operator]
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")  # type: ignore[operator]
    with pytest.raises(HFSeriesError, match="model.safetensors unreadable"):
        read_series_step(tmp_path)  # type: ignore[arg-type]


def test_unsupported_model_type_refused(tmp_path: object) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))  # type: ignore[operator]
    with pytest.raises(HFSeriesError, match="'llama'.*supported: gpt2, gpt_neox"):
        read_series_step(tmp_path)  # type: ignore[arg-type]


def test_untied_without_head_refused(tmp_path: object, neox: tuple[GPTNeoXForCausalLM, object]) -> None:
    from safetensors.numpy import load_file, save_file

    _, path = neox
    state = load_file(str(path / "model.safetensors"))  # type: ignore[operator]
    del state["embed_out.weight"]
    save_file(state, str(tmp_path / "model.safetensors"))  # type: ignore[operator]
    (tmp_path / "config.json").write_text((path / "config.json").read_text())  # type: ignore[operator]
    with pytest.raises(HFSeriesError, match="untied embeddings but no unembedding"):
        read_series_step(tmp_path)  # type: ignore[arg-type]


def test_gpt2_sequential_hooks(gpt2: tuple[GPT2LMHeadModel, object]) -> None:
    """A sequential block has ``hook_resid_mid`` = resid_pre + attn_out, and resid_post adds the
    MLP's output to it."""
    _, path = gpt2
    arch, weights = read_series_step(path)  # type: ignore[arg-type]
    tokens = torch.randint(0, 97, (2, 8), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        _, cache = run_with_cache(arch, to_torch(weights), tokens)
    for layer in range(2):
        p = f"blocks.{layer}."
        torch.testing.assert_close(cache[p + "hook_resid_mid"], cache[p + "hook_resid_pre"] + cache[p + "hook_attn_out"])
        torch.testing.assert_close(cache[p + "hook_resid_post"], cache[p + "hook_resid_mid"] + cache[p + "hook_mlp_out"])
        pattern = cache[p + "attn.hook_pattern"]
        assert pattern.shape == (2, 4, 8, 8)
        torch.testing.assert_close(pattern.sum(-1), torch.ones(2, 4, 8))
        assert float(pattern.triu(1).abs().max()) == 0.0  # causal
