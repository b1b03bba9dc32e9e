"""Public names are never shadowed by modules: every ``worker`` name is the documented object.

Importing a submodule sets it as an attribute of its parent package. A module named like a
public name (the old ``worker/schedule.py`` next to the ``schedule`` class) therefore replaces
that name once something imports it, so the test imports every worker module first.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import worker

# name in worker.__all__ -> the module that defines it (what the docs point to)
DOCUMENTED = {
    "AlreadyRegistered": "worker.task.exceptions",
    "Context": "worker.task.context",
    "EagerResult": "worker.task.eager",
    "EncodeError": "worker.task.exceptions",
    "ExceptionInfo": "worker.task.context",
    "Ignore": "worker.task.exceptions",
    "MaxRetriesExceededError": "worker.task.exceptions",
    "NotRegistered": "worker.task.exceptions",
    "PeriodicTask": "worker.task.periodic_class",
    "Reject": "worker.task.exceptions",
    "Retry": "worker.task.exceptions",
    "SoftTimeLimitExceeded": "worker.task.exceptions",
    "Task": "worker.task.define",
    "TaskRegistry": "worker.task.define",
    "TaskRevokedError": "worker.task.exceptions",
    "TimeLimitExceeded": "worker.task.exceptions",
    "Worker": "worker.daemon",
    "WorkerLostError": "worker.task.exceptions",
    "conf": "worker.task.eager",
    "control_command": "worker.control.registry",
    "crontab": "worker.task.periodic",
    "get_task_logger": "worker.task.log",
    "periodic_task": "worker.task.periodic",
    "registry": "worker.task.define",
    "schedule": "worker.task.periodic",
    "task": "worker.task.define",
}


def import_every_worker_module() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(worker.__path__, "worker."):
        if info.name == "worker.__main__":  # runs the CLI
            continue
        importlib.import_module(info.name)
        names.append(info.name)
    return names


def test_every_public_name_is_the_documented_object_after_importing_every_module() -> None:
    modules = import_every_worker_module()
    assert "worker.runtime.timer" in modules and "worker.daemon" in modules
    assert sorted(worker.__all__) == sorted(DOCUMENTED)
    for name, home in DOCUMENTED.items():
        value = getattr(worker, name)
        assert not isinstance(value, types.ModuleType), f"worker.{name} is a module"
        assert value is getattr(importlib.import_module(home), name), name
    assert inspect.isclass(worker.schedule) and inspect.isclass(worker.crontab)
    assert callable(worker.task) and callable(worker.periodic_task)


def test_a_schedule_made_through_the_public_name_works_after_the_daemon_is_imported() -> None:
    importlib.import_module("worker.daemon")
    from worker import schedule

    assert schedule(30).seconds == 30.0
