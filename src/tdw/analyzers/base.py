"""The analyzer interface: declared inputs, a pure per-checkpoint step, an explicit
cross-checkpoint step. Analyzers see numpy only (no torch import in analysis jobs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from tdw.io.checkpoint import load_weights
from tdw.io.h5 import open_h5
from tdw.models import hooks
from tdw.models.architecture import ModelConfig
from tdw.models.tail import finish_forward, source_hook, tail_hooks
from tdw.params import Param

__all__ = ["Analyzer", "CheckpointView", "Param", "resolve_hook"]


def resolve_hook(hook: str, model: ModelConfig) -> str:
    """Hook names may say ``blocks.{last}.`` for the last block, so one analyzer serves
    families of any depth."""
    return hooks.resolve(hook, model)


@dataclass
class CheckpointView:
    """What one checkpoint offers an analyzer: weights (lazy) and cached activations (lazy)."""

    epoch: int
    model: ModelConfig
    checkpoint: Path
    cache: Path | None = None
    config: dict = field(default_factory=dict, repr=False)  # the run config stored in the checkpoint
    history: Path | None = None  # the variant's history.h5, for analyzers that declare needs_history
    _arrays: dict = field(default_factory=dict, repr=False)

    @property
    def p(self) -> int:
        return self.model.p

    @property
    def operation(self) -> str:
        return self.config.get("task", {}).get("operation", "add")

    @property
    def pair_index(self) -> np.ndarray:
        """Flat pair index a*p + b of each cached row, shape [batch]."""
        if "pair_index" not in self._arrays:
            if self.cache is None:
                raise ValueError(f"no cache given for epoch {self.epoch}: rows have no pair index")
            with open_h5(self.cache) as fh:
                self._arrays["pair_index"] = fh["pair_index"][()].astype(np.int64)
        return self._arrays["pair_index"]

    @property
    def is_full_grid(self) -> bool:
        """Whether the cached rows are every (a, b) pair in row-major order."""
        index = self.pair_index
        return len(index) == self.p**2 and bool(np.all(index == np.arange(self.p**2)))

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """Train and test flat pair indices of this run (seeded split, ``tdw.tasks.modular.split``),
        under its data seed (a run config without one: the seed)."""
        from tdw.tasks.modular import split

        seed = self.config.get("data_seed", self.config["seed"])
        return split(self.p, float(self.config["train"]["train_frac"]), int(seed))

    def labels(self) -> np.ndarray:
        """Correct answer of each cached row, shape [batch]."""
        from tdw.tasks.modular import labels

        return labels(self.p, self.pair_index, self.operation)

    def drop_activations(self) -> None:
        """Free the cached tensors (the view stays usable; they reload on demand)."""
        self._arrays.clear()

    @cached_property
    def weights(self) -> dict[str, np.ndarray]:
        return load_weights(self.checkpoint)

    def activation(self, hook: str) -> np.ndarray:
        """A cached tensor by hook name, rows in probe order (see ``pair_index``).

        Hooks after the last block's ``hook_resid_mid`` (its MLP hooks, ``logits``) are
        finished from the cached residual stream and the weights (``tdw.models.tail``).
        """
        hook = resolve_hook(hook, self.model)
        if hook in self._arrays:
            return self._arrays[hook]
        if self.cache is None:
            raise ValueError(f"no cache given for epoch {self.epoch}; the analyzer must declare {hook!r} in reads")
        with open_h5(self.cache) as fh:
            self._arrays.setdefault("pair_index", fh["pair_index"][()].astype(np.int64))
            if hook in fh:
                self._arrays[hook] = fh[hook][()]
                return self._arrays[hook]
            source = source_hook(self.model)
            if hook not in tail_hooks(self.model) or (source not in fh and source not in self._arrays):
                raise KeyError(f"{self.cache}: no dataset {hook!r}; cached: {sorted(fh)}")
            if source not in self._arrays:
                self._arrays[source] = fh[source][()]
        mlp_only = hook.endswith((hooks.MLP_PRE, hooks.MLP_POST))
        self._arrays |= finish_forward(self._arrays[source], self.weights, self.model, mlp_only=mlp_only)
        return self._arrays[hook]


class Analyzer:
    """Subclass and set the class attributes; override ``step`` and optionally ``prepare``
    and ``finalize``.

    ``params`` declares the analyzer's parameters (``tdw.params.Param``: name, type,
    default, meaning): the methods receive them validated, every one present. What the run
    derives from data (key frequencies, selected neurons, ...) is ``prepare``'s ``state``,
    passed to ``step`` and ``finalize`` beside the parameters, never mixed into them.

    ``step`` returns ``{name: array}`` for one checkpoint; ``dims`` names those arrays'
    axes. The default ``finalize`` stacks them along a leading ``epoch`` axis.
    """

    name: str = ""
    reads: tuple[str, ...] = ()  # cached hook names; weights are always available
    needs_full_grid: bool = False
    needs_history: bool = False  # the workflow then passes the variant's history.h5
    operations: tuple[str, ...] = ("add", "sub")
    models: tuple[str, ...] = ("transformer",)  # the model kinds (ModelConfig.model) whose maths it assumes
    params: tuple[Param, ...] = ()
    dims: dict[str, str] = {}
    description: str = ""

    def reads_for(self, model: ModelConfig, params: dict) -> tuple[str, ...]:
        """The hooks it reads on ``model`` with ``params`` (a family's values; missing ones take
        their defaults). Default: ``reads``."""
        return self.reads

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        """Called once before the steps with the final checkpoint (and every epoch): returns
        the run's derived state (key frequencies, neuron clusters, ...) for ``step`` and
        ``finalize``. Default: none."""
        return {}

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def finalize(
        self, epochs: np.ndarray, steps: list[dict[str, np.ndarray]], params: dict, state: dict
    ) -> dict[str, tuple[np.ndarray, str]]:
        out = {"epoch": (epochs, "epoch")}
        for key, dims in self.dims.items():
            out[key] = (np.stack([s[key] for s in steps]), ("epoch " + dims).strip())
        return out
