"""The numbers of a sweep page, free of files and HTML: which config fields are swept, when a
loss first falls below a threshold, and each measure grouped over the swept values with the
seeds as spread. A measure that a variant never reaches is ``None`` ("not reached") here and
on the page, never a number standing in for it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

# Fields that tell seeds apart: the spread of a point, never an axis.
SPREAD = ("seed", "data_seed")
SECTIONS = ("train", "architecture")


def sweep_fields(config: Mapping) -> dict[str, object]:
    """The sweepable fields of a variant's config.json, flat: ``task.p``, ``seed``,
    ``data_seed`` (the seed where the file has none), ``train.<key>`` and
    ``architecture.<key>``. Lists and mappings become tuples, so that values compare and group."""
    out: dict[str, object] = {"task.p": config["task"]["p"], "seed": config["seed"]}
    out["data_seed"] = config.get("data_seed", config["seed"])
    for section in SECTIONS:
        for key, value in sorted((config.get(section) or {}).items()):
            out[f"{section}.{key}"] = _hashable(value)
    return out


def _hashable(value: object) -> object:
    """Lists as tuples and mappings (a Grokfast filter, an early stopping rule) as sorted
    (key, value) tuples, so that values compare and group."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def spread_fields(fields: Mapping[str, Mapping[str, object]]) -> list[str]:
    """The seeds a page lists beside each variant: ``seed``, and ``data_seed`` where some
    variant's split seed differs from its seed."""
    differ = any(f.get("data_seed", f["seed"]) != f["seed"] for f in fields.values())
    return ["seed", "data_seed"] if differ else ["seed"]


def swept_axes(fields: Mapping[str, Mapping[str, object]]) -> list[str]:
    """The parameters whose value differs across the variants (``fields``: variant ->
    ``sweep_fields``), in a stable order; a field a variant lacks counts as ``None``;
    ``seed`` and ``data_seed`` are the spread, not axes. A field that changes in lockstep
    with an earlier one (``architecture.p`` with ``task.p``: the same variants share a
    value) is no axis of its own."""
    names: list[str] = []
    for f in fields.values():
        names += [k for k in f if k not in names and k not in SPREAD]
    axes: list[str] = []
    seen: set[frozenset] = set()
    for k in names:
        values = [repr(f.get(k)) for f in fields.values()]
        if len(set(values)) < 2:
            continue
        blocks = frozenset(frozenset(i for i, v in enumerate(values) if v == value) for value in set(values))
        if blocks not in seen:
            seen.add(blocks)
            axes.append(k)
    return axes


def first_below(epochs: ArrayLike, values: ArrayLike, threshold: float) -> int | None:
    """The first epoch whose value is below ``threshold``; ``None`` when none is."""
    below = np.flatnonzero(np.asarray(values, dtype=np.float64) < threshold)
    return int(np.asarray(epochs)[below[0]]) if below.size else None


def history_measures(history: Mapping[str, np.ndarray], final: Mapping, memorise: float, generalise: float) -> dict:
    """Epochs to memorise (train loss below ``memorise``), to generalise (test loss below
    ``generalise``), the gap between them (``None`` unless both are reached) and the final
    losses (``final``: metadata.json's ``final``)."""
    mem = first_below(history["train_epoch"], history["train_loss"], memorise)
    gen = first_below(history["test_epoch"], history["test_loss"], generalise)
    return {
        "epochs_to_memorise": mem,
        "epochs_to_generalise": gen,
        "generalisation_gap": gen - mem if mem is not None and gen is not None else None,
        "final_train_loss": float(final["train_loss"]),
        "final_test_loss": float(final["test_loss"]),
    }


REDUCERS: dict[str, Callable[[np.ndarray], Any]] = {
    "sum": np.sum,
    "mean": np.mean,
    "max": np.max,
    "min": np.min,
    "count": np.size,
    "nonzero": np.count_nonzero,
}


def artifact_value(
    array: np.ndarray, dims: str, at: str | int, reduce: str | None, where: str, epochs: np.ndarray | None = None
) -> float | None:
    """A scalar of an artifact dataset: at the last epoch (``at="final"``, the dataset's
    first axis must be ``epoch``), at the checkpoint of epoch ``at`` (an integer; ``epochs``:
    the artifact's epoch coordinate) or the whole dataset (``"all"``), then reduced (``sum``,
    ``mean``, ``max``, ``min``, ``count``, ``nonzero``) unless already a scalar. NaN (a
    boundary not found, an LLC whose chains all diverged) is ``None``. A value that is not
    one number, or an epoch the artifact lacks, is a ``ValueError`` opening with ``where``."""
    value = np.asarray(array)
    if at != "all":
        if not dims.split() or dims.split()[0] != "epoch":
            raise ValueError(f"{where}: 'at': {at!r} needs an epoch axis first; the dataset's axes are {dims!r}")
        if at == "final":
            value = value[-1]
        else:
            found = np.flatnonzero(np.asarray(epochs) == at)
            if not found.size:
                raise ValueError(
                    f"{where}: 'at': no checkpoint of epoch {at}; the artifact's epochs: {list(map(int, np.asarray(epochs)))}"
                )
            value = value[found[0]]
    if reduce is not None:
        value = np.asarray(REDUCERS[reduce](value))
    if value.size != 1:
        raise ValueError(f"{where}: {value.size} values (shape {value.shape}); choose a 'reduce' ({', '.join(REDUCERS)})")
    out = float(value.reshape(()))
    return None if np.isnan(out) else out


def group_key(fields: Mapping[str, object], axes: Sequence[str]) -> tuple:
    return tuple(fields.get(a) for a in axes)


def aggregate(values: Iterable[float | None]) -> dict:
    """Mean, min and max of the reached values, with how many of how many reached
    (``mean``/``min``/``max`` are ``None`` when none did)."""
    values = list(values)
    got = np.array([v for v in values if v is not None], dtype=np.float64)
    stats = (
        {"mean": float(got.mean()), "min": float(got.min()), "max": float(got.max())}
        if got.size
        else dict.fromkeys(("mean", "min", "max"))
    )
    return stats | {"reached": int(got.size), "n": len(values)}


def grouped(fields: Mapping[str, Mapping[str, object]], values: Mapping[str, float | None], axes: Sequence[str]) -> list[dict]:
    """One point per combination of swept values (sorted): ``{"key": (values of axes),
    "variants": [...], "values": [...], **aggregate}``; the variants in a point differ only
    in their seeds."""
    groups: dict[tuple, list[str]] = {}
    for name in fields:
        groups.setdefault(group_key(fields[name], axes), []).append(name)
    out = []
    for key in sorted(groups, key=lambda k: tuple((v is None, str(type(v)), v if v is not None else 0) for v in k)):
        names = groups[key]
        out.append({"key": key, "variants": names, "values": [values[n] for n in names]} | aggregate(values[n] for n in names))
    return out
