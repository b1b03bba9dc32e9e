"""What the worker knows about its tasks: revoked ids, counters, limits (broker thread only).

``revoked`` is a :class:`~worker.policy.revoked.RevokedSet`: bounded like Celery's ``LimitedSet``
(docs/protocol.md §5.4: at most 50 000 ids, each kept 3 hours, oldest evicted first), stamped with
wall-clock times so that ``--statedb`` can keep it across restarts, plus the revokes by stamped
header. ``rate_limits`` and ``time_limits`` are what the ``rate_limit`` and ``time_limit``
control commands set, by task name; they override the tasks' own options on this worker.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from worker.policy.revoked import RevokedSet

__all__ = ["WorkerState"]


@dataclass
class WorkerState:
    """Counters and sets the control commands and heartbeats read."""

    revoked: RevokedSet = field(default_factory=RevokedSet)
    total: Counter[str] = field(default_factory=Counter)  # task name (or shadow) -> accepted
    processed: int = 0
    rate_limits: dict[str, str | float | None] = field(default_factory=dict)
    time_limits: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    """task name -> ``(hard, soft)`` seconds set by the ``time_limit`` control command."""
