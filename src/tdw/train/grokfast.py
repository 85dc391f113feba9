"""Grokfast gradient filters (Lee et al. 2024, "Grokfast: Accelerated Grokking by Amplifying
Slow Gradients"), over stacked parameters with per-model strengths.

- ``{"kind": "ema", "alpha": a, "lamb": l}``: g_bar <- a * g_bar + (1 - a) * g, step on
  g + l * g_bar. g_bar starts at the first gradient (as in the authors' ``gradfilter_ema``).
- ``{"kind": "ma", "window": w, "lamb": l}``: step on g + l * mean of the last w gradients
  (g included), once w gradients have been seen; before that on g (the authors'
  ``gradfilter_ma`` with its default warm-up).

The filter's state (g_bar, or the window of past gradients) belongs to the train-state
snapshot, so a resumed run continues with the same filter.
"""

from __future__ import annotations

from collections import deque

import torch

from tdw.train.stacking import filter_layout

KINDS = {"ema": ("alpha", "lamb"), "ma": ("window", "lamb")}


def check_grokfast(spec: dict | None) -> None:
    """Raise ValueError unless ``spec`` is None or a well-formed filter description."""
    if spec is None:
        return
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in KINDS:
        raise ValueError(f"grokfast: {spec!r}: expected null or a mapping with kind 'ema' or 'ma'")
    if set(spec) != {"kind", *KINDS[kind]}:
        raise ValueError(f"grokfast: {spec!r}: kind {kind!r} takes exactly the keys kind, {', '.join(KINDS[kind])}")
    if kind == "ema" and not 0 <= spec["alpha"] < 1:
        raise ValueError(f"grokfast: alpha {spec['alpha']!r}: expected 0 <= alpha < 1")
    if kind == "ma" and not (isinstance(spec["window"], int) and spec["window"] >= 1):
        raise ValueError(f"grokfast: window {spec['window']!r}: expected an integer >= 1")


class GradFilter:
    """The Grokfast filter of S stacked models, one spec per model (all of one ``filter_layout``)."""

    def __init__(self, specs: list[dict | None]):
        for spec in specs:
            check_grokfast(spec)
        if len({filter_layout(s) for s in specs}) != 1:
            raise ValueError(f"grokfast filters of one stack must share kind and window: {specs}")
        self.specs: list[dict] = [s for s in specs if s is not None]  # all or none (one layout)
        self.kind = specs[0]["kind"] if specs[0] else None
        self.window = specs[0].get("window") if specs[0] else None
        self.ema: dict[str, torch.Tensor] = {}
        self.past: dict[str, deque[torch.Tensor]] = {}

    def _per_model(self, key: str, like: torch.Tensor, f=lambda x: x) -> torch.Tensor:
        values = [f(s[key]) for s in self.specs]
        return torch.tensor(values, dtype=like.dtype, device=like.device).reshape((-1,) + (1,) * (like.dim() - 1))

    @torch.no_grad()
    def __call__(self, grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The gradients to step on, given this step's gradients (name -> [S, ...])."""
        if self.kind is None:
            return grads
        out = {}
        for name, g in grads.items():
            lamb = self._per_model("lamb", g)
            if self.kind == "ema":
                if name not in self.ema:
                    self.ema[name] = g.detach().clone()
                alpha, keep = self._per_model("alpha", g), self._per_model("alpha", g, lambda a: 1 - a)
                self.ema[name] = self.ema[name] * alpha + g * keep
                out[name] = g + self.ema[name] * lamb
            else:
                window = self.past.setdefault(name, deque(maxlen=self.window))
                window.append(g.detach().clone())
                # summed oldest first, as the authors' sum(deque) does
                out[name] = g + sum(window) / len(window) * lamb if len(window) == self.window else g
        return out

    def slot_state(self, i: int) -> dict[str, torch.Tensor]:
        """Model i's filter state for the snapshot: ``grokfast_ema/NAME`` [...] or
        ``grokfast_window/NAME`` [n, ...] (oldest first)."""
        out = {f"grokfast_ema/{k}": v[i] for k, v in self.ema.items()}
        return out | {f"grokfast_window/{k}": torch.stack([g[i] for g in v]) for k, v in self.past.items() if v}

    def load_slots(self, snaps: list[dict[str, torch.Tensor]], device: torch.device) -> None:
        """Restore every model's filter state from its snapshot tensors."""
        self.ema, self.past = {}, {}
        for key in snaps[0]:
            slot, _, name = key.partition("/")
            if slot == "grokfast_ema":
                self.ema[name] = torch.stack([s[key] for s in snaps]).to(device)
            elif slot == "grokfast_window":
                stacked = torch.stack([s[key] for s in snaps], dim=1).to(device)  # [n, S, ...]
                self.past[name] = deque(stacked.unbind(0), maxlen=self.window)
