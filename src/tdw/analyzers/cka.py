"""Representation similarity across checkpoints: linear CKA (Kornblith et al. 2019) between
the activations of every pair of checkpoints on the same probe rows, and its debiased form.

With X [n, d1] and Y [n, d2] the activations of n probe rows at two checkpoints, centred over
the rows, K = X X^T and L = Y Y^T (so H K H = K, H the centring matrix):

    CKA(X, Y) = <K, L>_F / (||K||_F ||L||_F) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F).

Debiased CKA (Nguyen, Raghu & Kornblith 2021) puts the unbiased HSIC estimator of Song et
al. (2012) in place of <K, L>_F: with K~ and L~ the Grams with their diagonals zeroed,

    HSIC_1(K, L) = [tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n(n-3)),

which equals <U(K), U(L)>_F / (n(n-3)) for the U-centred Gram U(K)_ij = K~_ij - r_i/(n-2)
- r_j/(n-2) + S/((n-1)(n-2)) off the diagonal (r_i the row sums of K~, S their sum) and 0
on it. U is a projection, so <U(K), U(L)> = <U(K), L> and only one side needs centring.
Debiased CKA = HSIC_1(K, L) / sqrt(HSIC_1(K, K) HSIC_1(L, L)); it can be slightly negative.

Rows: at most ``rows`` of the probe (a seeded subsample, the same at every checkpoint);
positions and trailing axes are flattened as ``dimensionality`` does (a sequence cache at
every position: each valid (sequence, position) pair is a row). Memory: each step keeps
the upper triangle of K per hook, n(n+1)/2 float32 values, 132 KB per hook at n = 256
(263 KB per checkpoint for the two default hooks). ``finalize`` forms the [epoch, epoch]
matrices in float64 blocks of checkpoints: E^2 n(n+1) multiply-adds per hook and measure.
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param, StepValues, resolve_hook
from tdw.analyzers.dimensionality import activation_matrix
from tdw.models import hooks
from tdw.models.architecture import ModelConfig
from tdw.params import in_range

DEFAULT_HOOKS = (hooks.hook(hooks.LAST, hooks.RESID_POST), hooks.hook(hooks.LAST, hooks.MLP_POST))
BLOCK_VALUES = 2**22  # float64 values per block of centred Grams in ``cka_matrices`` (32 MB)


def sample_rows(n: int, rows: int, seed: int) -> np.ndarray:
    """At most ``rows`` of ``n`` row indices, ascending: all of them when n <= rows, else a
    seeded sample without replacement (the same for every checkpoint of a run)."""
    if n <= rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=rows, replace=False))


def centred(x: np.ndarray) -> np.ndarray:
    """x [n, ...] -> float64 [n, features], each feature centred over the rows."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return x - x.mean(0)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA in feature form, x [n, d1], y [n, d2]; NaN where either is constant."""
    x, y = centred(x), centred(y)
    denom = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(np.linalg.norm(y.T @ x) ** 2 / denom) if denom > 0 else float("nan")


def u_centre(k: np.ndarray) -> np.ndarray:
    """The U-centred Gram [n, n] of a symmetric Gram k [n, n] (n >= 4), float64."""
    n = len(k)
    k = np.array(k, dtype=np.float64)
    np.fill_diagonal(k, 0.0)
    r = k.sum(1) / (n - 2)
    k -= r[:, None] + r[None, :] - r.sum() / (n - 1)
    np.fill_diagonal(k, 0.0)
    return k


def double_centre(k: np.ndarray) -> np.ndarray:
    """H k H for a Gram k [n, n], float64."""
    k = np.asarray(k, dtype=np.float64)
    return k - k.mean(0)[None, :] - k.mean(1)[:, None] + k.mean()


def debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Debiased linear CKA of x [n, d1] and y [n, d2] (n >= 4) from their U-centred Grams."""
    x, y = centred(x), centred(y)  # HSIC_1 ignores the means; centring keeps the Grams small
    kx, ky = u_centre(x @ x.T), u_centre(y @ y.T)
    denom = np.sum(kx * kx) * np.sum(ky * ky)
    return float(np.sum(kx * ky) / np.sqrt(denom)) if denom > 0 else float("nan")


def triangle(k: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """The upper triangle (diagonal included) of a symmetric [n, n] matrix, [n(n+1)/2]."""
    return k[np.triu_indices(len(k))].astype(dtype)


def untriangle(v: np.ndarray, n: int) -> np.ndarray:
    """The symmetric [n, n] float64 matrix whose upper triangle is v [n(n+1)/2]."""
    k = np.zeros((n, n))
    k[np.triu_indices(n)] = v
    return k + np.triu(k, 1).T


def _normalised(m: np.ndarray) -> np.ndarray:
    """<K_i, K_j> [E, E] -> <K_i, K_j> / sqrt(<K_i, K_i> <K_j, K_j>), NaN where a norm is not positive."""
    m = (m + m.T) / 2  # the two sides were centred differently: equal up to rounding
    d = np.diag(m).copy()
    d[~(d > 0)] = np.nan
    return m / np.sqrt(np.outer(d, d))


def cka_matrices(grams: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """grams [E, n(n+1)/2]: each checkpoint's Gram of centred activations as ``triangle``
    stores it -> (CKA [E, E], debiased CKA [E, E]). Each block of checkpoints is double- and
    U-centred in float64 and multiplied with every stored Gram, off-diagonal entries counted
    twice: <C(K_i), K_j>_F and <U(K_i), K_j>_F."""
    e, size = grams.shape
    i, j = np.triu_indices(n)
    weight = np.where(i == j, 1.0, 2.0)
    block = max(1, min(e, BLOCK_VALUES // size))
    plain, unbiased = np.zeros((e, e)), np.zeros((e, e))
    for lo in range(0, e, block):
        ks = [untriangle(grams[i], n) for i in range(lo, min(e, lo + block))]
        left_c = np.stack([triangle(double_centre(k), np.float64) for k in ks]) * weight
        left_u = np.stack([triangle(u_centre(k), np.float64) for k in ks]) * weight
        for lo_b in range(0, e, block):
            right = grams[lo_b : lo_b + block].astype(np.float64)
            plain[lo : lo + len(ks), lo_b : lo_b + len(right)] = left_c @ right.T
            unbiased[lo : lo + len(ks), lo_b : lo_b + len(right)] = left_u @ right.T
    return _normalised(plain), _normalised(unbiased)


def _rows_check(value: int) -> str | None:
    return None if 4 <= value <= 8192 else "expected 4 <= rows <= 8192 (debiased CKA needs n >= 4; memory grows as rows^2)"


class CKA(Analyzer):
    name = "cka"
    operations = None
    models = ("transformer", "mlp")
    reads = DEFAULT_HOOKS
    description = "linear CKA and debiased CKA of activations on fixed probe rows between every pair of checkpoints"
    params = (
        Param("hooks", list[str], DEFAULT_HOOKS, "activations compared (blocks.{last}. is the last block)"),
        Param("rows", int, 256, "probe rows compared: a seeded subsample where the probe has more (4..8192)", _rows_check),
        Param("seed", int, 0, "seed of the row subsample (>= 0)", in_range(0, 2**32 - 1)),
    )

    def reads_for(self, model: ModelConfig, params: dict) -> tuple[str, ...]:
        return tuple(params.get("hooks", DEFAULT_HOOKS))

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        names = [resolve_hook(h, final.model) for h in params["hooks"]]
        counts = {h: len(activation_matrix(final, h)) for h in names}
        if len(set(counts.values())) != 1:
            raise ValueError(
                f"analyzer 'cka': the hooks compared hold different numbers of rows {counts}; "
                "compare hooks kept at the same positions"
            )
        n = counts[names[0]]
        if n < 4:
            raise ValueError(f"analyzer 'cka': the probe holds {n} rows; debiased CKA needs at least 4")
        return {"hooks": names, "n_probe": n, "rows": sample_rows(n, params["rows"], params["seed"])}

    def step(self, view: CheckpointView, params: dict, state: dict) -> StepValues:
        grams = []
        for hook in state["hooks"]:
            x = activation_matrix(view, hook)
            if len(x) != state["n_probe"]:
                raise ValueError(f"epoch {view.epoch}: {hook} holds {len(x)} rows, the final checkpoint {state['n_probe']}")
            x = centred(x[state["rows"]])
            grams.append(triangle(x @ x.T))
        return {"gram": np.stack(grams)}  # [hook, n(n+1)/2]

    def finalize(self, epochs, steps, params, state):
        grams = np.stack([s["gram"] for s in steps])  # [epoch, hook, n(n+1)/2]
        n = len(state["rows"])
        pairs = [cka_matrices(grams[:, h], n) for h in range(grams.shape[1])]
        plain = np.stack([p[0] for p in pairs], -1)  # [epoch, epoch_b, hook]
        debiased = np.stack([p[1] for p in pairs], -1)
        return {
            "epoch": (epochs, "epoch"),
            "epoch_b": (epochs, "epoch_b"),
            "hook": (np.array(state["hooks"], dtype="S"), "hook"),
            "row": (state["rows"], "row"),
            "cka": (plain, "epoch epoch_b hook"),
            "cka_debiased": (debiased, "epoch epoch_b hook"),
            "cka_final": (plain[:, -1], "epoch hook"),
            "cka_debiased_final": (debiased[:, -1], "epoch hook"),
        }


ANALYZER = CKA()
