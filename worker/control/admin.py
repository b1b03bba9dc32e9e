"""Administrative remote control commands: stats, tasks, queues and the pool.

Registered in :mod:`worker.control.registry`'s one table with
:func:`~worker.control.registry.control_command`, with Celery's names, arguments and reply shapes
(docs/protocol.md §4.6):

==================  =========  ============================================================
``stats``           inspect    the keys Flower reads (total, broker without password, pool,
                               pid, prefetch_count, rusage, clock as a string, uptime)
``query_task``      inspect    ``{id: [state, request-info]}``, unknown ids left out
``active_queues``   inspect    kombu's queue description per consumed queue
``add_consumer``    control    declare like Celery (kombu's ``Queue.from_dict``), consume
``cancel_consumer`` control    stop consuming from a queue
``pool_grow``       control    ``n`` more slots (threads or prefork children); prefetch
``pool_shrink``                follows (slots x multiplier); the solo pool refuses
``autoscale``       control    ``ValueError('Autoscale not enabled')`` (no autoscaler)
``pool_restart``    control    ``ValueError('Pool restarts not enabled')``
``election``        control    accepted, answers null (no gossip in this worker)
==================  =========  ============================================================

``conf``, ``report``, ``memsample``, ``memdump`` and ``objgraph`` are in
:mod:`worker.control.info`. Unlike Celery, ``add_consumer`` declares before answering, so a
refused declaration (different flags, an exclusive queue of another connection) is an
``{"error": ...}`` reply rather than a lost channel.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from typing import Any

from worker.control.arguments import broker_name, task_ids
from worker.control.info import whole_number  # also registers conf, report, memdump ...
from worker.control.registry import Panel, control_command
from worker.policy.queues import QueueSpec

__all__: list[str] = []

log = logging.getLogger("worker.control")

MAX_POOL_STEP = 256  # the consumer also caps the pool's size (MAX_POOL_SIZE)

# --------------------------------------------------------------------------- stats


_RUSAGE = (
    "utime",
    "stime",
    "maxrss",
    "ixrss",
    "idrss",
    "isrss",
    "minflt",
    "majflt",
    "nswap",
    "inblock",
    "oublock",
    "msgsnd",
    "msgrcv",
    "nsignals",
    "nvcsw",
    "nivcsw",
)


def _rusage() -> dict[str, Any]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {n: getattr(r, f"ru_{n}") for n in _RUSAGE}


@control_command(kind="inspect")
def stats(panel: Panel) -> Any:
    """Counters, pool, broker, prefetch, rusage, clock and uptime (the keys Flower reads)."""
    target = panel.target
    return {
        "total": dict(target.state.total),
        "pid": os.getpid(),
        "clock": str(target.clock.value),
        "uptime": int(time.monotonic() - target.started_at),
        "pool": target.pool_stats(),
        "broker": target.broker_stats(),
        "prefetch_count": target.prefetch_count(),
        "rusage": _rusage(),
    }


# --------------------------------------------------------------------------- tasks, queues


@control_command(kind="inspect", signature="[id1 [id2 [... [idN]]]]")
def query_task(panel: Panel, ids: Any = (), **kwargs: Any) -> Any:
    """Where each task is: ``{id: [active|reserved|scheduled, request-info]}``."""
    wanted = task_ids(ids or None)
    if not wanted:
        return {}
    target = panel.target
    found: dict[str, Any] = {}
    listings = (
        ("active", target.request_infos("active")),
        ("reserved", target.request_infos("reserved")),
        ("scheduled", [item["request"] for item in target.scheduled_infos()]),
    )
    want = set(wanted)
    for state, infos in listings:
        for info in infos:
            task_id = info.get("id")
            if task_id in want and task_id not in found:
                found[task_id] = [state, info]
    return {i: found[i] for i in wanted if i in found}


@control_command(kind="inspect")
def active_queues(panel: Panel) -> Any:
    """The task queues this worker consumes."""
    return panel.target.queue_infos()


@control_command(signature="<queue> [exchange [type [routing_key]]]")
def add_consumer(
    panel: Panel,
    queue: str,
    exchange: str | None = None,
    exchange_type: str | None = None,
    routing_key: str | None = None,
    **options: Any,
) -> Any:
    """Declare a queue (Celery's defaults: direct exchange and routing key named like it) and
    consume from it."""
    broker_name(queue, "queue")
    broker_name(exchange, "exchange", empty=True)
    broker_name(routing_key, "routing_key", empty=True)
    broker_name(options.get("binding_key"), "binding_key", empty=True)
    spec = QueueSpec.from_options(queue, exchange, exchange_type, routing_key, **options)
    if panel.target.add_queue(spec):
        log.info("Started consuming from %s", queue)
    return {"ok": f"add consumer {queue}"}


@control_command(signature="<queue>")
def cancel_consumer(panel: Panel, queue: str, **kwargs: Any) -> Any:
    """Stop consuming from a queue."""
    if panel.target.cancel_queue(str(broker_name(queue, "queue"))):
        log.info("Canceled queue %s", queue)
    return {"ok": f"no longer consuming from {queue}"}


# --------------------------------------------------------------------------- pool


def _resize(panel: Panel, command: str, delta: int) -> dict[str, str] | None:
    if panel.target.config.pool == "solo":
        return {"error": f"{command} is not supported by the solo pool (it has one slot)"}
    panel.target.resize_pool(delta)
    return None


@control_command(signature="[N=1]")
def pool_grow(panel: Panel, n: Any = 1, **kwargs: Any) -> Any:
    """Grow the pool by n threads or processes (prefetch follows)."""
    delta = whole_number(n, "n", MAX_POOL_STEP)
    return _resize(panel, "pool_grow", delta) or {"ok": "pool will grow"}


@control_command(signature="[N=1]")
def pool_shrink(panel: Panel, n: Any = 1, **kwargs: Any) -> Any:
    """Shrink the pool by n threads or processes (busy ones finish their task first)."""
    delta = whole_number(n, "n", MAX_POOL_STEP)
    return _resize(panel, "pool_shrink", -delta) or {"ok": "pool will shrink"}


@control_command(signature="[max [min]]")
def autoscale(panel: Panel, max: Any = None, min: Any = None) -> Any:
    """Change the autoscale range (this worker has no autoscaler)."""
    raise ValueError("Autoscale not enabled")


@control_command()
def pool_restart(
    panel: Panel, modules: Any = None, reload: Any = False, reloader: Any = None, **kwargs: Any
) -> Any:
    """Restart the pool (not enabled in this worker)."""
    raise ValueError("Pool restarts not enabled")


@control_command()
def election(panel: Panel, id: Any, topic: Any, action: Any = None, **kwargs: Any) -> Any:
    """Gossip election: accepted, nothing to elect here (answers null)."""
    return None
