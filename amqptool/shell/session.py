"""One shell session: parse a line, run it, print the outcome. Shared by every mode.

Data goes to stdout (camqadm text, or one JSON document per command with ``--json``);
errors, warnings and connection notices go to stderr. Nothing a user types escapes as an
exception: every failure becomes an :class:`Outcome` with an error.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from amqptool.errors import AmqpToolError, UsageError
from amqptool.settings import redact_url
from amqptool.shell.core.helptext import command_help, general_help
from amqptool.shell.core.outcome import ExitRequest, HelpText, Outcome, Summary, Value
from amqptool.shell.core.parser import ParsedCommand, is_blank_or_comment, parse_tokens, split_line
from amqptool.shell.core.render import json_document, message_text, value_text
from amqptool.shell.core.toolspecs import LISTING_COMMANDS
from amqptool.shell.runner import Runner
from amqptool.textsafe import visible

if TYPE_CHECKING:
    from amqptool.shell.core.messages import MessageView
    from amqptool.shell.listing import Lister

__all__ = ["OutputClosed", "Shell"]

_ASK_FIRST = {
    "queue.purge": "delete every ready message of queue {queue!r}",
    "queue.delete": "delete queue {queue!r} and its messages",
}


class OutputClosed(BaseException):
    """Standard output is gone: a closed pipe (``| head -1``) or a closed descriptor (``>&-``).

    A BaseException so that no ``except Exception`` guard on the way (a handler, the transport's
    error translation, which takes OSError for a broker problem) mistakes it for a command's
    failure: it ends the shell, as SIGPIPE ends a Unix tool.
    """

    def __init__(self, *, broken_pipe: bool) -> None:
        super().__init__("standard output is closed")
        self.broken_pipe = broken_pipe


class Shell:
    def __init__(
        self,
        runner: Runner,
        *,
        stdout: TextIO | None,
        stderr: TextIO | None,
        json_mode: bool = False,
        debug: bool = False,
        lister: Lister | None = None,
    ) -> None:
        self.runner = runner
        self.lister = lister
        # Asked before queue.purge / queue.delete (the interactive shell sets it, unless --yes).
        self.confirm: Callable[[str], bool] | None = None
        self.debug = debug
        self.stdout = stdout
        self.stderr = stderr
        self.json_mode = json_mode
        self.commands_run = 0

    # ------------------------------------------------------------------ output

    def _write(self, stream: TextIO, text: str) -> None:
        try:
            stream.write(text + "\n")
        except UnicodeEncodeError:
            enc = getattr(stream, "encoding", None) or "utf-8"
            stream.write(text.encode(enc, "backslashreplace").decode(enc) + "\n")
        stream.flush()

    def out(self, text: str) -> None:
        """Write a line of data; raises :class:`OutputClosed` when stdout is gone."""
        if self.stdout is None:  # the process started with descriptor 1 closed
            raise OutputClosed(broken_pipe=False)
        try:
            self._write(self.stdout, text)
        except BrokenPipeError:
            raise OutputClosed(broken_pipe=True) from None
        except (OSError, ValueError):  # EBADF, or a file object closed under us
            raise OutputClosed(broken_pipe=False) from None

    def show_progress(self, text: str) -> None:
        """Overwrite the terminal's current line on stderr ('' clears it)."""
        if self.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                self.stderr.write(f"\r{text}\x1b[K")
                self.stderr.flush()

    def info(self, text: str) -> None:
        """Write a notice on stderr (dropped when stderr itself is gone)."""
        if self.stderr is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self._write(self.stderr, visible(redact_url(text)))

    def _emit(self, outcome: Outcome, where: str | None) -> None:
        prefix = f"{where}: " if where else ""
        for warning in outcome.warnings:
            self.info(f"warning: {prefix}{warning}")
        if outcome.error is not None:
            self.info(f"error: {prefix}{outcome.error.user_line()}")
        if self.json_mode:
            self.out(json_document(outcome))
        elif isinstance(outcome.value, Summary) and outcome.value.on_stderr:
            self.info(outcome.value.text)
        elif outcome.value is not None:
            text = value_text(outcome.value)
            if text is not None:
                self.out(visible(text))  # queue names, bodies: the broker's text

    # ------------------------------------------------------------------ running

    def run_line(self, line: str, *, where: str | None = None) -> Outcome | None:
        """Run one line; None for a blank line or a comment."""
        if is_blank_or_comment(line):
            return None
        text = line.strip()
        return self._run(lambda: parse_tokens(split_line(text), line=text), text, where)

    def run_tokens(self, tokens: Sequence[str], *, where: str | None = None) -> Outcome:
        """Run one command given as argv tokens (one-shot mode)."""
        line = " ".join(tokens)
        return self._run(lambda: parse_tokens(tokens, line=line), line, where)

    def _run(self, parse: Callable[[], ParsedCommand], line: str, where: str | None) -> Outcome:
        outcome = Outcome(line=line, command="")
        try:
            cmd = parse()
            outcome.command = cmd.name
            outcome.value = self._execute(cmd, outcome)
        except AmqpToolError as exc:
            outcome.error = exc
            if self.debug and exc.__cause__ is not None:
                self._trace(exc)
        except Exception as exc:  # the last guard: the shell survives any bug
            outcome.error = AmqpToolError(
                f"internal error: {type(exc).__name__}: {exc}",
                hint=None if self.debug else "run with --debug for details",
            )
            if self.debug:
                self._trace(exc)
        self.commands_run += 1
        self._emit(outcome, where)
        return outcome

    def _warn_peek(self, queue: str, outcome: Outcome) -> None:
        """A peek requeues: on a quorum queue that is a delivery, counted against a limit."""
        info = self.lister.queue_info(queue) if self.lister is not None else None
        if info is None or info.get("type") != "quorum":
            return
        args = info.get("arguments") or {}
        policy = info.get("effective_policy_definition") or {}
        limit = args.get("x-delivery-limit", policy.get("delivery-limit"))
        text = f"{queue} is a quorum queue: each peek requeues, which counts as a delivery"
        if limit is not None:
            text += (
                f"; after x-delivery-limit={limit} deliveries a message is dead-lettered "
                "(or dropped without a dead-letter exchange)"
            )
        outcome.warnings.append(text)

    def _trace(self, exc: BaseException) -> None:
        self.info("".join(traceback.format_exception(exc)).rstrip("\n"))

    def _execute(self, cmd: ParsedCommand, outcome: Outcome) -> Value:
        if cmd.name == "help":
            topic = cmd.values["command"]
            return HelpText(command_help(topic) if topic else general_help())
        if cmd.name == "exit":
            return ExitRequest()
        if cmd.name in LISTING_COMMANDS:
            if self.lister is None:
                raise UsageError(f"{cmd.name}: no management API configured")
            return self.lister.run(cmd)
        if cmd.name in _ASK_FIRST and self.confirm is not None:
            what = _ASK_FIRST[cmd.name].format(**cmd.values)
            if not self.confirm(f"{what}?"):
                return Summary("not done.", {"done": False})
        if cmd.name == "basic.consume" and cmd.values["mode"] == "peek":
            self._warn_peek(cmd.values["queue"], outcome)

        def on_message(view: MessageView) -> None:
            if not self.json_mode:
                self.out(visible(message_text(view)))

        return self.runner.execute(cmd, on_message=on_message, warn=outcome.warnings.append)
