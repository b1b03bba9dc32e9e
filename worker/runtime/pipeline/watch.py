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
from typing import TYPE_CHECKING, Any

from amqptool.codec.results import FAILURE
from amqptool.codec.tasks import safe_repr
from worker.policy.time_limits import Limits, hard_limit_error, resolve, soft_limit_error
from worker.pool.callbacks import on_failure_messages
from worker.runtime.request import Request
from worker.runtime.timer import TimerEntry
from worker.task.exceptions import TimeLimitExceeded

if TYPE_CHECKING:
    from worker.runtime.consumer import Consumer

__all__ = ["Watch"]

log = logging.getLogger("worker.consumer")


class Watch:
    def __init__(self, consumer: Consumer) -> None:
        self.c = consumer
        cfg = consumer.config
        self.defaults: Limits = (cfg.time_limit, cfg.soft_time_limit)
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
            self.c.state.time_limits,
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
        if hard is None and (soft is None or self.c.pool.handles_soft_limits):
            return
        timer, now, seq = self.c.timer, time.monotonic(), req.seq
        entries = []
        if soft is not None and not self.c.pool.handles_soft_limits:
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
        return self.c.active.get(req.seq) is req and req.seq not in self._settled

    def _soft(self, req: Request, limit: float) -> None:
        if not self._running(req):
            return
        msg = req.message
        log.warning("Soft time limit (%ss) exceeded for %s[%s]", limit, msg.task, msg.id)
        self.c.pool.raise_in_job(req.seq, soft_limit_error())

    def _hard(self, req: Request, limit: float) -> None:
        if not self._running(req):
            return
        msg = req.message
        log.error("Hard time limit (%ss) exceeded for %s[%s]", limit, msg.task, msg.id)
        pool = self.c.pool
        if pool.kill_job(req.seq, signal.SIGKILL):
            self._settled.add(req.seq)
            self._announce_failure(req, TimeLimitExceeded(limit))
        else:  # threads: the task's own outcome will carry it (if it ever returns)
            pool.raise_in_job(req.seq, hard_limit_error(limit))

    def _announce_failure(self, req: Request, exc: BaseException) -> None:
        c = self.c
        msg = req.message
        for env in on_failure_messages(msg, req.queue):
            c.link.publish(env)
        if (msg.reply_to or c.config.stores_results) and not (
            msg.ignore_result or req.task.ignore_result
        ):
            c.publish_state(msg.reply_to or "", msg.correlation_id or msg.id, msg.id, FAILURE, exc)
        c.events.task("task-failed", msg.id, {"exception": safe_repr(exc), "traceback": None})
        c.ack(req)

    # ------------------------------------------------------------------ terminate

    def terminate_ids(self, task_ids: Iterable[str], signum: int) -> list[str]:
        """``revoke(terminate=True)``: the ids of the running tasks among these now signalled."""
        wanted = set(task_ids)
        running = [r for r in list(self.c.active.values()) if r.id in wanted]
        return [r.id for r in running if self.terminate(r, signum)]

    def terminate_stamped(
        self, headers: Mapping[str, list[Any]], signum: int
    ) -> dict[str, set[Any]]:
        """``revoke_by_stamped_headers(terminate=True)``: signal the running tasks stamped with
        one of these values; returns the ``{header: values}`` that matched one."""
        hit: dict[str, set[Any]] = {}
        for req in list(self.c.active.values()):
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
        if not self.c.pool.kill_job(req.seq, signum):
            log.warning(
                "Cannot terminate %s[%s]: the %s pool cannot stop a running task",
                msg.task,
                msg.id,
                self.c.pool.name,
            )
            return False
        self._settled.add(req.seq)
        self.c.revoke(req, "terminated", signum=signum)
        return True
