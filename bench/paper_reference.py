"""The paper's training step, written from the published recipe (Nanda et al. 2023, "Progress
measures for grokking via mechanistic interpretability") as its code computes it: a reference to
time the workbench against, not used by the workbench.

The model: token embedding plus positional embedding, one attention layer over all three
positions (causal mask, einsums over [head, d_head, d_model] weights, W_O on the heads'
concatenated outputs), a ReLU MLP on every position, the unembedding on every position, and
the logits of the last one. The loss: cross-entropy in float64 (log-softmax of the logits cast
to float64). The step: full batch, the train loss and the test loss every epoch (the published
loop computes the test loss with autograd recording; ``test_no_grad`` turns that off), AdamW
(lr 1e-3, weight decay 1, betas (0.9, 0.98)) with a linear warm-up over 10 steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PaperTransformer(nn.Module):
    """One-layer transformer in the paper's orientation (W_E [d_model, d_vocab], W_U [d_model, d_vocab])."""

    def __init__(self, d_vocab: int, d_model: int = 128, n_heads: int = 4, d_mlp: int = 512, n_ctx: int = 3):
        super().__init__()
        d_head = d_model // n_heads
        self.d_head = d_head

        def param(*shape: int, fan: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape) / math.sqrt(fan))

        self.W_E = param(d_model, d_vocab, fan=d_model)
        self.W_pos = param(n_ctx, d_model, fan=d_model)
        self.W_K = param(n_heads, d_head, d_model, fan=d_model)
        self.W_Q = param(n_heads, d_head, d_model, fan=d_model)
        self.W_V = param(n_heads, d_head, d_model, fan=d_model)
        self.W_O = param(d_model, d_head * n_heads, fan=d_model)
        self.W_in = param(d_mlp, d_model, fan=d_model)
        self.b_in = nn.Parameter(torch.zeros(d_mlp))
        self.W_out = param(d_model, d_mlp, fan=d_model)
        self.b_out = nn.Parameter(torch.zeros(d_model))
        self.W_U = param(d_model, d_vocab, fan=d_vocab)
        self.register_buffer("mask", torch.tril(torch.ones(n_ctx, n_ctx)))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [batch, pos, d_vocab] at every position."""
        x = torch.einsum("dbp->bpd", self.W_E[:, tokens]) + self.W_pos[: tokens.shape[1]]
        k = torch.einsum("ihd,bpd->biph", self.W_K, x)
        q = torch.einsum("ihd,bpd->biph", self.W_Q, x)
        v = torch.einsum("ihd,bpd->biph", self.W_V, x)
        scores = torch.einsum("biph,biqh->biqp", k, q)
        n = tokens.shape[1]
        masked = torch.tril(scores) - 1e10 * (1 - self.mask[:n, :n])
        attn = torch.softmax(masked / math.sqrt(self.d_head), dim=-1)
        z = torch.einsum("biph,biqp->biqh", v, attn)
        z_flat = z.permute(0, 2, 1, 3).reshape(z.shape[0], n, -1)  # [batch, pos, head * d_head]
        x = x + torch.einsum("df,bqf->bqd", self.W_O, z_flat)
        hidden = torch.relu(torch.einsum("md,bpd->bpm", self.W_in, x) + self.b_in)
        x = x + torch.einsum("dm,bpm->bpd", self.W_out, hidden) + self.b_out
        return x @ self.W_U


def loss(model: PaperTransformer, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the last position's logits, in float64."""
    logprobs = model(tokens)[:, -1].to(torch.float64).log_softmax(-1)
    return -logprobs.gather(-1, labels[:, None]).mean()


class PaperTraining:
    """The published loop, one epoch per ``step`` call."""

    def __init__(self, model: PaperTransformer, tensors: tuple[torch.Tensor, ...], test_no_grad: bool = False):
        self.model, self.tensors, self.test_no_grad = model, tensors, test_no_grad
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda step: min(step / 10, 1))

    def step(self) -> tuple[float, float]:
        x_tr, y_tr, x_te, y_te = self.tensors
        train_loss = loss(self.model, x_tr, y_tr)
        with torch.set_grad_enabled(not self.test_no_grad):
            test_loss = loss(self.model, x_te, y_te)
        train_loss.backward()
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad()
        return train_loss.item(), test_loss.item()
