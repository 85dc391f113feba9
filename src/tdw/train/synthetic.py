"""A synthetic variant with the files the views read (history, metadata, config,
checkpoints, the embedding_frequencies artifact), for view tests, the views benchmark and
dashboard demos. The loss curves and embeddings imitate grokking: train loss falls early,
test loss late, and the embedding concentrates on a few key frequencies."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tdw.analyzers.fourier import fourier_basis
from tdw.analyzers.runner import run_analyzer
from tdw.io.provenance import provenance
from tdw.io.variant import History, write_variant_files
from tdw.layout import VariantLayout
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
    layout = VariantLayout.at(Path(root) / name)
    epochs = [int(e) for e in np.unique(np.linspace(0, n_epochs, n_checkpoints).round().astype(np.int64))]
    t, train, test = loss_history(n_epochs)
    prov = provenance()
    config = {
        "family": "modadd",
        "variant": name,
        "task": {"operation": "add", "p": p},
        "seed": 0,
        "architecture": ModelConfig(p=p).to_dict(),
        "train": {"train_frac": 0.3},
        "checkpoint_epochs": epochs,
    }
    w_e = embeddings(p, np.array(epochs), list(key))  # [epoch, p, d_model]; the `=` row is zero
    weights = {e: {"embed.W_E": np.vstack([w, np.zeros((1, w.shape[1]))])} for e, w in zip(epochs, w_e, strict=True)}
    history = History(train, t, test, t, {"variant": name, "provenance": prov, "synthetic": True})
    fields = {"source": "synthetic", "final_epoch": int(n_epochs), "provenance": prov}
    write_variant_files(layout, config, history, weights, fields, {"config": config})
    paths = [layout.checkpoint(e) for e in epochs]
    artifact = layout.artifact("full", "embedding_frequencies")
    run_analyzer("embedding_frequencies", {"dominant_fraction": 0.3}, paths, None, artifact, history.attrs)
    return layout.dir
