"""``class T(PeriodicTask)``: Celery's class form of a periodic task.

::

    class Cleanup(PeriodicTask):
        run_every = timedelta(minutes=15)      # or seconds, schedule(...), crontab(...)
        def run(self):
            ...

The class is registered as a task (like any :class:`~worker.task.define.Task` subclass) and as a
periodic entry in :data:`worker.periodic.registry` under the task's name.
"""

from __future__ import annotations

from typing import Any, ClassVar

from worker.task import periodic
from worker.task.define import Task

__all__ = ["PeriodicTask"]


class PeriodicTask(Task):
    """A task that beat sends every ``run_every``."""

    abstract: ClassVar[bool] = True
    run_every: ClassVar[Any] = None
    periodic_options: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "run" not in cls.__dict__ or cls.__dict__.get("abstract", False):
            return
        if cls.run_every is None:
            raise TypeError(f"periodic task {cls.__qualname__} needs run_every")
        name = str(cls.name)
        periodic.registry.add(
            periodic.PeriodicEntry(
                name=name,
                task=name,
                schedule=periodic.to_schedule(cls.run_every),
                queue=cls.queue,
                options=dict(cls.periodic_options),
            )
        )
