"""A task module written as the README shows loads under ``amqptool worker -A`` and runs.

The worker imports its own modules (the daemon, the timer) before the task modules, so this is
where a module shadowing a public name (``worker.schedule``) showed: "'module' object is not
callable" when the task module called ``schedule(...)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.harness import unique, wait_until
from tests.worker_support import WorkerProcess

TASK_MODULE = """
import os
from pathlib import Path

from worker import crontab, periodic_task, schedule, task


@periodic_task(run_every=schedule(0.5))
@task(name="{name}.tick", ignore_result=True)
def tick():
    with Path(os.environ["SHADOW_TICK_FILE"]).open("a") as out:
        out.write("tick\\n")


@periodic_task(run_every=crontab(minute="*/15"))
@task(name="{name}.cleanup", ignore_result=True)
def cleanup():
    pass
"""


def test_a_task_module_importing_periodic_task_and_schedule_loads_and_runs(
    broker_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = unique("shadow_tasks").replace("-", "_")
    (tmp_path / f"{module}.py").write_text(TASK_MODULE.format(name=module))
    ticks = tmp_path / "ticks"
    monkeypatch.setenv("SHADOW_TICK_FILE", str(ticks))
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    args = ("-A", module, "-P", "threads", "-B", "-s", str(tmp_path / "beat.json"))
    with WorkerProcess(broker_url, *args) as wp:
        wait_until(ticks.exists, timeout=15, message="the periodic task to run")
        assert "not callable" not in wp.output()
