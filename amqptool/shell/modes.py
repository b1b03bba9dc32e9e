"""One-shot and batch modes, and the wiring shared by every mode."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from amqptool.errors import ConnectionFailedError, UsageError
from amqptool.shell.names import KnownNames
from amqptool.shell.outcome import ExitRequest
from amqptool.shell.runner import Runner
from amqptool.shell.session import Shell

if TYPE_CHECKING:
    from amqptool.entrypoint import CliContext

__all__ = ["main", "run_batch", "run_one_shot"]


def run_one_shot(shell: Shell, tokens: list[str]) -> int:
    """One command from argv; a single quoted argument is taken as a whole line."""
    if len(tokens) == 1 and tokens[0].strip() and len(tokens[0].split()) > 1:
        line_outcome = shell.run_line(tokens[0])
        outcome = line_outcome if line_outcome is not None else shell.run_tokens(tokens)
    else:
        outcome = shell.run_tokens(tokens)
    if outcome.ok and shell.runner.unacked:
        shell.info(
            "note: the message was not acknowledged, so it goes back to the queue as the shell "
            "exits (basic.get QUEUE no_ack=yes removes it)"
        )
    return outcome.exit_code


def run_batch(shell: Shell, lines: Iterable[str], *, stop_on_error: bool = False) -> int:
    """Run every line; keep going after a failure unless ``stop_on_error``.

    The exit status is that of the first failed command (0 when all succeeded). A broker that
    cannot be reached at all ends the batch.
    """
    status = 0
    for number, line in enumerate(lines, 1):
        outcome = shell.run_line(line.rstrip("\r\n"), where=f"line {number}")
        if outcome is None:
            continue
        if isinstance(outcome.value, ExitRequest):
            break
        if outcome.ok:
            continue
        status = status or outcome.exit_code
        unreachable = isinstance(outcome.error, ConnectionFailedError) and (
            shell.runner.connect_failed
        )
        if stop_on_error or unreachable:
            break
    return status


def _open_batch(path: str, stdin: TextIO | None) -> Iterable[str]:
    if path == "-":
        return stdin if stdin is not None else ()
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.readlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def main(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings()
    tokens: list[str] = list(args.command or [])
    if tokens and tokens[0] == "--":
        tokens = tokens[1:]
    if tokens and args.file:
        raise UsageError("give either a command or -f FILE, not both")
    from amqptool.transport import Connection

    runner = Runner(
        # No heartbeats: an interactive shell idles at its prompt without pumping I/O; a dead
        # connection is found (and replaced) before the next command instead.
        Connection(settings, name="amqptool shell", heartbeat=0),
        names=KnownNames(),
        describe=settings.primary.redacted(),
    )
    shell = Shell(
        runner, stdout=ctx.stdout, stderr=ctx.stderr, json_mode=args.json, debug=ctx.debug
    )
    runner.notify = shell.info
    stdin: TextIO | None = sys.stdin  # None when the process has no standard input
    try:
        if tokens:
            return run_one_shot(shell, tokens)
        if args.file:
            return run_batch(shell, _open_batch(args.file, stdin), stop_on_error=args.stop_on_error)
        if stdin is None or not stdin.isatty():
            lines: Iterable[str] = stdin if stdin is not None else ()
            return run_batch(shell, lines, stop_on_error=args.stop_on_error)
        from amqptool.shell.repl import run_interactive

        return run_interactive(shell, broker=settings.primary.redacted())
    finally:
        runner.close()
