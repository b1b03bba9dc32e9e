"""The monitor's cyclic-GC setting while its event feed runs (issue #16).

Folding events allocates many short-lived containers (every decoded event is a dict), so
CPython's generation-0 collection, at its default threshold of 700 allocations, runs every few
dozen events, and the older generations it promotes into are scanned again and again with the
monitor's whole bounded state (10 000 tasks) and everything imported at start-up (Textual and
its widgets). :func:`ingest_gc` is the monitor's tuning for that, for as long as a feed runs:

* one full collection, then ``gc.freeze()``: what exists when the feed starts (modules, the app,
  its widgets) is moved out of the collector's generations, so later collections skip it;
* the generation-0 threshold is raised to :data:`GEN0_THRESHOLD` (never lowered), so young
  collections run ~14x less often; reference counting still frees non-cyclic garbage at once,
  so only cyclic garbage waits a little longer (no effect on the state's memory bound).

Measured on this 2-core machine (CPU time of JSON decoding + ``MonitorState.apply_many`` over
the bench's 90 600-event stream, 5 interleaved rounds, medians): default 73 000 events/s,
gen0 10 000 alone 78 000, freeze + gen0 10 000 86 000 (+17 %), ``gc.disable()`` 82 000; a
gen0 threshold of 50 000 gave nothing (71 000).

The setting is process-wide, so it is counted: the first :func:`ingest_gc` entered applies it,
the last one left restores the previous thresholds and unfreezes (unless someone else changed
the thresholds meanwhile: then theirs are kept).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["GEN0_THRESHOLD", "ingest_gc"]

GEN0_THRESHOLD = 10_000

_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] | None = None
_applied: tuple[int, int, int] | None = None


def _enter(gen0: int) -> None:
    global _users, _saved, _applied
    with _lock:
        _users += 1
        if _users > 1:
            return
        saved = gc.get_threshold()
        _saved = (saved[0], saved[1], saved[2])
        gc.collect()
        gc.freeze()
        if saved[0] and gen0 > saved[0]:  # 0 means the collector is off: leave it so
            gc.set_threshold(gen0, saved[1], saved[2])
        applied = gc.get_threshold()
        _applied = (applied[0], applied[1], applied[2])


def _leave() -> None:
    global _users, _saved, _applied
    with _lock:
        _users -= 1
        if _users > 0:
            return
        if _saved is not None and gc.get_threshold() == _applied:
            gc.set_threshold(*_saved)
        gc.unfreeze()
        _saved = _applied = None


@contextmanager
def ingest_gc(gen0: int = GEN0_THRESHOLD) -> Iterator[None]:
    """Apply the monitor's GC tuning for the duration of the block (nestable, thread-safe)."""
    _enter(gen0)
    try:
        yield
    finally:
        _leave()
