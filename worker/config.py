"""Worker options as one validated value, and node names (``-n``, docs/protocol.md §5.7)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from amqptool.codec.serialization import normalize_accept
from amqptool.errors import UsageError
from amqptool.settings import BrokerSettings
from worker.policy.eta import DEFAULT_PARK_THRESHOLD
from worker.policy.queues import QueueSpec

__all__ = ["WorkerConfig", "default_concurrency", "expand_nodename"]

DEFAULT_QUEUE = "celery"
DEFAULT_SCHEDULE_FILE = "amqptool-beat.json"  # -B's schedule file, in the current directory


def default_concurrency() -> int:
    """One pool slot per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def expand_nodename(name: str | None, hostname: str | None = None) -> str:
    """``name@host`` with Celery's ``%h`` (host), ``%n`` (name part), ``%d`` (domain), ``%%``.

    No name gives ``celery@<host>``; a name without ``@`` gets ``@<host>`` appended.
    """
    host = hostname or socket.gethostname()
    short, _, domain = host.partition(".")
    if not name:
        name = "celery@%h"
    if "@" not in name:
        name = f"{name}@%h"
    out = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "%" and i + 1 < len(name):
            code = name[i + 1]
            value = {"h": host, "n": short, "d": domain, "%": "%"}.get(code)
            if value is not None:
                out.append(value)
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class WorkerConfig:
    settings: BrokerSettings
    nodename: str
    queues: tuple[str, ...] = (DEFAULT_QUEUE,)
    pool: str = "prefork"
    concurrency: int = field(default_factory=default_concurrency)
    prefetch_multiplier: int = 4
    task_events: bool = False
    accept: frozenset[str] = frozenset({"application/json"})
    heartbeat_interval: float = 2.0
    connect_retries: int | None = 100
    disable_control: frozenset[str] = frozenset()  # control commands answered with an error
    # scheduling (worker.runtime.pipeline.eta_stage, worker.policy.time_limits,
    # worker.policy.revoked, worker.beat)
    eta_park_threshold: float | None = DEFAULT_PARK_THRESHOLD  # None: never park
    time_limit: float | None = None  # worker default hard limit, seconds
    soft_time_limit: float | None = None
    max_tasks_per_child: int | None = None  # prefork
    statedb: str | None = None  # revoked ids kept across restarts
    mingle: bool = True  # learn the revokes of running workers at startup
    beat: bool = False  # run the periodic-task scheduler in this worker (-B)
    schedule_file: str = DEFAULT_SCHEDULE_FILE
    # how to declare a queue (a Celery app's task_queues); others: QueueSpec.default(name)
    queue_specs: Mapping[str, QueueSpec] = field(default_factory=dict)
    # resolved Celery settings (name -> (value, source)) for inspect conf/report
    resolved: Mapping[str, tuple[Any, str]] = field(default_factory=dict)
    # Celery's native delayed delivery: the level queues' type ("" = not set up)
    native_delayed_delivery: str = "quorum"
    disable_rate_limits: bool = False  # worker_disable_rate_limits
    result_backend: str | None = None  # None / rpc://: results are reply messages
    result_expires: float | None = 86_400.0  # seconds a stored result is kept (0: forever)

    @classmethod
    def build(
        cls,
        settings: BrokerSettings,
        *,
        nodename: str | None = None,
        queues: Sequence[str] | str | None = None,
        pool: str = "prefork",
        concurrency: int | None = None,
        prefetch_multiplier: int = 4,
        events: bool = False,
        accept_content: Sequence[str] | str | None = None,
        heartbeat_interval: float = 2.0,
        connect_retries: int | None = 100,
        disable_control: Sequence[str] | str | None = None,
        eta_park_threshold: float | None = DEFAULT_PARK_THRESHOLD,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        max_tasks_per_child: int | None = None,
        statedb: str | None = None,
        mingle: bool = True,
        beat: bool = False,
        schedule_file: str | None = None,
        queue_specs: Mapping[str, QueueSpec] | None = None,
        resolved: Mapping[str, tuple[Any, str]] | None = None,
        disable_rate_limits: bool = False,
        result_backend: str | None = None,
        result_expires: float | None = 86_400.0,
    ) -> WorkerConfig:
        """Validate and normalise the options (raises UsageError naming the bad one)."""
        if isinstance(queues, str):
            queues = queues.split(",")
        names = tuple(q.strip() for q in (queues or (DEFAULT_QUEUE,)) if q.strip())
        if not names:
            raise UsageError("no queue to consume (-Q)")
        if pool not in ("prefork", "threads", "solo"):
            raise UsageError(f"unknown pool {pool!r}", hint="choose prefork, threads or solo")
        if concurrency is not None and concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, not {concurrency}")
        if prefetch_multiplier < 0:
            raise UsageError("--prefetch-multiplier must be 0 (unlimited) or more")
        if heartbeat_interval <= 0:
            raise UsageError("the heartbeat interval must be positive")
        if isinstance(accept_content, str):
            accept_content = accept_content.split(",")
        accept = normalize_accept(accept_content or ("json",))
        conc = 1 if pool == "solo" else (concurrency or default_concurrency())
        if isinstance(disable_control, str):
            disable_control = disable_control.split(",")
        disabled = frozenset(n.strip() for n in disable_control or () if n.strip())
        if eta_park_threshold is not None and eta_park_threshold < 0:
            raise UsageError("--eta-park-threshold must be 0 or more seconds (or 'never')")
        for flag, limit in (("--time-limit", time_limit), ("--soft-time-limit", soft_time_limit)):
            if limit is not None and limit < 0:
                raise UsageError(f"{flag} must be 0 (none) or more seconds, not {limit}")
        if max_tasks_per_child is not None and max_tasks_per_child < 0:
            raise UsageError("--max-tasks-per-child must be 0 (no limit) or more")
        return cls(
            settings=settings,
            nodename=expand_nodename(nodename),
            queues=tuple(dict.fromkeys(names)),
            pool=pool,
            concurrency=conc,
            prefetch_multiplier=prefetch_multiplier,
            task_events=events,
            accept=accept,
            heartbeat_interval=heartbeat_interval,
            connect_retries=connect_retries,
            disable_control=disabled,
            eta_park_threshold=eta_park_threshold,
            time_limit=time_limit or None,
            soft_time_limit=soft_time_limit or None,
            max_tasks_per_child=max_tasks_per_child or None,
            statedb=statedb or None,
            mingle=mingle,
            beat=beat,
            schedule_file=schedule_file or DEFAULT_SCHEDULE_FILE,
            queue_specs=dict(queue_specs or {}),
            resolved=dict(resolved or {}),
            disable_rate_limits=disable_rate_limits,
            result_backend=_result_backend(result_backend),
            result_expires=result_expires or None,
        )

    @property
    def stores_results(self) -> bool:
        """True when results go to a Redis/SQL backend rather than reply messages."""
        return self.result_backend is not None

    @property
    def prefetch(self) -> int:
        """The base prefetch count (0 = unlimited)."""
        return self.concurrency * self.prefetch_multiplier


def _result_backend(url: str | None) -> str | None:
    """The stored backend's URL (None for rpc://); UsageError for a URL we cannot use."""
    from amqptool.backends import backend_from_url, is_rpc

    if url is None or is_rpc(url):
        return None
    backend_from_url(url)  # validates the URL (and that its driver is installed)
    return url
