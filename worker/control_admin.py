"""Administrative remote control commands: stats, conf, report, queues, pool size, memory.

Registered in :mod:`worker.control`'s one table with :func:`~worker.control.control_command`,
with Celery's names, arguments and reply shapes (PROTOCOL.md §4.6):

=================  =========  =============================================================
``stats``          inspect    the keys Flower reads (total, broker without password, pool,
                              pid, prefetch_count, rusage, clock as a string, uptime)
``conf``           inspect    the worker's settings under Celery's names, secrets masked
                   (dump_conf)  (non-default ones unless ``with_defaults``)
``report``         inspect    ``{"ok": <software/platform/settings text>}``
``query_task``     inspect    ``{id: [state, request-info]}``, unknown ids left out
``active_queues``  inspect    kombu's queue description per consumed queue
``memsample``      inspect    the RSS now (``"52.5MB"``), kept for ``memdump``
``memdump``        inspect    the samples and the RSS after a garbage collection
``objgraph``       inspect    needs the objgraph library (error otherwise)
``add_consumer``   control    declare like Celery (kombu's ``Queue.from_dict``), consume
``cancel_consumer`` control   stop consuming from a queue
``pool_grow``      control    ``n`` more slots (threads or prefork children); prefetch
``pool_shrink``               follows (slots x multiplier); the solo pool refuses
``autoscale``      control    ``ValueError('Autoscale not enabled')`` (no autoscaler)
``pool_restart``   control    ``ValueError('Pool restarts not enabled')``
``election``       control    accepted, answers null (no gossip in this worker)
=================  =========  =============================================================

Unlike Celery, ``add_consumer`` declares before answering, so a refused declaration (different
flags, an exclusive queue of another connection) is an ``{"error": ...}`` reply rather than a
lost channel.
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import logging
import os
import platform
import re
import resource
import tempfile
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from amqptool.settings import redact_url
from worker.config import WorkerConfig, default_concurrency
from worker.control import Panel, control_command
from worker.queues import QueueSpec

__all__ = ["memory_rss", "settings_table"]

log = logging.getLogger("worker.control")

MASK = "*" * 8
HIDDEN_SETTINGS = re.compile(
    "API|TOKEN|KEY|SECRET|PASS|PROFANITIES_LIST|SIGNATURE|DATABASE|BEAT_DBURI", re.IGNORECASE
)

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


# --------------------------------------------------------------------------- conf, report


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool | int):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in (
        "1",
        "true",
        "yes",
        "on",
        "0",
        "false",
        "no",
        "off",
        "",
    ):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise ValueError(f"{name} must be true or false, not {value!r}")


def _include(tasks: Mapping[str, Any]) -> list[str]:
    """The task modules (``-A``), as the modules the registered tasks come from."""
    mods = {type(t).__module__ for name, t in tasks.items() if not name.startswith("celery.")}
    return sorted(m for m in mods if not m.startswith("worker."))


def _defaults() -> dict[str, Any]:
    return {
        "result_backend": "rpc://",
        "accept_content": ["application/json"],
        "task_serializer": "json",
        "result_serializer": "json",
        "task_protocol": 2,
        "enable_utc": True,
        "timezone": "UTC",
        "control_exchange": "celery",
        "event_exchange": "celeryev",
        "task_default_queue": "celery",
        "broker_heartbeat": 60,
        "broker_connection_timeout": 4,
        "broker_connection_max_retries": 100,
        "worker_pool": "prefork",
        "worker_concurrency": default_concurrency(),
        "worker_prefetch_multiplier": 4,
        "worker_send_task_events": False,
        "worker_heartbeat_interval": 2.0,
        "worker_disable_control": [],
    }


def settings_table(
    config: WorkerConfig,
    tasks: Mapping[str, Any],
    *,
    concurrency: int | None = None,
    task_events: bool | None = None,
    with_defaults: bool = False,
) -> dict[str, Any]:
    """The worker's settings under Celery's names (ours where Celery has none), secrets masked.

    Without ``with_defaults`` only the settings that differ from the defaults, plus
    ``broker_url`` and ``include`` (always set), as ``celery inspect conf`` shows them.
    """
    ep = config.settings.primary
    current: dict[str, Any] = {
        "broker_url": config.settings.redacted(),
        "include": _include(tasks),
        "result_backend": "rpc://",
        "accept_content": sorted(config.accept),
        "task_serializer": "json",
        "result_serializer": "json",
        "task_protocol": 2,
        "enable_utc": True,
        "timezone": "UTC",
        "control_exchange": "celery",
        "event_exchange": "celeryev",
        "task_default_queue": "celery",
        "broker_heartbeat": ep.heartbeat if ep.heartbeat is not None else 60,
        "broker_connection_timeout": ep.connection_timeout or 4,
        "broker_connection_max_retries": config.connect_retries,
        "worker_pool": config.pool,
        "worker_concurrency": config.concurrency if concurrency is None else concurrency,
        "worker_prefetch_multiplier": config.prefetch_multiplier,
        "worker_send_task_events": config.task_events if task_events is None else task_events,
        "worker_heartbeat_interval": config.heartbeat_interval,
        "worker_disable_control": sorted(config.disable_control),
    }
    if not with_defaults:
        defaults = _defaults()
        current = {
            k: v
            for k, v in current.items()
            if k in ("broker_url", "include") or defaults.get(k, MASK) != v
        }
    return mask_settings(current)


def mask_settings(table: Mapping[str, Any]) -> dict[str, Any]:
    """Celery's censoring: secret-looking keys become ``********``, URLs lose their password."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            out[key] = mask_settings(value)
        elif HIDDEN_SETTINGS.search(key):
            out[key] = MASK
        elif isinstance(value, str) and "://" in value:
            out[key] = redact_url(value)
        else:
            out[key] = value
    return out


