"""The worker half of the state fold: ``worker-*`` events, the worker bound and expiry.

A mixin of :class:`~amqptool.monitor.core.state.MonitorState` (the semantics are described
there): workers are online while ``now < last heartbeat + 2 * freq``, ``worker-offline`` marks
them offline, and a worker offline for longer than ``forget_offline`` seconds is forgotten by
:meth:`WorkerFold.expire`. Pure core: no I/O, no UI toolkit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amqptool.monitor.core.clean import clean_key
from amqptool.monitor.core.fields import WORKER_IGNORED
from amqptool.monitor.core.model import Worker, as_float

__all__ = ["WorkerFold"]


class WorkerFold:
    """Folds ``worker-*`` events into ``self.workers`` (see the module docstring)."""

    workers: dict[str, Worker]
    max_workers: int
    forget_offline: float
    malformed: int
    unknown_events: int
    version: int

    def _worker_event(self, etype: str, event: Mapping[str, Any], now: float) -> None:
        hostname = event.get("hostname")
        if not isinstance(hostname, str) or not hostname:
            self.malformed += 1
            return
        hostname = clean_key(hostname)
        if etype in WORKER_IGNORED:
            return
        if etype not in ("worker-online", "worker-heartbeat", "worker-offline"):
            self.unknown_events += 1
            return
        worker = self.workers.get(hostname)
        if worker is None:
            if len(self.workers) >= self.max_workers:
                self._forget_one_worker(now)
            worker = self.workers[hostname] = Worker(hostname)
        received = as_float(event.get("local_received", now), now)
        freq = event.get("freq")
        if freq is not None:
            new_freq = as_float(freq, worker.freq)
            if new_freq > 0:
                worker.freq = new_freq
        for field in ("active", "processed"):
            count = event.get(field)
            if type(count) is int:
                setattr(worker, field, count)
        loadavg = event.get("loadavg")
        if isinstance(loadavg, list | tuple):
            worker.loadavg = [as_float(x, 0.0) for x in loadavg]
        for field in ("sw_ident", "sw_ver", "sw_sys"):
            text = event.get(field)
            if isinstance(text, str):
                setattr(worker, field, clean_key(text))
        pid = event.get("pid")
        if type(pid) is int:
            worker.pid = pid
        clock = event.get("clock")
        if type(clock) is int and clock > worker.clock:
            worker.clock = clock
        worker.heartbeat_timestamp = as_float(event.get("timestamp"), received)
        if etype == "worker-offline":
            worker.offline_since = received
            worker.online_since = None
            return
        if not worker.is_online(received):
            worker.online_since = received
        worker.offline_since = None
        if worker.last_heartbeat is None or received > worker.last_heartbeat:
            worker.last_heartbeat = received

    def _forget_one_worker(self, now: float) -> None:
        """Make room for a new worker: drop the one offline longest (or seen least recently)."""

        def age(w: Worker) -> tuple[int, float]:
            return (0 if w.is_online(now) else 1, -(w.last_heartbeat or 0.0))

        victim = max(self.workers.values(), key=age)
        del self.workers[victim.hostname]

    def expire(self, now: float) -> list[str]:
        """Forget workers offline for longer than ``forget_offline`` seconds; returns them."""
        gone: list[str] = []
        for worker in list(self.workers.values()):
            if worker.is_online(now):
                continue
            since = worker.offline_at()
            if since is not None and now - since > self.forget_offline:
                gone.append(worker.hostname)
                del self.workers[worker.hostname]
        if gone:
            self.version += 1
        return gone

    def workers_online(self, now: float) -> tuple[int, int]:
        """(online, offline) among the known workers."""
        online = sum(1 for w in self.workers.values() if w.is_online(now))
        return online, len(self.workers) - online
