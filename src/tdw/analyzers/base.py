"""The analyzer interface: declared inputs, a pure per-checkpoint step, an explicit
cross-checkpoint step. Analyzers see numpy only (no torch import in analysis jobs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from tdw.architecture import ModelConfig
from tdw.checkpoint import load_weights
from tdw.h5io import open_h5
from tdw.tail import finish_forward, source_hook, tail_hooks


@dataclass
class CheckpointView:
    """What one checkpoint offers an analyzer: weights (lazy) and cached activations (lazy)."""

    epoch: int
    model: ModelConfig
    checkpoint: Path
    cache: Path | None = None
    _arrays: dict = field(default_factory=dict, repr=False)

    @property
    def p(self) -> int:
        return self.model.p

    @cached_property
    def weights(self) -> dict[str, np.ndarray]:
        return load_weights(self.checkpoint)

    def activation(self, hook: str) -> np.ndarray:
        """A cached tensor by hook name, rows in probe order (see ``pair_index``).

        Hooks after the last block's ``hook_resid_mid`` (its MLP hooks, ``logits``) are
        finished from the cached residual stream and the weights (``tdw.tail``).
        """
        if hook in self._arrays:
            return self._arrays[hook]
        if self.cache is None:
            raise ValueError(f"no cache given for epoch {self.epoch}; the analyzer must declare {hook!r} in reads")
        with open_h5(self.cache) as fh:
            self._arrays.setdefault("pair_index", fh["pair_index"][()])
            if hook in fh:
                self._arrays[hook] = fh[hook][()]
                return self._arrays[hook]
            if hook not in tail_hooks(self.model) or source_hook(self.model) not in fh:
                raise KeyError(f"{self.cache}: no dataset {hook!r}; cached: {sorted(fh)}")
            resid_mid = fh[source_hook(self.model)][()]
        self._arrays |= finish_forward(resid_mid, self.weights, self.model)
        return self._arrays[hook]


class Analyzer:
    """Subclass and set the class attributes; override ``step`` and optionally ``finalize``.

    ``step`` returns ``{name: array}`` for one checkpoint; ``dims`` names those arrays'
    axes. The default ``finalize`` stacks them along a leading ``epoch`` axis.
    """

    name: str = ""
    reads: tuple[str, ...] = ()  # cached hook names; weights are always available
    needs_full_grid: bool = False
    operations: tuple[str, ...] = ("add", "sub")
    dims: dict[str, str] = {}
    description: str = ""

    def step(self, view: CheckpointView, params: dict) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def finalize(self, epochs: np.ndarray, steps: list[dict[str, np.ndarray]], params: dict) -> dict[str, tuple[np.ndarray, str]]:
        out = {"epoch": (epochs, "epoch")}
        for key, dims in self.dims.items():
            out[key] = (np.stack([s[key] for s in steps]), ("epoch " + dims).strip())
        return out
