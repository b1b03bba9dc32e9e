"""The cluster drill: 20 000 acks_late tasks on a quorum queue while nodes die under the workers.

Three nodes; the quorum queue's leader is on node L. Worker A prefers L, worker B the next
node, the monitor (``amqptool monitor --dump --json``) and the result tally sit on the third,
which is never touched. Mid-run L is killed (``kill -9``: the leader moves, worker A fails over)
and later restarted; then B's node is stopped gracefully (worker B fails over) and restarted.

Every task must end with a SUCCESS result. A task runs twice only when the worker that had it
lost its connection before its ack reached the broker (acks_late: ack after the run): the
broker redelivers it. The figures go to the reliability artifact.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests.brokers import SecondBroker
from tests.cluster import Cluster, MonitorDump, monitor_view, ping
from tests.harness import unique, wait_until
from tests.load import (
    DrillWorker,
    ResultTally,
    elapsed_since,
    push_tasks,
    queue_depth,
    record_figures,
    runs_per_task,
    workers,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TASKS = 20_000
NAP = 0.03  # seconds per task: 8 threads run ~250 tasks/s, so the faults land mid-run
WORKER_ARGS = ("-P", "threads", "-c", "4")  # worker heartbeats every 2 s (the default)


def declare_quorum_queue(url: str, queue: str) -> None:
    """The task queue as a quorum queue (declared on ``url``'s node: its leader starts there)."""
    with Connection(BrokerSettings.from_url(url, environ={}), name="drill-declare") as conn:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})


def runs_by(log: Path, worker: DrillWorker) -> int:
    """How many task runs ``worker``'s process recorded (lines ``<task id> <pid>``)."""
    assert worker.proc is not None
    tail = f" {worker.proc.pid}\n"
    with log.open() as lines:
        return sum(1 for line in lines if line.endswith(tail))


def pause_of(log: Path, worker: DrillWorker) -> float:
    """Seconds until ``worker``, whose node just went, runs tasks again: 50 more than now
    (more than its prefetch window, so the tasks it held when the node went do not count)."""
    start = time.monotonic()
    before = runs_by(log, worker)
    wait_until(
        lambda: runs_by(log, worker) > before + 50,
        120,
        interval=0.2,
        message=f"{worker.nodename} to run tasks again after the fault",
    )
    return round(time.monotonic() - start, 1)


def wait_failed_over(cluster: Cluster, worker: DrillWorker, away_from: SecondBroker) -> None:
    """Wait until ``worker`` is connected to a node other than ``away_from``."""
    gone = cluster.index_of(away_from.nodename)

    def moved() -> bool:
        at = cluster.node_of(worker.connection_name)
        return at is not None and at != gone

    wait_until(moved, 60, interval=0.3, message=f"{worker.nodename} on another node")


