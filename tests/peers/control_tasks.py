"""A task module that adds its own remote control command, as a user's module would.

Run a worker with ``-A tests.peers.control_tasks``: it gets the ``peer.*`` tasks and the
``task_totals`` command (``amqptool control raw task_totals [task_name=NAME]``).
"""

from __future__ import annotations

from typing import Any

from tests.peers import amqptool_tasks  # noqa: F401  # the peer.* tasks, registered on import
from worker import control_command


@control_command("task_totals", kind="inspect", signature="[task_name]")
def task_totals(panel: Any, task_name: str | None = None) -> Any:
    """How many tasks of each name this worker has received (or of one name)."""
    totals = dict(panel.target.state.total)
    if task_name is None:
        return totals
    if task_name not in panel.target.tasks:
        return {"error": f"no task named {task_name!r} here"}
    return {"ok": totals.get(task_name, 0)}
