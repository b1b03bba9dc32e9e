"""One-shot and batch modes, and the wiring shared by every mode."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TextIO

from amqptool.errors import ConnectionFailedError, ExitCode, UsageError
from amqptool.shell.core.names import KnownNames
from amqptool.shell.core.outcome import ExitRequest
from amqptool.shell.runner import Runner
from amqptool.shell.session import OutputClosed, Shell

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


def _without_bom(lines: Iterable[str]) -> Iterator[str]:
    """The lines, with a UTF-8 byte-order mark at the very start dropped (Windows editors)."""
    first = True
    for line in lines:
        if first:
            line = line.removeprefix("\ufeff")
            first = False
        yield line


def _open_batch(path: str, stdin: TextIO | None) -> Iterable[str]:
    if path == "-":
        return _without_bom(stdin if stdin is not None else ())
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return list(_without_bom(handle.readlines()))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


INTERACTIVE_HEARTBEAT = 15
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool ended by a closed pipe


def _output_closed(shell: Shell, exc: OutputClosed) -> int:
    """Stop as a Unix tool does: quietly with 141 on a closed pipe, one line on a closed fd."""
    if exc.broken_pipe:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            # Point fd 1 at /dev/null so the interpreter's final flush does not complain.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    shell.info("error: cannot write the output: standard output is closed")
    return int(ExitCode.FAILED)


def main(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings()
    tokens: list[str] = list(args.command or [])
    if tokens and tokens[0] == "--":
        tokens = tokens[1:]
    if tokens and args.file:
        raise UsageError("give either a command or -f FILE, not both")
    from amqptool.transport import Connection

    if args.timeout < 0:
        raise UsageError(f"--timeout: expected a number of seconds >= 0, not {args.timeout:g}")
    stdin: TextIO | None = sys.stdin  # None when the process has no standard input
    interactive = not tokens and not args.file and stdin is not None and stdin.isatty()
    runner = Runner(
        # Interactive: heartbeats, sent (and checked) while the prompt waits, so a dead or
        # half-open connection is noticed. One-shot and batch runs never idle between commands;
        # there the per-command timeout bounds every wait.
        Connection(
            settings, name="amqptool shell", heartbeat=INTERACTIVE_HEARTBEAT if interactive else 0
        ),
        names=KnownNames(),
        describe=settings.primary.redacted(),
        timeout=args.timeout,
    )
    from amqptool.shell.listing import Lister, client_factory

    factory = client_factory(settings, args.mgmt_url)
    shell = Shell(
        runner,
        stdout=ctx.stdout,
        stderr=ctx.stderr,
        json_mode=args.json,
        debug=ctx.debug,
        lister=Lister(factory),
    )
    runner.notify = shell.info
    runner.stdin_is_commands = not tokens and args.file in (None, "-")
    if ctx.stderr is not None and ctx.stderr.isatty():
        runner.progress = shell.show_progress
    try:
        return _run_mode(shell, args, tokens, stdin, settings.redacted())
    except OutputClosed as exc:
        return _output_closed(shell, exc)
    finally:
        runner.close()


def _run_mode(
    shell: Shell, args: argparse.Namespace, tokens: list[str], stdin: TextIO | None, broker: str
) -> int:
    if tokens:
        return run_one_shot(shell, tokens)
    if args.file:
        return run_batch(shell, _open_batch(args.file, stdin), stop_on_error=args.stop_on_error)
    if stdin is None or not stdin.isatty():
        return run_batch(shell, _open_batch("-", stdin), stop_on_error=args.stop_on_error)
    from amqptool.shell.repl import run_interactive

    return run_interactive(shell, broker=broker, ask=not args.yes)
