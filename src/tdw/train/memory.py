"""The C allocator's handling of large freed blocks, for training processes.

glibc's malloc serves a block above its mmap threshold with fresh pages from the kernel and
returns them on free, so a loop that allocates the same large tensors every step pays a page
fault per 4 KiB page every step. Raising the threshold and the trim threshold keeps freed
blocks in the heap for reuse. Measured on the paper's model with the tables (p = 113, one
thread, a busy machine, bench/bench_train_parts.py with and without ``--keep-freed-memory``):
77 against 100 CPU ms per epoch (the default forward: 115 against 131). Only the timing
changes, never a number computed.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Keep freed blocks of up to ``limit`` bytes in the process's heap (glibc ``mallopt``).
    Returns whether the allocator took the setting (False where the C library is not glibc)."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, limit)) and bool(mallopt(M_TRIM_THRESHOLD, limit))