def _table(panel: Panel, with_defaults: bool) -> dict[str, Any]:
    target = panel.target
    return settings_table(
        target.config,
        target.tasks,
        concurrency=int(target.pool_stats().get("max-concurrency", target.config.concurrency)),
        task_events=target.events.task_events,
        with_defaults=with_defaults,
    )


@control_command(kind="inspect", aliases=("dump_conf",), signature="[include_defaults=False]")
def conf(panel: Panel, with_defaults: Any = False, **kwargs: Any) -> Any:
    """The worker's settings (non-default ones unless with_defaults), secrets masked."""
    return _table(panel, _bool(with_defaults, "with_defaults"))


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


@control_command(kind="inspect")
def report(panel: Panel) -> Any:
    """Software, platform and settings, for bug reports."""
    from amqptool import __version__

    settings = "\n".join(f"{k}: {v!r}" for k, v in _table(panel, False).items())
    text = (
        f"\nsoftware -> amqptool-worker:{__version__} pika:{_version('pika')}"
        f" py:{platform.python_version()}\n"
        f"platform -> system:{platform.system()}"
        f" arch:{', '.join(x for x in platform.architecture() if x)}\n"
        f"            kernel version:{platform.release()}"
        f" imp:{platform.python_implementation()}\n"
        f"loader   -> worker (pool {panel.target.config.pool})\n"
        f"settings -> transport:amqp results:rpc://\n\n{settings}\n"
    )
    return {"ok": text}


# --------------------------------------------------------------------------- tasks, queues


@control_command(kind="inspect", signature="[id1 [id2 [... [idN]]]]")
def query_task(panel: Panel, ids: Any = (), **kwargs: Any) -> Any:
    """Where each task is: ``{id: [active|reserved|scheduled, request-info]}``."""
    wanted = [ids] if isinstance(ids, str) else [str(i) for i in ids or ()]
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
    spec = QueueSpec.from_options(queue, exchange, exchange_type, routing_key, **options)
    if panel.target.add_queue(spec):
        log.info("Started consuming from %s", queue)
    return {"ok": f"add consumer {queue}"}


