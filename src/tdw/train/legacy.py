"""Import of checkpoints saved by the original grokking code (torch pickles).

Files are read with ``torch.load(weights_only=True)``: a pickle that needs anything beyond
tensors and plain containers is refused, never executed. Weights are converted from the
original orientation (``embed.W_E`` [d_model, d_vocab], ``W_Q`` [heads, d_head, d_model],
``W_O`` [d_model, heads*d_head], ``W_in`` [d_mlp, d_model], ...) to the workbench's
TransformerLens orientation; loss histories are kept.

Recognised layouts: a dict with ``model`` (final state_dict), ``train_losses``,
``test_losses`` and optionally ``epoch``, ``config`` (the original ``Config``'s fields as a
dict: ``p``, ``seed``, ``frac_train``, ``fn_name``, ...) and ``checkpoints`` +
``checkpoint_epochs`` (a list of state_dicts, as in full runs of the original code).

``inspect_legacy`` reads what the config needs to know at DAG-build time (epochs, shapes,
stored config, history lengths) and ``resolve_entry`` checks a config's legacy entry
against it, so a bad file or a contradicting entry stops the workflow before any job runs.
"""

from __future__ import annotations

import math
import pickle
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tdw.models.architecture import ModelConfig
from tdw.tasks.modular import Task

if TYPE_CHECKING:
    from tdw.workbench import Family

# What ``convert_state`` reads from every state_dict (masks are buffers and are dropped).
WEIGHT_KEYS = ("embed.W_E", "pos_embed.W_pos", "unembed.W_U") + tuple(
    f"blocks.0.{k}" for k in ("attn.W_K", "attn.W_Q", "attn.W_V", "attn.W_O", "mlp.W_in", "mlp.b_in", "mlp.W_out", "mlp.b_out")
)
# A legacy entry's keys and the original Config's fields that store the same value.
STORED_FIELDS = {"p": "p", "seed": "seed", "train_frac": "frac_train"}
# The original Config's ``fn_name`` -> the workbench's task operation.
OPERATIONS = {"add": "add", "subtract": "sub"}


class LegacyFormatError(ValueError):
    """A legacy file that cannot be imported; the message names the file."""


class LegacyEntryError(ValueError):
    """A config's legacy entry that does not fit its file; ``key`` is the entry's key at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _not_a_checkpoint(path: str | Path) -> str | None:
    """Why the file's first bytes rule out a torch checkpoint, or None when they may start one
    (a zip archive, torch's format since 1.6, or a pickle of protocol 2+, its format before)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith((b"PK\x03\x04", b"\x80")):
        return None
    if not head:
        return "is empty, not a torch checkpoint"
    text = head.decode("utf-8", errors="ignore")
    if len(text.encode()) >= len(head) - 3 and all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"is not a torch checkpoint: it starts with text ({text[:40]!r})"
    return f"is not a torch checkpoint: not a zip archive or pickle (it starts with bytes {head[:8].hex(' ')})"


def read_legacy(path: str | Path, mmap: bool = False) -> dict:
    """The file's dict. ``mmap``: map tensors instead of reading them (zip-format files), for
    looking at shapes only."""
    import torch

    reason = _not_a_checkpoint(path)
    if reason:
        raise LegacyFormatError(f"{path} {reason}")
    with open(path, "rb") as fh:
        zipped = fh.read(4) == b"PK\x03\x04"
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap and zipped)
    except pickle.UnpicklingError as err:
        named = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        reason = f"it names {named[1]}" if named else str(err).splitlines()[0]
        raise LegacyFormatError(
            f"{path}: refused: the pickle needs more than tensors and plain containers to load, "
            f"and the workbench never executes pickled code ({reason})"
        ) from err
    except Exception as err:  # torch reports damaged files with many exception types
        first = str(err).splitlines()[0] if str(err) else ""
        raise LegacyFormatError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: {first})") from err
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise LegacyFormatError(f"{path}: expected a dict with a 'model' state_dict; found {keys}")
    return obj


@dataclass(frozen=True)
class LegacyInfo:
    """What a legacy file holds, without its tensors."""

    final_epoch: int | None  # the final model's epoch: ``epoch``, else len(train_losses) - 1
    epochs: tuple[int, ...]  # epochs that have a state_dict, increasing
    architecture: dict  # from the final state_dict's shapes (``infer_architecture``)
    config: dict | None  # the run's config as the file stores it
    n_train_losses: int
    n_test_losses: int

    @property
    def p(self) -> int:
        return self.architecture["p"]


def inspect_legacy(path: str | Path) -> LegacyInfo:
    """Read a legacy file's epochs, shapes, stored config and history lengths (cached per
    path, modification time and size, so a workflow's DAG build reads each file once)."""
    st = Path(path).stat()
    return _inspect(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=32)
