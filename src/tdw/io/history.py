"""The per-epoch loss history of a variant (``history.h5``), and the measures logged between
checkpoints where the run tracked them (``read_tracking``).

Datasets: ``train_loss`` [epoch] with ``train_epoch`` [epoch], ``test_loss`` [test_epoch]
with ``test_epoch``; test losses may be sparser than train losses (legacy runs). The two
epoch datasets are the coordinates of their axes, so ``xarray.open_dataset(path,
engine="h5netcdf")`` indexes each loss by its epochs (``tdw.io.h5``).
"""

from __future__ import annotations

import os

import numpy as np

from tdw.io.h5 import open_h5, write_h5


def write_history(
    path: str | os.PathLike,
    train_loss: np.ndarray,
    train_epoch: np.ndarray,
    test_loss: np.ndarray,
    test_epoch: np.ndarray,
    attrs: dict,
    tracked: dict[str, tuple[np.ndarray, str]] | None = None,
) -> None:
    """``tracked``: further datasets {name: (array, dims)}, the measures logged during training
    (``tdw.train.tracking``) on their ``track_epoch`` axis."""
    write_h5(
        path,
        (tracked or {})
        | {
            "train_loss": (np.asarray(train_loss, np.float64), "train_epoch"),
            "train_epoch": (np.asarray(train_epoch, np.int64), "train_epoch"),
            "test_loss": (np.asarray(test_loss, np.float64), "test_epoch"),
            "test_epoch": (np.asarray(test_epoch, np.int64), "test_epoch"),
        },
        attrs,
    )


def read_history(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with open_h5(path) as fh:
        return {k: fh[k][()] for k in ("train_loss", "train_epoch", "test_loss", "test_epoch")}


def read_tracking(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The measures logged during training ({} for a run without tracking): ``track_epoch``,
    ``track_param`` and ``track_hook`` (names, str) and each series on those axes."""
    with open_h5(path) as fh:
        if "track_epoch" not in fh:
            return {}
        out = {k: fh[k][()] for k in fh if k.startswith(("track_", "grad_norm", "weight_norm", "update_ratio", "dim_"))}
    for k in ("track_param", "track_hook"):
        if k in out:
            out[k] = np.array([x.decode() if isinstance(x, bytes) else str(x) for x in out[k]])
    return out
