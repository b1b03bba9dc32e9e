"""The thin prompt_toolkit adapter over :mod:`amqptool.shell.core.completion`."""

from __future__ import annotations

from collections.abc import Iterable

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import FormattedText

from amqptool.shell.core.completion import analyze, candidates, signature_hint
from amqptool.shell.core.names import KnownNames

__all__ = ["ShellCompleter", "toolbar_text"]

TIP = "Tab completes · 'help' lists commands · 'help CMD' explains one · Ctrl-D exits"


class ShellCompleter(Completer):
    """Completes command names, argument values and the names the shell has seen."""

    def __init__(self, names: KnownNames) -> None:
        self.names = names

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        for cand in candidates(analyze(document.text_before_cursor), self.names):
            yield Completion(
                cand.text,
                start_position=cand.start,
                display=cand.display,
                display_meta=cand.meta,
            )


def toolbar_text(text_before_cursor: str) -> FormattedText:
    """The bottom toolbar: the signature being typed, the current argument highlighted."""
    hint = signature_hint(text_before_cursor)
    if hint is None:
        return FormattedText([("", TIP)])
    parts: list[tuple[str, str]] = [("bold", hint.command)]
    for text, current in hint.parts:
        parts.append(("", " "))
        parts.append(("reverse bold" if current else "", text))
    parts.append(("", f"  — {hint.summary}"))
    return FormattedText(parts)
