"""The MLP model of a ± b mod p (the devinterp grokking example's and Gromov 2023's), as a
TransformerLens HookedRootModule.

Tokens [batch, 3] = [a, b, =] (the workbench's one input format; the `=` column is not read)
-> embeddings of a and b (``embed.W_E`` [p, d_model], ``hook_embed`` [batch, 2, d_model]) ->
concatenated [2 d_model] or summed [d_model] (``embed_combine``) -> one hidden layer
(``mlp.W_in`` [d_in, d_mlp], ``mlp.b_in``, or ``mlp.b_in_a`` and ``mlp.b_in_b`` with
``input_bias: per_operand``; ``mlp.hook_pre``, ``mlp.hook_post``) -> unembedding
(``unembed.W_U`` [d_mlp, d_vocab_out], no bias; ``hook_logits``). The model predicts at one
position, so activations after the embedding carry a position axis of length 1, the answer
position: ``[batch, 1, d_mlp]``, logits ``[batch, 1, d_vocab_out]``, and every reader that
takes the last position (the cache, the trainer) treats it as it treats the transformer's.

TransformerLens's ``setup()`` names the hook points from the module tree; ``tdw.models.hooks``
gives the same names without torch. Training uses ``tdw.models.fastpath.mlp_logits``, tested
equal to this forward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformer_lens.hook_points import HookPoint
from transformer_lens.HookedRootModule import HookedRootModule

from tdw.models import hooks
from tdw.models.architecture import ModelConfig
from tdw.models.hooked import HookedParams
from tdw.models.weights import mlp_param_shapes


class HiddenLayer(HookedParams):
    def __init__(self, cfg: ModelConfig):
        biases = ("b_in_a", "b_in_b") if cfg.input_bias == "per_operand" else ("b_in",)
        super().__init__({"W_in": (cfg.d_in, cfg.d_mlp)} | {name: (cfg.d_mlp,) for name in biases}, hooks.MLP_LEAVES)
        self.biases = biases
        acts: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "gelu": F.gelu}
        self.act = acts[cfg.act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, 1, d_in]
        pre = x @ self.W_in
        for name in self.biases:  # one bias, or each operand's map's bias (summed)
            pre = pre + getattr(self, name)
        pre = self.hook_pre(pre)  # [batch, 1, d_mlp]
        return self.hook_post(self.act(pre))


class HookedMLP(HookedRootModule):
    """Token sequences [batch, 3] -> logits [batch, 1, d_vocab_out], hooked throughout."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if not cfg.is_mlp:
            raise ValueError(f"HookedMLP needs an architecture with model 'mlp', got {cfg.model!r}")
        self.cfg = cfg
        self.embed = HookedParams({"W_E": (cfg.d_vocab, cfg.d_model)})
        self.hook_embed = HookPoint()
        self.mlp = HiddenLayer(cfg)
        self.unembed = HookedParams({"W_U": (cfg.d_mlp, cfg.d_vocab_out)})
        self.hook_logits = HookPoint()
        self.setup()

    @classmethod
    def from_params(cls, cfg: ModelConfig, params: dict[str, torch.Tensor]) -> HookedMLP:
        missing = set(mlp_param_shapes(cfg)) - set(params)
        if missing:
            raise KeyError(f"parameters missing for this architecture: {sorted(missing)}")
        model = cls(cfg)
        model.load_state_dict(params, strict=False)
        return model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        emb = self.hook_embed(self.embed.W_E[tokens[:, :2]])  # [batch, 2, d_model]: a, b
        x = emb.flatten(1) if self.cfg.embed_combine == "concat" else emb.sum(1)  # [batch, d_in]
        post = self.mlp(x[:, None])  # [batch, 1, d_mlp]
        return self.hook_logits(post @ self.unembed.W_U)
