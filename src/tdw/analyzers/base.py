"""The analyzer interface: declared inputs, a pure per-checkpoint step, an explicit
cross-checkpoint step. Analyzers see numpy only (no torch import in analysis jobs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import cast

import numpy as np

from tdw.io.checkpoint import load_weights
from tdw.io.h5 import open_h5
from tdw.models import hooks
from tdw.models.architecture import ModelConfig
from tdw.models.tail import finish_forward, source_hook, tail_hooks
from tdw.params import Param
from tdw.tasks.modular import LOG_GROUP, OPERATIONS, Group, Task

__all__ = ["Analyzer", "CheckpointView", "GroupView", "Param", "resolve_hook", "supports"]


def resolve_hook(hook: str, model: ModelConfig) -> str:
    """Hook names may say ``blocks.{last}.`` for the last block, so one analyzer serves
    families of any depth."""
    return hooks.resolve(hook, model)


# One checkpoint's measurements (``Analyzer.step``): arrays, or numpy scalars, each stacked
# over the epochs by ``Analyzer.finalize``.
StepValues = Mapping[str, np.ndarray | np.generic]


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
    def task_config(self) -> dict:
        """The run's task as its config records it (a config without one: a + b)."""
        return {"operation": "add", "p": self.p} | self.config.get("task", {})

    @property
    def operation(self) -> str:
        return self.task_config["operation"]

    @cached_property
    def task(self) -> Task:
        """The run's task (operation, p, relabelling) from its config (a config without one: a + b)."""
        return Task.from_config(self.config.get("task", {}), self.p)

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
        seed = self.config.get("data_seed", self.config["seed"])
        return self.task.split(float(self.config["train"]["train_frac"]), int(seed))

    def labels(self) -> np.ndarray:
        """Correct answer of each cached row, shape [batch]."""
        return self.task.labels(self.pair_index)

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
    # The tasks whose maths the analyzer holds for, in the tokens themselves (None: every task).
    operations: tuple[str, ...] | None = ("add", "sub")
    # True: the maths needs a +- b on a cyclic group; the analyzer also serves every task with a
    # group (``Task.group``: mul and div under the discrete-log relabelling) and sees each
    # checkpoint as a ``GroupView`` of it (for add and sub, the checkpoint itself).
    on_group: bool = False
    models: tuple[str, ...] = ("transformer",)  # the model kinds (ModelConfig.model) whose maths it assumes
    # Per task it does not serve: why not, or which analyzer measures it there (ends the error).
    not_for: dict[str, str] = {}
    params: tuple[Param, ...] = ()
    dims: dict[str, str] = {}
    description: str = ""

    def reads_for(self, model: ModelConfig, params: dict) -> tuple[str, ...]:
        """The hooks it reads on ``model`` with ``params`` (a family's values; missing ones take
        their defaults). Default: ``reads``."""
        return self.reads

    def other_variants(self, params: dict, p: int, seed: int) -> tuple[str, ...]:
        """Variants of the same family whose checkpoints the analyzer also reads, with
        ``params`` (complete) for the variant of modulus ``p`` and seed ``seed``: the workflow
        makes their metadata.json inputs of the job. Default: none."""
        return ()

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        """Called once before the steps with the final checkpoint (and every epoch): returns
        the run's derived state (key frequencies, neuron clusters, ...) for ``step`` and
        ``finalize``. Default: none."""
        return {}

    def step(self, view: CheckpointView, params: dict, state: dict) -> StepValues:
        raise NotImplementedError

    def finalize(
        self, epochs: np.ndarray, steps: list[StepValues], params: dict, state: dict
    ) -> dict[str, tuple[np.ndarray, str]]:
        out = {"epoch": (epochs, "epoch")}
        for key, dims in self.dims.items():
            out[key] = (np.stack([s[key] for s in steps]), ("epoch " + dims).strip())
        return out


def supports(analyzer: Analyzer, task: dict) -> bool:
    """Whether the analyzer's maths holds for a task (a family's or run's ``task`` mapping)."""
    if analyzer.on_group and task.get("operation") in LOG_GROUP and task.get("relabel") == "discrete_log":
        return True
    return analyzer.operations is None or task.get("operation", "add") in analyzer.operations


