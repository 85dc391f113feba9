"""AdamW (or Adam with coupled L2 weight decay) over stacked parameters with per-model hyperparameters.

Parameters of S models are stacked on a leading axis. ``torch.optim.AdamW`` takes one scalar
lr, betas, eps and weight decay per parameter group, and a slice of a stacked tensor cannot
be a group of its own, so this module does the update itself: each scalar of torch's
single-tensor AdamW (``torch/optim/adam.py: _single_tensor_adam``, the CPU default) becomes a
per-model tensor [S, 1, ...] that broadcasts over the model's slice.

The scalars are computed per model in Python floats exactly as torch computes them, then
rounded once to the parameters' dtype, as torch's CPU kernels round a Python scalar operand;
the tensor operations are torch's, in torch's order, with every ``value=`` scalar folded into
a tensor product that the kernel evaluates in the same order (``addcmul``: self + v * t1 * t2;
``addcdiv``: self + v * t1 / t2). On the CPU each model's slice therefore ends bit-identical
to a separate ``torch.optim.AdamW(foreach=False)`` run (tested for differing lr, weight
decay, betas, eps and warm-up).

A model whose ``AdamWHyper.coupled`` is set takes ``torch.optim.Adam``'s L2 weight decay
instead: the gradient becomes grad + weight_decay * w before the moments, and w is not
shrunk. Where every coupled model of the stack has the same weight decay this is torch's own
``grad.add(param, alpha=weight_decay)`` (bit-identical to ``torch.optim.Adam(foreach=False)``
on the CPU, tested); otherwise each model's own value multiplies its slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AdamWHyper:
    """One model's AdamW hyperparameters (the lr before warm-up)."""

    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    coupled: bool = False  # True: Adam's L2 decay (added to the gradient), not AdamW's decoupled shrink


class StackedAdamW:
    """AdamW over ``params`` (name -> tensor [S, ...]), one ``AdamWHyper`` per model.

    State: ``exp_avg`` and ``exp_avg_sq`` (name -> tensor [S, ...], empty before the first
    step) and ``step``, the number of steps taken (shared: the models step together)."""

    def __init__(self, params: dict[str, torch.Tensor], hypers: list[AdamWHyper]):
        n = next(iter(params.values())).shape[0]
        if len(hypers) != n:
            raise ValueError(f"{len(hypers)} sets of hyperparameters for {n} stacked models")
        self.params = params
        self.hypers = list(hypers)
        self.step_count = 0
        self.exp_avg: dict[str, torch.Tensor] = {}
        self.exp_avg_sq: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, grads: dict[str, torch.Tensor], lrs: list[float]) -> None:
        """One AdamW step with gradients ``grads`` and this step's lr of each model (warm-up
        applied by the caller)."""
        self.step_count += 1
        step = float(self.step_count)  # torch keeps the step as a float tensor and reads it back
        scalars: dict[str, list[float]] = {
            k: [] for k in ("decay", "lerp", "sq_decay", "sq_w", "neg_step", "bc2_sqrt", "eps", "l2")
        }
        for h, lr in zip(self.hypers, lrs, strict=True):
            beta1, beta2 = h.betas
            for key, value in (
                ("decay", 1.0 if h.coupled else 1 - lr * h.weight_decay),
                ("l2", h.weight_decay if h.coupled else 0.0),
                ("lerp", 1 - beta1),
                ("sq_decay", beta2),
                ("sq_w", 1 - beta2),
                ("neg_step", -(lr / (1 - beta1**step))),
                ("bc2_sqrt", (1 - beta2**step) ** 0.5),
                ("eps", h.eps),
            ):
                scalars[key].append(value)
        l2_values = set(scalars["l2"])
        l2_alpha = l2_values.pop() if len(l2_values) == 1 else None  # one value for the whole stack
        flat: dict[tuple, dict[str, torch.Tensor]] = {}
        for name, param in self.params.items():
            grad = grads[name]
            if name not in self.exp_avg:
                self.exp_avg[name] = torch.zeros_like(param, memory_format=torch.preserve_format)
                self.exp_avg_sq[name] = torch.zeros_like(param, memory_format=torch.preserve_format)
            exp_avg, exp_avg_sq = self.exp_avg[name], self.exp_avg_sq[name]
            where = (param.dtype, param.device)
            if where not in flat:  # rounded once to the parameters' dtype, as torch rounds a scalar operand
                flat[where] = {k: torch.tensor(v, dtype=param.dtype, device=param.device) for k, v in scalars.items()}
            shape = (-1,) + (1,) * (param.dim() - 1)
            t = {k: v.reshape(shape) for k, v in flat[where].items()}
            if l2_alpha is None:  # coupled L2 with weights differing across the stack
                grad = grad.add(param * t["l2"])
            elif l2_alpha != 0.0:  # torch.optim.Adam's own operation
                grad = grad.add(param, alpha=l2_alpha)
            # torch skips the decay when weight_decay == 0; multiplying by 1.0 is exact
            param.mul_(t["decay"])
            exp_avg.lerp_(grad, t["lerp"].expand_as(exp_avg))
            exp_avg_sq.mul_(t["sq_decay"]).addcmul_(t["sq_w"] * grad, grad)
            denom = (exp_avg_sq.sqrt() / t["bc2_sqrt"]).add_(t["eps"])
            param.addcdiv_(t["neg_step"] * exp_avg, denom)

    def slot_state(self, i: int) -> dict[str, torch.Tensor]:
        """Model i's moments, keyed ``exp_avg/NAME`` and ``exp_avg_sq/NAME`` (empty before the
        first step): the layout of the train-state snapshot."""
        out = {f"exp_avg/{k}": v[i] for k, v in self.exp_avg.items()}
        return out | {f"exp_avg_sq/{k}": v[i] for k, v in self.exp_avg_sq.items()}

    def load_slots(self, snaps: list[dict[str, torch.Tensor]], step: int, device: torch.device) -> None:
        """Restore every model's moments from its snapshot tensors and the shared step count."""
        self.step_count = step
        self.exp_avg, self.exp_avg_sq = {}, {}
        if step:
            for name in self.params:
                self.exp_avg[name] = torch.stack([s[f"exp_avg/{name}"] for s in snaps]).to(device)
                self.exp_avg_sq[name] = torch.stack([s[f"exp_avg_sq/{name}"] for s in snaps]).to(device)
