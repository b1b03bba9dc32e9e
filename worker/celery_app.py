"""``-A``: import task modules, and find a Celery app where ``celery -A`` would find one.

``-A`` accepts what ``celery -A`` accepts:

- ``proj.celery:app`` — a module and the attribute holding the app;
- ``proj.celery`` — a module whose ``app`` or ``celery`` attribute (or any attribute) is a
  Celery app;
- ``proj`` — a package whose ``celery`` submodule holds it;
- our own task modules (``from worker import task``), which only need importing.

A Celery app found is prepared as Celery's worker prepares it: its ``imports``/``include``
modules imported, ``autodiscover_tasks`` run, the app finalized and made the current and default
app (so ``@shared_task`` binds to it). Its tasks then join ours in one mapping
(:class:`WorkerTasks`). Celery itself is only imported when a module does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from amqptool.celeryconf.app import find_app, is_celery_app
from amqptool.errors import UsageError
from worker.pool.celery_trace import CeleryTask
from worker.task.define import Task

__all__ = ["WorkerTasks", "find_app", "import_target", "is_celery_app", "user_task_names"]


def prepare_app(app: Any) -> None:
    """What Celery's worker does with its app before consuming."""
    try:
        app.loader.import_default_modules()
        app.finalize(auto=True)
    except ImportError as exc:
        raise UsageError(f"the Celery app {app.main!r} cannot import its tasks: {exc}") from exc
    app.set_current()
    app.set_default()


def import_target(targets: list[str], *, prepare: bool = True) -> Any | None:
    """Import every ``-A`` target; the (first) Celery app among them (prepared, unless told)."""
    app = None
    for target in targets:
        found = find_app(target)
        if found is not None and app is None:
            app = found
    if app is not None and prepare:
        prepare_app(app)
    return app


class WorkerTasks(Mapping[str, Task]):
    """Our registry and a Celery app's tasks as one mapping (ours first, except ``celery.*``
    names, which are the app's own built-ins when there is an app)."""

    def __init__(self, ours: Mapping[str, Task], app: Any) -> None:
        self.ours = ours
        self.app = app
        self._wrapped: dict[str, CeleryTask] = {}

    def _celery(self, name: str) -> CeleryTask | None:
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            found = self.app.tasks.get(name)
            if found is None:
                return None
            wrapped = self._wrapped[name] = CeleryTask(found)
        return wrapped

    def __getitem__(self, name: str) -> Task:
        if name.startswith("celery."):
            found = self._celery(name)
            if found is not None:
                return found
        if name in self.ours:
            return self.ours[name]
        found = self._celery(name)
        if found is None:
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[str]:
        seen = set(self.ours)
        yield from self.ours
        for name in self.app.tasks:
            if name not in seen:
                yield name

    def __len__(self) -> int:
        return len(set(self.ours) | set(self.app.tasks))


def user_task_names(tasks: Mapping[str, Task]) -> list[str]:
    """The tasks a user wrote (Celery's own ``celery.*`` built-ins left out)."""
    return sorted(name for name in tasks if not name.startswith("celery."))
