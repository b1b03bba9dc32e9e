"""``help`` and ``help COMMAND``, generated from the command registry. Pure."""

from __future__ import annotations

from amqptool.errors import UsageError
from amqptool.shell.core.command_table import (
    COMMANDS,
    CommandSpec,
    OptionGroup,
    did_you_mean,
    lookup,
)
from amqptool.shell.core.vocab import (
    BIND_XARGS,
    CONSUME_XARGS,
    EXCHANGE_XARGS,
    INT_XARGS,
    PROPERTY_NAMES,
    QUEUE_XARGS,
    XARG_VALUES,
)

__all__ = ["command_help", "general_help"]

EXAMPLE = "Example:\n    -> queue.delete myqueue yes no"
NOTES = (
    "Booleans: yes/no, on/off, true/false, 1/0. Any argument may be given by name "
    "(queue.declare q durable=yes).\n"
    "'help COMMAND' shows a command's arguments and options; 'exit' or Ctrl-D leaves."
)


def general_help() -> str:
    lines = ["Commands", "--------"]
    lines.extend(spec.signature() for spec in COMMANDS.values())
    lines.append(EXAMPLE)
    lines.append(NOTES)
    return "\n".join(lines)


def _option_lines(spec: CommandSpec) -> list[str]:
    groups = spec.options
    out: list[str] = []
    names: tuple[str, ...] = ()
    if OptionGroup.QUEUE_ARGS in groups:
        names = QUEUE_XARGS
    elif OptionGroup.EXCHANGE_ARGS in groups:
        names = EXCHANGE_XARGS
    elif OptionGroup.BIND_ARGS in groups:
        names = BIND_XARGS
    elif OptionGroup.CONSUME_ARGS in groups:
        names = CONSUME_XARGS
    if names:
        shown = []
        for name in names:
            values = XARG_VALUES.get(name)
            shown.append(
                f"{name}={'|'.join(values)}"
                if values
                else f"{name}=N"
                if name in INT_XARGS
                else f"{name}=TEXT"
            )
        out.append("  arguments: " + " ".join(shown))
        out.append("             any other x-NAME=VALUE is sent as text; arg.NAME=VALUE for")
        out.append(
            "             names without x-; NAME:int=5 (:float :bool :str :json) forces a type"
        )
    if OptionGroup.PROPERTIES in groups:
        out.append("  properties: " + " ".join(f"{p}=..." for p in PROPERTY_NAMES))
        out.append("  headers: headers.NAME=VALUE (text; headers.NAME:int=5 for a number)")
    return out


def command_help(name: str) -> str:
    spec = lookup(name)
    if spec is None:
        close = did_you_mean(name)
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?" if close else None
        raise UsageError(f"help: no command {name!r}", hint=hint or "try 'help'")
    lines = [spec.signature(), f"    {spec.summary}"]
    if spec.details:
        lines.append(f"    {spec.details}")
    width = max((len(a.name) for a in spec.args), default=0)
    for arg in spec.args:
        default = "" if arg.required else f" (default: {arg.default or repr('')})"
        lines.append(f"    {arg.name.ljust(width)}  {arg.help}{default}")
    lines.extend(_option_lines(spec))
    return "\n".join(lines)
