"""Pipeline stage 1: a delivery becomes a :class:`~worker.runtime.request.Request`, or is rejected.

Bad input (docs/protocol.md §1.8; a clear error, nothing lost): a body that does not
decode, a content type not accepted (pickle unless ``--accept-content`` names it), an unknown
task, arguments that don't fit the function, a bad ``eta``/``expires`` or a message that is not a
task at all. Each gives one log line and ``basic.reject(requeue=False)`` (so a dead-letter
exchange on the queue catches it); when the task id is known, a FAILURE result (if the message
has a ``reply_to``) and ``task-failed`` + ``task-rejected`` events. The loop never dies of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from amqptool.codec.envelope import Envelope
from amqptool.codec.results import FAILURE
from amqptool.codec.tasks import InvalidTaskMessage, NotATaskMessage, decode_task
from amqptool.errors import BrokerError, ConnectionFailedError, DecodeError
from amqptool.transport.delayed import was_parked
from worker.policy.worker_state import WorkerState
from worker.runtime.events import EventDispatcher
from worker.runtime.link import BrokerLink
from worker.runtime.request import Request
from worker.runtime.settle import Settle
from worker.task.define import Task

__all__ = ["Intake"]

log = logging.getLogger("worker.consumer")


def _exc(exc_type: str, module: str, message: str) -> dict[str, Any]:
    return {"exc_type": exc_type, "exc_message": [message], "exc_module": module}


class Intake:
    """Decode and check each delivery; a good one becomes a Request handed to ``admit``."""

    def __init__(
        self,
        link: BrokerLink,
        tasks: Mapping[str, Task],
        state: WorkerState,
        events: EventDispatcher,
        settle: Settle,
        *,
        accept: frozenset[str],
        next_seq: Callable[[], int],
        hold: Callable[[Request], bool],
        admit: Callable[[Request, Envelope], None],
    ) -> None:
        self.link = link
        self.tasks = tasks
        self.state = state
        self.events = events
        self.settle = settle
        self.accept = accept
        self.next_seq = next_seq
        self.hold = hold  # a redelivered copy of a task still running here waits (redelivery)
        self.admit = admit
        self._taken = 0  # the last delivery tag that became a Request

    def on_message(self, env: Envelope) -> None:
        """The task consumers' callback (broker thread)."""
        tag = env.delivery_tag or 0
        self.link.acks.delivered(tag)
        try:
            self._receive(env, tag)
        except (ConnectionFailedError, BrokerError):
            raise
        except Exception:  # a bug here must cost one message, not the worker
            log.exception("internal error handling delivery %s", tag)
            if self._taken != tag:  # not yet in the pipeline: reject it here
                self.link.reject(tag, requeue=False)

    def _receive(self, env: Envelope, tag: int) -> None:
        try:
            msg = decode_task(env, accept=self.accept)
        except NotATaskMessage as exc:
            self._bad(env, tag, f"not a task message ({exc})")
            return
        except InvalidTaskMessage as exc:
            self._bad(
                env,
                tag,
                f"invalid task message: {exc}",
                task_id=exc.task_id,
                name=exc.task_name,
                error=_exc("ValueError", "builtins", str(exc)),
            )
            return
        except DecodeError as exc:
            task_id = env.headers.get("id") if env.headers else None
            name = env.headers.get("task") if env.headers else None
            if "is not accepted" in str(exc):
                error = _exc(
                    "ContentDisallowed", "kombu.exceptions", f"Refusing to deserialize: {exc}"
                )
            else:
                error = _exc("DecodeError", "kombu.exceptions", str(exc))
            self._bad(
                env,
                tag,
                f"cannot decode body: {exc}",
                task_id=task_id if isinstance(task_id, str) else None,
                name=name if isinstance(name, str) else None,
                error=error,
            )
            return
        task = self.tasks.get(msg.task)
        if task is None:
            self._bad(
                env,
                tag,
                "Received unregistered task of type " + repr(msg.task),
                task_id=msg.id,
                name=msg.task,
                error=_exc("NotRegistered", "celery.exceptions", msg.task),
                result=not msg.ignore_result,
            )
            return
        problem = task.check_arguments(msg.args, msg.kwargs)
        if problem is not None:
            self._bad(
                env,
                tag,
                f"arguments do not fit the task: {problem}",
                task_id=msg.id,
                name=msg.task,
                error=_exc("TypeError", "builtins", problem),
                result=not (msg.ignore_result or task.ignore_result),
            )
            return
        req = Request(
            self.next_seq(),
            msg,
            task,
            delivery_tag=tag,
            generation=self.link.generation,
            queue=self.link.queue_by_tag.get(env.consumer_tag or "", env.routing_key),
            exchange=env.exchange,
            routing_key=env.routing_key,
            redelivered=env.redelivered,
            priority=env.properties.priority,
        )
        self._taken = tag
        if not (msg.eta is not None and was_parked(env.headers)):  # received once, not per hop
            self.state.total[msg.display_name] += 1
            if log.isEnabledFor(logging.INFO):
                log.info("Task %s[%s] received", msg.task, msg.id)  # Celery's line
            if self.events.task_events:
                self.events.task("task-received", msg.id, req.received_fields())
        if req.redelivered and self.hold(req):
            return
        self.admit(req, env)

    def _bad(
        self,
        env: Envelope,
        tag: int,
        reason: str,
        *,
        task_id: str | None = None,
        name: str | None = None,
        error: dict[str, Any] | None = None,
        result: bool = True,
    ) -> None:
        what = (
            f"{name}[{task_id}]" if task_id else f"delivery {tag} (routing key {env.routing_key!r})"
        )
        log.error("Rejected %s: %s", what, reason)
        self.link.reject(tag, requeue=False)
        if not task_id or error is None:
            return
        reply_to = env.properties.reply_to
        if (reply_to or self.settle.stores_results) and result:
            self.settle.publish_state(
                reply_to or "", env.properties.correlation_id or task_id, task_id, FAILURE, error
            )
        message = error["exc_message"][0] if error["exc_message"] else ""
        self.events.task("task-failed", task_id, {"exception": f"{error['exc_type']}({message!r})"})
        self.events.task("task-rejected", task_id, {"requeue": False})
