"""Pipeline stage: per-task-type rate limits on the broker thread (docs/protocol.md §5.5).

A :class:`~worker.policy.rate_limit.RateLimiter` (a token bucket per task name, per worker) decides;
this gate feeds it and wakes it with the broker thread's timer. A request that must wait is
*held* in memory, unacknowledged and in arrival order, and shown by ``reserved``; it is never
dropped. On a warm shutdown (or a lost connection) :meth:`RateLimitGate.clear` gives the held
requests back, and the consumer returns them to their queue.

The limit of a task name is its ``rate_limit`` option until the ``rate_limit`` control command
sets another (kept in ``WorkerState.rate_limits``); a new limit starts with a full bucket and
0/None removes the limit, letting everything held for that name go.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from worker.policy.rate_limit import RateLimiter
from worker.policy.worker_state import WorkerState
from worker.runtime.request import Request
from worker.runtime.timer import Timer, TimerEntry
from worker.task.define import Task

__all__ = ["RateLimitGate"]

log = logging.getLogger("worker.consumer")


class RateLimitGate:
    """Admits requests now (``release(request)``) or when their task's bucket has a token."""

    def __init__(
        self,
        state: WorkerState,
        tasks: Mapping[str, Task],
        timer: Timer,
        release: Callable[[Request], None],
    ) -> None:
        self.disabled = False  # worker_disable_rate_limits: every request passes at once
        self.state = state
        self.tasks = tasks
        self.timer = timer
        self.release = release
        self.limiter: RateLimiter[Request] = RateLimiter()
        self._configured: set[str] = set()
        self._entry: TimerEntry | None = None

    def admit(self, req: Request) -> None:
        if self.disabled:
            self.release(req)
            return
        name = req.message.task
        if name not in self._configured:
            self._configure(name)
        if self.limiter.submit(name, req, time.monotonic()):
            self.release(req)
        else:
            self._arm()

    def changed(self, task_name: str) -> None:
        """The ``rate_limit`` control command set or removed the limit of ``task_name``."""
        self._configure(task_name)
        self._fire()

    def waiting(self) -> list[Request]:
        """The held requests, in arrival order."""
        return self.limiter.held()

    def clear(self) -> list[Request]:
        """Give back every held request (warm shutdown, connection lost)."""
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None
        return self.limiter.drain()

    def _configure(self, name: str) -> None:
        self._configured.add(name)
        rates = self.state.rate_limits
        task = self.tasks.get(name)
        rate = rates.get(name, task.rate_limit if task is not None else None)
        try:
            self.limiter.set_rate(name, rate)
        except ValueError as exc:
            log.error("Task %s: ignoring its rate limit %r: %s", name, rate, exc)
            self.limiter.set_rate(name, None)

    def _arm(self) -> None:
        now = time.monotonic()
        wait = self.limiter.next_release(now)
        entry = self._entry
        if wait is None:
            return
        when = now + wait
        if entry is not None and not entry.cancelled:
            if entry.when <= when:
                return
            entry.cancel()
        self._entry = self.timer.call_at(when, self._fire)

    def _fire(self) -> None:
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None
        for req in self.limiter.release(time.monotonic()):
            self.release(req)
        self._arm()
