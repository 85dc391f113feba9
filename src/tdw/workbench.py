"""The resolved setup as plain data: a family, its variants and their training recipe, and the
``Workbench`` that holds them for one config. Built by ``tdw.config.resolve`` (the checks live
there and in ``tdw.families``); everything that trains, caches, analyses or plans reads these."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tdw.errors import ConfigError
from tdw.models.architecture import ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters; defaults are the paper's mainline."""

    train_frac: float = 0.3
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    warmup_steps: int = 10
    test_loss_every: int = 1
    # None, or a Grokfast gradient filter: {kind: ema, alpha, lamb} or {kind: ma, window, lamb} (tdw.train.grokfast)
    grokfast: dict | None = field(default=None, hash=False)
    # None, or {test_loss_below, for_epochs}: stop once test loss has stayed below the threshold that long (tdw.train.early_stop)
    early_stop: dict | None = field(default=None, hash=False)
    # None, or {every, measures, hooks, probe_rows, probe_seed}: measures logged between checkpoints (tdw.train.tracking)
    tracking: dict | None = field(default=None, hash=False)
    # "decoupled": AdamW's weight decay (w shrinks by lr * weight_decay each step); "l2":
    # torch.optim.Adam's coupled L2 penalty (weight_decay * w added to the gradient)
    weight_decay_mode: str = "decoupled"
    # None (the default forward), or "tables": the paper's model's logits from per-token tables
    # through W_in and W_U (tdw.models.fastpath.build_tables), equal up to float32 rounding
    fast_path: str | None = None

    def __post_init__(self) -> None:
        if self.weight_decay_mode not in ("decoupled", "l2"):
            raise ConfigError(f"weight_decay_mode {self.weight_decay_mode!r}: expected 'decoupled' or 'l2'")

    def to_dict(self) -> dict:
        """The recipe as written to config.json; ``grokfast``, ``early_stop``, ``tracking``,
        ``fast_path`` and ``weight_decay_mode`` only when not their default, so a run without
        them is described as before they existed."""
        out = asdict(self) | {"betas": list(self.betas)}
        for name in ("grokfast", "early_stop", "tracking", "fast_path"):
            if out[name] is None:
                del out[name]
        if out["weight_decay_mode"] == "decoupled":
            del out["weight_decay_mode"]
        return out


# The recipe every family's variant names are relative to: a name tag marks a value that
# differs from it, whichever config the variant comes from.
FAMILY_TRAIN = TrainConfig()


@dataclass(frozen=True)
class Variant:
    """One member of a family, fixed by its domain parameters and its own recipe."""

    name: str
    p: int
    seed: int  # of the initialisation
    train_frac: float
    epochs: tuple[int, ...]  # checkpoint epochs, increasing
    legacy_path: str | None = None
    legacy_test_every: int | None = None  # spacing of a legacy file's test-loss history
    data_seed: int | None = None  # of the train/test split; None: the same as ``seed``
    train: TrainConfig | None = None  # the variant's recipe (None: the config's)
    model: ModelConfig | None = None  # the variant's architecture (None: the family's at p)
    tags: tuple[tuple[str, object], ...] = ()  # swept values other than p and seed that differ from the defaults

    def __post_init__(self) -> None:
        if self.data_seed is None:
            object.__setattr__(self, "data_seed", self.seed)

    @property
    def split_seed(self) -> int:
        """The seed of the train/test split: ``data_seed`` (which defaults to ``seed``)."""
        return self.seed if self.data_seed is None else self.data_seed

    @property
    def is_legacy(self) -> bool:
        return self.legacy_path is not None


@dataclass(frozen=True)
class Family:
    """A resolved family: ``spec`` is its file merged over the families it extends, every
    analyzer's and figure's ``params`` complete (declared defaults, then the files' values);
    ``files``: the family file and its parents', nearest first."""

    name: str
    root: Path
    spec: dict = field(repr=False)
    files: tuple[Path, ...] = ()

    def model_config(self, p: int) -> ModelConfig:
        return ModelConfig(p=p, **self.spec["architecture"])

    @property
    def operation(self) -> str:
        return self.spec["task"]["operation"]

    @property
    def default_analyzers(self) -> list[str]:
        """The analyzers a config without ``analyzers`` runs (``default_analyzers``)."""
        return default_analyzers(self.spec)


def default_analyzers(spec: dict) -> list[str]:
    """The analyzers a family's ``spec`` runs where a config does not choose: all it offers
    except those it marks ``on_request``, in its order."""
    return [name for name, entry in spec["analyzers"].items() if not entry.get("on_request")]


@dataclass(frozen=True)
class Workbench:
    """A validated config together with its family: everything the workflow needs to know."""

    source: str
    family: Family
    train: TrainConfig
    variants: tuple[Variant, ...]
    probe: str
    analyzers: tuple[str, ...]
    figures: dict
    reports: tuple[str, ...]
    results: str = "results"
    batch_seeds: bool = False
    keep_caches: bool = True
    analyzer_settings: dict = field(default_factory=dict, repr=False)  # analyzer -> its resolved params

    def analyzer_params(self, name: str) -> dict:
        """Every parameter of analyzer ``name`` for this config: declared defaults, the
        family's values, the config's overrides."""
        if name not in self.analyzer_settings:
            raise ConfigError(f"{self.source}: analyzer {name!r} is not run by this config; it runs {list(self.analyzers)}")
        return copy.deepcopy(self.analyzer_settings[name])

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise ConfigError(f"{self.source}: no variant named {name!r}; variants: {[v.name for v in self.variants]}")
