"""Measures taken during full-batch training, between checkpoints: every ``every`` epochs (the
config's ``train.tracking``), written to history.h5 beside the losses on their own
``track_epoch`` axis.

At a tracked epoch e (one that takes an optimizer step: e % every == 0 and e before the last
epoch), for the weights w_e the losses of epoch e were computed with:

- ``grad_norm`` [track_epoch]: the L2 norm of the gradient the optimizer steps on (after the
  Grokfast filter where one is on), over all parameters;
- ``weight_norm`` [track_epoch, param]: the Frobenius norm of each parameter tensor of w_e;
- ``update_ratio`` [track_epoch, param]: ||w_{e+1} - w_e|| / ||w_e|| per parameter (0 where
  ||w_e|| = 0);
- ``dimensionality``: the stable rank, participation ratio, effective rank, 90 % energy rank and
  nuclear ratio (``tdw.analyzers.dimensionality``) of each chosen hook's centred activations at
  the last position on a fixed probe batch (``probe_rows`` pairs drawn once with ``probe_seed``
  from all p x p pairs), as ``dim_<metric>`` [track_epoch, track_hook].

Nothing here writes to the parameters or draws from a generator the training uses, so the
weights of a run with tracking are bit-identical to those of the same run without it. The series
so far travel in the resume snapshot, so a resumed run's series equal an uninterrupted one's.
"""

from __future__ import annotations

import numpy as np
import torch

from tdw.analyzers.dimensionality import METRICS, dimension_metrics
from tdw.models import hooks
from tdw.models.architecture import ModelConfig
from tdw.models.build import build_model
from tdw.tasks import modular as data

MEASURES = ("grad_norm", "weight_norm", "update_ratio", "dimensionality")
DEFAULTS = {"every": 5, "measures": list(MEASURES), "hooks": [], "probe_rows": 256, "probe_seed": 0}
# hook leaves whose activation at one position is a vector (the dimensionality of a [rows, features] matrix)
VECTOR_LEAVES = ("hook_embed", "hook_pos_embed", *hooks.BLOCK_LEAVES, "hook_pre", "hook_post", "hook_logits")


def resolved(tracking: dict) -> dict:
    """A ``train.tracking`` mapping with every key, defaults filled in."""
    return DEFAULTS | tracking


def hook_problem(tracking: dict, cfg: ModelConfig) -> str | None:
    """Why a tracking setting cannot run on the model ``cfg`` (None: it can): a hook the model does
    not have or one that is not a vector per position, or hooks without the dimensionality measure."""
    t = resolved(tracking)
    names = hooks.hook_names(cfg)
    for i, name in enumerate(t["hooks"]):
        full = hooks.resolve(name, cfg)
        if full not in names:
            return f"key 'train.tracking.hooks[{i}]': {name!r} is not a hook of the model; it has {list(names)}"
        if full.rsplit(".", 1)[-1] not in VECTOR_LEAVES:
            return (
                f"key 'train.tracking.hooks[{i}]': {name!r} is not one vector per position (the dimensionality "
                f"needs a rows x features matrix); use one of the residual, MLP or embedding hooks"
            )
    if "dimensionality" in t["measures"] and not t["hooks"]:
        return "key 'train.tracking.hooks': the dimensionality measure needs at least one hook"
    return None


def _singular_values(x: torch.Tensor) -> np.ndarray:
    """Singular values (descending) of x [rows, features] centred, as
    ``tdw.analyzers.dimensionality.singular_values`` computes them, in torch: numpy's BLAS
    threads would compete with the training's for the cores."""
    x = x - x.mean(0)
    gram = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
    return torch.linalg.eigvalsh(gram).flip(0).clamp(min=0).sqrt().cpu().numpy()


