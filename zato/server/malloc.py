"""glibc malloc's mmap threshold, kept where it starts, so that a large block a worker frees goes
back to the system.

glibc serves a request of 128 KiB or more with its own mmap, and gives it back with munmap when it is
freed; but on that first free it raises the threshold to the block's size, so that the next block of
that size comes from the heap and, freed, stays there. A worker verifies a password (argon2id with
19 MiB of memory, zato.security.passwords) once per credential and then remembers it: that first
verification made the threshold 19 MiB, the second (or the next hash) took 19 MiB from the heap, and
every worker kept them for good (a worker's RSS went from 63 to 83 MiB at the first Basic Auth
request). Setting the threshold explicitly turns the adjustment off (mallopt(3)).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3          # <malloc.h>
MMAP_THRESHOLD = 128 * 1024    # glibc's own starting value


def keep_mmap_threshold() -> bool:
    """Fixes the mmap threshold at 128 KiB in this process and those it forks; False where the C
    library has no mallopt (not glibc), which then keeps its own behaviour."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
