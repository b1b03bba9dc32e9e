"""Orphans: ``kill -9`` of a prefork worker takes its pool children with it (mid-task), and a
replacement worker runs each redelivered ``acks_late`` task once, not beside a leftover run."""

from __future__ import annotations

import time
from pathlib import Path

from amqptool.control.client import ControlClient
from amqptool.settings import BrokerSettings
from tests.harness import unique, wait_until
from tests.load import DrillWorker, ResultTally, push_tasks, record_figures, runs_per_task

CHILD_GONE_WITHIN = 5.0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead orphan waits for PID 1 to reap it; it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_sigkill_of_a_prefork_worker_leaves_no_child_and_no_double_run(
    fresh_vhost_url: str, tmp_path: Path
) -> None:
    url, queue, exec_log = fresh_vhost_url, unique("orphq"), tmp_path / "runs.log"
    nap = 8.0
    with ResultTally(url) as tally:
        ids = push_tasks(url, queue, "relia.nap", [(nap,), (nap,)], reply_to=tally.queue)
        first = DrillWorker(
            url, queue, "-P", "prefork", "-c", "2", log_dir=tmp_path, exec_log=exec_log
        )
        with first:
            assert first.proc is not None
            parent = first.proc.pid
            with ControlClient(BrokerSettings.from_url(url, environ={})) as control:
                wait_until(
                    lambda: (
                        len(
                            control.call("active", destination=[first.nodename], timeout=2.0).get(
                                first.nodename, []
                            )
                        )
                        == 2
                    ),
                    30,
                    message="both tasks to run in the pool children",
                )
            children = _children(parent)
            assert len(children) == 2
            first.kill(reap=False)
            killed = time.monotonic()
            wait_until(
                lambda: not any(_running(c) for c in children),
                CHILD_GONE_WITHIN,
                interval=0.05,
                message="the pool children to die with their parent",
            )
            gone_after = time.monotonic() - killed
        second = DrillWorker(
            url, queue, "-P", "prefork", "-c", "2", log_dir=tmp_path, exec_log=exec_log
        )
        with second:
            tally.wait_all(ids, 60)
            # a leftover child would record its run when its nap ends: wait past that point
            wait_until(lambda: time.monotonic() > killed + nap + 1, nap + 5, message="the nap")
    runs = runs_per_task(exec_log)
    assert [runs[i] for i in ids] == [1, 1]
    assert tally.duplicates() == 0
    record_figures(
        "orphans_sigkill_prefork",
        {
            "tasks_pushed": len(ids),
            "sigkills": 1,
            "restarts": 1,
            "children_killed_with_parent": len(children),
            "children_gone_after_s": round(gone_after, 3),
            "duplicate_runs": sum(max(0, n - 1) for n in runs.values()),
            "duplicate_results": tally.duplicates(),
            "tasks_lost": len(tally.missing(ids)),
        },
    )


def test_the_watchdog_alone_ends_an_orphan(tmp_path: Path) -> None:
    """Without PR_SET_PDEATHSIG (not Linux, or prctl refused) the re-parenting watch does it."""
    import os
    import signal

    from worker.pool import orphans

    pid_file = tmp_path / "grandchild.pid"
    middle = os.fork()
    if middle == 0:  # the "worker": forks a "pool child", then waits to be killed
        try:
            child = os.fork()
            if child == 0:
                orphans._set_pdeathsig = lambda signum: False  # the fallback only
                orphans.die_with_parent(os.getppid())
                pid_file.write_text(str(os.getpid()))
                time.sleep(60)
                os._exit(0)
            time.sleep(60)
        finally:
            os._exit(0)
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), 10, message="the grandchild")
    grandchild = int(pid_file.read_text())
    os.kill(middle, signal.SIGKILL)
    os.waitpid(middle, 0)
    wait_until(
        lambda: not _running(grandchild),
        CHILD_GONE_WITHIN,
        interval=0.05,
        message="the orphan to end itself",
    )
