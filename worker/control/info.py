"""What the worker tells about itself: ``conf``, ``report``, ``memsample``, ``memdump``, objgraph.

Registered in :mod:`worker.control.registry`'s table like every command, with Celery's names,
arguments and reply shapes (docs/protocol.md §4.6):

- ``conf`` (``dump_conf``): the worker's settings under Celery's names (ours where Celery has
  none), censored like Celery's: secret-looking keys become ``********`` and URLs lose their
  password; only the non-default ones (plus ``broker_url`` and ``include``) unless
  ``with_defaults``;
- ``report``: ``{"ok": <software / platform / settings text>}`` for bug reports;
- ``memsample``: the resident memory now (``"52.5MB"``, from ``/proc``), kept for ``memdump``;
  ``memdump``: those samples (at most ``samples``), then the RSS after a garbage collection;
- ``objgraph``: needs the objgraph library, like Celery's (an error reply otherwise).
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import os
import platform
import re
import tempfile
from collections import deque
from collections.abc import Mapping
from typing import Any

from amqptool.settings import redact_url
from worker.config import WorkerConfig, default_concurrency
from worker.control.arguments import bounded_count
from worker.control.registry import Panel, control_command

__all__ = ["mask_settings", "memory_rss", "settings_table", "whole_number"]

MASK = "*" * 8
HIDDEN_SETTINGS = re.compile(
    "API|TOKEN|KEY|SECRET|PASS|PROFANITIES_LIST|SIGNATURE|DATABASE|BEAT_DBURI", re.IGNORECASE
)

# --------------------------------------------------------------------------- conf, report


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool | int):
        return bool(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"{name} must be true or false, not {value!r}")


def whole_number(value: Any, name: str, most: int = 10_000) -> int:
    """A count argument (an int, or digits from a raw request) in ``[1, most]``; else
    ValueError."""
    return bounded_count(value, name, most)


def _include(tasks: Mapping[str, Any]) -> list[str]:
    """The task modules (``-A``), as the modules the registered tasks come from."""
    mods = {
        type(getattr(t, "celery_task", t)).__module__
        for name, t in tasks.items()
        if not name.startswith("celery.")
    }
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
        "result_backend": _result_backend(config),
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
    app_include = config.resolved.get("include")
    if app_include is not None:  # a Celery app: its include, and the built-ins Celery adds
        current["include"] = list(dict.fromkeys([*app_include[0], "celery.app.builtins"]))
    for name, (value, source) in config.resolved.items():  # the app's and config's settings
        if name not in current and (with_defaults or source != "default"):
            current[name] = _jsonable(value)
    return mask_settings(current)


def _jsonable(value: Any) -> Any:
    """A setting as a reply can carry it (kombu queues and the like as their repr)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return repr(value)


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


def _backend(panel: Panel) -> str:
    value, _source = panel.target.config.resolved.get("result_backend", (None, "default"))
    return redact_url(str(value)) if value else "rpc://"


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
        f"settings -> transport:amqp results:{_backend(panel)}\n\n{settings}\n"
    )
    return {"ok": text}


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
    n = whole_number(samples, "samples")
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
        objects = _objgraph.by_type(str(type))[: whole_number(num, "num")]
        _objgraph.show_backrefs(
            objects,
            max_depth=whole_number(max_depth, "max_depth", 100),
            highlight=lambda v: v in objects,
            filename=fh.name,
        )
    return {"filename": fh.name}


def _result_backend(config: WorkerConfig) -> str:
    """The worker's result backend URL as ``conf`` shows it (password hidden)."""
    from amqptool.backends.urls import redact

    return redact(config.result_backend) if config.result_backend else "rpc://"
