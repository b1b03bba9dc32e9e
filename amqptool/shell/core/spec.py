"""The shapes of the shell's commands: argument kinds, option groups, signatures. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = ["IDLE_TIMEOUT", "ArgKind", "ArgSpec", "CommandSpec", "OptionGroup", "flag"]


class ArgKind(Enum):
    """What a positional argument holds (drives conversion and completion)."""

    STR = "str"
    BODY = "body"
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    EXCHANGE = "exchange"
    QUEUE = "queue"
    ROUTING_KEY = "routing_key"
    EXCHANGE_TYPE = "exchange_type"
    CHOICE = "choice"
    COMMAND = "command"


class OptionGroup(Enum):
    """Families of ``NAME=VALUE`` options a command accepts besides its named arguments."""

    QUEUE_ARGS = "queue_args"  # x-arguments of queue.declare
    EXCHANGE_ARGS = "exchange_args"  # x-arguments / alternate-exchange of exchange.declare
    BIND_ARGS = "bind_args"  # binding arguments (x-match, arg.NAME=...)
    CONSUME_ARGS = "consume_args"  # x-priority, x-stream-offset ...
    PROPERTIES = "properties"  # message properties and headers.NAME=... on publish


@dataclass(frozen=True)
class ArgSpec:
    name: str
    kind: ArgKind = ArgKind.STR
    default: str | None = None  # the default as the user would type it; None = required
    help: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def required(self) -> bool:
        return self.default is None

    def format(self) -> str:
        """``name`` or ``name:default`` (camqadm's signature notation)."""
        if self.default is None:
            return self.name
        return f"{self.name}:{self.default or repr('')}"


@dataclass(frozen=True)
class CommandSpec:
    name: str
    args: tuple[ArgSpec, ...]
    summary: str
    options: frozenset[OptionGroup] = field(default_factory=frozenset)
    needs_broker: bool = True
    details: str = ""

    def arg(self, name: str) -> ArgSpec | None:
        return next((a for a in self.args if a.name == name), None)

    def signature(self) -> str:
        parts = [self.name, *(a.format() for a in self.args)]
        if self.options:
            parts.append(_OPTION_HINT[min(self.options, key=lambda g: g.value)])
        return " ".join(parts)

    @property
    def min_args(self) -> int:
        return sum(1 for a in self.args if a.required)


_OPTION_HINT = {
    OptionGroup.QUEUE_ARGS: "[x-ARG=VALUE ...]",
    OptionGroup.EXCHANGE_ARGS: "[x-ARG=VALUE ...]",
    OptionGroup.BIND_ARGS: "[x-match=all|any arg.NAME=VALUE ...]",
    OptionGroup.CONSUME_ARGS: "[x-ARG=VALUE ...]",
    OptionGroup.PROPERTIES: "[PROPERTY=VALUE headers.NAME=VALUE ...]",
}


def flag(name: str, help: str, default: str = "no") -> ArgSpec:
    return ArgSpec(name, ArgKind.BOOL, default, help)


IDLE_TIMEOUT = ArgSpec(
    "timeout",
    ArgKind.FLOAT,
    "5",
    "stop after this many seconds without a message",
    minimum=0.001,
    maximum=86400,
)
