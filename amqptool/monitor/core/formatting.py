"""Short, fixed-width text for the monitor's cells: times, durations, ages, one-liners."""

from __future__ import annotations

from datetime import datetime, tzinfo
from math import isfinite
from typing import Any

__all__ = ["fmt_age", "fmt_clock", "fmt_datetime", "fmt_duration", "shorten"]


def fmt_clock(ts: float | None, tz: tzinfo | None = None) -> str:
    """``HH:MM:SS`` of an epoch time in ``tz`` (local time when None); ``-`` when unknown."""
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, tz).strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"


def fmt_datetime(ts: float | None, tz: tzinfo | None = None) -> str:
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    except (OverflowError, OSError, ValueError):
        return "?"


def fmt_duration(seconds: float | None) -> str:
    """A short duration: ``850ms``, ``2.31s``, ``4m05s``, ``3h12m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if not _finite(seconds):
        return "?"
    if seconds < 0:
        seconds = 0.0
    if seconds < 1.0:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60.0:
        return f"{seconds:.2f}s"
    if seconds < 3600.0:
        minutes, secs = divmod(int(seconds), 60)
        return f"{minutes}m{secs:02d}s"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def fmt_age(seconds: float | None) -> str:
    """How long ago: ``0.4s ago``, ``12s ago``, ``3m ago``; ``never`` when unknown."""
    if seconds is None:
        return "never"
    if not _finite(seconds):
        return "?"
    if seconds < 10:
        return f"{seconds:.1f}s ago"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def shorten(text: Any, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    if text is None:
        return ""
    value = text if isinstance(text, str) else repr(text)
    value = " ".join(value.split())
    if len(value) <= width:
        return value
    return value[: max(0, width - 1)] + "…"


def _finite(value: Any) -> bool:
    """A real, finite number (values restored from a store file may be anything)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return isfinite(value)
    except OverflowError:  # an int too large for a float
        return False
