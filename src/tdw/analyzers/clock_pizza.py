"""Clock or pizza (Zhong et al. 2023): which of the two modular-addition algorithms a model runs.

Per checkpoint, for the paper's shape (one block, no LayerNorm, ReLU):

- **Gradient symmetricity**: over ``n_triples`` seeded random (a, b, c), the cosine between
  d logit_c / d x_0 and d logit_c / d x_1, the embedding vectors of a (position 0) and b
  (position 1), averaged. A model whose output depends on x_0 + x_1 only (uniform
  attention, the pizza) gives 1; the clock multiplies the two, giving lower values. The
  gradients are computed in closed form from the weights (``embedding_gradients``).
- **Distance irrelevance**: the correct-class logit M[s, d] arranged by s = (a + b) mod p and
  d = (a - b) mod p; DI = mean over d of std_s M[s, d] / std of all entries. 1 when the
  logit does not depend on the distance a - b (the clock), near 0 when it is a function of
  the distance (the pizza, whose correct logit goes as |cos(w_k (a - b) / 2)|). This is the
  paper's orientation: the spread is taken along a + b, within each distance.
- **Template fractions**: with the logits L [p^2, p] (`=` class dropped) centred per input
  over the classes (a softmax ignores that shift), the fraction of their variance in the
  span of the clock templates cos/sin(w_k (a + b - c)) and of the pizza templates
  |cos(w_k (a - b) / 2)| cos/sin(w_k (a + b - c)), per frequency k = 1..p//2. Summing over c
  makes templates of different frequencies or phases orthogonal, so the fractions add up
  over k; ``*_fraction_keys`` sums the key frequencies (``tdw.analyzers.keyfreq``, from the
  final checkpoint). The clock fraction lies inside the span behind progress_measures'
  ``logit_key_fraction`` (any class dependence on cos/sin(w_k (a + b))), a narrower test.

For subtraction (target t = a - b) the same measures hold with b replaced by -b: the roles of
a + b and a - b swap (M[t, a + b]; templates in w_k (a - b - c) and |cos(w_k (a + b) / 2)|).

The attention rate is read from the model: attention = rate * softmax + (1 - rate) / 3 at
the `=` query (``tdw.models.architecture.ModelConfig.attention_rate``).
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param, StepValues
from tdw.analyzers.keyfreq import KEY_FREQUENCY_PARAMS, key_frequencies
from tdw.models import hooks
from tdw.models.architecture import ModelConfig

LOGITS = hooks.LOGITS


def _forward_parts(w: dict[str, np.ndarray], cfg: ModelConfig, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """The last position's forward pass for inputs [a, b, =] in float64, keeping what the
    gradients need: x [n, 3, d_model], softmax sm [n, head, 3], blended weights w, head
    outputs per source o [n, 3, head, d_model], q [n, head, d_head] (scaled), pre [n, d_mlp]."""
    f = {k: v.astype(np.float64) for k, v in w.items()}
    tokens = np.stack([a, b, np.full_like(a, cfg.p)], 1)
    x = f["embed.W_E"][tokens] + f["pos_embed.W_pos"][:3]  # [n, pos, d_model]
    q = np.einsum("nd,hde->nhe", x[:, 2], f["blocks.0.attn.W_Q"]) / np.sqrt(cfg.d_head)
    k = np.einsum("njd,hde->njhe", x, f["blocks.0.attn.W_K"])
    scores = np.einsum("nhe,njhe->nhj", q, k)
    sm = np.exp(scores - scores.max(-1, keepdims=True))
    sm /= sm.sum(-1, keepdims=True)
    rate = cfg.attention_rate
    weight = rate * sm + (1 - rate) / 3
    v = np.einsum("njd,hde->njhe", x, f["blocks.0.attn.W_V"])
    o = np.einsum("njhe,hed->njhd", v, f["blocks.0.attn.W_O"])  # [n, pos, head, d_model]
    resid = x[:, 2] + np.einsum("nhj,njhd->nd", weight, o)
    pre = resid @ f["blocks.0.mlp.W_in"] + f["blocks.0.mlp.b_in"]
    return {"x": x, "q": q, "sm": sm, "weight": weight, "o": o, "resid": resid, "pre": pre, "f": f}


def embedding_gradients(
    weights: dict[str, np.ndarray], cfg: ModelConfig, a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """d logit_c / d x_j at the last position for j = 0 (a) and 1 (b): [n, 2, d_model], float64.

    With g = d logit_c / d resid_mid = W_U[:, c] + W_in (relu'(pre) * W_out W_U[:, c]) and
    o_hj = x_j W_V[h] W_O[h], the gradient through head h is
    w_hj W_V[h] W_O[h] g (the value path) + rate sm_hj (o_hj.g - sum_i sm_hi o_hi.g) W_K[h] q_h
    (the attention score path, zero at rate 0).
    """
    if not cfg.is_paper_shape:
        raise ValueError("clock_pizza needs the paper's shape (one block, no LayerNorm, ReLU)")
    parts = _forward_parts(weights, cfg, a, b)
    f, sm, o = parts["f"], parts["sm"], parts["o"]
    w_u = f["unembed.W_U"][:, c].T  # [n, d_model]
    g = w_u + ((parts["pre"] > 0) * (w_u @ f["blocks.0.mlp.W_out"].T)) @ f["blocks.0.mlp.W_in"].T  # [n, d_model]
    og = np.einsum("njhd,nd->nhj", o, g)  # [n, head, pos]
    d_score = cfg.attention_rate * sm * (og - (sm * og).sum(-1, keepdims=True))  # [n, head, pos]
    key_dir = np.einsum("hde,nhe->nhd", f["blocks.0.attn.W_K"], parts["q"])  # [n, head, d_model]
    vo_g = np.einsum("hde,hef,nf->nhd", f["blocks.0.attn.W_V"], f["blocks.0.attn.W_O"], g)  # [n, head, d_model]
    grads = [
        np.einsum("nh,nhd->nd", parts["weight"][..., j], vo_g) + np.einsum("nh,nhd->nd", d_score[..., j], key_dir) for j in (0, 1)
    ]
    return np.stack(grads, 1)


def gradient_symmetricity(weights: dict[str, np.ndarray], cfg: ModelConfig, triples: np.ndarray) -> float:
    """Mean cosine between d logit_c / d x_a and d logit_c / d x_b over triples [n, 3] of (a, b, c)."""
    g = embedding_gradients(weights, cfg, triples[:, 0], triples[:, 1], triples[:, 2])
    norms = np.linalg.norm(g, axis=-1)
    cos = (g[:, 0] * g[:, 1]).sum(-1) / np.maximum(norms[:, 0] * norms[:, 1], 1e-300)
    return float(cos.mean())


def _target_and_distance(p: int, operation: str) -> tuple[np.ndarray, np.ndarray]:
    """Over the grid in row-major (a, b) order: the target residue and the other combination
    (a + b, a - b for addition; a - b, a + b for subtraction), as integers (not reduced)."""
    a, b = np.divmod(np.arange(p * p), p)
    return (a + b, a - b) if operation == "add" else (a - b, a + b)


def distance_irrelevance(correct: np.ndarray, p: int, operation: str = "add") -> float:
    """Correct-class logits [p*p] (row-major (a, b)) -> mean over d = a - b of the std along
    s = a + b, over the std of all entries (0 where all entries are equal); for ``sub`` the two
    swap."""
    s, d = _target_and_distance(p, operation)
    grid = np.empty((p, p))
    grid[s % p, d % p] = correct
    total = grid.std()
    return float(grid.std(axis=0).mean() / total) if total > 0 else 0.0


def template_fractions(logits: np.ndarray, p: int, operation: str = "add") -> tuple[np.ndarray, np.ndarray]:
    """Logits [p*p, p] on the full grid -> fractions of their per-input-centred variance in
    the clock and the pizza templates of each frequency k = 1..p//2: ([p//2], [p//2])."""
    logits = logits.astype(np.float64)
    centred = logits - logits.mean(1, keepdims=True)
    total = max(float((centred**2).sum()), 1e-300)
    target, other = _target_and_distance(p, operation)
    k = np.arange(1, p // 2 + 1)
    ws = 2 * np.pi * np.outer(target % p, k) / p  # [pair, k]
    wc = 2 * np.pi * np.outer(np.arange(p), k) / p  # [class, k]
    lc, ls = centred @ np.cos(wc), centred @ np.sin(wc)  # [pair, k]
    # <L, g(d) cos(w (s - c))> = sum_pairs g (cos ws Lc + sin ws Ls); the sin phase likewise
    along_cos = np.cos(ws) * lc + np.sin(ws) * ls
    along_sin = np.sin(ws) * lc - np.cos(ws) * ls
    pizza = np.abs(np.cos(np.pi * np.outer(other, k) / p))  # |cos(w_k (a - b) / 2)|: [pair, k]
    out = []
    for g in (np.ones_like(pizza), pizza):
        norm_sq = p / 2 * (g**2).sum(0)  # each template's squared norm over (pair, c)
        out.append((((g * along_cos).sum(0)) ** 2 + ((g * along_sin).sum(0)) ** 2) / norm_sq / total)
    return out[0], out[1]


def _n_triples(value: int) -> str | None:
    return None if 1 <= value <= 10**7 else "expected 1 <= value <= 10000000"


def _seed(value: int) -> str | None:
    # numpy's default_rng refuses negative seeds: say so while the config resolves
    return None if value >= 0 else "expected a seed >= 0"


class ClockPizza(Analyzer):
    name = "clock_pizza"
    reads = (LOGITS,)
    needs_full_grid = True
    description = "gradient symmetricity, distance irrelevance, clock and pizza template fractions of the logits"
    params = (
        Param("n_triples", int, 100, "random (a, b, c) triples the gradient symmetricity averages over (1..10^7)", _n_triples),
        Param("seed", int, 0, "seed of the triples (the same triples at every checkpoint; >= 0)", _seed),
        *KEY_FREQUENCY_PARAMS,
    )
    dims = {
        "gradient_symmetricity": "",
        "distance_irrelevance": "",
        "clock_fraction": "frequency",
        "pizza_fraction": "frequency",
        "clock_fraction_keys": "",
        "pizza_fraction_keys": "",
    }

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        rng = np.random.default_rng(params["seed"])
        return {
            "triples": rng.integers(0, final.p, size=(params["n_triples"], 3)),
            "keys": key_frequencies(final.weights, final.p, params["key_frequencies"], params["key_fraction"]),
        }

    def step(self, view: CheckpointView, params: dict, state: dict) -> StepValues:
        p = view.p
        logits = view.activation(LOGITS)[:, :p].astype(np.float64)  # [p*p, p]
        correct = logits[np.arange(p * p), view.labels()]
        clock, pizza = template_fractions(logits, p, view.operation)
        keys = state["keys"] - 1
        return {
            "gradient_symmetricity": np.float64(gradient_symmetricity(view.weights, view.model, state["triples"])),
            "distance_irrelevance": np.float64(distance_irrelevance(correct, p, view.operation)),
            "clock_fraction": clock,
            "pizza_fraction": pizza,
            "clock_fraction_keys": np.float64(clock[keys].sum()),
            "pizza_fraction_keys": np.float64(pizza[keys].sum()),
        }

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        out["frequency"] = (np.arange(1, len(steps[0]["clock_fraction"]) + 1), "frequency")
        out["key_frequency"] = (state["keys"], "key_frequency")
        out["triples"] = (state["triples"], "triple abc")
        return out


ANALYZER = ClockPizza()
