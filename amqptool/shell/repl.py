"""The interactive shell: numbered prompt, completion, signature toolbar, persistent history."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output

from amqptool.errors import AmqpToolError, UsageError
from amqptool.private import ensure_private
from amqptool.shell.completer import ShellCompleter, toolbar_text
from amqptool.shell.core.outcome import ExitRequest
from amqptool.shell.session import Shell

__all__ = ["history_path", "run_interactive"]

PUMP_INTERVAL = 1.0
NAMES_REFRESH = 5.0


def history_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/amqptool/shell_history`` (default ``~/.local/state/...``)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "amqptool" / "shell_history"


def _history(shell: Shell, path: Path) -> History:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        note = ensure_private(path, "shell history")  # message bodies: 0600
    except (OSError, UsageError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        shell.info(f"warning: history is not kept: cannot write {path}: {why}")
        return InMemoryHistory()
    if note:
        shell.info(f"warning: {note}")
    return FileHistory(str(path))


def _toolbar() -> FormattedText:
    return toolbar_text(get_app().current_buffer.document.text_before_cursor)


def run_interactive(
    shell: Shell,
    *,
    broker: str,
    input: Input | None = None,
    output: Output | None = None,
    environ: Mapping[str, str] | None = None,
    ask: bool = True,
    refresh_interval: float = NAMES_REFRESH,
) -> int:
    """Banner, then read-run-print until ``exit`` or Ctrl-D. Ctrl-C cancels the line.

    ``ask``: confirm queue.purge and queue.delete first. Queue and exchange names for
    completion come from the management API in the background, when it answers.
    """
    session: PromptSession[str] = PromptSession(
        history=_history(shell, history_path(environ)),
        completer=ShellCompleter(shell.runner.names),
        complete_while_typing=False,
        bottom_toolbar=_toolbar,
        input=input,
        output=output,
    )
    if ask:
        questions: PromptSession[str] = PromptSession(input=input, output=output)
        shell.confirm = lambda text: _yes(questions, text)
    shell.out(f"-> connecting to {broker}.")
    try:
        shell.runner.connect()
    except AmqpToolError as exc:
        shell.info(f"error: {exc.user_line()}")
        return int(exc.exit_code)
    if ";" in broker:  # a failover list: say which URL answered
        shell.out(f"-> connected to {shell.runner.describe}.")
    else:
        shell.out("-> connected.")
    refresher = None
    if shell.lister is not None:
        from amqptool.shell.listing import NameRefresher

        refresher = NameRefresher(shell.lister.factory, shell.runner.names, refresh_interval)
        refresher.start()
    number = 1

    def start_pump() -> None:
        get_app().create_background_task(_pump(shell))

    try:
        while True:
            try:
                text = session.prompt(f"{number}> ", pre_run=start_pump)
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            # A bracketed paste of several lines arrives as one text: one command per line.
            for line in text.splitlines() or [""]:
                try:
                    outcome = shell.run_line(line)
                except KeyboardInterrupt:
                    shell.runner.abort("interrupted")
                    shell.info("error: interrupted (the connection will be reopened)")
                    number += 1
                    break
                if outcome is None:
                    continue
                number += 1
                if isinstance(outcome.value, ExitRequest):
                    return 0
                if refresher is not None:
                    refresher.poke()
    finally:
        if refresher is not None:
            refresher.stop()
        shell.runner.close()
    return 0


def _yes(questions: PromptSession[str], text: str) -> bool:
    try:
        answer = questions.prompt(f"{text} [y/N] ")
    except (KeyboardInterrupt, EOFError):
        return False
    return answer.strip().lower() in ("y", "yes")


async def _pump(shell: Shell) -> None:
    """While the prompt waits: heartbeats go out and come in (same thread as the connection)."""
    while True:
        await asyncio.sleep(PUMP_INTERVAL)
        shell.runner.keepalive()
