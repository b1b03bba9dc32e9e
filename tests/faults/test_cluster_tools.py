"""Every tool on the three-node cluster: workers on different nodes through ';' URL lists,
events and remote control across nodes, the shell and ``amqptool call`` failing over.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cluster import Cluster, MonitorDump, amqptool, ping
from tests.fault_support import ShellPipe
from tests.harness import unique, wait_until
from tests.load import DrillWorker, ResultTally, push_tasks, runs_per_task, workers

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_workers_on_different_nodes_share_a_queue_and_are_seen_and_reached_from_others(
    cluster: Cluster, cluster_vhost: str, tmp_path: Path
) -> None:
    queue = unique("spread")
    runs = tmp_path / "runs.log"
    args = ("-P", "threads", "-c", "2", "--heartbeat-interval", "1")
    on_c1 = DrillWorker(
        cluster.urls(cluster_vhost, prefer=0), queue, *args, log_dir=tmp_path, exec_log=runs
    )
    on_c3 = DrillWorker(
        cluster.urls(cluster_vhost, prefer=2), queue, *args, log_dir=tmp_path, exec_log=runs
    )
    c1_url = cluster.nodes[0].url(cluster_vhost)
    c2_url = cluster.nodes[1].url(cluster_vhost)
    with MonitorDump(c1_url, tmp_path / "monitor.jsonl") as monitor, workers(on_c1, on_c3):
        assert cluster.node_of(on_c1.connection_name) == 0
        assert cluster.node_of(on_c3.connection_name) == 2
        started = time.time()
        # The monitor on c1 sees the worker on c3 (and the one on c1).
        monitor.wait_heartbeat(on_c3.nodename, after=started)
        monitor.wait_heartbeat(on_c1.nodename, after=started)
        # Remote control from c2 reaches both.
        assert ping(c2_url, on_c1.nodename, on_c3.nodename) == {
            on_c1.nodename: {"ok": "pong"},
            on_c3.nodename: {"ok": "pong"},
        }
        # Tasks published on c2 are run by both workers.
        with ResultTally(c2_url) as tally:
            ids = push_tasks(
                c2_url, queue, "relia.mark", ((i,) for i in range(400)), reply_to=tally.queue
            )
            tally.wait_all(ids, timeout=120)
        pids = {line.split()[1] for line in runs.read_text().splitlines()}
        assert on_c1.proc is not None and on_c3.proc is not None
        assert pids == {str(on_c1.proc.pid), str(on_c3.proc.pid)}
        assert sum(runs_per_task(runs).values()) >= len(ids)
    assert "Traceback" not in monitor.stderr()


def test_call_and_the_shell_fail_over_to_the_next_node_in_the_list(
    cluster: Cluster, cluster_vhost: str, tmp_path: Path
) -> None:
    queue = unique("call")
    urls = cluster.urls(cluster_vhost, prefer=0)  # c1 first
    worker = DrillWorker(
        cluster.urls(cluster_vhost, prefer=1), queue, "-P", "threads", log_dir=tmp_path
    )
    durable = unique("shell-q")  # a quorum queue: it outlives the node it was declared on
    with workers(worker), ShellPipe(urls, tmp_path) as shell:
        declared = shell.run(f"queue.declare {durable} durable=yes x-queue-type=quorum")
        assert declared["ok"] is True, declared
        cluster.nodes[0].kill()  # the shell's node dies under it
        wait_until(lambda: not cluster.nodes[0].app_running(), 10, message="c1 gone")
        # The next command reconnects to c2 or c3; the durable queue is there.
        doc = shell.run(f"queue.declare {durable} passive=yes", timeout=60)
        assert doc["ok"] is True, doc
        assert "reconnected" in shell.stderr()
        # `call` given c1 first (dead) sends through c2 and waits for the result.
        call = amqptool(
            "call", "-b", urls, "-Q", queue, "--json", "--timeout", "60", "relia.mark", "7"
        )
        assert call.returncode == 0, call.stderr
        assert json.loads(call.stdout)["result"] == 7
        assert shell.run(f"queue.delete {durable}")["ok"] is True
        assert shell.close() == 0
    assert "Traceback" not in shell.stderr() + call.stderr