@pytest.mark.timeout(600)
def test_20000_acks_late_tasks_on_a_quorum_queue_survive_a_killed_leader_and_a_stopped_node(
    cluster: Cluster, cluster_vhost: str, tmp_path: Path
) -> None:
    queue = unique("cluster-drill")
    declare_quorum_queue(cluster.nodes[0].url(cluster_vhost), queue)
    lead = cluster.leader_index(cluster_vhost, queue)
    leader, other, quiet = (cluster.nodes[(lead + i) % 3] for i in range(3))
    quiet_url = quiet.url(cluster_vhost)
    runs_log = tmp_path / "runs.log"
    a = DrillWorker(
        cluster.urls(cluster_vhost, prefer=lead),
        queue,
        *WORKER_ARGS,
        log_dir=tmp_path,
        exec_log=runs_log,
    )
    b = DrillWorker(
        cluster.urls(cluster_vhost, prefer=(lead + 1) % 3),
        queue,
        *WORKER_ARGS,
        log_dir=tmp_path,
        exec_log=runs_log,
    )
    figures: dict[str, object] = {}
    started = time.monotonic()
    with (
        ResultTally(quiet_url) as tally,
        MonitorDump(quiet_url, tmp_path / "monitor.jsonl") as monitor,
    ):
        ids = push_tasks(
            quiet_url,
            queue,
            "relia.nap",
            ((NAP,) for _ in range(TASKS)),
            reply_to=tally.queue,
            declare=False,
        )
        figures["publish_seconds"] = elapsed_since(started)

        def reach(fraction: float) -> int:
            return wait_until(
                lambda: tally.succeeded() >= TASKS * fraction and tally.succeeded(),
                240,
                interval=0.05,
                message=f"{fraction:.0%} of the tasks done",
            )

        with workers(a, b):
            assert cluster.node_of(a.connection_name) == cluster.index_of(leader.nodename)
            assert cluster.node_of(b.connection_name) == cluster.index_of(other.nodename)
            # 1. kill -9 the node holding the leader (and worker A's connection).
            reach(0.1)
            killed = time.monotonic()
            leader.kill()
            cluster.leader_index(cluster_vhost, queue, not_on=leader)  # a new one, elsewhere
            figures["leader_elected_within_seconds"] = elapsed_since(killed)
            figures["kill_pause_seconds"] = pause_of(runs_log, a)
            wait_failed_over(cluster, a, leader)
            # ... and restarted with its data: it rejoins the cluster and the queue.
            leader.boot(fresh=False)
            cluster.wait_formed()
            # 2. stop worker B's node gracefully, then start it again.
            done = reach(0.55)
            assert done < TASKS * 0.9, "the run outpaced the drill: make NAP longer"
            other.stop()
            figures["stop_pause_seconds"] = pause_of(runs_log, b)
            wait_failed_over(cluster, b, other)
            tally.wait_all(ids, timeout=300)
            other.boot(fresh=False)
            cluster.wait_formed()
            after_faults = time.time()
            # Both workers still consume, never restarted, and answer a ping from any node.
            assert a.alive and b.alive and a.starts == b.starts == 1
            assert queue_depth(quiet_url, queue)[1] == 2
            assert ping(other.url(cluster_vhost), a.nodename, b.nodename) == {
                a.nodename: {"ok": "pong"},
                b.nodename: {"ok": "pong"},
            }
            for w in (a, b):  # the monitor hears from both after the last fault
                monitor.wait_heartbeat(w.nodename, after=after_faults)
            # (read before the workers stop: a warm shutdown sends worker-offline)
            seen = {w.nodename: monitor_view(monitor.worker_events(w.nodename)) for w in (a, b)}
        runs = runs_per_task(runs_log)
        snapshot = tally.snapshot()

    missing = [i for i in ids if "SUCCESS" not in snapshot.get(i, ())]
    never_ran = [i for i in ids if runs[i] == 0]
    duplicate_runs = sum(n - 1 for n in runs.values() if n > 1)
    duplicate_results = sum(s.count("SUCCESS") - 1 for s in snapshot.values() if s)
    figures.update(
        {
            "tasks_pushed": TASKS,
            "node_kills": 1,
            "graceful_node_stops": 1,
            "broker_restarts": 2,
            "failovers": 2,
            "leader_moves": 1,
            "tasks_lost": len(missing),
            "duplicate_runs": duplicate_runs,
            "duplicate_results": duplicate_results,
            "monitor_longest_silence_seconds": max(view[0] for view in seen.values()),
            "monitor_offline_events": sum(view[1] for view in seen.values()),
            "monitor_showed_offline_seconds": max(view[2] for view in seen.values()),
            "seconds": elapsed_since(started),
            "workers": "2 x threads -c 4, acks_late, quorum queue, 3-node cluster",
        }
    )
    record_figures("cluster_node_loss", figures)
    assert not missing, f"{len(missing)} task(s) never succeeded, e.g. {missing[:3]}"
    assert not never_ran
    assert set(snapshot) == set(ids)
    # Neither worker said goodbye (a lost connection is not a shutdown), and the monitor's
    # model showed each offline for at most one heartbeat window (2 x 2 s), if at all.
    assert all(offs == 0 and offline <= 4.0 for _, offs, offline in seen.values()), seen
    for w in (a, b):
        assert "Connection to broker lost" in w.output()
        assert "Traceback" not in w.output(), w.output()[-3000:]
    assert "Traceback" not in monitor.stderr()
