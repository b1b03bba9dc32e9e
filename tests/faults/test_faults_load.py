"""Load with crashes: 20 000 acks_late tasks, one worker SIGKILLed twice, the other cut off.

Runs on the second broker node (its own vhost), so closing connections there disturbs nobody
else's tests. Every task id must end with a SUCCESS result; duplicates (a task run again after
its worker died before acking it) are counted and reported, never a missing task.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.brokers import SecondBroker
from tests.fault_support import LiveMonitor, main_connections
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


@pytest.mark.timeout(300)
def test_20000_acks_late_tasks_survive_two_sigkills_and_a_closed_connection(
    broker_b: SecondBroker, b_vhost_url: str, tmp_path: Path
) -> None:
    url = b_vhost_url
    queue = unique("relia-load")
    runs_log = tmp_path / "runs.log"
    crashy = DrillWorker(
        url, queue, "-P", "prefork", "-c", "2", log_dir=tmp_path, exec_log=runs_log
    )
    steady = DrillWorker(
        url, queue, "-P", "threads", "-c", "4", log_dir=tmp_path, exec_log=runs_log
    )
    started = time.monotonic()
    with ResultTally(url) as tally:
        ids = push_tasks(
            url, queue, "relia.mark", ((i,) for i in range(TASKS)), reply_to=tally.queue
        )
        pushed_in = elapsed_since(started)

        def reach(fraction: float) -> None:
            wait_until(
                lambda: tally.succeeded() >= TASKS * fraction,
                120,
                interval=0.05,
                message=f"{fraction:.0%} of the tasks done",
            )

        with workers(crashy, steady):
            reach(0.15)
            crashy.kill()  # SIGKILL 1: its prefetched and running tasks are redelivered
            crashy.start()
            reach(0.35)
            assert broker_b.close_connections(steady.connection_name) == 1
            reach(0.55)
            crashy.kill()  # SIGKILL 2
            crashy.start()
            tally.wait_all(ids, timeout=180)
            assert steady.alive and steady.starts == 1, "the cut-off worker must reconnect"
            assert crashy.alive
        runs = runs_per_task(runs_log)
        snapshot = tally.snapshot()

    missing = [i for i in ids if "SUCCESS" not in snapshot.get(i, ())]
    failed = {i: s for i, s in snapshot.items() if set(s) - {"SUCCESS"}}
    never_ran = [i for i in ids if runs[i] == 0]
    duplicate_runs = sum(n - 1 for n in runs.values() if n > 1)
    duplicate_results = sum(s.count("SUCCESS") - 1 for s in snapshot.values() if s)
    record_figures(
        "load_with_crashes",
        {
            "tasks_pushed": TASKS,
            "sigkills": 2,
            "restarts": crashy.starts - 1,
            "connections_closed": 1,
            "tasks_lost": len(missing),
            "duplicate_runs": duplicate_runs,
            "duplicate_results": duplicate_results,
            "publish_seconds": pushed_in,
            "seconds": elapsed_since(started),
            "workers": "prefork -c 2 (killed) + threads -c 4 (cut off), acks_late, node B",
        },
    )
    assert not missing, f"{len(missing)} task(s) never succeeded, e.g. {missing[:3]}"
    assert not failed, f"tasks with other states: {list(failed.items())[:3]}"
    assert not never_ran
    assert set(snapshot) == set(ids)
    assert "Connection to broker lost" in steady.output()
    for w in (crashy, steady):
        assert "Traceback" not in w.output(), w.output()[-3000:]


def test_a_killed_prefork_worker_lets_go_of_its_connection_while_a_child_still_runs(
    broker_url: str, broker_vhost: str, tmp_path: Path
) -> None:
    """Children forked after the connection was made (here: --max-tasks-per-child 1 replaces
    the child after each task) must not keep the dead parent's connection open: the broker
    gives its unacked tasks back at once, not when the orphaned child's task ends."""
    queue = unique("relia-orphan")
    worker = DrillWorker(
        broker_url,
        queue,
        *("-P", "prefork", "-c", "1", "--max-tasks-per-child", "1", "-E"),
        log_dir=tmp_path,
    )
    with ResultTally(broker_url) as tally, LiveMonitor(broker_url) as monitor, workers(worker):
        first = push_tasks(broker_url, queue, "relia.mark", [(1,)], reply_to=tally.queue)
        tally.wait_all(first, timeout=20)
        (slow,) = push_tasks(broker_url, queue, "relia.nap", [(30.0,)], reply_to=tally.queue)
        wait_until(lambda: monitor.task_state(slow) == "STARTED", 20, message="the slow task")

        def connected() -> bool:
            return any(n == worker.connection_name for _, n in main_connections(broker_vhost))

        try:
            worker.kill(reap=False)
            wait_until(
                lambda: not connected(),
                20,
                interval=0.1,
                message="the broker to see the connection go",
            )
            wait_until(
                lambda: queue_depth(broker_url, queue)[0] == 1,
                20,
                interval=0.1,
                message="the slow task back in its queue",
            )
            # back in the queue, not finished by an orphaned child: no result came for it
            assert slow not in tally.snapshot()
        finally:
            worker.reap_children()
