"""Argument checks for remote control commands: any peer on the broker may send one.

Every check raises :class:`ValueError` (:class:`TypeError` for a value of the wrong kind)
naming the argument and the value, which :func:`worker.control.registry.dispatch` turns into
an ``{"error": ...}`` reply; the worker's state is left as it was. Negative, NaN, infinite
and absurd values are refused rather than clamped, so the sender learns that its command did
nothing.
"""

from __future__ import annotations

import math
import signal as signals
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MAX_IDS",
    "MAX_NAME_BYTES",
    "MAX_SECONDS",
    "bounded_count",
    "broker_name",
    "optional_seconds",
    "signal_in_range",
    "task_ids",
    "task_name",
]

MAX_SECONDS = 7 * 24 * 3600.0  # a week: a longer time limit is a typo, not a plan
MAX_NAME_BYTES = 255  # AMQP short strings: queue, exchange and routing key names
MAX_IDS = 10_000  # task ids in one revoke / query


def _text(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def optional_seconds(value: Any, name: str) -> float | None:
    """A time limit: None/""/0 is "no limit"; else a finite number of seconds in (0, a week]."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a number of seconds, not {_text(value)}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{name} must be a number of seconds, not {_text(value)}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {_text(value)}")
    if number > MAX_SECONDS:
        raise ValueError(f"{name} of {number:g} s is more than a week ({MAX_SECONDS:g} s)")
    return number or None


def bounded_count(value: Any, name: str, most: int) -> int:
    """A whole number in ``[1, most]`` (an int, or digits from a raw request)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{name} must be a whole number, not {_text(value)}")
    text = value.strip() if isinstance(value, str) else ""
    if isinstance(value, str) and not (text.isascii() and text.isdigit()):
        raise ValueError(f"{name} must be a whole number, not {_text(value)}")
    if isinstance(value, str) and len(text) > 12:
        raise ValueError(f"{name} must be at most {most}, not {text[:20]}...")
    n = int(text) if isinstance(value, str) else value
    if n < 1:
        raise ValueError(f"{name} must be at least 1, not {n}")
    if n > most:
        raise ValueError(f"{name} must be at most {most}, not {n}")
    return n


def _printable_name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty name, not {_text(value)}")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise ValueError(f"{name} is longer than {MAX_NAME_BYTES} bytes")
    if not value.isprintable():
        raise ValueError(f"{name} holds control characters: {_text(value)}")
    return value


def task_name(value: Any) -> str:
    return _printable_name(value, "task_name")


def broker_name(value: Any, name: str, *, empty: bool = False) -> str | None:
    """A queue / exchange / routing key name (None passes; ``empty`` allows "")."""
    if value is None:
        return None
    if empty and value == "":
        return ""
    return _printable_name(value, name)


def task_ids(value: Any) -> list[str]:
    """One id or a list of ids (strings), at most :data:`MAX_IDS`."""
    if value is None:
        return []
    items: Iterable[Any] = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise TypeError(f"task_id must be an id or a list of ids, not {_text(value)}")
    if len(items) > MAX_IDS:
        raise ValueError(f"at most {MAX_IDS} task ids at once, not {len(items)}")
    out = []
    for item in items:
        if not isinstance(item, str | int) or isinstance(item, bool):
            raise TypeError(f"a task id must be a string, not {_text(item)}")
        text = str(item)
        if not text or len(text) > MAX_NAME_BYTES or not text.isprintable():
            raise ValueError(f"not a task id: {_text(item)}")
        out.append(text)
    return list(dict.fromkeys(out))


def signal_in_range(number: int) -> int:
    if not 0 < number < signals.NSIG:
        raise ValueError(f"signal must be between 1 and {signals.NSIG - 1}, not {number}")
    return number
