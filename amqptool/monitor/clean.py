"""Strings from the broker, made safe to draw: control characters visible, big fields cut.

Every string an event carries (hostname, task name, args, result, exception, software...) was
written by whoever can publish on ``celeryev``. Drawn raw, an ``ESC`` starts a terminal control
sequence (window title, screen clear, OSC 8 links) and a megabyte of args stays in memory as long
as the task does. :func:`clean` is applied once, when an event is folded into the state, so every
view (table, detail, header, metrics labels, the ``--state`` file) only ever sees the safe text:

* C0 controls (but newline where the field is multi-line, a traceback), DEL, the C1 range
  (``0x9b`` is a one-byte CSI on some terminals), the Unicode line and paragraph separators and
  the bidirectional overrides become ``\\xNN`` / ``\\uNNNN``;
* text longer than ``limit`` characters is cut, with a visible marker saying how much was cut.

Pure core: no I/O, no UI toolkit.
"""

from __future__ import annotations

import re

__all__ = [
    "CUT_MARK",
    "DEFAULT_FIELD_LIMIT",
    "KEY_LIMIT",
    "clean",
    "clean_key",
    "unsafe",
    "visible",
]

DEFAULT_FIELD_LIMIT = 4096
KEY_LIMIT = 256
CUT_MARK = "…[cut {n} chars]"

_BIDI = (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)
_UNSAFE = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, *_BIDI]


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_TABLE = {c: _escape(c) for c in _UNSAFE}
_TABLE.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})
_TABLE_MULTILINE = {c: e for c, e in _TABLE.items() if c not in (0x0A, 0x09)}
_FIND = re.compile("[" + "".join(re.escape(chr(c)) for c in _UNSAFE) + "]")
_FIND_MULTILINE = re.compile(
    "[" + "".join(re.escape(chr(c)) for c in _UNSAFE if c not in (0x0A, 0x09)) + "]"
)


#: ``unsafe(text)`` is a match (truthy) when ``text`` holds a character :func:`visible` escapes.
unsafe = _FIND.search


def visible(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control character shown as an escape (newlines kept if multiline)."""
    if multiline:
        return text.translate(_TABLE_MULTILINE) if _FIND_MULTILINE.search(text) else text
    return text.translate(_TABLE) if _FIND.search(text) else text


def clean(text: str, limit: int = DEFAULT_FIELD_LIMIT, *, multiline: bool = False) -> str:
    """``text`` cut to ``limit`` characters (with a marker) and made :func:`visible`."""
    if len(text) > limit:
        text = text[:limit] + CUT_MARK.format(n=len(text) - limit)
    return visible(text, multiline=multiline)


def clean_key(text: str, limit: int = KEY_LIMIT) -> str:
    """A name used as a key (hostname, task name, state): one line, short."""
    if len(text) <= limit and not _FIND.search(text):
        return text
    return clean(text, limit)
