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

import importlib
import importlib.util
import sys
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from amqptool.errors import UsageError
from worker.celery_exec import CeleryTask
from worker.tasks import Task

__all__ = ["WorkerTasks", "find_app", "import_target", "is_celery_app", "user_task_names"]

NEEDS_CELERY_HINT = "install Celery with: pip install 'amqptool[celery]'"


def is_celery_app(obj: object) -> bool:
    celery = sys.modules.get("celery")
    if celery is None:
        return False
    from celery import Celery

    return isinstance(obj, Celery)


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except UsageError:
        raise
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in ("celery", "kombu", "billiard") and missing != name.split(".")[0]:
            raise UsageError(
                f"task module {name!r} needs Celery, which is not installed",
                hint=NEEDS_CELERY_HINT,
            ) from exc
        raise UsageError(f"cannot import task module {name!r}: {exc}") from exc
    except Exception as exc:  # the user's module raised while importing
        raise UsageError(
            f"task module {name!r} raised {type(exc).__name__} on import: {exc}"
        ) from exc


def _app_in(module: ModuleType) -> Any | None:
    for attr in ("app", "celery"):
        value = getattr(module, attr, None)
        if is_celery_app(value):
            return value
    for value in vars(module).values():
        if is_celery_app(value):
            return value
    return None


def find_app(target: str) -> Any | None:
    """Import ``target`` (``module`` or ``module:attribute``); the Celery app it names, if any."""
    module_name, _, attr = target.partition(":")
    if not module_name:
        raise UsageError(f"-A {target!r}: no module named")
    module = _import(module_name)
    if attr:
        value: Any = module
        for part in attr.split("."):
            if not hasattr(value, part):
                raise UsageError(f"-A {target!r}: module {module_name!r} has no {attr!r}")
            value = getattr(value, part)
        if not is_celery_app(value):
            raise UsageError(f"-A {target!r}: {attr!r} is not a Celery app")
        return value
    app = _app_in(module)
    if app is None and hasattr(module, "__path__") and not module_name.endswith(".celery"):
        sub = f"{module_name}.celery"
        if importlib.util.find_spec(sub) is not None:
            app = _app_in(_import(sub))
    return app


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