class Tracker:
    """The tracked series of S stacked models (the trainer's ``TrainState.params``, [S, ...])."""

    def __init__(self, tracking: dict, cfg: ModelConfig, p: int, names: list[str], models: int):
        t = resolved(tracking)
        self.every, self.measures = int(t["every"]), tuple(t["measures"])
        self.hooks = tuple(hooks.resolve(h, cfg) for h in t["hooks"]) if "dimensionality" in self.measures else ()
        self.cfg, self.names, self.models = cfg, names, models
        rng = np.random.default_rng(int(t["probe_seed"]))
        rows = rng.choice(p * p, size=min(int(t["probe_rows"]), p * p), replace=False)
        self.probe = torch.from_numpy(data.tokens(p, np.sort(rows)))
        self.epochs: list[int] = []
        self.series: dict[str, list[np.ndarray]] = {k: [] for k in self.keys}
        self._before: dict[str, torch.Tensor] | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        out = [m for m in ("grad_norm", "weight_norm", "update_ratio") if m in self.measures]
        return (*out, *(f"dim_{m}" for m in METRICS)) if self.hooks else tuple(out)

    def due(self, epoch: int) -> bool:
        return epoch % self.every == 0

    def before_step(self, epoch: int, params: dict[str, torch.Tensor]) -> None:
        """Weight norms and the probe's dimensionality at w_e; keeps w_e for the update ratio."""
        self.epochs.append(epoch)
        with torch.no_grad():
            if "weight_norm" in self.measures:
                self.series["weight_norm"].append(self._norms(params))
            if "update_ratio" in self.measures:
                self._before = {k: v.detach().clone() for k, v in params.items()}
            if self.hooks:
                dims = self._dimensionality(params)
                for m in METRICS:
                    self.series[f"dim_{m}"].append(dims[m])

    def after_step(self, grads: dict[str, torch.Tensor], params: dict[str, torch.Tensor]) -> None:
        """The gradient's norm and each parameter's relative update of the step just taken."""
        with torch.no_grad():
            if "grad_norm" in self.measures:
                self.series["grad_norm"].append(np.sqrt((self._norms(grads) ** 2).sum(axis=1)))
            if self._before is not None:
                before = self._norms(self._before)
                delta = self._norms({k: params[k].detach() - self._before[k] for k in self.names})
                self.series["update_ratio"].append(np.divide(delta, before, out=np.zeros_like(delta), where=before > 0))
                self._before = None

    def _norms(self, tensors: dict[str, torch.Tensor]) -> np.ndarray:
        """[S, param] Frobenius norms in float64."""
        return np.stack(
            [tensors[k].detach().reshape(self.models, -1).double().norm(dim=1).cpu().numpy() for k in self.names], axis=1
        )

    def _dimensionality(self, params: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """{metric: [S, hook]} on the probe batch."""
        out = {m: np.zeros((self.models, len(self.hooks))) for m in METRICS}
        tokens = self.probe.to(next(iter(params.values())).device)
        for i in range(self.models):
            model = build_model(self.cfg, {k: v[i].detach() for k, v in params.items()})
            _, cache = model.run_with_cache(tokens, names_filter=list(self.hooks))
            for j, name in enumerate(self.hooks):
                act = cache[name]
                act = act[:, -1] if act.ndim == 3 else act
                found = dimension_metrics(_singular_values(act.double()))
                for m in METRICS:
                    out[m][i, j] = found[m]
        return out

    def datasets(self, i: int, until: int) -> dict[str, tuple[np.ndarray, str]]:
        """Model i's series up to epoch ``until`` (its last trained epoch: a model that stopped
        early stops its series there) as history.h5 datasets ({name: (array, dims)})."""
        n = int(np.searchsorted(np.asarray(self.epochs, np.int64), until, side="right"))
        if n == 0:
            return {}
        out: dict[str, tuple[np.ndarray, str]] = {"track_epoch": (np.asarray(self.epochs[:n], np.int64), "track_epoch")}
        out["track_param"] = (np.array(self.names, dtype="S"), "track_param")
        if self.hooks:
            out["track_hook"] = (np.array(self.hooks, dtype="S"), "track_hook")
        for key in self.keys:
            values = np.stack([v[i] for v in self.series[key][:n]])
            dims = "track_epoch" + (" track_param" if key in ("weight_norm", "update_ratio") else "")
            dims += " track_hook" if key.startswith("dim_") else ""
            out[key] = (values.astype(np.float64), dims)
        return out

    def state(self, i: int) -> dict[str, np.ndarray]:
        """Model i's series for the resume snapshot (``track/<name>``)."""
        out: dict[str, np.ndarray] = {"track/epoch": np.asarray(self.epochs, np.int64)}
        for key in self.keys:
            out[f"track/{key}"] = np.stack([v[i] for v in self.series[key]]) if self.series[key] else np.zeros((0,))
        return out

    def load(self, snaps: list[dict[str, np.ndarray]]) -> None:
        """Restore the series of every model from their snapshots (``state``'s tensors)."""
        self.epochs = [int(e) for e in snaps[0].get("track/epoch", np.zeros(0, np.int64))]
        for key in self.keys:
            stacked = [s.get(f"track/{key}", np.zeros((0,))) for s in snaps]
            self.series[key] = [np.stack([s[t] for s in stacked]) for t in range(len(self.epochs))] if self.epochs else []
