"""Celery tasks on our worker: each runs through Celery's own tracer, in our pools.

A :class:`CeleryTask` stands for one task of a Celery app (``@app.task``, ``@shared_task``,
class-based) in the worker's task mapping. The consumer reads its options (``acks_late``,
``reject_on_worker_lost``, ``rate_limit``, time limits, ``ignore_result``) as Celery resolved
them from the app's configuration; the pool runs it with :func:`run_traced`, which hands the
request to ``celery.app.trace.build_tracer`` exactly as Celery's worker does. Celery's tracer
then gives the task its Celery semantics: ``self.request``, ``retry``, ``update_state``, task
signals, ``autoretry_for``, callbacks and chains, and results stored through the app's own
result backend. Our worker keeps what a Celery worker does around the tracer: consuming,
prefetch, acks, events, time limits, revokes and remote control.

One exception to "through the app's own backend": Celery's ``rpc://`` backend would publish
each state message with kombu, on a connection of its own, from the pool thread or child. In
our thread pools that thread takes turns on the GIL with the broker thread, and a Celery task
module ran slower on our ``solo`` than on Celery's. So while a job runs, the ``store_result``
of an ``RPCBackend`` (Celery's class itself, not a subclass that overrides it) builds the same
message as Celery (its ``_to_result`` body, its serializer through kombu, the default
exchange, routing key ``reply_to``, ``correlation_id``, its ``delivery_mode``, priority 0, no
headers) and hands it to the job's sink: the broker thread publishes it with publisher confirms,
before the job's ``Done`` (so an ``acks_late`` task is acked after its result is confirmed, as
for our own tasks). Outside a job (another thread of the task's own) Celery's publish is used.

Nothing here imports Celery at import time: only a worker that loaded a Celery app gets here.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from amqptool.codec.results import FAILURE, RETRY, SUCCESS, result_envelope
from amqptool.codec.tasks import safe_repr, task_headers
from worker.task.context import Sink
from worker.task.define import TASK_OPTIONS, Task

__all__ = ["CeleryTask", "run_traced"]

log = logging.getLogger("worker.celery")

REJECTED = "REJECTED"
IGNORED = "IGNORED"

# Celery's options (our names are Celery's), read from the Celery task: Celery resolved them
# from the app's conf. Not the naming ones, nor those Celery's tracer applies itself.
_OPTIONS = sorted(TASK_OPTIONS - {"name", "bind", "base", "typing", "track_started", "queue"})

_tracers: dict[str, Any] = {}
_tracer_pid = os.getpid()  # the worker's process; a pool child has another pid
_running = threading.local()  # .sink: the running job's sink, in the thread running it
_ROUTED = "_amqptool_routed"  # set on a backend whose store_result goes through the sink


def _celery_soft_limits() -> None:
    """Soft limits raise an exception Celery's ``SoftTimeLimitExceeded`` catches too."""
    from billiard.exceptions import SoftTimeLimitExceeded as CelerySoft

    from worker.policy.time_limits import soft_limit_error, use_soft_limit_error
    from worker.task.exceptions import SoftTimeLimitExceeded

    if not issubclass(soft_limit_error(), CelerySoft):
        both = type("SoftTimeLimitExceeded", (SoftTimeLimitExceeded, CelerySoft), {})
        use_soft_limit_error(both)


class CeleryTask(Task):
    """One task of a Celery app, as the worker's consumer and pools see it."""

    abstract = True

    def __init__(self, celery_task: Any) -> None:
        _celery_soft_limits()
        self.celery_task = celery_task
        self.app = celery_task._get_app()
        for option in _OPTIONS:
            value = getattr(celery_task, option, None)
            if value is not None:
                setattr(self, option, value)
        # STARTED goes through the app's backend (Celery's tracer stores it), not ours.
        setattr(self, "track_started", False)  # noqa: B010  # a class option set per instance
        setattr(self, "name", celery_task.name)  # noqa: B010  # a class option set per instance

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Called directly (not by the worker): Celery's own call, no tracing."""
        return self.celery_task(*args, **kwargs)

    def check_arguments(self, args: Any, kwargs: Any) -> str | None:
        return None  # Celery's worker leaves that to the call (a TypeError is a FAILURE)

    @property
    def annotations(self) -> dict[str, Any]:
        """``inspect registered`` annotations: the options Celery lists for a task."""
        out: dict[str, Any] = {}
        for option in ("rate_limit", "time_limit", "soft_time_limit"):
            value = getattr(self, option, None)
            if value is not None:
                out[option] = value
        return out

    def __repr__(self) -> str:
        return f"<CeleryTask {self.name}>"


def _tracer(task: CeleryTask, hostname: str) -> Any:
    """The task's tracer in this process (built on first use). A forked pool child builds its
    own, after telling the app it was forked so it does not share the parent's connections."""
    global _tracer_pid
    if _tracer_pid != os.getpid():
        _tracers.clear()
        _tracer_pid = os.getpid()
        _after_fork(task.app)
    tracer = _tracers.get(task.celery_task.name)
    if tracer is None:
        from celery.app.trace import build_tracer

        tracer = _tracers[task.celery_task.name] = build_tracer(
            task.celery_task.name, task.celery_task, hostname=hostname, app=task.app
        )
    return tracer


