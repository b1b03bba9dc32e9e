"""Text from the broker made safe for a terminal: control characters shown, never sent raw.

Anything a peer on the broker wrote (a reply, an event field, a message body, a task id) may
hold escape sequences that retitle the window, clear the screen or plant links. Every text
output renders such strings through :func:`visible`: C0 controls (but tab), DEL, C1 controls
(``0x80``-``0x9f``, where ``0x9b`` is a CSI on 8-bit terminals), the Unicode line and paragraph
separators and the bidirectional overrides become ``\\xNN`` / ``\\uNNNN`` text. Newlines are
kept by default (multi-line bodies stay readable); ``newline=...`` replaces them (``"\\\\n"``
for one-line output, an indent for continuation lines). ``--json`` output needs none of this:
JSON escapes C0 control characters itself; :func:`json_visible` also escapes the rest (DEL,
C1, separators, bidi overrides) in JSON text written with ``ensure_ascii=False``.
"""

from __future__ import annotations

__all__ = ["CONTROL_CODES", "escape_table", "json_visible", "one_line", "visible"]

_BIDI = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
CONTROL_CODES: tuple[int, ...] = (
    *(c for c in range(0x20) if c != 0x09),
    0x7F,
    *range(0x80, 0xA0),
    0x2028,
    0x2029,
    *_BIDI,
)


def _code(c: int) -> str:
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def escape_table(newline: str | None = None) -> dict[int, str]:
    """A ``str.translate`` table; ``newline=None`` keeps ``\\n`` as it is."""
    table = {c: _code(c) for c in CONTROL_CODES}
    table[0x0D] = "\\r"
    if newline is None:
        del table[0x0A]
    else:
        table[0x0A] = newline
    return table


_KEEP_NEWLINES = escape_table()
_ONE_LINE = escape_table("\\n")


def visible(text: object) -> str:
    """``str(text)`` with every control character but newline and tab made visible."""
    return str(text).translate(_KEEP_NEWLINES)


_JSON = {c: f"\\u{c:04x}" for c in CONTROL_CODES if c >= 0x7F}


def json_visible(json_text: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with DEL, C1, the line
    separators and the bidi overrides as ``\\uNNNN`` escapes: the same JSON value. Such
    characters can only stand inside JSON strings, where the escape means the same."""
    return json_text.translate(_JSON)


def one_line(text: object) -> str:
    """``str(text)`` on one line: newlines too become ``\\n``."""
    return str(text).translate(_ONE_LINE)
