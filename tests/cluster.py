"""A three-node RabbitMQ cluster on loopback for the cluster drills (quorum queues, node loss).

The main broker (5672) is never touched. The nodes are :class:`~tests.brokers.SecondBroker`
instances without TLS and with a lighter Erlang VM (one scheduler, few async threads), so the
three of them fit a two-core machine beside everything else::

    node                      amqp    dist     state
    amqptool-c1@localhost     5691    25691    $AMQPTOOL_CLUSTER_DIR-1 or /tmp/amqptool-cluster-1
    amqptool-c2@localhost     5692    25692    ...-2
    amqptool-c3@localhost     5693    25693    ...-3

c2 and c3 join c1 (``stop_app; join_cluster; start_app``). The same Erlang cookie as the main
broker, so ``rabbitmqctl -n amqptool-c2@localhost ...`` works by hand too. A session fixture
forms the cluster once, on first use, and the last session to leave stops it
(:class:`~tests.shared_use.SharedUse`, locks in node 1's directory); each test holds the
cluster alone and gets it whole (every node running and clustered) whatever the test before
it killed. ``scripts/cluster_nodes.py start|status|stop`` drives it by hand.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest

from amqptool.monitor.core.state import MonitorState
from tests import harness
from tests.brokers import SecondBroker, failover_url
from tests.shared_use import SharedUse

__all__ = [
    "Cluster",
    "MonitorDump",
    "amqptool",
    "cluster",
    "cluster_nodes",
    "cluster_vhost",
    "monitor_view",
    "ping",
]

SIZE = 3
AMQP_BASE = 5690
DIST_BASE = 25690
DIR_PREFIX = os.environ.get("AMQPTOOL_CLUSTER_DIR", "/tmp/amqptool-cluster")
# One scheduler, one dirty CPU scheduler, two dirty I/O ones, four async threads.
LIGHT_VM = "+S 1:1 +SDcpu 1:1 +SDio 2 +A 4"


def node_name(n: int) -> str:
    return f"amqptool-c{n}@localhost"


class Cluster(SharedUse):
    """Three :class:`SecondBroker` nodes joined into one cluster; ``nodes[0]`` is c1."""

    def __init__(self, prefix: str = DIR_PREFIX) -> None:
        self.nodes = [
            SecondBroker(
                Path(f"{prefix}-{n}"),
                nodename=node_name(n),
                amqp_port=AMQP_BASE + n,
                amqps_port=None,
                dist_port=DIST_BASE + n,
                erl_args=LIGHT_VM,
            )
            for n in range(1, SIZE + 1)
        ]
        self.base = self.nodes[0].base
        self.formed_seconds: float | None = None

    # ------------------------------------------------------------ forming and tearing down

    def start(self) -> Self:
        """Boot whichever nodes are down (fresh, in parallel) and join them; wait for all."""
        if len(self.running_nodes()) == SIZE:
            return self
        for node in self.nodes:  # a half-formed cluster from a dead session: start over
            if node.node_running():
                node.stop()
        started = time.monotonic()
        errors: list[BaseException] = []

        def boot(node: SecondBroker) -> None:
            try:
                node.boot(fresh=True)
            except BaseException as exc:  # re-raised on the test's thread below
                errors.append(exc)

        threads = [threading.Thread(target=boot, args=(n,)) for n in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.stop()
            raise errors[0]
        first = self.nodes[0].nodename
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first)
            node.start_app()
        self.wait_formed()
        self.formed_seconds = round(time.monotonic() - started, 1)
        return self

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def make_usable(self) -> None:
        """Every node up (restarted with its database if a test left it down), clustered."""
        for node in self.nodes:
            if not node.node_running():
                node.boot(fresh=False)
            elif not node.app_running():
                node.start_app()
        self.wait_formed()

    def running_nodes(self, via: SecondBroker | None = None) -> list[str]:
        """The running cluster members as one live node sees them ([] if none answers)."""
        for node in [via] if via is not None else self.nodes:
            try:
                out = node.ctl("cluster_status", "--formatter", "json", timeout=30)
            except (RuntimeError, subprocess.TimeoutExpired):
                continue
            return sorted(json.loads(out).get("running_nodes", []))
        return []

    def wait_formed(self, timeout: float = 120.0) -> None:
        """Wait until every node is running, listening, and a member of the cluster."""
        wanted = sorted(n.nodename for n in self.nodes)
        harness.wait_until(
            lambda: all(n.app_running() for n in self.nodes) and self.running_nodes() == wanted,
            timeout=timeout,
            interval=0.5,
            message=f"the cluster to list {wanted} running",
        )

    # ------------------------------------------------------------ addresses

    def live(self) -> SecondBroker:
        """A node whose app answers (for rabbitmqctl calls while another is down)."""
        for node in self.nodes:
            if node.app_running():
                return node
        raise RuntimeError("no cluster node is running")

    def index_of(self, nodename: str) -> int:
        return [n.nodename for n in self.nodes].index(nodename)

    def urls(self, vhost: str = "/", *, prefer: int = 0) -> str:
        """All nodes as a ``;`` failover list, starting with node ``prefer`` (0-based).

        Give each worker its own ``prefer`` and each connects to a different node first.
        """
        count = len(self.nodes)
        order = [self.nodes[(prefer + i) % count] for i in range(count)]
        return failover_url(*(n.url(vhost) for n in order))

    def node_of(self, connection_name: str) -> int | None:
        """The node (0-based) a named client connection is on; None if on none.

        (``list_connections`` on any member lists the whole cluster's connections.)
        """
        for pid, name in self.live().connections():
            if name == connection_name:  # an Erlang pid prints as <node.N.N.N>
                return self.index_of(pid.strip("<>").rsplit(".", 3)[0])
        return None

    # ------------------------------------------------------------ vhosts and queues

    def add_vhost(self, name: str) -> str:
        return self.live().add_vhost(name)

    def delete_vhost(self, name: str) -> None:
        self.live().delete_vhost(name)

    def queue_members(self, vhost: str, queue: str) -> tuple[str, list[str]]:
        """``(leader, members)`` of a quorum queue (leader "" while none is elected)."""
        out = self.live().ctl(
            "list_queues", "-p", vhost, "name", "leader", "members", "--formatter", "json"
        )
        for row in json.loads(out):
            if row.get("name") == queue:
                members = row.get("members") or []
                return str(row.get("leader") or ""), [str(m) for m in members]
        raise LookupError(f"no queue {queue!r} in vhost {vhost!r}")

    def leader_index(
        self, vhost: str, queue: str, timeout: float = 30.0, *, not_on: SecondBroker | None = None
    ) -> int:
        """Which node (0-based) holds the leader of a quorum queue; waits for an election
        (and, with ``not_on``, for a leader elsewhere than that node)."""
        names = {n.nodename for n in self.nodes if n is not not_on}

        def elected() -> str:
            leader = self.queue_members(vhost, queue)[0]
            return leader if leader in names else ""

        leader = harness.wait_until(
            elected,
            timeout=timeout,
            interval=0.3,
            message=f"a leader for {queue!r}",
        )
        return self.index_of(leader)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def cluster_nodes() -> Iterator[Cluster]:
    """The cluster, formed once per session on first use and stopped at the end."""
    formed = Cluster().acquire()
    try:
        yield formed
    finally:
        formed.release()


@pytest.fixture
def cluster(cluster_nodes: Cluster) -> Iterator[Cluster]:
    """The whole cluster for one test, held exclusively: every node up when the test starts."""
    with cluster_nodes.exclusive_use() as held:
        yield held


@pytest.fixture
def cluster_vhost(cluster: Cluster) -> Iterator[str]:
    """A fresh vhost on the cluster for one test (a vhost is cluster-wide), deleted after."""
    vhost = cluster.add_vhost(f"amqptool-c-{uuid.uuid4().hex[:8]}")
    try:
        yield vhost
    finally:
        cluster.make_usable()
        cluster.delete_vhost(vhost)


# --------------------------------------------------------------------------- the tools


def tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AMQP_URL", "CELERY_BROKER_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(harness.ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def amqptool(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m amqptool ARGS`` (give ``-b``), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "amqptool", *args],
        capture_output=True,
        text=True,
        env=tool_env(),
        cwd=harness.ROOT,
        timeout=timeout,
        check=False,
    )


def ping(url: str, *nodenames: str) -> dict[str, Any]:
    """``amqptool control ping -d NODES`` through ``url``: the JSON replies (exit 0 asserted)."""
    done = amqptool("control", "-b", url, "--json", "-t", "5", "ping", "-d", ",".join(nodenames))
    assert done.returncode == 0, done.stderr
    replies: dict[str, Any] = json.loads(done.stdout)
    return replies


class MonitorDump:
    """``amqptool monitor --dump --json`` as a subprocess, its JSON lines kept in a file."""

    def __init__(self, url: str, out: Path) -> None:
        self.url = url
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        with self.out.open("wb") as out, self.out.with_suffix(".err").open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "amqptool", "monitor", "--dump", "--json", "-b", self.url],
                stdout=out,
                stderr=err,
                env=tool_env(),
                cwd=harness.ROOT,
            )
        return self

    def events(self) -> list[dict[str, Any]]:
        lines = self.out.read_text(errors="replace").splitlines() if self.out.exists() else []
        out = []
        for line in lines:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def worker_events(self, hostname: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events()
            if e.get("hostname") == hostname and str(e.get("type", "")).startswith("worker-")
        ]

    def wait_heartbeat(self, hostname: str, after: float, timeout: float = 60) -> None:
        """Wait for an event from worker ``hostname`` stamped later than ``after`` (epoch)."""
        harness.wait_until(
            lambda: any(float(e.get("timestamp", 0)) > after for e in self.worker_events(hostname)),
            timeout,
            interval=0.2,
            message=f"the monitor to see {hostname} after {after}",
        )

    def stderr(self) -> str:
        err = self.out.with_suffix(".err")
        return err.read_text(errors="replace") if err.exists() else ""

    def stop(self) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        proc.terminate()
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def monitor_view(events: list[dict[str, Any]]) -> tuple[float, int, float]:
    """One worker's events replayed through the monitor's own model (:class:`MonitorState`):
    ``(longest silence between events, worker-offline events, longest time the monitor showed
    the worker offline)``. The model counts a worker online until two heartbeat intervals
    (its ``freq``) pass without an event from it."""
    state = MonitorState()
    ordered = sorted(events, key=lambda e: float(e.get("local_received", e.get("timestamp", 0))))
    silence = offline = 0.0
    for prev, nxt in itertools.pairwise(ordered):
        at, then = (float(e.get("local_received", e.get("timestamp", 0))) for e in (prev, nxt))
        state.apply(prev, at)
        silence = max(silence, then - at)
        worker = state.workers[str(prev["hostname"])]
        expires = worker.expires_at()
        if expires is not None and not worker.is_online(then):
            offline = max(offline, then - expires)
    offs = sum(1 for e in events if e.get("type") == "worker-offline")
    return round(silence, 1), offs, round(offline, 1)