def _after_fork(app: Any) -> None:
    """What Celery's pool runs in a new child: the app drops the parent's connection pools,
    and ``worker_process_init`` handlers run (database connections and the like)."""
    reset = getattr(app, "_after_fork", None)
    if callable(reset):
        reset()
    from celery import signals

    signals.worker_process_init.send(sender=None)


def request_of(job: Any) -> dict[str, Any]:
    """The request dict Celery's worker passes to the tracer (headers, properties, delivery)."""
    msg = job.message
    request = task_headers(msg)
    properties = {
        "correlation_id": msg.correlation_id or msg.id,
        "reply_to": msg.reply_to,
        "delivery_mode": msg.delivery_mode,
        "priority": msg.priority,
    }
    request.update(
        properties=properties,
        reply_to=msg.reply_to,
        correlation_id=msg.correlation_id or msg.id,
        hostname=job.hostname,
        delivery_info=dict(job.delivery_info),
        args=list(msg.args),
        kwargs=dict(msg.kwargs),
        is_eager=False,
    )
    request.update(msg.embed())
    return request


Traced = tuple[str, float, list[tuple[str, dict[str, Any]]], bool]


@contextmanager
def results_through(sink: Sink | None) -> Iterator[None]:
    """While the block runs, routed rpc:// backends publish in this thread through ``sink``."""
    _running.sink = sink
    try:
        yield
    finally:
        _running.sink = None


def route_rpc(backend: Any) -> bool:
    """Make ``backend`` (this thread's, for Celery's backends are per thread) publish its rpc://
    state messages through the running job's sink (see the module doc). Once per backend;
    False for a backend left as it is (not rpc://, or a subclass with its own store_result)."""
    done = getattr(backend, _ROUTED, None)
    if done is not None:
        return bool(done)
    from celery.backends.rpc import RPCBackend
    from kombu.serialization import dumps

    routed = isinstance(backend, RPCBackend) and (
        type(backend).store_result is RPCBackend.store_result
    )
    if routed:
        original = backend.store_result

        def store_result(
            task_id: str,
            result: Any,
            state: str,
            traceback: Any = None,
            request: Any = None,
            **kwargs: Any,
        ) -> Any:
            sink = getattr(_running, "sink", None)
            if sink is None or backend.on_reply_declare(task_id):
                return original(task_id, result, state, traceback, request, **kwargs)
            routing_key, correlation_id = backend.destination_for(task_id, request)
            if not routing_key:
                return None  # as Celery: no reply_to, no result message
            meta = backend._to_result(task_id, state, result, traceback, request)
            # kombu's bytes for the backend's serializer, the properties its producer sets
            ctype, cenc, body = dumps(meta, serializer=backend.serializer)  # type: ignore[no-untyped-call]  # kombu
            if isinstance(body, str):
                body = body.encode(cenc or "utf-8")
            env = result_envelope(
                body,
                ctype,
                cenc,
                reply_to=routing_key,
                correlation_id=correlation_id,
                delivery_mode=backend.delivery_mode,
            )
            env.exchange = backend.exchange.name or ""  # Celery's: the default exchange
            sink.publish(env)
            return result

        backend.store_result = store_result
    setattr(backend, _ROUTED, routed)
    return routed


def run_traced(job: Any, task: CeleryTask, sink: Sink) -> Traced:
    """Run one job through Celery's tracer: ``(state, runtime, events, requeue)``; an rpc://
    backend's state messages go through ``sink`` (see the module doc)."""
    msg = job.message
    request = request_of(job)
    tracer = _tracer(task, job.hostname)
    route_rpc(task.celery_task.backend)
    with results_through(sink):
        einfo, info, runtime, rstr = tracer(msg.id, request["args"], request["kwargs"], request)
    if info is None:
        return SUCCESS, runtime, [("task-succeeded", {"result": rstr, "runtime": runtime})], False
    state, exc = info.state, info.retval
    fields: dict[str, Any] = {
        "exception": safe_repr(exc),
        "traceback": str(getattr(einfo, "traceback", "")),
    }
    if state == RETRY:
        fields["exception"] = safe_repr(getattr(exc, "exc", None) or exc)
        return RETRY, runtime, [("task-retried", fields)], False
    if state == REJECTED:
        requeue = bool(getattr(exc, "requeue", False))
        events: list[tuple[str, dict[str, Any]]] = [
            ("task-failed", fields),
            ("task-rejected", {"requeue": requeue}),
        ]
        return REJECTED, runtime, events, requeue
    if state == IGNORED:
        return IGNORED, runtime, [], False
    return FAILURE, runtime, [("task-failed", fields)], False
