"""A received task as the broker thread tracks it, from delivery to ack."""

from __future__ import annotations

from typing import Any

from amqptool.codec.tasks import TaskMessage, safe_repr
from amqptool.codec.times import format_iso
from worker.task.define import Task

__all__ = ["Request"]


class Request:
    """One delivery of a task message on the task channel of connection ``generation``."""

    __slots__ = (
        "acknowledged",
        "delivery_tag",
        "exchange",
        "generation",
        "message",
        "priority",
        "queue",
        "redelivered",
        "routing_key",
        "seq",
        "task",
        "time_start",
        "worker_pid",
    )

    def __init__(
        self,
        seq: int,
        message: TaskMessage,
        task: Task,
        *,
        delivery_tag: int,
        generation: int,
        queue: str,
        exchange: str = "",
        routing_key: str = "",
        redelivered: bool = False,
        priority: int | None = None,
    ) -> None:
        self.seq = seq
        self.message = message
        self.task = task
        self.delivery_tag = delivery_tag
        self.generation = generation
        self.queue = queue
        self.exchange = exchange
        self.routing_key = routing_key
        self.redelivered = redelivered
        self.priority = priority
        self.acknowledged = False
        self.time_start: float | None = None
        self.worker_pid: int | None = None

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def started(self) -> bool:
        return self.time_start is not None

    def delivery_info(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "priority": self.priority,
            "redelivered": self.redelivered,
        }

    def info(self, hostname: str, *, safe: bool = False) -> dict[str, Any]:
        """The request-info object of ``inspect active/reserved/scheduled`` (§4.6)."""
        msg = self.message
        args: Any = msg.args
        kwargs: Any = msg.kwargs
        if safe:
            args = msg.argsrepr or safe_repr(tuple(msg.args))
            kwargs = msg.kwargsrepr or safe_repr(msg.kwargs)
        return {
            "id": msg.id,
            "name": msg.display_name,
            "args": args,
            "kwargs": kwargs,
            "type": msg.task,
            "hostname": hostname,
            "time_start": self.time_start,
            "acknowledged": self.acknowledged,
            "delivery_info": self.delivery_info(),
            "worker_pid": self.worker_pid,
        }

    def received_fields(self) -> dict[str, Any]:
        """The fields of the ``task-received`` event (§3.4)."""
        msg = self.message
        args, kwargs = msg.argsrepr, msg.kwargsrepr
        if msg.protocol != 1:  # v1 messages carry no reprs: Celery reports null
            args = args if args is not None else safe_repr(tuple(msg.args))
            kwargs = kwargs if kwargs is not None else safe_repr(msg.kwargs)
        return {
            "name": msg.display_name,
            "args": args,
            "kwargs": kwargs,
            "root_id": msg.root_id,
            "parent_id": msg.parent_id,
            "retries": msg.retries,
            "eta": format_iso(msg.eta) if msg.eta else None,
            "expires": format_iso(msg.expires) if msg.expires else None,
        }

    def __repr__(self) -> str:
        return f"<Request {self.message.task}[{self.message.id}] tag={self.delivery_tag}>"
