"""Import of checkpoints saved by the original grokking code (torch pickles).

Files are read with ``torch.load(weights_only=True)``: a pickle that needs anything beyond
tensors and plain containers is refused, never executed. Weights are converted from the
original orientation (``embed.W_E`` [d_model, d_vocab], ``W_Q`` [heads, d_head, d_model],
``W_O`` [d_model, heads*d_head], ``W_in`` [d_mlp, d_model], ...) to the workbench's
TransformerLens orientation; loss histories are kept.

Recognised layouts: a dict with ``model`` (final state_dict), ``train_losses``,
``test_losses`` and optionally ``epoch``, ``config`` and ``checkpoints`` +
``checkpoint_epochs`` (a list of state_dicts, as in full runs of the original code).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from tdw.models.architecture import ModelConfig


class LegacyFormatError(ValueError):
    """A legacy file that cannot be imported; the message names the file."""


def read_legacy(path: str | Path) -> dict:
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise LegacyFormatError(
            f"{path}: refused: the pickle needs more than tensors and plain containers to load, "
            f"and the workbench never executes pickled code ({str(err).splitlines()[0]})"
        ) from err
    except (RuntimeError, OSError, EOFError, KeyError, ValueError) as err:
        raise LegacyFormatError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(obj, dict) or "model" not in obj:
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise LegacyFormatError(f"{path}: expected a dict with a 'model' state_dict; found {keys}")
    return obj


def final_epoch(path: str | Path) -> int:
    """Epoch of the final model in a legacy file: its ``epoch`` field, else the length of its
    train-loss history minus one."""
    return _final_epoch(read_legacy(path), path)


def _final_epoch(obj: dict, path: str | Path) -> int:
    if "epoch" in obj:
        return int(obj["epoch"])
    if "train_losses" in obj:
        return len(obj["train_losses"]) - 1
    raise LegacyFormatError(f"{path}: no 'epoch' and no 'train_losses'; give 'epoch' in the config's legacy entry")


def infer_architecture(state: dict, path: str | Path) -> dict:
    """Architecture fields from a legacy state_dict's shapes (1 layer, no LayerNorm)."""
    try:
        d_model, d_vocab = state["embed.W_E"].shape
        n_heads, d_head, _ = state["blocks.0.attn.W_Q"].shape
        d_mlp = state["blocks.0.mlp.W_in"].shape[0]
        d_vocab_out = state["unembed.W_U"].shape[1]
    except KeyError as err:
        raise LegacyFormatError(f"{path}: state_dict lacks {err}; expected the one-layer grokking model") from err
    return {
        "p": d_vocab - 1,
        "d_model": d_model,
        "n_heads": n_heads,
        "d_mlp": d_mlp,
        "unembed_equals": d_vocab_out == d_vocab,
        "n_layers": 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks.")),
    }


