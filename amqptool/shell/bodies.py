"""``basic.publish`` bodies: the typed text, or a file (``@FILE``) or stdin (``@-``). Pure I/O."""

from __future__ import annotations

import sys

from amqptool.errors import UsageError

__all__ = ["is_utf8", "read_body"]


def read_body(msg: str, *, stdin_is_commands: bool = False) -> bytes:
    """The body: the text, or ``@FILE`` / ``@-`` (stdin) read as bytes; ``@@x`` is ``@x``."""
    if not msg.startswith("@") or msg.startswith("@@"):
        return msg.removeprefix("@").encode("utf-8", "surrogateescape")
    path = msg[1:]
    if path == "-":
        if stdin_is_commands:
            raise UsageError("basic.publish: @- reads stdin, but the commands come from stdin")
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(f"basic.publish: cannot read {path}: {exc.strerror}") from None


def is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
