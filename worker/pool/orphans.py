"""Pool children die with their parent: no task runs on with nobody to take its result.

A prefork child that outlives its worker (``kill -9``, the OOM killer) would finish its task
and have nobody to report to, while the broker redelivers the same ``acks_late`` task to a
replacement worker: two runs at once. :func:`die_with_parent`, called first thing in a child:

1. Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` through ctypes, so the kernel kills the child the
   moment the parent's forking thread ends (the pool forks from the broker thread, which lives
   as long as the worker). If the parent is already gone by then, the child ends at once;
2. everywhere (and should the prctl fail): a daemon thread that checks every
   :data:`WATCH_INTERVAL` seconds whether the parent is still the parent (a child is
   re-parented when its parent dies) and kills the child when it is not.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading

__all__ = ["WATCH_INTERVAL", "die_with_parent"]

log = logging.getLogger("worker.pool")

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL = 0.5


def _set_pdeathsig(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _die() -> None:
    with contextlib.suppress(OSError):
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(70)  # not reached: SIGKILL cannot be caught


def _watch(parent: int) -> None:
    stop = threading.Event()
    while not stop.wait(WATCH_INTERVAL):
        if os.getppid() != parent:
            _die()


def die_with_parent(parent: int) -> bool:
    """Make this (child) process die when ``parent`` dies; True when the kernel will see to it."""
    armed = _set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the prctl took effect
        _die()
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()
    return armed
