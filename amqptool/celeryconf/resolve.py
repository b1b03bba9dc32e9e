"""Resolve settings: flags > environment > the Celery app's conf > a config module > defaults.

``--config celeryconfig`` names a module read as Celery reads ``config_from_object``: its
lowercase setting names, or the old upper-case ones (``CELERY_DEFAULT_QUEUE``,
``CELERYD_CONCURRENCY``, ``BROKER_URL``...). A name that looks like a setting but is none is
refused with a did-you-mean; other module attributes (imports, helpers) are left alone.
Environment variables: ``AMQPTOOL_<NAME>`` for every setting, plus ``$AMQP_URL`` /
``$CELERY_BROKER_URL`` for the broker and ``$CELERY_RESULT_BACKEND``.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import Any

from amqptool.celeryconf.known import OLD_NAMES
from amqptool.celeryconf.table import SETTINGS, parse_text
from amqptool.errors import UsageError
from amqptool.settings import redact_url

__all__ = ["Resolved", "load_module", "resolve"]

_NEW_BY_OLD = {old: new for new, old in OLD_NAMES.items()}
_PREFIXES = (
    "task_",
    "worker_",
    "broker_",
    "result_",
    "beat_",
    "event_",
    "email_",
    "control_",
    "security_",
    "database_",
    "redis_",
    "cache_",
)
_OLD_PREFIXES = ("CELERY", "BROKER_", "EMAIL_")
SOURCES = ("flag", "env", "app", "module", "default")


def _looks_like_setting(name: str) -> bool:
    if name.islower():
        return name.startswith(_PREFIXES)
    return name.isupper() and name.startswith(_OLD_PREFIXES)


def _did_you_mean(name: str) -> str:
    pool = list(OLD_NAMES) if name.islower() else list(_NEW_BY_OLD)
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else "see Celery's configuration reference"


def settings_of(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Lowercase settings from a mapping of attribute names (old names translated)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name.startswith("_") or isinstance(value, ModuleType):
            continue
        if name in OLD_NAMES:
            out[name] = value
        elif name in _NEW_BY_OLD:
            out[_NEW_BY_OLD[name]] = value
        elif _looks_like_setting(name):
            raise UsageError(f"{where}: unknown setting {name}", hint=_did_you_mean(name))
    return out


def load_module(name: str) -> dict[str, Any]:
    """``--config NAME``: the module's settings; UsageError if it does not import."""
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # ImportError, or the module raised: either way, refuse
        raise UsageError(
            f"--config {name}: the config module does not import: {type(exc).__name__}: {exc}"
        ) from exc
    return settings_of(vars(module), f"config module {name}")


def _app_values(app: Any) -> dict[str, Any]:
    """The settings a Celery app sets itself (those that differ from Celery's defaults)."""
    from celery.app.defaults import DEFAULTS

    out: dict[str, Any] = {}
    for name in SETTINGS:
        if name not in DEFAULTS:
            continue
        value = app.conf.get(name)
        if value != DEFAULTS[name] and value is not None:
            out[name] = value
    return out


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, setting in SETTINGS.items():
        for var in (*setting.env, f"AMQPTOOL_{name.upper()}"):
            text = environ.get(var)
            if text:
                out[name] = parse_text(setting, text, f"${var}")
                break
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


@dataclass
class Resolved:
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def given(self, name: str) -> bool:
        """True when something other than the defaults set it."""
        return self.sources.get(name, "default") != "default"

    def lines(self) -> list[str]:
        """``--print-config``: every setting, its value and where it came from (masked)."""
        width = max(len(n) for n in self.values)
        out = []
        for name, value in self.values.items():
            setting = SETTINGS.get(name)
            shown: str
            if setting is not None and setting.secret and value:
                shown = "'********'"
            elif setting is not None and setting.kind == "url" and isinstance(value, str):
                shown = repr(redact_url(value))
            else:
                shown = redact_url(repr(value))
            out.append(f"{name:<{width}} = {shown}  ({self.sources[name]})")
        return out


def resolve(
    *,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    app: Any = None,
    module: str | None = None,
) -> Resolved:
    """Every setting with its value and source, highest layer first."""
    env = os.environ if environ is None else environ
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("flag", {k: v for k, v in (flags or {}).items() if v is not None}),
        ("env", _env_values(env)),
        ("app", _app_values(app) if app is not None else {}),
        ("module", load_module(module) if module else {}),
    ]
    for source, values in layers[:1]:
        for name in values:
            if name not in SETTINGS:
                raise UsageError(f"{source}: unknown setting {name}", hint=_did_you_mean(name))
    out = Resolved()
    for name, setting in SETTINGS.items():
        for source, values in layers:
            if name in values:
                out.values[name], out.sources[name] = _plain(values[name]), source
                break
        else:
            out.values[name], out.sources[name] = setting.default, "default"
    return out
