"""Prometheus ``/metrics`` for the monitor, named as celery-exporter names them.

Counters ``celery_task_{sent,received,started,succeeded,failed,retried,revoked,rejected}_total``
labelled ``name``, ``hostname`` (the host part of the node name, as celery-exporter does) and
``queue_name`` (``failed`` also ``exception``, the class name); the histogram
``celery_task_runtime`` of succeeded tasks; the gauges ``celery_worker_up`` and
``celery_worker_tasks_active`` per hostname and ``celery_queue_length`` /
``celery_active_consumer_count`` per queue. Every value comes from the monitor's totals since
start (:mod:`amqptool.monitor.core.totals`), never from the bounded task table.

The HTTP server is ``prometheus_client``'s, on a thread of its own; :class:`CelerySource`
reads the state the UI (or the headless loop) owns through atomic copies. ``prometheus_client``
is imported here only, when ``--metrics`` is given.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from amqptool.errors import UsageError
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.core.totals import KINDS, PROM_BUCKETS, Runtimes
from amqptool.monitor.queues import QueueDepth

__all__ = ["CelerySource", "MetricsServer", "parse_listen", "start_metrics"]

_HELP = {
    "sent": "Sent when a task message is published.",
    "received": "Sent when the worker receives a task.",
    "started": "Sent just before the worker executes the task.",
    "succeeded": "Sent if the task executed successfully.",
    "failed": "Sent if the execution of the task failed.",
    "retried": "Sent if the task failed, but will be retried in the future.",
    "revoked": "Sent if the task has been revoked.",
    "rejected": "The task was rejected by the worker, possibly to be re-queued or moved to a "
    "dead letter queue.",
}
_EXCEPTION = re.compile(r"^\w+$")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _host(nodename: str) -> str:
    """The host part of ``name@host`` (the whole name when there is no ``@``)."""
    return nodename.rpartition("@")[2] or nodename


def _queue(name: str) -> str:
    return name or "celery"  # as celery-exporter labels a task whose queue is not known


class CelerySource(Collector):
    """Builds the metric families from the monitor's state at each scrape."""

    def __init__(
        self,
        state: Callable[[], MonitorState],
        depths: Callable[[], list[QueueDepth]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.depths = depths
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        state = self.state()
        snap = state.totals.snapshot()
        counters: dict[str, CounterMetricFamily] = {}
        for kind in KINDS:
            labels = ["name", "hostname", "queue_name"] + (
                ["exception"] if kind == "failed" else []
            )
            counters[kind] = CounterMetricFamily(f"celery_task_{kind}", _HELP[kind], labels=labels)
        merged: dict[tuple[str, ...], int] = {}
        for (kind, name, node, queue, exc), n in snap.counts.items():
            if kind not in counters:
                continue
            key: tuple[str, ...] = (kind, name, _host(node), _queue(queue))
            if kind == "failed":
                key += (exc if _EXCEPTION.match(exc) else "UnknownException",)
            merged[key] = merged.get(key, 0) + n
        for key, n in sorted(merged.items()):
            counters[key[0]].add_metric(list(key[1:]), n)
        yield from counters.values()
        yield self._runtime(snap.runtimes)
        up = GaugeMetricFamily(
            "celery_worker_up",
            "Indicates if a worker has recently sent a heartbeat.",
            labels=["hostname"],
        )
        active = GaugeMetricFamily(
            "celery_worker_tasks_active",
            "The number of tasks the worker is currently processing",
            labels=["hostname"],
        )
        now = self.clock()
        for worker in list(state.workers.values()):
            host = _host(worker.hostname)
            online = worker.is_online(now)
            up.add_metric([host], 1 if online else 0)
            active.add_metric([host], (worker.active or 0) if online else 0)
        yield up
        yield active
        length = GaugeMetricFamily(
            "celery_queue_length", "The number of message in broker queue.", labels=["queue_name"]
        )
        consumers = GaugeMetricFamily(
            "celery_active_consumer_count",
            "The number of active consumer in broker queue.",
            labels=["queue_name"],
        )
        for depth in self.depths():
            if depth.error is None and depth.ready is not None:
                length.add_metric([depth.name], depth.ready)
                consumers.add_metric([depth.name], depth.consumers or 0)
        yield length
        yield consumers

    @staticmethod
    def _runtime(runtimes: dict[tuple[str, str, str], Runtimes]) -> Metric:
        family = HistogramMetricFamily(
            "celery_task_runtime",
            "Histogram of task runtime measurements.",
            labels=["name", "hostname", "queue_name"],
        )
        merged: dict[tuple[str, str, str], Runtimes] = {}
        for (name, node, queue), r in runtimes.items():
            merged.setdefault((name, _host(node), _queue(queue)), Runtimes()).merge(r)
        for labels, r in sorted(merged.items()):
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for bound, n in zip((*PROM_BUCKETS, float("inf")), r.prom, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            family.add_metric(list(labels), buckets, r.total)
        return family


def parse_listen(text: str, *, option: str = "--metrics") -> tuple[str, int]:
    """``PORT`` or ``HOST:PORT`` (``[::1]:PORT``); the host defaults to 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise UsageError(f"{option}: not HOST:PORT: {text!r}") from None
    if not 0 <= number <= 65535:
        raise UsageError(f"{option}: port out of range: {text!r}")
    return host, number


def is_loopback(host: str) -> bool:
    return host in _LOOPBACK or host.startswith("127.")


class MetricsServer:
    """The running ``/metrics`` endpoint; :meth:`close` stops it."""

    def __init__(self, server: Any, thread: Any, host: str, port: int) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def start_metrics(source: CelerySource, listen: tuple[str, int]) -> MetricsServer:
    """Serve ``source`` at ``http://HOST:PORT/metrics`` (port 0: any free port)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(source)
    host, port = listen
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise UsageError(f"--metrics {host}:{port}: cannot listen: {exc.strerror}") from None
    return MetricsServer(server, thread, host, server.server_address[1])
