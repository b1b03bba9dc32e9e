"""The settings amqptool reads, Celery's names and defaults, and how text becomes a value."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from amqptool.errors import UsageError

__all__ = ["SETTINGS", "Setting", "milliseconds", "parse_text"]


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    kind: str  # str, int, float, bool, list, object, url
    secret: bool = False
    env: tuple[str, ...] = ()  # environment variables besides AMQPTOOL_<NAME>


def _s(name: str, default: Any, kind: str, **kw: Any) -> Setting:
    return Setting(name, default, kind, **kw)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        _s("broker_url", None, "url", env=("AMQP_URL", "CELERY_BROKER_URL")),
        _s("result_backend", None, "url", env=("CELERY_RESULT_BACKEND",)),
        _s("task_default_queue", "celery", "str"),
        _s("task_default_exchange", None, "str"),
        _s("task_default_exchange_type", "direct", "str"),
        _s("task_default_routing_key", None, "str"),
        _s("task_default_queue_type", "classic", "str"),
        _s("task_queues", None, "object"),
        _s("task_routes", None, "object"),
        _s("task_create_missing_queues", True, "bool"),
        _s("task_serializer", "json", "str"),
        _s("result_serializer", "json", "str"),
        _s("accept_content", ["json"], "list"),
        _s("task_compression", None, "str"),
        _s("task_acks_late", False, "bool"),
        _s("task_reject_on_worker_lost", False, "bool"),
        _s("task_track_started", False, "bool"),
        _s("task_ignore_result", False, "bool"),
        _s("task_time_limit", None, "float"),
        _s("task_soft_time_limit", None, "float"),
        _s("task_default_rate_limit", None, "str"),
        _s("worker_disable_rate_limits", False, "bool"),
        _s("worker_prefetch_multiplier", 4, "int"),
        _s("worker_concurrency", None, "int"),
        _s("worker_pool", "prefork", "str"),
        _s("worker_max_tasks_per_child", None, "int"),
        _s("worker_send_task_events", False, "bool"),
        _s("result_expires", 86400.0, "float"),
        _s("task_send_error_emails", False, "bool"),
        _s("admins", [], "object"),
        _s("server_email", "celery@localhost", "str"),
        _s("email_host", "localhost", "str"),
        _s("email_port", 25, "int"),
        _s("email_host_user", None, "str"),
        _s("email_host_password", None, "str", secret=True),
        _s("email_timeout", 2.0, "float"),
        _s("email_use_ssl", False, "bool"),
        _s("email_use_tls", False, "bool"),
    )
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_text(setting: Setting, text: str, where: str) -> Any:
    """A setting's value from text (an environment variable); UsageError names ``where``."""
    kind = setting.kind
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            low = text.strip().lower()
            if low in _TRUE or low in _FALSE:
                return low in _TRUE
            raise ValueError("not true/false")
        if kind == "list":
            if text.lstrip().startswith("["):
                return list(json.loads(text))
            return [part.strip() for part in text.split(",") if part.strip()]
        if kind == "object":
            return json.loads(text)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{where}: {text!r} is not a valid {setting.name} ({exc})") from exc
    return text


def milliseconds(seconds: Any, default: int) -> int:
    """A duration setting (seconds, or a ``timedelta`` as Celery allows) in milliseconds."""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    return int(float(seconds) * 1000) if seconds else default
