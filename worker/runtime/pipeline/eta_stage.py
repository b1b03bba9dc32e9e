"""Pipeline stage: a task whose ETA is in the future waits here, in memory or on the broker.

On every delivery (the first one, and each time a parked copy comes back) the request's eta is
decided again by :func:`worker.policy.eta.decide`:

- **hold** (due within ``--eta-park-threshold`` seconds, default 600, well under RabbitMQ's
  30-minute ``consumer_timeout``): kept in memory, unacknowledged, in an
  :class:`~worker.policy.eta.EtaSchedule`; the prefetch count is raised by one while it waits (as
  Celery does), so the worker keeps receiving other work. If the worker dies the broker
  redelivers it.
- **park** (due later): a copy goes to a parking queue on the broker
  (:func:`amqptool.transport.delayed.park`, publisher-confirmed) that dead-letters it back to
  the task's queue before its eta; only then is the original acked, so nothing is lost if the
  worker dies meanwhile. A quorum task queue gets quorum parking queues (replicated: a parked
  task outlives the loss of a cluster node, as the task queue does). Parking that fails
  (broker refusal) falls back to holding.

A request is released (handed to the rate-limit gate) only once the wall clock has reached its
eta, so it never runs early; the broker thread's :class:`~worker.runtime.timer.Timer` (monotonic)
only says when to look. ``scheduled`` lists the held requests and, on the worker that parked
them, the parked ones (``acknowledged: true``) until their eta.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from amqptool.codec.envelope import Envelope
from amqptool.codec.times import format_iso, utcnow
from amqptool.errors import AmqpToolError, ConnectionFailedError
from amqptool.transport import Channel, delayed
from worker.policy.eta import ETA_PRIORITY, EtaSchedule, decide, seconds_until
from worker.runtime.request import Request
from worker.runtime.timer import Timer, TimerEntry

if TYPE_CHECKING:
    from worker.runtime.link import BrokerLink

__all__ = ["MAX_PARKED_LISTED", "EtaStage"]

log = logging.getLogger("worker.consumer")

MAX_PARKED_LISTED = 10_000  # parked requests remembered for ``scheduled`` (oldest dropped)
PARK_CONFIRM_TIMEOUT = 5.0  # s; past it (a blocked broker) the task is held in memory instead


class EtaStage:
    """Holds or parks requests until their eta; ``release(request)`` gets them when due.

    ``on_count(delta)`` is told +1 per request held in memory and -1 when it leaves (the
    consumer moves its prefetch by the same amount); ``ack(request)`` acks a parked original.
    """

    def __init__(
        self,
        timer: Timer,
        link: BrokerLink,
        *,
        release: Callable[[Request], None],
        on_count: Callable[[int], None],
        ack: Callable[[Request], None],
        threshold: float | None,
    ) -> None:
        self.timer = timer
        self.link = link
        self.threshold = threshold
        self._release = release
        self._on_count = on_count
        self._ack = ack
        self.schedule: EtaSchedule[Request] = EtaSchedule(lambda r: str(r.seq))
        self.parked: OrderedDict[str, tuple[datetime, Request]] = OrderedDict()
        self._entry: TimerEntry | None = None
        self._channel: Channel | None = None
        self._channel_generation = 0

    def admit(self, req: Request, env: Envelope | None) -> bool:
        """True when the request waits here (held or parked); False: it may run now."""
        eta = req.message.eta
        if eta is None:
            return False
        if self.parked:
            self.parked.pop(req.id, None)  # a parked copy came back
        now = utcnow()
        decision = decide(eta, now, self.threshold)
        if decision == "run":
            return False
        if decision == "park" and env is not None and self._park(req, env, eta, now):
            return True
        self.schedule.schedule(eta, req)
        self._on_count(+1)
        self._arm()
        return True

    # ------------------------------------------------------------------ holding

    def _arm(self) -> None:
        wait = self.schedule.seconds_until_next(utcnow())
        entry = self._entry
        if wait is None:
            if entry is not None:
                entry.cancel()
                self._entry = None
            return
        when = time.monotonic() + wait
        if entry is not None and not entry.cancelled:
            if entry.when <= when:
                return
            entry.cancel()
        self._entry = self.timer.call_at(when, self._fire)

    def _fire(self) -> None:
        self._entry = None
        for req in self.schedule.pop_due(utcnow()):
            self._on_count(-1)
            self._release(req)
        self._arm()

    def held(self) -> list[Request]:
        return [req for _eta, req in self.schedule.entries()]

    def clear(self) -> list[Request]:
        """Drop every held request (shutdown, connection lost) and return them."""
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None
        items = self.schedule.drain()
        if items:
            self._on_count(-len(items))
        return items

    # ------------------------------------------------------------------ parking

    def _park_channel(self) -> Channel:
        link = self.link
        ch = self._channel
        if ch is None or not ch.is_open or self._channel_generation != link.generation:
            if link.conn is None:
                raise ConnectionFailedError("not connected to the broker")
            ch = self._channel = link.conn.channel(confirm=True)
            self._channel_generation = link.generation
        return ch

    def _park(self, req: Request, env: Envelope, eta: datetime, now: datetime) -> bool:
        msg = req.message
        delay = seconds_until(eta, now)
        conn = self.link.conn
        if conn is not None and conn.blocked_reason is not None:
            return False  # the broker blocks publishers: hold it here rather than wait
        try:
            quorum = self.link.queue_types.get(req.queue) == "quorum"
            bucket = delayed.park(
                self._park_channel(),
                env,
                req.queue,
                delay,
                timeout=PARK_CONFIRM_TIMEOUT,
                quorum=quorum,
            )
        except ConnectionFailedError:
            raise
        except (AmqpToolError, ValueError) as exc:
            log.warning(
                "Could not park %s[%s] on the broker (%s); holding it in memory",
                msg.task,
                msg.id,
                exc,
            )
            self._channel = None
            return False
        self._ack(req)
        self.parked[msg.id] = (eta, req)
        while len(self.parked) > MAX_PARKED_LISTED:
            self.parked.popitem(last=False)
        log.info(
            "Task %s[%s] parked on the broker for %ss (eta %s)",
            msg.task,
            msg.id,
            bucket,
            format_iso(eta),
        )
        return True

    # ------------------------------------------------------------------ listing

    def items(self, hostname: str, *, safe: bool = False) -> list[dict[str, Any]]:
        """The ``scheduled`` reply: held requests, then parked ones, each soonest first."""
        now = utcnow()
        for task_id in [i for i, (eta, _r) in self.parked.items() if seconds_until(eta, now) <= 0]:
            del self.parked[task_id]
        out = self.schedule.items(lambda r: r.info(hostname, safe=safe))
        parked = sorted(self.parked.values(), key=lambda pair: pair[0])
        out.extend(
            {
                "eta": format_iso(eta),
                "priority": ETA_PRIORITY,
                "request": req.info(hostname, safe=safe),
            }
            for eta, req in parked
        )
        return out