@control_command(signature="<queue>")
def cancel_consumer(panel: Panel, queue: str, **kwargs: Any) -> Any:
    """Stop consuming from a queue."""
    if panel.target.cancel_queue(str(queue)):
        log.info("Canceled queue %s", queue)
    return {"ok": f"no longer consuming from {queue}"}


# --------------------------------------------------------------------------- pool


def _slots(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | str):
        raise ValueError(f"n must be a whole number, not {n!r}")
    value = int(n)
    if value < 1:
        raise ValueError(f"n must be at least 1, not {value}")
    return value


def _resize(panel: Panel, command: str, delta: int) -> dict[str, str] | None:
    if panel.target.config.pool == "solo":
        return {"error": f"{command} is not supported by the solo pool (it has one slot)"}
    panel.target.resize_pool(delta)
    return None


@control_command(signature="[N=1]")
def pool_grow(panel: Panel, n: Any = 1, **kwargs: Any) -> Any:
    """Grow the pool by n threads or processes (prefetch follows)."""
    return _resize(panel, "pool_grow", _slots(n)) or {"ok": "pool will grow"}


@control_command(signature="[N=1]")
def pool_shrink(panel: Panel, n: Any = 1, **kwargs: Any) -> Any:
    """Shrink the pool by n threads or processes (busy ones finish their task first)."""
    return _resize(panel, "pool_shrink", -_slots(n)) or {"ok": "pool will shrink"}


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


# --------------------------------------------------------------------------- memory

_UNITS = ((2**40, "TB"), (2**30, "GB"), (2**20, "MB"), (2**10, "KB"), (0, "b"))
_samples: deque[str] = deque(maxlen=10_000)  # like Celery's module-level sample list


def _humanbytes(n: int) -> str:
    for div, unit in _UNITS:
        if n >= div:
            value = n / div if div else n
            text = str(int(value)) if int(value) == value else f"{value:.5}"
            return f"{text}{unit}"
    return f"{n}b"


def memory_rss() -> str | None:
    """This process's resident memory now, e.g. ``"52.5MB"`` (None where /proc is missing)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return _humanbytes(pages * os.sysconf("SC_PAGE_SIZE"))


@control_command(kind="inspect")
def memsample(panel: Panel, **kwargs: Any) -> Any:
    """Sample the resident memory (kept for memdump)."""
    rss = memory_rss()
    if rss is not None:
        _samples.append(rss)
    return rss


@control_command(kind="inspect", signature="[n_samples=10]")
def memdump(panel: Panel, samples: Any = 10, **kwargs: Any) -> Any:
    """The memsample samples (at most n), then the resident memory after a collection."""
    n = _slots(samples)
    if memory_rss() is None:
        return "- rss: (not available on this platform).\n"
    taken = list(_samples)
    _samples.clear()
    if len(taken) > n:
        step = len(taken) // n
        taken = taken[::step][:n]
    gc.collect()
    lines = ["- rss (sample):", *(f"-    > {m}," for m in taken)] if taken else []
    lines.append(f"- rss (end): {memory_rss()}.")
    return "\n".join(lines) + "\n"


@control_command(kind="inspect", signature="[object_type=Request] [num=200 [max_depth=10]]")
def objgraph(panel: Panel, num: Any = 200, max_depth: Any = 10, type: Any = "Request") -> Any:
    """Graph of uncollected objects of a type into a PNG file (needs objgraph)."""
    try:
        _objgraph = importlib.import_module("objgraph")  # optional: Celery's needs it too
    except ImportError:
        raise ImportError("Requires the objgraph library") from None
    with tempfile.NamedTemporaryFile(prefix="wobjg", suffix=".png", delete=False) as fh:
        objects = _objgraph.by_type(str(type))[: int(num)]
        _objgraph.show_backrefs(
            objects,
            max_depth=int(max_depth),
            highlight=lambda v: v in objects,
            filename=fh.name,
        )
    return {"filename": fh.name}
