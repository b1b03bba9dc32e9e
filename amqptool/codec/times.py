"""ISO 8601 times as Celery puts them on the wire, and the local UTC offset."""

from __future__ import annotations

import time as _time
from datetime import UTC, datetime, timedelta

from amqptool.errors import DecodeError

__all__ = ["format_iso", "from_timestamp", "parse_iso", "utcnow", "utcoffset_hours"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_iso(value: datetime) -> str:
    """``isoformat()`` of an aware datetime (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 time; accepts ``Z``, offsets and missing microseconds.

    A naive value is taken as UTC (Celery 5 does the same). Raises :class:`DecodeError`.
    """
    if not isinstance(value, str):
        raise DecodeError(f"time must be an ISO 8601 string, not {type(value).__name__}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise DecodeError(f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def from_timestamp(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def utcoffset_hours() -> float:
    """Hours **west** of UTC, as Celery's events carry it (``time.timezone / 3600``)."""
    is_dst = _time.daylight and _time.localtime().tm_isdst > 0
    return (_time.altzone if is_dst else _time.timezone) / 3600.0


def seconds_until(when: datetime, now: datetime | None = None) -> float:
    now = now or utcnow()
    delta: timedelta = when - now
    return delta.total_seconds()
