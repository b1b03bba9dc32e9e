"""What running one shell command produced: a value or an error, plus warnings. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from amqptool.errors import AmqpToolError, ExitCode

if TYPE_CHECKING:
    from amqptool.shell.core.messages import MessageView

__all__ = [
    "Consumed",
    "Deleted",
    "Done",
    "ExitRequest",
    "Got",
    "HelpText",
    "Outcome",
    "QueueStats",
    "Summary",
    "Table",
    "Value",
]


@dataclass(frozen=True)
class Done:
    """A command with nothing to report but success (``ok.``)."""


@dataclass(frozen=True)
class QueueStats:
    queue: str
    messages: int
    consumers: int


@dataclass(frozen=True)
class Deleted:
    messages: int


@dataclass(frozen=True)
class Got:
    message: MessageView | None


@dataclass(frozen=True)
class Consumed:
    messages: tuple[MessageView, ...]
    mode: str
    reason: str  # "count", "timeout" or "interrupted"


@dataclass(frozen=True)
class HelpText:
    text: str


@dataclass(frozen=True)
class Table:
    """A listing: rows of named columns (``what`` names the objects: "queues" ...)."""

    what: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    vertical: bool = False  # one row shown as ``name: value`` lines (overview)


@dataclass(frozen=True)
class Summary:
    """A message tool's result: one ``ok. ...`` line, and its figures for ``--json``."""

    text: str
    data: dict[str, Any]
    on_stderr: bool = False  # the data itself went to stdout (export to '-'): keep it clean


@dataclass(frozen=True)
class ExitRequest:
    """``exit``: leave the shell (batch: stop reading)."""


Value = Done | QueueStats | Deleted | Got | Consumed | HelpText | Table | Summary | ExitRequest


@dataclass
class Outcome:
    """One command's result, as the renderer and the exit-code logic see it."""

    line: str
    command: str
    value: Value | None = None
    error: AmqpToolError | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def exit_code(self) -> int:
        return int(ExitCode.OK) if self.error is None else int(self.error.exit_code)
