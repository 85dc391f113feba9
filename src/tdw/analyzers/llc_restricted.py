"""The weight-restricted local learning coefficient (Wang, Hoogland et al. 2024) of each
checkpoint, per model component: SGLD as for the full LLC (``tdw.analyzers.llc``, the same
loss, settings and sampler) but each chain moves only one component's weights, the others
held at w*; the drift (gradient and localisation) and the noise are taken on the component's
coordinates only, and the estimate is again nβ (mean over draws of L_B(w_t) - L_n(w*)).

Components (``components``): a head ``l{i}h{j}`` (its slices of W_Q, W_K, W_V and b_Q,
b_K, b_V where the model has them, and of W_O), an attention layer ``l{i}attn`` (every
``blocks.i.attn`` parameter, b_O too), an MLP layer ``l{i}mlp`` (W_in, b_in, W_out, b_out),
``embed`` (W_E and W_pos) and ``unembed`` (W_U, b_U); ``heads``, ``attns`` and ``mlps`` name
every one of their kind. All components' chains run as one stacked model (chains x
components rows), one loss and one gradient per step for all of them.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param
from tdw.analyzers.llc import PARAMS as LLC_PARAMS
from tdw.tasks.modular import OPERATIONS

_NAME = re.compile(r"^(heads|attns|mlps|embed|unembed|l\d+h\d+|l\d+attn|l\d+mlp)$")
_HEAD_PARAMS = ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V")  # [head, ...] each


def _components_range(values: list[str]) -> str | None:
    if not values:
        return "expected a non-empty list"
    bad = [v for v in values if not _NAME.match(v)]
    if bad:
        return f"{bad}: expected 'heads', 'attns', 'mlps', 'embed', 'unembed', 'l<i>h<j>', 'l<i>attn' or 'l<i>mlp'"
    return None


def components_param(default: tuple[str, ...] = ("heads", "mlps")) -> Param:
    return Param(
        "components",
        list[str],
        default,
        "components, each sampled alone: 'heads', 'attns', 'mlps', 'embed', 'unembed', 'l<i>h<j>', 'l<i>attn', 'l<i>mlp'",
        _components_range,
    )


def component_masks(shapes: dict[str, tuple[int, ...]], n_heads: int, which: list[str]) -> dict[str, dict]:
    """{component: {parameter: bool array of its shape, or None for all of it}} for the
    components ``which`` names (kinds expanded in layer and head order), over a model's
    parameter ``shapes``. Raises ValueError for a component the model does not have."""
    layers = sorted({int(m[1]) for k in shapes if (m := re.match(r"blocks\.(\d+)\.", k))})

    def attn(i: int) -> list[str]:
        return [k for k in shapes if k.startswith(f"blocks.{i}.attn.")]

    def mlp(i: int) -> list[str]:
        return [k for k in shapes if k.startswith(f"blocks.{i}.mlp.")]

    names: list[str] = []
    for w in which:
        if w == "heads":
            names += [f"l{i}h{h}" for i in layers if attn(i) for h in range(n_heads)]
        elif w == "attns":
            names += [f"l{i}attn" for i in layers if attn(i)]
        elif w == "mlps":
            names += [f"l{i}mlp" for i in layers if mlp(i)]
        else:
            names.append(w)
    out: dict[str, dict] = {}
    for name in dict.fromkeys(names):
        if name == "embed":
            chosen: dict = {k: None for k in ("embed.W_E", "pos_embed.W_pos") if k in shapes}
        elif name == "unembed":
            chosen = {k: None for k in ("unembed.W_U", "unembed.b_U") if k in shapes}
        elif m := re.match(r"l(\d+)h(\d+)$", name):
            layer, head = int(m[1]), int(m[2])
            chosen = {}
            if head < n_heads:
                for p in _HEAD_PARAMS:
                    key = f"blocks.{layer}.attn.{p}"
                    if key in shapes:
                        mask = np.zeros(shapes[key], dtype=bool)
                        mask[head] = True
                        chosen[key] = mask
        elif m := re.match(r"l(\d+)attn$", name):
            chosen = dict.fromkeys(attn(int(m[1])))
        else:
            chosen = dict.fromkeys(mlp(int(re.match(r"l(\d+)mlp$", name)[1])))  # type: ignore[index]
        if not chosen:
            raise ValueError(f"component {name!r}: the model has no such weights (layers {layers}, {n_heads} heads)")
        out[name] = chosen
    if not out:
        raise ValueError(f"components {which}: none in this model")
    return out


def component_sizes(shapes: dict[str, tuple[int, ...]], masks: dict[str, dict]) -> dict[str, int]:
    """The number of weights each component moves."""
    return {
        c: sum(math.prod(shapes[k]) if m is None else int(np.count_nonzero(m)) for k, m in chosen.items())
        for c, chosen in masks.items()
    }


# The full LLC's sampler parameters with lighter defaults (one run holds chains x components
# rows), and the components.
_LIGHTER = {"chains": 2, "draws": 20, "burn_in": 10}
PARAMS = (
    *(dataclasses.replace(p, default=_LIGHTER.get(p.name, p.default)) for p in LLC_PARAMS),
    components_param(),
)


def estimate(view: CheckpointView, params: dict, noise_ahead: bool | None = None):
    """The restricted estimates of one checkpoint: (component names, ``LLCEstimate`` over
    [component * chain] rows, component-major, the settings of the stacked run, the
    component sizes)."""
    import torch

    from tdw.analyzers import llc
    from tdw.analyzers.sgld import estimate_llc, flat_mask

    device = "cuda" if torch.cuda.is_available() else "cpu"
    loss, loss_grad, center, n = llc.training_loss(view, device)
    shapes = {k: tuple(v.shape) for k, v in center.items()}
    masks = component_masks(shapes, view.model.n_heads, list(params["components"]))
    names = list(masks)
    per = params["chains"]
    s = dataclasses.replace(llc.settings(params, n), chains=per * len(names))
    mask = flat_mask(center, [masks[c] for c in names for _ in range(per)])
    blowup = llc.divergence_margin(params, view.model.d_vocab_out)
    est = estimate_llc(loss, center, n, s, blowup=blowup, loss_grad=loss_grad, noise_ahead=noise_ahead, mask=mask)
    return names, est, s, component_sizes(shapes, masks)


class RestrictedLLC(Analyzer):
    name = "llc_restricted"
    operations = tuple(OPERATIONS)
    description = "weight-restricted LLC per component (each head, each MLP layer, ...) by SGLD on that component's weights only"
    params = PARAMS
    dims = {
        "llc_mean": "component",
        "llc_std": "component",
        "llc": "component chain",
        "n_diverged": "component",
        "diverged": "component chain",
        "mala_acceptance": "component chain",
        "loss_trace": "component chain draw",
        "distance_trace": "component chain draw",
        "init_loss": "",
        "nbeta_value": "",
    }

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        shapes = {k: tuple(np.shape(v)) for k, v in final.weights.items()}
        masks = component_masks(shapes, final.model.n_heads, list(params["components"]))
        return {"names": list(masks), "sizes": component_sizes(shapes, masks)}

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        names, est, s, _ = estimate(view, params)
        k, c = len(names), params["chains"]
        llc_ = est.llc.reshape(k, c)
        diverged = est.diverged.reshape(k, c)
        kept = np.where(diverged, np.nan, llc_)
        with np.errstate(invalid="ignore"):
            counts = (~diverged).sum(1)
            mean = np.where(counts > 0, np.nansum(kept, 1) / np.maximum(counts, 1), np.nan)
            std = np.array([np.std(row[~d], ddof=1) if (~d).sum() > 1 else np.nan for row, d in zip(llc_, diverged, strict=True)])
        return {
            "llc_mean": mean,
            "llc_std": std,
            "llc": llc_,
            "n_diverged": diverged.sum(1).astype(np.int64),
            "diverged": diverged,
            "mala_acceptance": est.mala_acceptance.reshape(k, c),
            "loss_trace": est.loss_trace.reshape(k, c, -1),
            "distance_trace": est.distance_trace.reshape(k, c, -1),
            "init_loss": np.float64(est.init_loss),
            "nbeta_value": np.float64(s.nbeta),
        }

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        draws = steps[0]["loss_trace"].shape[-1]
        out["component"] = (np.array(state["names"], dtype="S"), "component")
        out["component_size"] = (np.array([state["sizes"][c] for c in state["names"]], dtype=np.int64), "component")
        out["chain"] = (np.arange(params["chains"]), "chain")
        out["draw"] = (params["burn_in"] + params["steps_between_draws"] * np.arange(draws), "draw")
        return out


ANALYZER = RestrictedLLC()
