"""A Celery app's settings, as the worker uses them: queues, broker URL, worker options.

Only what ``-A`` brings: command-line flags and environment variables still win (see
``worker.cli``). Kombu's ``Queue``/``Exchange`` objects become our
:class:`~worker.queues.QueueSpec`, so the worker declares ``task_queues`` exactly as Celery's
worker would (arguments, exchange, routing key), and a queue that already exists is consumed as
it is.
"""

from __future__ import annotations

from typing import Any

from worker.policy.queues import QueueSpec
from worker.task.define import Task

__all__ = ["app_queue_specs", "apply_task_defaults", "default_queue_names", "queue_spec_of"]


def queue_spec_of(queue: Any) -> QueueSpec:
    """A kombu ``Queue`` as our spec (exchange, type, routing key, flags, arguments)."""
    exchange = queue.exchange
    name = exchange.name if exchange is not None else ""
    return QueueSpec(
        queue.name,
        exchange=name or "",
        exchange_type=(exchange.type if exchange is not None else None) or "direct",
        routing_key=queue.routing_key or queue.name,
        durable=bool(queue.durable),
        auto_delete=bool(queue.auto_delete),
        exclusive=bool(queue.exclusive),
        exchange_durable=bool(getattr(exchange, "durable", True)),
        exchange_auto_delete=bool(getattr(exchange, "auto_delete", False)),
        exchange_arguments=dict(getattr(exchange, "arguments", None) or {}) or None,
        queue_arguments=dict(queue.queue_arguments or {}) or None,
        binding_arguments=dict(queue.binding_arguments or {}) or None,
        consumer_arguments=dict(queue.consumer_arguments or {}) or None,
        limits={
            option: value
            for option in ("expires", "message_ttl", "max_length", "max_length_bytes")
            if (value := getattr(queue, option, None)) is not None
        }
        | ({"max_priority": queue.max_priority} if queue.max_priority is not None else {}),
        no_declare=bool(queue.no_declare),
    )


def app_queue_specs(app: Any) -> dict[str, QueueSpec]:
    """The app's queues (``task_queues``, or the default queue Celery would make)."""
    queues = app.amqp.queues  # Celery's Queues: task_queues, or the default queue
    return {name: queue_spec_of(q) for name, q in queues.items()}


def default_queue_names(app: Any) -> list[str]:
    """What ``celery -A app worker`` consumes without ``-Q``: every queue of the app."""
    return list(app.amqp.queues.keys())


# setting -> our Task option it is the default of
_TASK_DEFAULTS = {
    "task_acks_late": "acks_late",
    "task_reject_on_worker_lost": "reject_on_worker_lost",
    "task_track_started": "track_started",
    "task_ignore_result": "ignore_result",
    "task_default_rate_limit": "rate_limit",
    "task_serializer": "serializer",
}


def apply_task_defaults(conf: Any, app: Any) -> None:
    """Settings given by flags, the environment or a config module become the defaults of our
    tasks (options a task sets itself win) and, when there is a Celery app, its conf (before it
    binds its tasks, so they read them as under Celery)."""
    for name, option in _TASK_DEFAULTS.items():
        if conf.given(name):
            setattr(Task, option, conf[name])
    if app is None:
        return
    from celery.app.defaults import DEFAULTS

    from worker.celery_app import prepare_app

    pushed = {
        name: value
        for name, value in conf.values.items()
        if conf.sources[name] in ("flag", "env", "module") and name in DEFAULTS
    }
    if pushed:
        app.conf.update(pushed)
    prepare_app(app)
