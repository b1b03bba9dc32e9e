"""Strings from the broker, made safe to draw: control characters visible, big fields cut.

Every string an event carries (hostname, task name, args, result, exception, software...) was
written by whoever can publish on ``celeryev``. Drawn raw, an ``ESC`` starts a terminal control
sequence (window title, screen clear, OSC 8 links) and a megabyte of args stays in memory as long
as the task does. :func:`clean` is applied once, when an event is folded into the state, so every
view (table, detail, header, metrics labels, the ``--state`` file) only ever sees the safe text:

* the characters :mod:`amqptool.textsafe` escapes (C0 controls, DEL, the C1 range, the line
  and paragraph separators, the bidirectional overrides), and the bidi marks, become
  ``\\xNN`` / ``\\uNNNN``; newlines and tabs too, except in a multi-line field (a traceback);
* text longer than ``limit`` characters is cut, with a visible marker saying how much was cut.

Pure core: no I/O, no UI toolkit.
"""

from __future__ import annotations

import re

from amqptool.textsafe import escape_table

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

# amqptool.textsafe's table, and: a tab shown too on one line (a cell), the bidi marks.
_MARKS = (0x200E, 0x200F, 0x061C)
_TABLE = {**escape_table("\\n"), 0x09: "\\t", **{c: f"\\u{c:04x}" for c in _MARKS}}
_TABLE_MULTILINE = {**escape_table(), **{c: f"\\u{c:04x}" for c in _MARKS}}
_FIND = re.compile("[" + "".join(re.escape(chr(c)) for c in _TABLE) + "]")
_FIND_MULTILINE = re.compile("[" + "".join(re.escape(chr(c)) for c in _TABLE_MULTILINE) + "]")

_search = _FIND.search

# Every character either table escapes is one ``str.isprintable`` rejects (C0/C1 controls, DEL,
# the separators Zl/Zp, the bidi format characters Cf; tests/unit/test_monitor_clean.py checks
# it), so ``text.isprintable()`` (C, one pass, no regex) proves a string safe. Only text that
# fails it (a newline, a non-breaking space, a real control character) is searched precisely.


def unsafe(text: str) -> bool:
    """True when ``text`` holds a character :func:`visible` escapes (one-line table)."""
    return not text.isprintable() and _search(text) is not None


def visible(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control character shown as an escape (newlines kept if multiline)."""
    if text.isprintable():
        return text
    if multiline:
        return text.translate(_TABLE_MULTILINE) if _FIND_MULTILINE.search(text) else text
    return text.translate(_TABLE) if _search(text) else text


def clean(text: str, limit: int = DEFAULT_FIELD_LIMIT, *, multiline: bool = False) -> str:
    """``text`` cut to ``limit`` characters (with a marker) and made :func:`visible`."""
    if len(text) > limit:
        text = text[:limit] + CUT_MARK.format(n=len(text) - limit)
    return visible(text, multiline=multiline)


def clean_key(text: str, limit: int = KEY_LIMIT) -> str:
    """A name used as a key (hostname, task name, state): one line, short."""
    if len(text) <= limit and (text.isprintable() or not _search(text)):
        return text
    return clean(text, limit)
