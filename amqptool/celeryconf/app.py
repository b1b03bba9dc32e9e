"""Finding a Celery app where ``celery -A`` finds one (Celery imported only if a module does).

``-A`` accepts ``proj.celery:app`` (a module and the attribute holding the app),
``proj.celery`` (a module whose ``app`` or ``celery`` attribute, or any attribute, is a Celery
app), ``proj`` (a package whose ``celery`` submodule holds it), or a module without an app
(amqptool's own task modules, which only need importing).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

from amqptool.errors import UsageError

__all__ = ["NEEDS_CELERY_HINT", "find_app", "is_celery_app"]

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
