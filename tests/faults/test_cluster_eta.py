"""Far-ETA tasks parked on a cluster outlive the node holding their parking queue.

The task queue is a quorum queue, so the worker parks far-ETA tasks in quorum buckets
(replicated on all three nodes). The worker's node, which also holds the bucket's leader, is
killed while the tasks are parked; the worker fails over, the bucket elects a new leader,
and every task runs after its ETA, none before.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amqptool.codec.times import utcnow
from amqptool.transport.delayed import delay_queue_name
from tests.cluster import Cluster
from tests.faults.test_cluster_drill import declare_quorum_queue
from tests.harness import unique, wait_until
from tests.load import DrillWorker, elapsed_since, queue_depth, record_figures, workers
from tests.worker_support import Collector, publish_task

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def done(bodies: list[Any], task_id: str) -> bool:
    return any(b.get("task_id") == task_id and b.get("status") == "SUCCESS" for b in bodies)


TASKS = 20
DELAY = 20.0  # seconds: parked in the 16 s bucket, then the 4 s one


@pytest.mark.timeout(300)
def test_tasks_parked_while_their_node_dies_run_at_their_eta(
    cluster: Cluster, cluster_vhost: str, tmp_path: Path
) -> None:
    queue = unique("cluster-eta")
    declare_quorum_queue(cluster.nodes[0].url(cluster_vhost), queue)
    quiet = cluster.nodes[2]
    quiet_url = quiet.url(cluster_vhost)
    worker = DrillWorker(
        cluster.urls(cluster_vhost, prefer=1),  # c2 first: parks there, the bucket's leader
        queue,
        *("-P", "threads", "-c", "2", "--eta-park-threshold", "1"),
        log_dir=tmp_path,
        exec_log=tmp_path / "runs.log",
    )
    bucket = delay_queue_name(queue, 16, quorum=True)
    started = time.monotonic()
    with Collector(quiet_url) as results, workers(worker):
        victim = cluster.nodes[cluster.node_of(worker.connection_name) or 0]
        eta = utcnow() + timedelta(seconds=DELAY)
        ids = [
            publish_task(quiet_url, queue, "relia.mark", i, eta=eta, reply_to=results.name).id
            for i in range(TASKS)
        ]
        wait_until(
            lambda: queue_depth(quiet_url, bucket)[0] == TASKS,
            15,
            interval=0.2,
            message=f"{TASKS} tasks parked in {bucket}",
        )
        leader, members = cluster.queue_members(cluster_vhost, bucket)
        assert sorted(members) == sorted(n.nodename for n in cluster.nodes)  # replicated
        assert leader == victim.nodename  # declared by the worker on its node
        victim.kill()
        cluster.leader_index(cluster_vhost, bucket, not_on=victim)
        victim.boot(fresh=False)
        cluster.wait_formed()
        wait_until(
            lambda: all(done(results.bodies(), i) for i in ids),
            DELAY + 60,
            interval=0.5,
            message="every parked task's result",
        )
        finished = utcnow()
        assert worker.alive and worker.starts == 1
        assert cluster.node_of(worker.connection_name) is not None
        bodies = results.bodies()
    runs = [b for b in bodies if b.get("status") == "SUCCESS"]
    assert sorted(b["task_id"] for b in runs) == sorted(ids)  # each once
    assert all(datetime.fromisoformat(b["date_done"]) >= eta for b in runs)  # none early
    record_figures(
        "cluster_parked_eta",
        {
            "tasks_pushed": TASKS,
            "node_kills": 1,
            "broker_restarts": 1,
            "failovers": 1,
            "tasks_lost": 0,
            "duplicate_results": len(runs) - len(ids),
            "all_done_after_eta_seconds": round((finished - eta).total_seconds(), 1),
            "seconds": elapsed_since(started),
        },
    )
    assert "Traceback" not in worker.output()
