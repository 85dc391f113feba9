"""Interventions on each checkpoint's weights: a global magnitude-pruning curve and robustness to
weight noise.

Pruning: for each fraction f, the round(f N) entries of smallest |w| among the N entries of all
weight matrices (every parameter whose name ends in ``W_*``: W_E, W_pos, W_Q, W_K, W_V, W_O,
W_in, W_out, W_U; biases are kept) are set to zero, ranked together across the matrices, and
the model's loss (mean cross-entropy over all output classes, as in training) and accuracy
are measured on the run's train and test splits. With every weight pruned the logits are zero
(no parameter adds to them after W_U), so the loss is ln(d_vocab_out).

Noise: the mean increase of the training loss (``tdw.analyzers.llc.training_loss``) under
w + eps, eps ~ N(0, sigma^2 I) over every parameter, from ``draws`` antithetic pairs
(L(w + eps) + L(w - eps)) / 2 - L(w): each pair cancels the gradient term exactly and the
mean is unchanged, since eps and -eps are equally likely. To second order the expectation is
(sigma^2 / 2) tr H at any w (the first-order term has mean zero); the standard error is
over the pairs. Float64 throughout.
"""

from __future__ import annotations

import math

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param, StepValues
from tdw.params import in_range
from tdw.tasks.modular import OPERATIONS

SPLITS = ("train", "test")
CHUNK = 8  # noisy models evaluated together


def _fractions(values: list) -> str | None:
    if not values or any(not 0.0 <= float(v) <= 1.0 for v in values):
        return "expected a non-empty list of fractions in [0, 1]"
    return None


def _sigmas(values: list) -> str | None:
    if not values or any(not (math.isfinite(float(v)) and float(v) > 0) for v in values):
        return "expected a non-empty list of noise scales > 0"
    return None


PARAMS = (
    Param("fractions", list[float], (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0), "fractions of the weights pruned", _fractions),
    Param("sigmas", list[float], (1e-4, 1e-3, 1e-2, 3e-2, 1e-1), "standard deviations of the weight noise", _sigmas),
    Param("draws", int, 8, "antithetic noise pairs per scale (2..10^5)", in_range(2, 10**5)),
    Param("seed", int, 0, "seed of the noise (the same draws at every checkpoint)", in_range(0, 2**62)),
)


def is_pruned(name: str) -> bool:
    """Whether magnitude pruning ranks parameter ``name``: weight matrices, not biases."""
    return name.rsplit(".", 1)[-1].startswith("W_")


def magnitude_prune(weights: dict, fraction: float) -> tuple[dict, float]:
    """The weights with the round(fraction N) smallest-|w| entries of the ``is_pruned`` tensors
    zeroed (ranked globally; ties by position in sorted name order), and the largest |w|
    zeroed (0 when none is). numpy arrays or torch tensors in, the same kind out."""
    names = sorted(k for k in weights if is_pruned(k))
    mags = np.concatenate([np.abs(np.asarray(weights[k], dtype=np.float64)).reshape(-1) for k in names])
    count = int(round(fraction * mags.size))
    keep = np.ones(mags.size, dtype=bool)
    order = np.argsort(mags, kind="stable")
    keep[order[:count]] = False
    cut = float(mags[order[count - 1]]) if count else 0.0
    out, start = dict(weights), 0
    for k in names:
        size = int(np.prod(np.shape(weights[k])))
        mask = keep[start : start + size].reshape(np.shape(weights[k]))
        start += size
        w = weights[k]
        out[k] = w * mask if isinstance(w, np.ndarray) else w * _as_tensor_like(mask, w)
    return out, cut


def _as_tensor_like(mask: np.ndarray, like):
    import torch

    return torch.as_tensor(mask, device=like.device).to(like.dtype)


def split_metrics(params: dict, view: CheckpointView, rows: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of the model with ``params`` (torch tensors) on the flat
    pair indices ``rows`` (NaN, NaN for none)."""
    import torch

    from tdw.models.fastpath import last_logits
    from tdw.tasks import modular

    if len(rows) == 0:
        return float("nan"), float("nan")
    device = next(iter(params.values())).device
    tokens = torch.as_tensor(modular.tokens(view.p, rows), device=device)
    labels = torch.as_tensor(modular.labels(view.p, rows, view.operation), device=device)
    with torch.no_grad():
        logits = last_logits(params, view.model, tokens).double()
        loss = torch.nn.functional.cross_entropy(logits, labels)
        acc = (logits.argmax(-1) == labels).double().mean()
    return float(loss), float(acc)


def noise_increase(flat, sigmas: list[float], draws: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean training-loss increase [sigma] and its standard error [sigma] under isotropic
    Gaussian noise, by antithetic pairs (module docstring), and the loss at the centre.
    ``flat``: a ``tdw.analyzers.curvature.FlatLoss``."""
    import torch

    gen = torch.Generator(device=flat.center.device).manual_seed(seed)
    with torch.no_grad():
        base = float(flat.loss(flat.center))
        mean, se = np.empty(len(sigmas)), np.empty(len(sigmas))
        for i, sigma in enumerate(sigmas):
            eps = torch.randn((draws, flat.center.numel()), generator=gen, device=flat.center.device, dtype=flat.center.dtype)
            points = torch.cat([flat.center + sigma * eps, flat.center - sigma * eps])  # [2 draws, D]
            # a few points at a time: each is a model's activations on the whole training split
            losses = torch.cat([flat.stacked(c) for c in points.split(CHUNK)]).to("cpu", torch.float64).numpy()
            pairs = (losses[:draws] + losses[draws:]) / 2 - base
            mean[i], se[i] = pairs.mean(), pairs.std(ddof=1) / np.sqrt(draws)
    return mean, se, base


class Interventions(Analyzer):
    name = "interventions"
    operations = tuple(OPERATIONS)
    models = ("transformer", "mlp")
    description = "global magnitude-pruning curves (train/test loss and accuracy) and training-loss increase under weight noise"
    params = PARAMS
    dims = {
        "prune_loss": "split fraction",
        "prune_accuracy": "split fraction",
        "prune_threshold": "fraction",
        "noise_increase": "sigma",
        "noise_stderr": "sigma",
        "loss": "",
    }

    def step(self, view: CheckpointView, params: dict, state: dict) -> StepValues:
        import torch

        from tdw.analyzers.curvature import flat_training_loss

        device = "cuda" if torch.cuda.is_available() else "cpu"
        weights = {k: torch.as_tensor(np.asarray(v, dtype=np.float64), device=device) for k, v in view.weights.items()}
        splits = view.split()
        loss, acc = np.empty((2, len(params["fractions"]))), np.empty((2, len(params["fractions"])))
        cuts = np.empty(len(params["fractions"]))
        for j, fraction in enumerate(params["fractions"]):
            pruned, cuts[j] = magnitude_prune(weights, float(fraction))
            for i, rows in enumerate(splits):
                loss[i, j], acc[i, j] = split_metrics(pruned, view, rows)
        flat = flat_training_loss(view, device, "float64")
        mean, se, base = noise_increase(flat, [float(s) for s in params["sigmas"]], params["draws"], params["seed"])
        return {
            "prune_loss": loss,
            "prune_accuracy": acc,
            "prune_threshold": cuts,
            "noise_increase": mean,
            "noise_stderr": se,
            "loss": np.float64(base),
        }

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        out["split"] = (np.array(SPLITS, dtype="S"), "split")
        out["fraction"] = (np.asarray(params["fractions"], dtype=np.float64), "fraction")
        out["sigma"] = (np.asarray(params["sigmas"], dtype=np.float64), "sigma")
        return out


ANALYZER = Interventions()
