"""How a request leaves the worker (broker thread): ack, reject, requeue, revoke, its state.

**Settle once.** A delivery is acknowledged, rejected or requeued exactly once, and only on the
channel it came from: :meth:`Settle.claim` is the one guard every path goes through (not yet
settled, and the link generation it was received on is still the current one; after a
reconnect its delivery tag means nothing and the broker redelivers it anyway).

**Its state.** :meth:`Settle.report_state` sends a task state where the client will look for
it: to the configured result backend when the worker has one (``--result-backend``), else to the
client's reply queue (``rpc://``); only when results are wanted (a backend or a ``reply_to``, and
not ignored by the message or the task).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from amqptool.codec.envelope import Envelope
from amqptool.codec.results import REVOKED, encode_result, result_body
from worker.runtime.request import Request

__all__ = ["Settle", "SettleLink", "TaskEvents"]

log = logging.getLogger("worker.consumer")


class Acks(Protocol):
    def ack(self, tag: int) -> None: ...


class SettleLink(Protocol):
    """What settling needs of the broker link (:class:`~worker.runtime.link.BrokerLink`)."""

    @property
    def generation(self) -> int: ...

    @property
    def acks(self) -> Acks: ...

    def reject(self, tag: int, *, requeue: bool) -> None: ...

    def publish(self, env: Envelope) -> None: ...

    def ack_after_publishes(self, tag: int) -> None: ...


class TaskEvents(Protocol):
    """The task-event half of :class:`~worker.runtime.events.EventDispatcher`."""

    def task(self, event_type: str, uuid: str, fields: dict[str, Any] | None = None) -> None: ...


class ResultStore(Protocol):
    def store(self, doc: Mapping[str, Any]) -> object: ...


class Settle:
    def __init__(
        self,
        link: SettleLink,
        events: TaskEvents,
        *,
        stores_results: bool = False,
        result_store: Callable[[], ResultStore | None] = lambda: None,
    ) -> None:
        self.link = link
        self.events = events
        self.stores_results = stores_results  # a result backend, not rpc://
        self.result_store = result_store

    def claim(self, req: Request) -> bool:
        """True once per request, while its channel is still ours: the caller settles it."""
        if req.acknowledged or req.generation != self.link.generation:
            return False
        req.acknowledged = True
        return True

    def ack(self, req: Request) -> None:
        if self.claim(req):
            self.link.acks.ack(req.delivery_tag)

    def ack_when_published(self, req: Request) -> None:
        """Ack once what the task published (result, retries, callbacks) is confirmed: a
        worker lost before that leaves the task to run again, not acked with its result gone."""
        if self.claim(req):
            self.link.ack_after_publishes(req.delivery_tag)

    def reject(self, req: Request, *, requeue: bool) -> bool:
        """Reject (``requeue``: back to its queue); False when it was settled already."""
        if not self.claim(req):
            return False
        self.link.reject(req.delivery_tag, requeue=requeue)
        return True

    def return_to_queue(self, req: Request) -> None:
        """An unstarted request goes back to its queue (if its channel is still ours)."""
        self.reject(req, requeue=True)

    def publish(self, env: Envelope) -> None:
        self.link.publish(env)

    def publish_state(
        self, reply_to: str, correlation_id: str, task_id: str, status: str, value: Any
    ) -> None:
        body = result_body(task_id, status, value)
        store = self.result_store()
        if store is not None:
            store.store(body)  # retried, else logged with the task id
            return
        self.link.publish(encode_result(body, reply_to=reply_to, correlation_id=correlation_id))

    def report_state(self, req: Request, status: str, value: Any) -> None:
        """Publish ``status`` for ``req`` if its client wants results."""
        msg = req.message
        wanted = not (msg.ignore_result or req.task.ignore_result)
        if (msg.reply_to or self.stores_results) and wanted:
            reply_to = msg.reply_to or ""
            self.publish_state(reply_to, msg.correlation_id or msg.id, msg.id, status, value)

    def revoke(self, req: Request, reason: str, *, signum: int | None = None) -> None:
        """Settle a request as REVOKED (``"revoked"``, ``"expired"`` or ``"terminated"``)."""
        msg = req.message
        log.info("Discarding revoked task: %s[%s] (%s)", msg.task, msg.id, reason)
        self.ack(req)
        exc = {"exc_type": "TaskRevokedError", "exc_message": [reason]}
        exc["exc_module"] = "celery.exceptions"
        self.report_state(req, REVOKED, exc)
        fields = {
            "terminated": reason == "terminated",
            "signum": signum,
            "expired": reason == "expired",
        }
        self.events.task("task-revoked", msg.id, fields)
