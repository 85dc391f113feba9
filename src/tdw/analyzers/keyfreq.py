"""Key frequencies of a run: always derived from data, never constants in code.

Default rule: the frequencies k whose embedding norm N_k = ||((F W_E)_{2k-1}, (F W_E)_{2k})||
is at least ``key_fraction`` of the largest, at the final checkpoint (the paper's notebooks
fix the key frequencies from the final checkpoint and reuse them for every checkpoint). A
config may instead give ``key_frequencies`` explicitly (a list), e.g. to compare runs.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from tdw.analyzers.fourier import embedding_component_norms, frequency_norms
from tdw.params import Param

# The parameters of every analyzer that reads the key frequencies (``key_frequencies``).
KEY_FREQUENCY_PARAMS = (
    Param("key_frequencies", Literal["final"] | list[int], "final", "'final': derived from the final checkpoint; or a list"),
    Param("key_fraction", float, 0.3, "'final' rule: embedding frequency norms at least this share of the largest"),
)


def embedding_frequency_norms(w_e: np.ndarray, p: int) -> np.ndarray:
    """N_k for k = 1..p//2 from W_E [d_vocab, d_model] (the `=` row dropped); [p//2]."""
    return frequency_norms(embedding_component_norms(w_e, p))


def key_frequencies(weights: dict[str, np.ndarray], p: int, given: str | list[int] | None, fraction: float) -> np.ndarray:
    """Key frequencies (1-based, sorted): the list ``given``, else (``"final"`` or None) the
    embedding rule with ``fraction``. Shape [key]."""
    if given not in (None, "final"):
        keys = np.asarray(sorted(int(k) for k in given), dtype=np.int64)
        if len(keys) == 0 or keys.min() < 1 or keys.max() > p // 2:
            raise ValueError(f"key_frequencies {list(keys)}: each must be in 1..{p // 2}")
        return keys
    norms = embedding_frequency_norms(weights["embed.W_E"], p)
    return np.flatnonzero(norms >= fraction * norms.max()) + 1