def _inspect(path: str, mtime_ns: int, size: int) -> LegacyInfo:
    obj = read_legacy(path, mmap=True)
    final = _stated_final_epoch(obj)
    states = legacy_checkpoints(obj, final, path) if final is not None else {}
    for epoch, state in states.items():
        missing = [k for k in WEIGHT_KEYS if k not in state] if isinstance(state, dict) else list(WEIGHT_KEYS)
        if missing:
            raise LegacyFormatError(f"{path}: the model at epoch {epoch} lacks {missing}; expected the one-layer grokking model")
    config = obj.get("config")
    return LegacyInfo(
        final_epoch=final,
        epochs=tuple(sorted(states)),
        architecture=infer_architecture(obj["model"], path),
        config=dict(config) if isinstance(config, dict) else None,
        n_train_losses=len(_losses(obj, "train_losses", path)),
        n_test_losses=len(_losses(obj, "test_losses", path)),
    )


def _losses(obj: dict, key: str, path: str | Path) -> np.ndarray:
    """A loss history (a list of floats or 0-d tensors, or a 1-d tensor) as float64."""
    try:
        return np.asarray([float(x) for x in obj.get(key, [])], dtype=np.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise LegacyFormatError(f"{path}: {key!r} holds a value that is not a number ({err})") from err


def final_epoch(path: str | Path) -> int:
    """Epoch of the final model in a legacy file: its ``epoch`` field, else the length of its
    train-loss history minus one."""
    return _final_epoch(read_legacy(path), path)


def _stated_final_epoch(obj: dict) -> int | None:
    """The final model's epoch as the file states it (None: it states none)."""
    if "epoch" in obj:
        return int(obj["epoch"])
    if "train_losses" in obj:
        return len(obj["train_losses"]) - 1
    return None


def _final_epoch(obj: dict, path: str | Path) -> int:
    final = _stated_final_epoch(obj)
    if final is not None:
        return final
    raise LegacyFormatError(f"{path}: no 'epoch' and no 'train_losses'; give 'epoch' in the config's legacy entry")


def fitting_spacings(n_train: int, n_test: int) -> tuple[int, int | None]:
    """The spacings k (lo, hi inclusive; hi None: unbounded) that give ``n_test`` test losses
    over ``n_train`` train losses. The original code records the train loss at every epoch
    0 .. n_train - 1 and the test loss at epochs 0, k, 2k, ... of the same epochs, so
    n_test = (n_train - 1) // k + 1 (e.g. 107,791 train and 10,780 test losses: k = 10)."""
    last = n_train - 1
    if n_test == 1:
        return max(n_train, 1), None
    return last // n_test + 1, last // (n_test - 1)


def _spacings_text(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"any spacing >= {lo}"
    if hi < lo:
        return "no spacing"
    return str(lo) if hi == lo else f"{lo}, {lo + 1}, ..., {hi}" if hi - lo > 3 else ", ".join(map(str, range(lo, hi + 1)))


def history_test_epochs(n_train: int, n_test: int, every: int | None = None, path: str | Path = "") -> np.ndarray:
    """Epochs of a legacy test-loss history of ``n_test`` entries beside ``n_train`` train
    losses (see ``fitting_spacings``); ``every``: the spacing, where more than one fits."""
    if n_test == 0 or n_train == 0:
        return np.arange(n_test)  # nothing to lay the test history over: one entry per epoch
    if n_test > n_train:
        raise LegacyFormatError(f"{path}: {n_test} test losses but only {n_train} train losses (one per epoch)")
    lo, hi = fitting_spacings(n_train, n_test)
    if every is not None:
        if every < lo or (hi is not None and every > hi):
            raise LegacyFormatError(
                f"{path}: a test loss every {every} epochs over epochs 0..{n_train - 1} gives "
                f"{(n_train - 1) // every + 1} test losses; the file has {n_test} ({_spacings_text(lo, hi)} fits)"
            )
        return np.arange(n_test) * every
    if hi is not None and hi > lo:
        raise LegacyFormatError(
            f"{path}: {n_test} test losses over {n_train} train epochs fit a test loss every "
            f"{_spacings_text(lo, hi)} epochs; give 'test_loss_every' in the config's legacy entry"
        )
    return np.arange(n_test) * lo


@dataclass(frozen=True)
class LegacyEntry:
    """A config's legacy entry completed from its file."""

    p: int
    seed: int
    train_frac: float
    epoch: int
    test_loss_every: int | None  # spacing of the test-loss history (None: at most one test loss)


def _stored(entry: dict, config: dict, key: str, path: str | Path) -> Any:
    """The entry's value for ``key``, else the file's; an entry that contradicts the file is refused."""
    field = STORED_FIELDS[key]
    if field not in config:
        return entry.get(key)
    stored = config[field]
    given = entry.get(key, stored)
    same = math.isclose(given, stored, rel_tol=1e-12) if isinstance(stored, float) else given == stored
    if not same:
        raise LegacyEntryError(key, f"{key} = {given!r} here, but {path} stores {field} = {stored!r} in its config")
    return stored


def _check_family(info: LegacyInfo, cfg: ModelConfig, family: Family, path: str | Path) -> None:
    """The file's model and task against the family's (the import converts, never reshapes)."""
    arch, stored = info.architecture, info.config or {}
    if cfg.n_layers != 1 or cfg.layernorm:
        raise LegacyEntryError("path", f"family {family.name}: legacy import handles the one-layer model without LayerNorm")
    for key in ("n_layers", "d_model", "n_heads", "d_mlp"):
        if arch[key] != getattr(cfg, key):
            raise LegacyEntryError(
                "path", f"{path}: {key} = {arch[key]} in the file, {getattr(cfg, key)} in family {family.name}"
            )
    if cfg.unembed_equals and not arch["unembed_equals"]:
        raise LegacyEntryError("path", f"{path}: W_U has {info.p} outputs; family {family.name} expects {cfg.d_vocab_out}")
    act = str(stored.get("act_type", cfg.act)).lower()
    if act != cfg.act:
        raise LegacyEntryError("path", f"{path} stores act_type = {stored['act_type']!r}; family {family.name} uses {cfg.act!r}")
    fn = stored.get("fn_name")
    if fn is not None and OPERATIONS.get(fn) != family.operation:
        raise LegacyEntryError(
            "path", f"{path} stores fn_name = {fn!r}; family {family.name} is {family.operation!r} (fn_name {family.operation!r})"
        )


def resolve_entry(entry: dict, family: Family, train_frac: float) -> LegacyEntry:
    """A config's legacy entry checked against its file and completed from it: p from the
    stored config or the embedding's shape, seed and train fraction from the stored config
    (else the entry, else 0 and ``train_frac``), the final epoch, the test-loss spacing."""
    path = entry["path"]
    try:
        info = inspect_legacy(path)
    except LegacyFormatError as err:
        raise LegacyEntryError("path", str(err)) from err
    stored = info.config or {}
    if "p" in stored and stored["p"] != info.p:
        raise LegacyEntryError(
            "path", f"{path} stores p = {stored['p']!r} in its config, but its embedding has {info.p + 1} tokens (p = {info.p})"
        )
    p = _stored(entry, stored, "p", path)
    if p is not None and p != info.p:
        raise LegacyEntryError("p", f"p = {p} here, but the embedding in {path} has {info.p + 1} tokens: p = {info.p}")
    _check_family(info, family.model_config(info.p), family, path)
    seed = _stored(entry, stored, "seed", path)
    frac = _stored(entry, stored, "train_frac", path)
    epoch = entry.get("epoch", info.final_epoch)
    if epoch is None:
        raise LegacyEntryError("epoch", f"{path} has no 'epoch' and no 'train_losses': the final model's epoch is unknown")
    if epoch not in info.epochs:
        raise LegacyEntryError("epoch", f"{path} has no model at epoch {epoch}; its models are at epochs {list(info.epochs)}")
    try:
        spacing = history_test_epochs(info.n_train_losses, info.n_test_losses, entry.get("test_loss_every"), path)
    except LegacyFormatError as err:
        raise LegacyEntryError("test_loss_every" if info.n_test_losses <= info.n_train_losses else "path", str(err)) from err
    every = int(spacing[1] - spacing[0]) if len(spacing) > 1 else None
    return LegacyEntry(info.p, 0 if seed is None else int(seed), train_frac if frac is None else float(frac), int(epoch), every)


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


def loss_history(
    obj: dict, test_loss_every: int | None = None, path: str | Path = ""
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_loss, train_epoch, test_loss, test_epoch); the train loss is at every epoch, the
    test loss at the epochs ``history_test_epochs`` derives (e.g. every 10 epochs)."""
    train, test = _losses(obj, "train_losses", path), _losses(obj, "test_losses", path)
    return train, np.arange(len(train)), test, history_test_epochs(len(train), len(test), test_loss_every, path)


def legacy_checkpoints(obj: dict, final: int, path: str | Path = "") -> dict[int, dict]:
    """All state_dicts in the file by epoch: the listed checkpoints plus the final model."""
    out = {}
    if "checkpoints" in obj and "checkpoint_epochs" in obj:
        if len(obj["checkpoints"]) != len(obj["checkpoint_epochs"]):
            raise LegacyFormatError(
                f"{path}: {len(obj['checkpoints'])} checkpoints but {len(obj['checkpoint_epochs'])} checkpoint_epochs"
            )
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
        "task": Task.from_config(family.spec["task"], variant.p).to_config(),
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
    history = History(*loss_history(obj, variant.legacy_test_every, path), {"variant": variant.name, "legacy_source": str(path)})
    fields = {"source": "legacy", "legacy_source": str(path), "final_epoch": final, "provenance": prov}
    ckpt_meta = {"family": family.name, "variant": variant.name, "config": run_config, "provenance": prov}
    return write_variant_files(VariantLayout.at(out_dir), run_config, history, weights, fields, ckpt_meta)
