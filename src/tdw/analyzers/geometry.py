"""Geometry of representations: PCA of the embedding and of the MLP activations, and the
circles the key frequencies draw.

For a key frequency k and a centred representation X [rows, features] whose rows carry an
angle theta (w_k x for the embedding of token x; w_k t for activations with target residue
t = a + b, or a - b for subtraction), the (cos, sin) plane is spanned by X^T cos(theta) and
X^T sin(theta); rows projected on it are points P [rows, 2]. Circularity: fit
P = [cos theta, sin theta] A + m by least squares; score = R^2 of the fit times
sigma_2(A) / sigma_1(A) (1 for points on a circle in angle order, 0 for a line or noise).

The induction task has neither: its model is attention-only (no MLP neurons) and its tokens
carry no angle (no group), so the analyzer does not serve it (``not_for`` says so in the error).
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param
from tdw.analyzers.keyfreq import KEY_FREQUENCY_PARAMS, key_frequencies
from tdw.models import hooks
from tdw.tasks.sequence import OPERATION as SEQUENCE

POST = hooks.hook(hooks.LAST, hooks.MLP_POST)


def circle_plane(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Centred x [rows, features] and angles [rows] -> points in the (cos, sin) plane [rows, 2]."""
    span = x.T @ np.stack([np.cos(theta), np.sin(theta)], 1).astype(x.dtype)  # [features, 2]
    q, _ = np.linalg.qr(span.astype(np.float64))
    return (x @ q.astype(x.dtype)).astype(np.float64)


def circularity(points: np.ndarray, theta: np.ndarray) -> float:
    """R^2 of points [rows, 2] ~ [cos, sin] A + m, times the isotropy of A."""
    design = np.stack([np.cos(theta), np.sin(theta), np.ones_like(theta)], 1)
    coef, *_ = np.linalg.lstsq(design, points, rcond=None)
    resid = points - design @ coef
    total = np.sum((points - points.mean(0)) ** 2)
    if total <= 0:
        return 0.0
    s = np.linalg.svd(coef[:2], compute_uv=False)
    return float((1 - np.sum(resid**2) / total) * (s[1] / s[0] if s[0] > 0 else 0.0))


class Geometry(Analyzer):
    name = "geometry"
    on_group = True
    models = ("transformer", "mlp")
    reads = (POST,)
    not_for = {
        SEQUENCE: "its circles are of key frequencies w_k x on a cyclic group, and random token sequences have no "
        "group (and the attention-only model no MLP neurons); use 'dimensionality' for the residual stream's shape"
    }
    description = "PCA of embedding and MLP activations; per key frequency the (cos, sin) circle and its circularity"
    params = (
        *KEY_FREQUENCY_PARAMS,
        Param("n_components", int, 4, "principal components stored"),
    )
    dims = {
        "embed_pca_variance": "pc",
        "embed_pca": "pc token",
        "neuron_pca_variance": "pc",
        "embed_circle": "key_frequency token plane_axis",
        "embed_circularity": "key_frequency",
        "neuron_circle": "key_frequency residue plane_axis",
        "neuron_circularity": "key_frequency",
    }

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        return {"keys": key_frequencies(final.weights, final.p, params["key_frequencies"], params["key_fraction"])}

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        p, n_pc = view.p, params["n_components"]
        w_e = view.weights["embed.W_E"][:p].astype(np.float64)
        w_e = w_e - w_e.mean(0)
        u, s, _ = np.linalg.svd(w_e, full_matrices=False)
        post = view.activation(POST).astype(np.float32)
        post = post - post.mean(0)
        # leading variance shares only: a float32 Gram keeps the top eigenvalues to ~1e-6
        top = np.linalg.eigvalsh((post.T @ post).astype(np.float64))[::-1][:n_pc]
        target = view.labels()
        counts = np.bincount(target, minlength=p)[:, None]
        e_circle, e_score, n_circle, n_score = [], [], [], []
        for k in state["keys"]:
            theta_e = 2 * np.pi * k * np.arange(p) / p
            pts = circle_plane(w_e, theta_e)
            e_circle.append(pts)
            e_score.append(circularity(pts, theta_e))
            theta_n = 2 * np.pi * k * target / p
            pts = circle_plane(post, theta_n)
            n_circle.append(np.stack([np.bincount(target, pts[:, i], minlength=p) for i in (0, 1)], 1) / np.maximum(counts, 1))
            n_score.append(circularity(pts, theta_n))
        return {
            "embed_pca_variance": (s[:n_pc] ** 2) / np.sum(s**2),
            "embed_pca": (u[:, :n_pc] * s[:n_pc]).T,
            "neuron_pca_variance": np.clip(top, 0, None) / max(float(np.sum(post.astype(np.float64) ** 2)), 1e-300),
            "embed_circle": np.array(e_circle),
            "embed_circularity": np.array(e_score),
            "neuron_circle": np.array(n_circle),
            "neuron_circularity": np.array(n_score),
        }

    def finalize(self, epochs, steps, params, state):
        return super().finalize(epochs, steps, params, state) | {"key_frequency": (state["keys"], "key_frequency")}


ANALYZER = Geometry()
