"""One shell session: parse a line, run it, print the outcome. Shared by every mode.

Data goes to stdout (camqadm text, or one JSON document per command with ``--json``);
errors, warnings and connection notices go to stderr. Nothing a user types escapes as an
exception: every failure becomes an :class:`Outcome` with an error.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from amqptool.errors import AmqpToolError
from amqptool.settings import redact_url
from amqptool.shell.helptext import command_help, general_help
from amqptool.shell.outcome import ExitRequest, HelpText, Outcome, Value
from amqptool.shell.parser import ParsedCommand, is_blank_or_comment, parse_tokens, split_line
from amqptool.shell.render import json_document, message_text, value_text
from amqptool.shell.runner import Runner
from amqptool.textsafe import visible

if TYPE_CHECKING:
    from amqptool.shell.messages import MessageView

__all__ = ["Shell"]


class Shell:
    def __init__(
        self,
        runner: Runner,
        *,
        stdout: TextIO,
        stderr: TextIO,
        json_mode: bool = False,
        debug: bool = False,
    ) -> None:
        self.runner = runner
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
        self._write(self.stdout, text)

    def info(self, text: str) -> None:
        self._write(self.stderr, visible(redact_url(text)))

    def _emit(self, outcome: Outcome, where: str | None) -> None:
        prefix = f"{where}: " if where else ""
        for warning in outcome.warnings:
            self.info(f"warning: {prefix}{warning}")
        if outcome.error is not None:
            self.info(f"error: {prefix}{outcome.error.user_line()}")
        if self.json_mode:
            self.out(json_document(outcome))
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

    def _trace(self, exc: BaseException) -> None:
        self.stderr.write("".join(traceback.format_exception(exc)))
        self.stderr.flush()

    def _execute(self, cmd: ParsedCommand, outcome: Outcome) -> Value:
        if cmd.name == "help":
            topic = cmd.values["command"]
            return HelpText(command_help(topic) if topic else general_help())
        if cmd.name == "exit":
            return ExitRequest()

        def on_message(view: MessageView) -> None:
            if not self.json_mode:
                self.out(visible(message_text(view)))

        return self.runner.execute(cmd, on_message=on_message, warn=outcome.warnings.append)
