"""Susceptibilities of each model component to the loss on each probe row (Baker et al. 2025,
"Structural inference: interpreting small language models with susceptibilities"), as
devinterp 2.0.1 defines them (``devinterp.slt.susceptibilities.compute_susceptibilities``).

SGLD localised at w* runs once on the full model and once restricted to each component C
(``tdw.analyzers.llc_restricted``: the same sampler, loss and settings; all of them one
stacked run). At every draw the chains' loss is evaluated on the training rows (the
sampling task, mean L_t) and on every probe row x (ℓ_t(x)), each at most ``max_rows`` rows
(a seeded subset; devinterp too observes a fixed subset). With φ_t = L_t - L_n(w*) under
C's restricted posterior,

    χ_C(x) = E_C[φ (L - ℓ(x))] - E_C[φ] · E_full[L - ℓ(x)],

the expectations means over chains and draws (E_full: the full model's chains). χ is in
loss units squared, without an nβ factor, and its sign is devinterp's: χ_C(x) > 0 where
moving C so that the training loss rises raises the training loss more than the loss on x
(φ covaries with L - ℓ(x)). ``susceptibility`` [component] is χ of the mean probe loss (the
mean of χ over the probe rows), ``susceptibility_row`` [component, probe_row] each row's, the
probe rows named by their pair index; ``susceptibility_chain`` [component, chain] is χ of
the mean probe loss from the component's chain c and the full model's chain c alone (the
full run's E_full is itself an estimate): their spread is the estimate's uncertainty.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param
from tdw.analyzers.llc_restricted import PARAMS as RESTRICTED_PARAMS
from tdw.analyzers.llc_restricted import component_masks
from tdw.params import in_range
from tdw.tasks.modular import OPERATIONS

PARAMS = (
    *RESTRICTED_PARAMS,
    Param("probe", Literal["test", "train", "all"], "test", "probe rows whose loss the components' susceptibility is to"),
    Param(
        "max_rows",
        int,
        1024,
        "rows observed at each draw, of the training split (for L) and of the probe each: a seeded subset; 0: all",
        in_range(0, 10**9),
    ),
)


def susceptibility(
    full_train: np.ndarray, full_probe: np.ndarray, init_loss: float, train: np.ndarray, probe: np.ndarray
) -> np.ndarray:
    """χ(x) [row] from the draws of the full run (``full_train`` [chain, draw]: mean training
    loss; ``full_probe`` [chain, draw, row]: each probe row's loss) and of one restricted run
    (``train``, ``probe``, the same shapes), L_n(w*) = ``init_loss``:
    E[φ L] - E[φ ℓ(x)] - E[φ] (E_full[L] - E_full[ℓ(x)]), φ = L - L_n(w*)."""
    full_delta = full_train.mean() - full_probe.mean((0, 1))
    phi = train - init_loss
    return (phi * train).mean() - (phi[..., None] * probe).mean((0, 1)) - phi.mean() * full_delta


def observed_rows(view: CheckpointView, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """The training rows whose mean loss is L and the probe rows (pair indices), each a
    subset of ``max_rows`` (sorted, drawn under ``seed``) where it has more."""
    train, test = view.split()
    probe = {"test": test, "train": train, "all": np.union1d(train, test)}[params["probe"]]
    rng = np.random.default_rng(params["seed"])

    def cap(rows: np.ndarray) -> np.ndarray:
        limit = params["max_rows"]
        return np.sort(rng.choice(rows, limit, replace=False)) if 0 < limit < len(rows) else np.asarray(rows)

    return cap(train), cap(probe)


def row_losses(view: CheckpointView, rows: np.ndarray, device: str, chunk: int = 4096):
    """(stacked params {name: [chain, ...]}) -> cross-entropy [chain, row] (float64) of the
    training objective on the pair indices ``rows``, in chunks of rows; the paper's shape on
    ``tdw.analyzers.llc.chain_logits``, other models on ``stacked_logits``."""
    import torch

    from tdw.analyzers.llc import chain_logits
    from tdw.models.fastpath import stacked_logits
    from tdw.tasks import modular

    cfg = view.model
    tokens = torch.as_tensor(modular.tokens(view.p, rows), device=device)
    labels = torch.as_tensor(modular.labels(view.p, rows, view.operation), device=device)

    def losses(params: dict) -> torch.Tensor:
        chains = next(iter(params.values())).shape[0]
        parts = []
        for start in range(0, len(rows), chunk):
            x, y = tokens[start : start + chunk], labels[start : start + chunk]
            if cfg.is_paper_shape:
                logits = chain_logits(params, cfg, x[:, 0], x[:, 1])
            else:
                logits = stacked_logits(params, cfg, x.expand(chains, -1, -1), vectorize=True)
            logp = logits.double().log_softmax(-1)
            parts.append(-logp.gather(-1, y.expand(chains, -1)[..., None])[..., 0])
        return torch.cat(parts, 1)

    return losses


def sample(view: CheckpointView, params: dict, noise_ahead: bool | None = None) -> dict:
    """One stacked SGLD run: the full model's chains, then each component's (component-major),
    with the training and probe losses at every draw. Returns names, the ``LLCEstimate``,
    train [run, chain, draw], probe [run, chain, draw, row] (run 0 the full model), the probe
    rows and the settings."""
    import torch

    from tdw.analyzers import llc
    from tdw.analyzers.sgld import estimate_llc, flat_mask

    device = "cuda" if torch.cuda.is_available() else "cpu"
    loss, loss_grad, center, n = llc.training_loss(view, device)
    shapes = {k: tuple(v.shape) for k, v in center.items()}
    masks = component_masks(shapes, view.model.n_heads, list(params["components"]))
    names = list(masks)
    per = params["chains"]
    runs = [dict.fromkeys(center)] + [masks[c] for c in names]
    s = dataclasses.replace(llc.settings(params, n), chains=per * len(runs))
    train_rows, probe = observed_rows(view, params)
    union, inverse = np.unique(np.concatenate([train_rows, probe]), return_inverse=True)
    at_train, at_probe = inverse[: len(train_rows)], inverse[len(train_rows) :]
    evaluate = row_losses(view, union, device)
    train = np.zeros((s.chains, s.draws))
    probe_loss = np.zeros((s.chains, s.draws, len(probe)), dtype=np.float32)

    def on_draw(stacked: dict, draw: int) -> None:
        per_row = evaluate(stacked).cpu().numpy()  # [chain, union row]
        train[:, draw] = per_row[:, at_train].mean(1)
        probe_loss[:, draw] = per_row[:, at_probe]

    est = estimate_llc(
        loss,
        center,
        n,
        s,
        blowup=llc.divergence_margin(params, view.model.d_vocab_out),
        loss_grad=loss_grad,
        noise_ahead=noise_ahead,
        mask=flat_mask(center, [m for m in runs for _ in range(per)]),
        on_draw=on_draw,
    )
    k = len(runs)
    return {
        "names": names,
        "estimate": est,
        "train": train.reshape(k, per, s.draws),
        "probe": probe_loss.reshape(k, per, s.draws, len(probe)),
        "probe_rows": probe,
        "settings": s,
    }


class Susceptibilities(Analyzer):
    name = "susceptibilities"
    operations = tuple(OPERATIONS)
    description = "per-component susceptibility of the loss on probe rows (devinterp's definition) by restricted SGLD"
    params = PARAMS
    dims = {
        "susceptibility": "component",
        "susceptibility_chain": "component chain",
        "susceptibility_row": "component probe_row",
        "n_diverged": "component",
        "full_n_diverged": "",
        "init_loss": "",
        "nbeta_value": "",
    }

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        shapes = {k: tuple(np.shape(v)) for k, v in final.weights.items()}
        names = list(component_masks(shapes, final.model.n_heads, list(params["components"])))
        return {"names": names, "probe_rows": observed_rows(final, params)[1]}

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        got = sample(view, params)
        est, train, probe = got["estimate"], got["train"], got["probe"]
        init = est.init_loss
        rows = np.stack([susceptibility(train[0], probe[0], init, train[i], probe[i]) for i in range(1, len(train))])
        chains = np.array(
            [
                [
                    susceptibility(
                        train[0, c : c + 1], probe[0, c : c + 1], init, train[i, c : c + 1], probe[i, c : c + 1]
                    ).mean()
                    for c in range(train.shape[1])
                ]
                for i in range(1, len(train))
            ]
        )
        diverged = est.diverged.reshape(len(train), -1)
        return {
            "susceptibility": rows.mean(1),
            "susceptibility_chain": chains,
            "susceptibility_row": rows.astype(np.float32),
            "n_diverged": diverged[1:].sum(1).astype(np.int64),
            "full_n_diverged": np.int64(diverged[0].sum()),
            "init_loss": np.float64(init),
            "nbeta_value": np.float64(got["settings"].nbeta),
        }

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        out["component"] = (np.array(state["names"], dtype="S"), "component")
        out["chain"] = (np.arange(params["chains"]), "chain")
        out["probe_row"] = (np.asarray(state["probe_rows"], dtype=np.int64), "probe_row")
        return out


ANALYZER = Susceptibilities()
