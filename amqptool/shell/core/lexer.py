"""Split a shell line into words, POSIX-shell style, remembering which parts were quoted.

Like :func:`shlex.split` (single quotes literal; in double quotes a backslash escapes only
``"`` and ``\\``; outside quotes it escapes any character), plus two rules ``shlex`` cannot give:

- **Comments after arguments.** An unquoted ``#`` that starts a word and is followed by a space
  or tab starts a comment: ``queue.declare q   # scratch queue``. A ``#`` at the end of the
  line or inside a word is text, so topic keys such as ``#``, ``a.#`` and ``#.b`` keep working;
  quote it (``'# x'``) to pass a ``#`` followed by a space.
- **Quoted words stay positional.** Each :class:`Word` records where its first quoted character
  is, so the parser can tell ``priority=5`` (an option) from ``'priority=5'`` (a message body):
  a ``NAME=VALUE`` word is an option only when the ``NAME=`` part is unquoted.

Pure.
"""

from __future__ import annotations

__all__ = ["SplitError", "Word", "split_words"]

_BLANK = " \t\r\n\f\v"


class SplitError(ValueError):
    """An unbalanced quote or a trailing backslash (the message is shlex's)."""


class Word(str):
    """A word of a line; ``quoted_at`` is the index of its first quoted character, or None."""

    quoted_at: int | None

    def __new__(cls, text: str, quoted_at: int | None = None) -> Word:
        word = super().__new__(cls, text)
        word.quoted_at = quoted_at
        return word

    def unquoted_prefix(self, end: int) -> bool:
        """True when the characters before index ``end`` were all typed without quotes."""
        return self.quoted_at is None or self.quoted_at > end


def split_words(line: str) -> list[Word]:
    """The words of ``line`` (a comment, as defined above, ends it)."""
    words: list[Word] = []
    buf: list[str] = []  # one character per item
    quoted_at: int | None = None
    in_word = False
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in _BLANK:
            if in_word:
                words.append(Word("".join(buf), quoted_at))
                buf, quoted_at, in_word = [], None, False
            i += 1
            continue
        if c == "#" and not in_word and i + 1 < n and line[i + 1] in " \t":
            break
        in_word = True
        if c == "\\":
            if i + 1 >= n:
                raise SplitError("No escaped character")
            buf.append(line[i + 1])
            i += 2
        elif c == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise SplitError("No closing quotation")
            quoted_at = len(buf) if quoted_at is None else quoted_at
            buf.extend(line[i + 1 : end])
            i = end + 1
        elif c == '"':
            quoted_at = len(buf) if quoted_at is None else quoted_at
            i = _double_quoted(line, i + 1, buf)
        else:
            buf.append(c)
            i += 1
    if in_word:
        words.append(Word("".join(buf), quoted_at))
    return words


def _double_quoted(line: str, i: int, buf: list[str]) -> int:
    """Append the inside of a double-quoted part starting at ``i``; the index after it."""
    n = len(line)
    while i < n:
        c = line[i]
        if c == '"':
            return i + 1
        if c == "\\" and i + 1 < n and line[i + 1] in '"\\':
            buf.append(line[i + 1])
            i += 2
            continue
        buf.append(c)
        i += 1
    raise SplitError("No closing quotation")
