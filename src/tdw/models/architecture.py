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
    attn_only: bool = False  # blocks without an MLP (the sequence family's attention-only transformer)
    # "transformer", or "mlp": embeddings of a and b, one hidden layer, unembedding (tdw.models.mlp)
    model: str = "transformer"
    embed_combine: str = "concat"  # the MLP's input: the two embeddings "concat"enated or "sum"med
    # the MLP's hidden-layer bias: "shared" (one, ``mlp.b_in``) or "per_operand" (``mlp.b_in_a`` and
    # ``mlp.b_in_b``, one per operand's linear map, summed: the devinterp grokking example's two
    # biased ``nn.Linear`` maps)
    input_bias: str = "shared"
    # the MLP's initial weights: "scaled" (N(0,1)/sqrt(fan_in), zero bias; tdw.models.weights) or
    # "torch" (the devinterp example's modules built under torch.manual_seed(seed): N(0,1) embedding,
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights and biases; tdw.models.weights.mlp_torch_init_params)
    init: str = "scaled"

    @property
    def is_mlp(self) -> bool:
        return self.model == "mlp"

    @property
    def d_in(self) -> int:
        """Width of the MLP model's hidden-layer input: both embeddings side by side, or their sum."""
        return 2 * self.d_model if self.embed_combine == "concat" else self.d_model

    # attention = rate * softmax + (1 - rate) * uniform over the visible positions (Zhong et
    # al. 2023's attention rate); 1.0 is plain softmax attention
    attention_rate: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.attention_rate <= 1.0:
            raise ValueError(f"attention_rate {self.attention_rate!r}: expected a number in [0, 1]")
        if self.input_bias not in ("shared", "per_operand"):
            raise ValueError(f"input_bias {self.input_bias!r}: expected 'shared' or 'per_operand'")
        if self.init not in ("scaled", "torch"):
            raise ValueError(f"init {self.init!r}: expected 'scaled' or 'torch'")
        if not self.is_mlp and (self.input_bias != "shared" or self.init != "scaled"):
            raise ValueError("input_bias and init are options of the MLP model (model: mlp)")
        if self.input_bias == "per_operand" and self.embed_combine != "concat":
            raise ValueError("input_bias 'per_operand' needs embed_combine 'concat' (one map per operand)")

    @property
    def d_vocab(self) -> int:
        return self.p if self.is_mlp else self.p + 1  # the MLP embeds a and b only, no `=` token

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_vocab_out(self) -> int:
        return self.p + 1 if self.unembed_equals else self.p

    @property
    def is_paper_shape(self) -> bool:
        """A one-layer transformer with MLP, no LayerNorm, ReLU: the case ``last_logits`` handles by tables."""
        return not self.is_mlp and self.n_layers == 1 and not self.layernorm and self.act == "relu" and not self.attn_only

    def to_dict(self) -> dict:
        """The fields, except those added later that hold their default (``LATER_DEFAULTS``), and
        ``embed_combine`` exactly for an MLP: a variant that does not use them keeps its
        config.json, training key and job params."""
        out = {k: v for k, v in asdict(self).items() if k not in LATER_DEFAULTS or v != LATER_DEFAULTS[k]}
        if self.is_mlp:
            out["embed_combine"] = self.embed_combine
        else:
            out.pop("embed_combine", None)
        return out


# Fields added after variants were first written, with the default that reproduces those variants.
LATER_DEFAULTS: dict[str, object] = {
    "attn_only": False,
    "model": "transformer",
    "embed_combine": "concat",
    "attention_rate": 1.0,
    "input_bias": "shared",
    "init": "scaled",
}
