"""Early stopping: a run stops once its test loss has stayed below a threshold for a number of
epochs (``train.early_stop: {test_loss_below, for_epochs}``; the original training code stops
at the first test loss below 5e-7, which is ``for_epochs: 0``).

The rule is read on the test-loss history only: a run stops at the first tested epoch E whose
test loss, and that of every test since some tested epoch S with E - S >= for_epochs, is below
the threshold. Epoch E's checkpoint (when scheduled) and losses are kept and no optimizer step
follows. Scheduled checkpoints after E are unreached: metadata.json lists them under
``early_stop.unreached`` and no file is written for them, so the forward cache, the analyzers
and the pages cover the reached epochs (``checkpoints`` in metadata.json) only.

Models trained as one stack stop independently: a stopped model's history, checkpoints and
files end at its own stop epoch and its weights are frozen (lr 0) while the others go on; the
stack ends when all have stopped or the schedule ends.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

REASON = "test loss below {below:g} for {n} epochs (from epoch {since})"
NOT_STOPPED = "test loss did not stay below {below:g} for {n} epochs before the schedule ended"


def stop_epoch(test_epoch: Sequence[int], test_loss: Sequence[float], rule: dict | None) -> int | None:
    """The epoch a run with this test-loss history stops at under ``rule`` (None: it does not)."""
    stopper = Stopper([rule])
    for epoch, loss in zip(test_epoch, test_loss, strict=True):
        if stopper.update(0, int(epoch), float(loss)):
            return int(epoch)
    return None


class Stopper:
    """Per model of a stack: since when its test loss has been below its threshold, and the
    epoch it stopped at (None: still training)."""

    def __init__(self, rules: list[dict | None]):
        self.rules = rules
        self.since: list[int | None] = [None] * len(rules)
        self.stopped: list[int | None] = [None] * len(rules)

    def update(self, i: int, epoch: int, loss: float) -> bool:
        """Record model i's test loss at ``epoch``; True when it stops here."""
        rule = self.rules[i]
        if rule is None or self.stopped[i] is not None:
            return False
        if loss >= rule["test_loss_below"]:
            self.since[i] = None
            return False
        since = self.since[i]
        if since is None:
            since = self.since[i] = epoch
        if epoch - since >= rule["for_epochs"]:
            self.stopped[i] = epoch
            return True
        return False

    def replay(self, i: int, test_epoch: Sequence[int], test_loss: Sequence[float]) -> None:
        """Model i's state after the given history (resuming from a snapshot)."""
        self.since[i] = self.stopped[i] = None
        for epoch, loss in zip(test_epoch, test_loss, strict=True):
            self.update(i, int(epoch), float(loss))

    def active(self, i: int) -> bool:
        return self.stopped[i] is None

    def all_stopped(self) -> bool:
        return all(s is not None for s in self.stopped)

    def record(self, i: int, epochs: Sequence[int]) -> dict | None:
        """The ``early_stop`` entry of metadata.json for model i with checkpoint schedule ``epochs`` (None:
        no rule)."""
        rule, stop = self.rules[i], self.stopped[i]
        if rule is None:
            return None
        words = {"below": rule["test_loss_below"], "n": rule["for_epochs"], "since": self.since[i]}
        reason = (REASON if stop is not None else NOT_STOPPED).format(**words)
        reached = [e for e in epochs if stop is None or e <= stop]
        return rule | {
            "stop_epoch": stop,
            "reason": reason,
            "reached": reached,
            "unreached": [e for e in epochs if e not in reached],
        }


def snapshot_stop(snapshot: str | os.PathLike, rule: dict | None, recorded: str | None) -> int | None | bool:
    """The epoch a training snapshot's model stopped at (None: it had not; ``recorded``: what
    the snapshot says), or False where ``rule`` applied to the snapshot's history tells
    otherwise (the rule changed since: training starts over)."""
    if rule is None:
        return None if recorded is None else False
    from safetensors import safe_open

    with safe_open(str(snapshot), framework="pt") as fh:
        history = fh.get_tensor("test_epoch").tolist(), fh.get_tensor("test_loss").tolist()
    found = stop_epoch(*history, rule)
    return found if found == (None if recorded is None else int(recorded)) else False


def reached_epochs(metadata_path: str | os.PathLike) -> list[int]:
    """The checkpoint epochs the variant whose metadata.json is ``metadata_path`` reached (its
    ``checkpoints`` table)."""
    from tdw.io.variant import read_metadata_json

    return [int(c["epoch"]) for c in read_metadata_json(Path(metadata_path))["checkpoints"]]


def reached_files(metadata_path: str | os.PathLike, probe: str) -> tuple[list[Path], list[Path]]:
    """The reached checkpoints of that variant and their caches of ``probe``, by epoch."""
    from tdw.layout import VariantLayout

    layout = VariantLayout.at(Path(metadata_path).parent)
    epochs = reached_epochs(metadata_path)
    return [layout.checkpoint(e) for e in epochs], [layout.cache(probe, e) for e in epochs]
