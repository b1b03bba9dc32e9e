"""Running tasks the broker thread may stop: time limits and ``revoke(terminate=True)``.

How each pool enforces a limit is described in :mod:`worker.policy.time_limits`. Here, on the broker
thread:

- when a task starts, a timer is armed for its hard limit (and, for pools whose children do not
  enforce the soft limit themselves, for the soft one);
- at the hard limit, a prefork child still running the task is killed (``SIGKILL``) and the task
  is announced at once as failed with ``TimeLimitExceeded(<limit>)`` (FAILURE result, errbacks,
  ``task-failed``, ack); in the threads pools ``TimeLimitExceeded`` is raised in the task's
  thread instead and the task's own outcome reports it;
- ``terminate`` signals the prefork child running the task and announces it REVOKED
  (``"terminated"``, ``task-revoked`` with ``terminated: true`` and the signal number).

A task announced here is *settled*: whatever the pool reports for it later (the child's death,
or a late result) is dropped (:meth:`Watch.settled`).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterable, Mapping
from typing import Any

from amqptool.codec.results import FAILURE
from amqptool.codec.tasks import safe_repr
from worker.policy.time_limits import Limits, hard_limit_error, resolve, soft_limit_error
from worker.pool.base import Pool
from worker.pool.callbacks import on_failure_messages
from worker.runtime.request import Request
from worker.runtime.settle import Settle
from worker.runtime.timer import Timer, TimerEntry
from worker.task.exceptions import TimeLimitExceeded

__all__ = ["Watch"]

log = logging.getLogger("worker.consumer")


class Watch:
    """Time limits and terminate for the jobs in ``active`` (seq -> request, the consumer's)."""

    def __init__(
        self,
        pool: Pool,
        timer: Timer,
        active: Mapping[int, Request],
        settle: Settle,
        *,
        task_limits: Mapping[str, Limits],
        defaults: Limits,
    ) -> None:
        self.pool = pool
        self.timer = timer
        self.active = active
        self.settle = settle
        self.task_limits = task_limits  # set by the time_limit control command
        self.defaults = defaults
        self._limits: dict[int, Limits] = {}  # seq -> limits of dispatched jobs that have any
        self._timers: dict[int, list[TimerEntry]] = {}
        self._settled: set[int] = set()

    def dispatched(self, req: Request) -> float | None:
        """Note the limits of a request handed to the pool; returns its soft limit (the pool
        child enforces it, prefork)."""
        msg = req.message
        limits = resolve(
            (msg.time_limit, msg.soft_time_limit),
            req.task,
            self.task_limits,
            self.defaults,
        )
        if limits == (None, None):
            return None
        self._limits[req.seq] = limits
        return limits[1]

    def started(self, req: Request) -> None:
        """Arm the timers of a task that began running."""
        if not self._limits:
            return
        limits = self._limits.pop(req.seq, None)
        if limits is None:
            return
        hard, soft = limits
        if hard is None and (soft is None or self.pool.handles_soft_limits):
            return
        timer, now, seq = self.timer, time.monotonic(), req.seq
        entries = []
        if soft is not None and not self.pool.handles_soft_limits:
            entries.append(timer.call_at(now + soft, lambda: self._soft(req, soft)))
        if hard is not None:
            entries.append(timer.call_at(now + hard, lambda: self._hard(req, hard)))
        self._timers[seq] = entries

    def settled(self, seq: int) -> bool:
        """The pool is done with ``seq``: disarm; True when it was already announced here."""
        if self._limits:
            self._limits.pop(seq, None)
        if self._timers:
            for entry in self._timers.pop(seq, ()):
                entry.cancel()
        if self._settled and seq in self._settled:
            self._settled.discard(seq)
            return True
        return False

    # ------------------------------------------------------------------ time limits

    def _running(self, req: Request) -> bool:
        return self.active.get(req.seq) is req and req.seq not in self._settled

    def _soft(self, req: Request, limit: float) -> None:
        if not self._running(req):
            return
        msg = req.message
        log.warning("Soft time limit (%ss) exceeded for %s[%s]", limit, msg.task, msg.id)
        self.pool.raise_in_job(req.seq, soft_limit_error())

    def _hard(self, req: Request, limit: float) -> None:
        if not self._running(req):
            return
        msg = req.message
        log.error("Hard time limit (%ss) exceeded for %s[%s]", limit, msg.task, msg.id)
        pool = self.pool
        if pool.kill_job(req.seq, signal.SIGKILL):
            self._settled.add(req.seq)
            self._announce_failure(req, TimeLimitExceeded(limit))
        else:  # threads: the task's own outcome will carry it (if it ever returns)
            pool.raise_in_job(req.seq, hard_limit_error(limit))

    def _announce_failure(self, req: Request, exc: BaseException) -> None:
        msg = req.message
        for env in on_failure_messages(msg, req.queue):
            self.settle.publish(env)
        self.settle.report_state(req, FAILURE, exc)
        self.settle.events.task(
            "task-failed", msg.id, {"exception": safe_repr(exc), "traceback": None}
        )
        self.settle.ack(req)

    # ------------------------------------------------------------------ terminate

    def terminate_ids(self, task_ids: Iterable[str], signum: int) -> list[str]:
        """``revoke(terminate=True)``: the ids of the running tasks among these now signalled."""
        wanted = set(task_ids)
        running = [r for r in list(self.active.values()) if r.id in wanted]
        return [r.id for r in running if self.terminate(r, signum)]

    def terminate_stamped(
        self, headers: Mapping[str, list[Any]], signum: int
    ) -> dict[str, set[Any]]:
        """``revoke_by_stamped_headers(terminate=True)``: signal the running tasks stamped with
        one of these values; returns the ``{header: values}`` that matched one."""
        hit: dict[str, set[Any]] = {}
        for req in list(self.active.values()):
            stamps = req.message.stamps or {}
            matched = {}
            for key, values in headers.items():
                have = stamps.get(key)
                have = have if isinstance(have, list | tuple) else [have]
                common = {v for v in have if v is not None and v in values}
                if common:
                    matched[key] = common
            if matched and self.terminate(req, signum):
                for key, common in matched.items():
                    hit.setdefault(key, set()).update(common)
        return hit

    def terminate(self, req: Request, signum: int) -> bool:
        """Signal the process running ``req`` (prefork); announce it REVOKED "terminated"."""
        if not req.started or not self._running(req):
            return False
        msg = req.message
        log.info("Terminating %s (%s)", msg.id, signum)
        if not self.pool.kill_job(req.seq, signum):
            log.warning(
                "Cannot terminate %s[%s]: the %s pool cannot stop a running task",
                msg.task,
                msg.id,
                self.pool.name,
            )
            return False
        self._settled.add(req.seq)
        self.settle.revoke(req, "terminated", signum=signum)
        return True
