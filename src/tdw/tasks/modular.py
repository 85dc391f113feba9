"""The modular-arithmetic tasks: inputs, labels, the seeded train/test split, probes, and the
cyclic group the Fourier analyzers work on.

Inputs are ``[a, b, =]`` with ``=`` the token p; pair (a, b) has flat index ``a * p + b``.
Operations: ``add`` (a + b), ``sub`` (a - b), ``mul`` (a * b), ``div`` (a / b = a * b^-1,
defined for b != 0 only, so its inputs are the p(p - 1) pairs with b != 0) and ``sq``
(a^2 + b^2), all mod p. A task's inputs (``Task.pairs``) are what the grid probe runs on and
what the split shuffles; for the tasks defined on all p^2 pairs both are exactly as before
division existed.

The group (``Task.group``): ``add`` and ``sub`` are a +- b on Z_p in the tokens themselves.
``mul`` and ``div`` are a +- b on Z_{p-1} after the discrete-log relabelling a = g^i -> i (g the
smallest primitive root of p), declared in the family as ``"relabel": "discrete_log"``;
0 is not in the multiplicative group, so under the relabelling the inputs with a = 0 or b = 0
and the answer 0 are left out (see ``tdw.analyzers.base.GroupView``). ``sq`` has no group.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property

import numpy as np

OPERATIONS = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "mul": lambda a, b, p: (a * b) % p,
    "div": lambda a, b, p: (a * inverses(p)[b]) % p,
    "sq": lambda a, b, p: (a * a + b * b) % p,
}
RELABELS = ("discrete_log",)
# The operations that are a +- b in the exponent of a primitive root (a = g^i).
LOG_GROUP = {"mul": "add", "div": "sub"}
PROBE_KINDS = ("grid", "train", "test", "random")


def inverses(p: int) -> np.ndarray:
    """b^-1 mod p for b = 0..p-1, [p] int64; entry 0 (no inverse) is 0 and never used as one."""
    return np.array([0] + [pow(b, p - 2, p) for b in range(1, p)], dtype=np.int64)


def primitive_root(p: int) -> int:
    """The smallest generator g of the multiplicative group mod the prime p."""
    n, rest, factors, q = p - 1, p - 1, set(), 2
    while q * q <= rest:  # the prime factors of p - 1 by trial division
        while rest % q == 0:
            factors.add(q)
            rest //= q
        q += 1
    if rest > 1:
        factors.add(rest)
    for g in range(2, p):
        if all(pow(g, n // q, p) != 1 for q in factors):
            return g
    return 1  # p = 2: the trivial group


@dataclass(frozen=True)
class Group:
    """The cyclic group Z_n on which a task is ``operation`` (``add`` or ``sub``): group
    element i is the token ``tokens[i]``, for the inputs and for the answers."""

    n: int
    tokens: np.ndarray  # [n] int64
    operation: str
    relabel: str | None = None

    @property
    def is_tokens(self) -> bool:
        """Whether group element i is token i (no relabelling)."""
        return self.relabel is None

    @cached_property
    def element(self) -> np.ndarray:
        """Group element of each token 0..p-1 (the inverse of ``tokens``); -1 where a token is
        no group element. [max token + 1] int64."""
        out = np.full(int(self.tokens.max()) + 1, -1, dtype=np.int64)
        out[self.tokens] = np.arange(self.n)
        return out


@dataclass(frozen=True)
class Task:
    """One modular task: ``operation`` mod ``p``, with an optional relabelling of the tokens
    for the analyzers (``relabel``; training never sees it)."""

    operation: str
    p: int
    relabel: str | None = None

    def __post_init__(self) -> None:
        check_task({"operation": self.operation} | ({"relabel": self.relabel} if self.relabel else {}))

    @classmethod
    def from_config(cls, task: dict, p: int | None = None) -> Task:
        """From a run config's (or family's) ``task`` mapping; p from the mapping unless given."""
        return cls(task.get("operation", "add"), int(task["p"] if p is None else p), task.get("relabel"))

    def to_config(self) -> dict:
        """The ``task`` mapping of a variant's config.json (``relabel`` only where declared)."""
        return {"operation": self.operation, "p": self.p} | ({"relabel": self.relabel} if self.relabel else {})

    @cached_property
    def pairs(self) -> np.ndarray:
        """Flat indices of the task's inputs, ascending: every pair, or those with b != 0 for ``div``."""
        index = np.arange(self.p * self.p, dtype=np.int64)
        return index[index % self.p != 0] if self.operation == "div" else index

    def labels(self, index: np.ndarray) -> np.ndarray:
        return labels(self.p, index, self.operation)

    def split(self, train_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return split(self.p, train_frac, seed, self.operation)

    def probe_indices(self, spec: dict, train_frac: float, seed: int) -> np.ndarray:
        return probe_indices(self.p, spec, train_frac, seed, self.operation)

    @cached_property
    def group(self) -> Group | None:
        """The cyclic group the task is a +- b on, in (relabelled) tokens; None where there is none."""
        if self.operation in ("add", "sub"):
            return Group(self.p, np.arange(self.p, dtype=np.int64), self.operation)
        if self.operation in LOG_GROUP and self.relabel == "discrete_log":
            g = primitive_root(self.p)
            powers = np.array([pow(g, i, self.p) for i in range(self.p - 1)], dtype=np.int64)
            return Group(self.p - 1, powers, LOG_GROUP[self.operation], self.relabel)
        return None


def check_task(task: dict) -> None:
    """Refuse an unknown operation or relabelling, or a relabelling the operation has no use for
    (ValueError naming the key and the value)."""
    op, relabel = task.get("operation"), task.get("relabel")
    if op not in OPERATIONS:
        raise ValueError(f"key 'task.operation': {op!r}: expected one of {', '.join(OPERATIONS)}")
    if relabel is not None and (relabel not in RELABELS or op not in LOG_GROUP):
        raise ValueError(f"key 'task.relabel': {relabel!r} for operation {op!r}: 'discrete_log' relabels 'mul' and 'div' only")


def all_pairs(p: int) -> np.ndarray:
    """Every (a, b) in row-major order, shape [p*p, 2]."""
    a, b = np.divmod(np.arange(p * p), p)
    return np.stack([a, b], axis=1)


def tokens(p: int, index: np.ndarray) -> np.ndarray:
    """Token sequences ``[a, b, p]`` for flat pair indices, shape [batch, 3], int64."""
    a, b = np.divmod(np.asarray(index, dtype=np.int64), p)
    return np.stack([a, b, np.full_like(a, p)], axis=1)


def labels(p: int, index: np.ndarray, operation: str = "add") -> np.ndarray:
    """Correct answer for each flat pair index, shape [batch], int64 (``div``: b != 0 only)."""
    a, b = np.divmod(np.asarray(index, dtype=np.int64), p)
    if operation == "div" and np.any(b == 0):
        raise ValueError(f"a / b mod {p}: {int(np.sum(b == 0))} pair(s) with b = 0, where division is undefined")
    return OPERATIONS[operation](a, b, p)


def split(p: int, train_frac: float, seed: int, operation: str = "add") -> tuple[np.ndarray, np.ndarray]:
    """Train and test flat indices, exactly as ``random.seed(seed); random.shuffle(pairs)``
    on the task's row-major pair list (every pair; for ``div`` those with b != 0) followed by
    taking the first ``int(train_frac * len(pairs))``.

    ``random.shuffle`` permutes by position only, so shuffling indices gives the same
    order as shuffling the (a, b) tuples the original training code shuffled.
    """
    order = Task(operation, p).pairs.tolist()
    rng = random.Random(seed)
    rng.shuffle(order)
    cut = int(train_frac * len(order))
    return np.array(order[:cut], dtype=np.int64), np.array(order[cut:], dtype=np.int64)


# The grid tasks' minibatch recipe (tdw.train.minibatch): a family's "training" section.
MINIBATCH = "minibatch"
MINIBATCH_DEFAULTS = {"batch_size": 128}


def minibatch_values(recipe: dict) -> dict:
    """A grid family's minibatch recipe with every value present (``MINIBATCH_DEFAULTS`` for
    those it leaves out); a key the recipe does not have is refused."""
    extra = set(recipe) - {"recipe", *MINIBATCH_DEFAULTS}
    if extra:
        raise ValueError(f"the grid tasks' minibatch recipe takes {sorted(MINIBATCH_DEFAULTS)}; got {sorted(extra)}")
    return {"recipe": MINIBATCH} | MINIBATCH_DEFAULTS | {k: v for k, v in recipe.items() if k != "recipe"}


def minibatch_rows(n_train: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Positions in the training split [min(batch_size, n_train)] (int64) of step ``step``'s
    batch: distinct rows, uniform without replacement (the first batch of a freshly shuffled
    ``DataLoader(shuffle=True)``), from ``numpy.random.default_rng([seed, step])``: a pure
    function of (seed, step), so a resumed run draws the batches it would have drawn."""
    rng = np.random.default_rng([seed, step])
    return rng.permutation(n_train)[: min(batch_size, n_train)].astype(np.int64)


def probe_indices(p: int, spec: dict, train_frac: float, seed: int, operation: str = "add") -> np.ndarray:
    """Flat pair indices a probe runs on, shape [batch], ascending: all the task's inputs
    (``grid``), the split's train or test inputs, or ``random``: ``size`` of the inputs with
    its own ``seed``."""
    kind, pairs = spec["kind"], Task(operation, p).pairs
    if kind == "grid":
        return pairs
    train, test = split(p, train_frac, seed, operation)
    if kind == "train":
        return np.sort(train)
    if kind == "test":
        return np.sort(test)
    if kind == "random":
        size = min(int(spec["size"]), len(pairs))
        rng = np.random.default_rng(int(spec.get("seed", 0)))
        return np.sort(pairs[rng.choice(len(pairs), size=size, replace=False)]).astype(np.int64)
    raise ValueError(f"probe kind {kind!r}: expected one of {', '.join(PROBE_KINDS)}")