def unsupported(analyzer: Analyzer, task: dict) -> str:
    """Why the analyzer does not serve the task (for messages; ``supports`` is False)."""
    op = task.get("operation", "add")
    why = f"the analyzer supports tasks {list(analyzer.operations or [])}, not {op!r}"
    if analyzer.on_group:
        why += f' ({", ".join(map(repr, LOG_GROUP))} with "relabel": "discrete_log": its maths needs a +- b on a cyclic group)'
    if op in analyzer.not_for:
        why += f"; on {op!r}: {analyzer.not_for[op]}"
    return why


class GroupView:
    """A checkpoint seen on its task's cyclic group Z_n (``tdw.tasks.modular.Group``): what
    an ``on_group`` analyzer reads, so its maths runs unchanged on the group.

    ``p`` is the group order n and a pair of group elements (i, j) has index i * n + j; the
    rows are the cached rows whose a and b are both group elements (for mul and div under the
    discrete-log relabelling: a, b != 0), ordered by that index; ``labels`` and ``split`` are
    in group elements and group indices. The embedding's rows and the unembedding's and logits'
    columns are permuted so that the group elements' tokens come first in group order (the
    other tokens and `=` after them: norms and sums of squares keep their values). For add and
    sub the group is the tokens themselves and analyzers see the checkpoint itself (``on_group``).
    """

    def __init__(self, base: CheckpointView, group: Group) -> None:
        self.base, self.group = base, group
        self.epoch, self.model, self.checkpoint = base.epoch, base.model, base.checkpoint
        self.cache, self.config, self.history = base.cache, base.config, base.history
        self.task, self.task_config, self.operation, self.p = base.task, base.task_config, group.operation, group.n
        self._arrays: dict[str, np.ndarray] = {}

    def _order(self, size: int) -> np.ndarray:
        """The token order: group elements' tokens, then the other tokens ascending, [size]."""
        rest = np.setdiff1d(np.arange(size), self.group.tokens)
        return np.concatenate([self.group.tokens, rest])

    @cached_property
    def _rows(self) -> tuple[np.ndarray | None, np.ndarray]:
        """(cached rows kept in group order, or None for all of them as they are; their group indices)."""
        a, b = np.divmod(self.base.pair_index, self.base.p)
        i, j = self.group.element[a], self.group.element[b]
        index = i * self.group.n + j
        rows = np.flatnonzero((i >= 0) & (j >= 0))
        rows = rows[np.argsort(index[rows], kind="stable")]
        if len(rows) == len(index) and np.array_equal(rows, np.arange(len(index))):
            return None, index
        return rows, index[rows]

    @property
    def pair_index(self) -> np.ndarray:
        return self._rows[1]

    @property
    def is_full_grid(self) -> bool:
        return len(self.pair_index) == self.p**2 and bool(np.all(self.pair_index == np.arange(self.p**2)))

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """Train and test group indices (the seeded split's inputs that are group pairs)."""
        out = []
        for part in self.base.split():
            a, b = np.divmod(part, self.base.p)
            i, j = self.group.element[a], self.group.element[b]
            keep = (i >= 0) & (j >= 0)
            out.append(i[keep] * self.group.n + j[keep])
        return out[0], out[1]

    def labels(self) -> np.ndarray:
        """Group element of each row's answer, [batch]."""
        rows = self._rows[0]
        answers = self.base.labels()
        return self.group.element[answers if rows is None else answers[rows]]

    def drop_activations(self) -> None:
        self._arrays.clear()
        self.base.drop_activations()

    @cached_property
    def weights(self) -> dict[str, np.ndarray]:
        weights = self.base.weights
        w_e, w_u = weights["embed.W_E"], weights["unembed.W_U"]
        return weights | {"embed.W_E": w_e[self._order(len(w_e))], "unembed.W_U": w_u[:, self._order(w_u.shape[1])]}

    def activation(self, hook: str) -> np.ndarray:
        hook = resolve_hook(hook, self.model)
        rows = self._rows[0]
        if rows is None and hook != hooks.LOGITS:
            return self.base.activation(hook)
        if hook not in self._arrays:
            out = self.base.activation(hook)
            out = out if rows is None else out[rows]
            self._arrays[hook] = out[:, self._order(out.shape[1])] if hook == hooks.LOGITS else out
        return self._arrays[hook]


def on_group(analyzer: Analyzer, view: CheckpointView) -> CheckpointView:
    """The view an analyzer reads: the group view for an ``on_group`` analyzer where the task has a group."""
    group = view.task.group if analyzer.on_group and view.operation in OPERATIONS else None
    # a GroupView offers what a CheckpointView does (the same names, on the group), not a subclass
    return view if group is None or group.is_tokens else cast(CheckpointView, GroupView(view, group))
