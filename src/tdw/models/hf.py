"""One step of a Hugging Face checkpoint series: a ``save_pretrained`` directory of a GPT-2 or
GPT-NeoX (Pythia) language model, read into the workbench's TransformerLens-orientation weights.

``read_series_step(path)`` returns ``(architecture, weights)``: ``architecture`` is a plain dict
(model type, sizes, activation, LayerNorm epsilon, positional embedding, rotary dimension and
base, parallel attention and MLP, tied embeddings) and ``weights`` maps TransformerLens parameter
names to float32 numpy arrays:

- ``embed.W_E`` [d_vocab, d_model]; ``pos_embed.W_pos`` [n_ctx, d_model] (GPT-2 only: GPT-NeoX
  has rotary positions and no positional parameters);
- per block ``l``: ``blocks.{l}.ln1.w/b``, ``blocks.{l}.ln2.w/b`` [d_model];
  ``blocks.{l}.attn.W_Q/W_K/W_V`` [n_heads, d_model, d_head], ``b_Q/b_K/b_V`` [n_heads, d_head],
  ``W_O`` [n_heads, d_head, d_model], ``b_O`` [d_model]; ``blocks.{l}.mlp.W_in`` [d_model, d_mlp],
  ``b_in`` [d_mlp], ``W_out`` [d_mlp, d_model], ``b_out`` [d_model];
- ``ln_final.w/b`` [d_model]; ``unembed.W_U`` [d_model, d_vocab] (the transpose of ``W_E`` when
  the embeddings are tied) and ``unembed.b_U`` [d_vocab] (zeros: neither architecture has an
  unembedding bias).

GPT-2 stores its linear maps as ``Conv1D`` weights [in, out] (already TransformerLens's
orientation) and packs Q | K | V one after another along the output of ``c_attn``. GPT-NeoX
stores ``nn.Linear`` weights [out, in] and packs ``query_key_value`` per head, interleaved:
output row ``h * 3 * d_head + j * d_head + i`` is component ``j`` (q, k, v) of head ``h``,
coordinate ``i``.

Weights are read with ``safetensors`` (``model.safetensors``) or, failing that,
``torch.load(weights_only=True)`` (``pytorch_model.bin``); no pickled code is executed and
nothing is downloaded. The forward pass over these weights is ``tdw.models.hf_forward``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tdw.layout import HF_CONFIG, HF_WEIGHT_FILES

SUPPORTED_MODEL_TYPES = ("gpt2", "gpt_neox")
WEIGHT_FILES = HF_WEIGHT_FILES


class HFSeriesError(ValueError):
    """A Hugging Face checkpoint directory the workbench cannot read."""


def read_series_step(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The architecture and TransformerLens-named float32 weights of one ``save_pretrained``
    directory (``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``)."""
    directory = Path(path)
    config_file = directory / HF_CONFIG
    if not config_file.is_file():
        raise HFSeriesError(f"{directory}: no config.json (a save_pretrained directory has one)")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise HFSeriesError(f"{config_file}: unreadable ({err})") from err
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise HFSeriesError(
            f"{directory}: model_type {model_type!r} is not supported; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    raw = _read_raw_weights(directory)
    if model_type == "gpt2":
        arch = gpt2_architecture(config)
        weights = convert_gpt2(raw, arch, directory)
    else:
        arch = neox_architecture(config)
        weights = convert_neox(raw, arch, directory)
    return arch, weights


def _read_raw_weights(directory: Path) -> dict[str, np.ndarray]:
    """The state dict in the directory's weight file, as float32 numpy arrays."""
    safetensors_file, bin_file = (directory / name for name in WEIGHT_FILES)
    if safetensors_file.is_file():
        from safetensors.numpy import load_file

        try:
            loaded = load_file(str(safetensors_file))
        except Exception as err:  # safetensors raises its own error types
            raise HFSeriesError(f"{directory}: model.safetensors unreadable ({err})") from err
        return {k: np.asarray(v, dtype=np.float32) for k, v in loaded.items()}
    if bin_file.is_file():
        import torch

        try:
            state = torch.load(str(bin_file), map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for a bad file
            raise HFSeriesError(f"{directory}: pytorch_model.bin unreadable ({err})") from err
        return {k: v.detach().float().numpy() for k, v in state.items()}
    raise HFSeriesError(f"{directory}: no weight file; expected {WEIGHT_FILES[0]} or {WEIGHT_FILES[1]}")


def _strip_prefix(raw: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """Keys without the base model's prefix (a ``*LMHeadModel`` / ``*ForCausalLM`` saves
    ``transformer.`` / ``gpt_neox.``; the bare base model saves none)."""
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in raw.items()}


def _get(raw: dict[str, np.ndarray], key: str, directory: Path) -> np.ndarray:
    if key not in raw:
        raise HFSeriesError(f"{directory}: weight {key!r} missing from the weight file")
    return raw[key]


def gpt2_architecture(config: dict[str, Any]) -> dict[str, Any]:
    """The architecture dict of a GPT-2 ``config.json``."""
    d_model = int(config.get("n_embd", 768))
    n_heads = int(config.get("n_head", 12))
    if config.get("scale_attn_by_inverse_layer_idx", False):
        raise HFSeriesError("GPT-2 with scale_attn_by_inverse_layer_idx is not supported")
    if not config.get("scale_attn_weights", True):
        raise HFSeriesError("GPT-2 without scale_attn_weights is not supported")
    return {
        "model_type": "gpt2",
        "n_layers": int(config.get("n_layer", 12)),
        "d_model": d_model,
        "n_heads": n_heads,
        "d_head": d_model // n_heads,
        "d_mlp": int(config.get("n_inner") or 4 * d_model),
        "d_vocab": int(config.get("vocab_size", 50257)),
        "n_ctx": int(config.get("n_positions", 1024)),
        "act_fn": str(config.get("activation_function", "gelu_new")),
        "eps": float(config.get("layer_norm_epsilon", 1e-5)),
        "positional_embedding_type": "standard",
        "rotary_dim": None,
        "rotary_base": None,
        "parallel_attn_mlp": False,
        "tied_embeddings": bool(config.get("tie_word_embeddings", True)),
    }


def neox_architecture(config: dict[str, Any]) -> dict[str, Any]:
    """The architecture dict of a GPT-NeoX ``config.json``: the rotary fraction and base are read
    from ``rope_parameters`` (transformers 5) or ``rotary_pct`` / ``rotary_emb_base`` (older
    files, such as Pythia's)."""
    d_model = int(config["hidden_size"])
    n_heads = int(config["num_attention_heads"])
    d_head = d_model // n_heads
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", "default") not in ("default", None):
        raise HFSeriesError(f"GPT-NeoX rope_type {rope.get('rope_type')!r} is not supported")
    fraction = float(rope.get("partial_rotary_factor", config.get("rotary_pct", 0.25)))
    base = float(rope.get("rope_theta", config.get("rotary_emb_base", 10000)))
    return {
        "model_type": "gpt_neox",
        "n_layers": int(config["num_hidden_layers"]),
        "d_model": d_model,
        "n_heads": n_heads,
        "d_head": d_head,
        "d_mlp": int(config.get("intermediate_size", 4 * d_model)),
        "d_vocab": int(config["vocab_size"]),
        "n_ctx": int(config.get("max_position_embeddings", 2048)),
        "act_fn": str(config.get("hidden_act", "gelu")),
        "eps": float(config.get("layer_norm_eps", 1e-5)),
        "positional_embedding_type": "rotary",
        "rotary_dim": int(d_head * fraction),
        "rotary_base": base,
        "parallel_attn_mlp": bool(config.get("use_parallel_residual", True)),
        "tied_embeddings": bool(config.get("tie_word_embeddings", False)),
    }


def _unembed(out: dict[str, np.ndarray], head: np.ndarray | None, arch: dict[str, Any], directory: Path) -> None:
    """``unembed.W_U``: the head's weight [d_vocab, d_model] transposed, or ``W_E`` transposed when
    the embeddings are tied (``save_pretrained`` then omits the head). An untied model without a
    head in its file is refused."""
    if arch["tied_embeddings"]:
        head = out["embed.W_E"]
    elif head is None:
        raise HFSeriesError(f"{directory}: untied embeddings but no unembedding weight in the file")
    out["unembed.W_U"] = np.ascontiguousarray(head.T)
    out["unembed.b_U"] = np.zeros(arch["d_vocab"], dtype=np.float32)


def convert_gpt2(raw: dict[str, np.ndarray], arch: dict[str, Any], directory: Path = Path(".")) -> dict[str, np.ndarray]:
    """TransformerLens-named weights from a GPT-2 state dict."""
    head = raw.get("lm_head.weight")
    raw = _strip_prefix(raw, "transformer.")
    d, nh, dh = arch["d_model"], arch["n_heads"], arch["d_head"]
    out: dict[str, np.ndarray] = {
        "embed.W_E": _get(raw, "wte.weight", directory),
        "pos_embed.W_pos": _get(raw, "wpe.weight", directory),
    }
    for layer in range(arch["n_layers"]):
        src, dst = f"h.{layer}.", f"blocks.{layer}."
        for hf_ln, tl_ln in (("ln_1", "ln1"), ("ln_2", "ln2")):
            out[dst + tl_ln + ".w"] = _get(raw, src + hf_ln + ".weight", directory)
            out[dst + tl_ln + ".b"] = _get(raw, src + hf_ln + ".bias", directory)
        qkv_w = _get(raw, src + "attn.c_attn.weight", directory)  # [d, 3d]: Q | K | V
        qkv_b = _get(raw, src + "attn.c_attn.bias", directory)  # [3d]
        for j, name in enumerate("QKV"):
            w = qkv_w[:, j * d : (j + 1) * d].reshape(d, nh, dh)
            out[dst + f"attn.W_{name}"] = np.ascontiguousarray(w.transpose(1, 0, 2))
            out[dst + f"attn.b_{name}"] = qkv_b[j * d : (j + 1) * d].reshape(nh, dh).copy()
        out[dst + "attn.W_O"] = _get(raw, src + "attn.c_proj.weight", directory).reshape(nh, dh, d)
        out[dst + "attn.b_O"] = _get(raw, src + "attn.c_proj.bias", directory)
        out[dst + "mlp.W_in"] = _get(raw, src + "mlp.c_fc.weight", directory)
        out[dst + "mlp.b_in"] = _get(raw, src + "mlp.c_fc.bias", directory)
        out[dst + "mlp.W_out"] = _get(raw, src + "mlp.c_proj.weight", directory)
        out[dst + "mlp.b_out"] = _get(raw, src + "mlp.c_proj.bias", directory)
    out["ln_final.w"] = _get(raw, "ln_f.weight", directory)
    out["ln_final.b"] = _get(raw, "ln_f.bias", directory)
    _unembed(out, head, arch, directory)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def convert_neox(raw: dict[str, np.ndarray], arch: dict[str, Any], directory: Path = Path(".")) -> dict[str, np.ndarray]:
    """TransformerLens-named weights from a GPT-NeoX state dict."""
    head = raw.get("embed_out.weight", raw.get("lm_head.weight"))
    raw = _strip_prefix(raw, "gpt_neox.")
    d, nh, dh = arch["d_model"], arch["n_heads"], arch["d_head"]
    out: dict[str, np.ndarray] = {"embed.W_E": _get(raw, "embed_in.weight", directory)}
    for layer in range(arch["n_layers"]):
        src, dst = f"layers.{layer}.", f"blocks.{layer}."
        for hf_ln, tl_ln in (("input_layernorm", "ln1"), ("post_attention_layernorm", "ln2")):
            out[dst + tl_ln + ".w"] = _get(raw, src + hf_ln + ".weight", directory)
            out[dst + tl_ln + ".b"] = _get(raw, src + hf_ln + ".bias", directory)
        # [3d, d] (out, in), rows ordered (head, q|k|v, d_head)
        qkv_w = _get(raw, src + "attention.query_key_value.weight", directory).reshape(nh, 3, dh, d)
        qkv_b = _get(raw, src + "attention.query_key_value.bias", directory).reshape(nh, 3, dh)
        for j, name in enumerate("QKV"):
            out[dst + f"attn.W_{name}"] = np.ascontiguousarray(qkv_w[:, j].transpose(0, 2, 1))
            out[dst + f"attn.b_{name}"] = qkv_b[:, j].copy()
        dense = _get(raw, src + "attention.dense.weight", directory)  # [d, d] (out, in)
        out[dst + "attn.W_O"] = np.ascontiguousarray(dense.T).reshape(nh, dh, d)
        out[dst + "attn.b_O"] = _get(raw, src + "attention.dense.bias", directory)
        out[dst + "mlp.W_in"] = np.ascontiguousarray(_get(raw, src + "mlp.dense_h_to_4h.weight", directory).T)
        out[dst + "mlp.b_in"] = _get(raw, src + "mlp.dense_h_to_4h.bias", directory)
        out[dst + "mlp.W_out"] = np.ascontiguousarray(_get(raw, src + "mlp.dense_4h_to_h.weight", directory).T)
        out[dst + "mlp.b_out"] = _get(raw, src + "mlp.dense_4h_to_h.bias", directory)
    out["ln_final.w"] = _get(raw, "final_layer_norm.weight", directory)
    out["ln_final.b"] = _get(raw, "final_layer_norm.bias", directory)
    _unembed(out, head, arch, directory)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}
