"""What variants that train together as one stacked model must share (no torch: rule planning
reads it while the DAG is built, and the trainer checks the same key before it stacks).

A stack holds one tensor per parameter with a leading model axis, one train/test split shape
and one optimizer and filter state layout, so the models share the task, the architecture, p,
the train fraction (the split's size), the checkpoint schedule, the test-loss spacing and the
Grokfast filter's kind and window, the tracking setting and the fast path. Everything else is per model: the seed, the data seed, lr,
weight decay, betas, eps, warm-up and the filter's alpha and lamb.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tdw.models.architecture import ModelConfig
    from tdw.workbench import TrainConfig


def filter_layout(grokfast: dict | None) -> tuple:
    """The part of a Grokfast setting that fixes the filter state's layout: kind and window."""
    if grokfast is None:
        return (None,)
    return (grokfast["kind"], grokfast.get("window"))


def stack_key(
    operation: str, model: ModelConfig | None, p: int, train_frac: float, epochs: tuple[int, ...], train: TrainConfig
) -> tuple:
    """Equal for variants that may train as one stack (``model``: a ``ModelConfig``, None for the
    family's at ``p``; ``train``: a ``TrainConfig``)."""
    tracking = json.dumps(train.tracking, sort_keys=True)  # one tracker per stack
    return (
        operation,
        model,
        p,
        train_frac,
        tuple(epochs),
        train.test_loss_every,
        filter_layout(train.grokfast),
        tracking,
        train.fast_path,  # one forward per stack
    )
