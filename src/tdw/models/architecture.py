"""Architecture of a family's model (no torch import: the workflow reads it at DAG time)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a family's model; derived sizes are properties, never stored."""

    p: int
    n_layers: int = 1
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    act: str = "relu"
    layernorm: bool = False
    n_ctx: int = 3
    unembed_equals: bool = True  # p + 1 outputs (the `=` logit kept, as in the paper)
    # attention = rate * softmax + (1 - rate) * uniform over the visible positions (Zhong et
    # al. 2023's attention rate); 1.0 is plain softmax attention
    attention_rate: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.attention_rate <= 1.0:
            raise ValueError(f"attention_rate {self.attention_rate!r}: expected a number in [0, 1]")

    @property
    def d_vocab(self) -> int:
        return self.p + 1

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_vocab_out(self) -> int:
        return self.p + 1 if self.unembed_equals else self.p

    @property
    def is_paper_shape(self) -> bool:
        """One layer, no LayerNorm, ReLU: the case ``last_logits`` handles by tables."""
        return self.n_layers == 1 and not self.layernorm and self.act == "relu"

    def to_dict(self) -> dict:
        """The fields, except those added later that hold their default (``LATER_DEFAULTS``):
        a variant that does not use them keeps its config.json, training key and job params."""
        return {k: v for k, v in asdict(self).items() if k not in LATER_DEFAULTS or v != LATER_DEFAULTS[k]}


# Fields added after variants were first written, with the default that reproduces those variants.
LATER_DEFAULTS: dict[str, object] = {"attention_rate": 1.0}