def convert_state(state: dict, cfg: ModelConfig, path: str | Path) -> dict[str, np.ndarray]:
    """Original-orientation state_dict -> workbench weights (TransformerLens orientation).

    An unembedding with p + 1 outputs loaded into a family with p outputs drops the `=`
    column; the reverse cannot be invented and is refused.
    """
    arch = infer_architecture(state, path)
    if arch["n_layers"] != 1 or cfg.n_layers != 1 or cfg.layernorm:
        raise LegacyFormatError(f"{path}: legacy import handles the one-layer model without LayerNorm")
    for key in ("p", "d_model", "n_heads", "d_mlp"):
        if arch[key] != getattr(cfg, key):
            raise LegacyFormatError(f"{path}: {key} = {arch[key]} in the file, {getattr(cfg, key)} in the family/config")
    t = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in state.items() if not k.endswith(".mask")}
    h, e, d = cfg.n_heads, cfg.d_head, cfg.d_model
    w_u = t["unembed.W_U"]
    if w_u.shape[1] != cfg.d_vocab_out:
        if w_u.shape[1] == cfg.p + 1 and cfg.d_vocab_out == cfg.p:
            w_u = w_u[:, : cfg.p]
        else:
            raise LegacyFormatError(f"{path}: W_U has {w_u.shape[1]} outputs; the family expects {cfg.d_vocab_out}")
    out = {
        "embed.W_E": t["embed.W_E"].T,
        "pos_embed.W_pos": t["pos_embed.W_pos"],
        "blocks.0.attn.W_K": t["blocks.0.attn.W_K"].transpose(0, 2, 1),
        "blocks.0.attn.W_Q": t["blocks.0.attn.W_Q"].transpose(0, 2, 1),
        "blocks.0.attn.W_V": t["blocks.0.attn.W_V"].transpose(0, 2, 1),
        "blocks.0.attn.W_O": t["blocks.0.attn.W_O"].T.reshape(h, e, d),
        "blocks.0.mlp.W_in": t["blocks.0.mlp.W_in"].T,
        "blocks.0.mlp.b_in": t["blocks.0.mlp.b_in"],
        "blocks.0.mlp.W_out": t["blocks.0.mlp.W_out"].T,
        "blocks.0.mlp.b_out": t["blocks.0.mlp.b_out"],
        "unembed.W_U": w_u,
    }
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def loss_history(obj: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_loss, train_epoch, test_loss, test_epoch); a test history shorter than the
    train history is taken as evenly spaced (e.g. every 10 epochs)."""
    train = np.asarray([float(x) for x in obj.get("train_losses", [])], dtype=np.float64)
    test = np.asarray([float(x) for x in obj.get("test_losses", [])], dtype=np.float64)
    train_epoch = np.arange(len(train))
    if len(test) and len(train) and len(test) < len(train):
        stride = len(train) // len(test)
        test_epoch = np.arange(len(test)) * stride
    else:
        test_epoch = np.arange(len(test))
    return train, train_epoch, test, test_epoch


def legacy_checkpoints(obj: dict, final: int) -> dict[int, dict]:
    """All state_dicts in the file by epoch: the listed checkpoints plus the final model."""
    out = {}
    if "checkpoints" in obj and "checkpoint_epochs" in obj:
        out = {int(e): s for e, s in zip(obj["checkpoint_epochs"], obj["checkpoints"], strict=True)}
    out[final] = obj["model"]
    return out


def import_variant(path: str | Path, family, variant, out_dir: Path) -> dict:
    """Write a legacy run as a variant (checkpoints for ``variant.epochs``, history.h5,
    config.json and metadata.json), as a trained variant has them."""
    from tdw.io.provenance import provenance
    from tdw.io.variant import History, write_variant_files
    from tdw.layout import VariantLayout

    obj = read_legacy(path)
    final = _final_epoch(obj, path)
    available = legacy_checkpoints(obj, final)
    cfg = family.model_config(variant.p)
    prov = provenance()
    run_config = {
        "family": family.name,
        "variant": variant.name,
        "task": {"operation": family.operation, "p": variant.p},
        "seed": variant.seed,
        "architecture": cfg.to_dict(),
        "train": {"train_frac": variant.train_frac},
        "checkpoint_epochs": list(variant.epochs),
        "legacy_source": str(path),
        "legacy_config": obj.get("config"),
    }
    weights = {}
    for epoch in variant.epochs:
        if epoch not in available:
            raise LegacyFormatError(f"{path}: no checkpoint at epoch {epoch}; the file has epochs {sorted(available)}")
        weights[epoch] = convert_state(available[epoch], cfg, path)
    history = History(*loss_history(obj), {"variant": variant.name, "legacy_source": str(path)})
    fields = {"source": "legacy", "legacy_source": str(path), "final_epoch": final, "provenance": prov}
    ckpt_meta = {"family": family.name, "variant": variant.name, "config": run_config, "provenance": prov}
    return write_variant_files(VariantLayout.at(out_dir), run_config, history, weights, fields, ckpt_meta)
