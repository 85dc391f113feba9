"""A synthetic variant with the files the views read (history.h5, metadata.json,
checkpoints, the embedding_frequencies artifact), for view tests, the views benchmark and
dashboard demos. The loss curves and embeddings imitate grokking: train loss falls early,
test loss late, and the embedding concentrates on a few key frequencies."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tdw.analyzers.fourier import fourier_basis
from tdw.analyzers.runner import run_analyzer
from tdw.io.atomic import write_json
from tdw.io.checkpoint import checkpoint_name, save_checkpoint
from tdw.io.history import write_history
from tdw.io.provenance import provenance
from tdw.models.architecture import ModelConfig


def loss_history(n_epochs: int, grok: float = 0.6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, train_loss, test_loss) [epoch]: test loss drops at ``grok`` x n_epochs."""
    t = np.arange(n_epochs + 1, dtype=np.float64)
    train = 4.7 * np.exp(-t / (0.03 * n_epochs + 1)) + 1e-6 + 1e-3 * np.exp(-t / (0.5 * n_epochs + 1))
    test = (
        4.7 + 3.0 * (1 - np.exp(-t / (0.05 * n_epochs + 1))) - 7.6 / (1 + np.exp(-(t - grok * n_epochs) / (0.03 * n_epochs + 1)))
    )
    return t.astype(np.int64), train, np.maximum(test, 1e-7)


def embeddings(p: int, epochs: np.ndarray, key: list[int], d_model: int = 128, seed: int = 0) -> np.ndarray:
    """[epoch, p, d_model]: random at first, then dominated by the ``key`` frequencies."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(p, d_model)) / np.sqrt(d_model)
    basis = fourier_basis(p)  # [component, p]
    signal = sum(
        np.outer(basis[2 * k - 1], rng.normal(size=d_model)) + np.outer(basis[2 * k], rng.normal(size=d_model)) for k in key
    )
    mix = (np.asarray(epochs) / max(int(epochs[-1]), 1))[:, None, None]
    return (1 - 0.9 * mix) * noise + mix * signal


def make_variant(
    root: Path, p: int = 13, n_checkpoints: int = 5, n_epochs: int = 100, key: tuple[int, ...] = (2, 5), name: str | None = None
) -> Path:
    """Write a variant under ``root/<name>`` (default ``p{p}_seed0``) and return its folder."""
    name = name or f"p{p}_seed0"
    out = Path(root) / name
    epochs = np.unique(np.linspace(0, n_epochs, n_checkpoints).round().astype(np.int64))
    t, train, test = loss_history(n_epochs)
    attrs = {"variant": name, "provenance": provenance(), "synthetic": True}
    write_history(out / "history.h5", train, t, test, t, attrs)
    config = {"architecture": ModelConfig(p=p).to_dict()}
    paths = []
    for epoch, w_e in zip(epochs, embeddings(p, epochs, list(key)), strict=True):
        path = out / "checkpoints" / checkpoint_name(int(epoch))
        save_checkpoint(
            path, {"embed.W_E": np.vstack([w_e, np.zeros((1, w_e.shape[1]))])}, {"epoch": int(epoch), "config": config}
        )
        paths.append(path)
    run_analyzer(
        "embedding_frequencies", {"dominant_fraction": 0.3}, paths, None, out / "artifacts/full/embedding_frequencies.h5", attrs
    )
    write_json(
        out / "metadata.json",
        {
            "family": "modadd",
            "variant": name,
            "source": "synthetic",
            "checkpoints": [
                {"index": i, "epoch": int(e), "file": f"checkpoints/{checkpoint_name(int(e))}"} for i, e in enumerate(epochs)
            ],
            "final": {"epoch": int(n_epochs), "train_loss": float(train[-1]), "test_loss": float(test[-1])},
            "provenance": provenance(),
        },
    )
    return out
