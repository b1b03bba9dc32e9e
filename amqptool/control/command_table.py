"""The one table of ``amqptool control`` commands, and the pure word-to-arguments compiler.

Everything the CLI knows about a command comes from :data:`COMMANDS`: its Celery name and
aliases, whether it inspects or controls, its positional arguments (name on the wire, type,
whether required), the variadic argument that takes the left-over words, its own flags, its
signature text, its help line and whether a reply is expected. Help, ``commands``, argument
validation and "did you mean" are all generated from it.

Words map to ``arguments`` exactly as Celery's CLI maps them (docs/protocol.md §4.5): positional
words are converted in order, left-over words go to the variadic argument as a list (also when
empty), and a command without arguments sends ``{}``. Aliases resolve to the canonical Celery
name, which every worker (Celery's and ours) understands.

Pure: imports nothing from pika, textual or prompt_toolkit.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from amqptool.errors import UsageError

__all__ = [
    "COMMANDS",
    "Arg",
    "Command",
    "Flag",
    "all_names",
    "compile_arguments",
    "compile_request",
    "lookup",
    "parse_bool",
    "suggest",
    "visible_commands",
]

ArgType = Literal["str", "int", "float", "bool", "json"]
Kind = Literal["inspect", "control", "local"]


class Arg(NamedTuple):
    """One positional argument: its key in ``arguments``, how it is shown, its type."""

    name: str
    metavar: str
    type: ArgType = "str"
    required: bool = True


class Flag(NamedTuple):
    """A command's own option, e.g. ``revoke --terminate``; sets ``arguments[dest]``."""

    option: str
    dest: str
    help: str
    metavar: str | None = None  # None: a boolean switch (store_true)
    implies: tuple[tuple[str, Any], ...] = ()  # other arguments set when the flag is given

    @property
    def is_switch(self) -> bool:
        return self.metavar is None

    @property
    def usage(self) -> str:
        return f"[{self.option}]" if self.is_switch else f"[{self.option} {self.metavar}]"


class Command(NamedTuple):
    """One remote-control command as the CLI offers it."""

    name: str
    kind: Kind
    help: str
    args: tuple[Arg, ...] = ()
    variadic: str | None = None  # key that receives the left-over words as a list
    variadic_metavar: str = "ARG"
    variadic_min: int = 0
    flags: tuple[Flag, ...] = ()
    aliases: tuple[str, ...] = ()
    reply: bool = True  # False: sent as a cast (no ticket, no reply_to), e.g. shutdown
    method: str | None = None  # wire method when it differs from name (status -> ping)
    defaults: Mapping[str, Any] = MappingProxyType({})  # always sent unless given

    @property
    def wire_method(self) -> str:
        return self.method or self.name

    @property
    def needs_broker(self) -> bool:
        return self.kind != "local"

    @property
    def signature(self) -> str:
        """``TASK SOFT [HARD]``, ``ID [ID ...] [--terminate] [--signal SIG]``, ..."""
        parts: list[str] = []
        optional: list[str] = []
        for arg in self.args:
            if arg.required:
                parts.append(arg.metavar)
            else:
                optional.append(arg.metavar)
        if optional:
            nested = ""
            for metavar in reversed(optional):
                nested = f"[{metavar}{' ' + nested if nested else ''}]"
            parts.append(nested)
        if self.variadic:
            mv = self.variadic_metavar
            parts.append(f"{mv} [{mv} ...]" if self.variadic_min else f"[{mv} ...]")
        parts.extend(flag.usage for flag in self.flags)
        return " ".join(parts)

    @property
    def usage(self) -> str:
        return f"{self.name} {self.signature}".rstrip()


_TERMINATE_FLAGS = (
    Flag("--terminate", "terminate", "also terminate the tasks if they are running"),
    Flag(
        "--signal",
        "signal",
        "signal for --terminate (e.g. SIGKILL; implies --terminate)",
        metavar="SIG",
        implies=(("terminate", True),),
    ),
)

COMMANDS: tuple[Command, ...] = (
    # ---------------------------------------------------------------- inspect
    Command("ping", "inspect", "Ping worker(s): each answers pong."),
    Command("stats", "inspect", "Worker statistics (pool, broker, totals, rusage, uptime)."),
    Command(
        "active",
        "inspect",
        "Tasks currently being executed.",
        flags=(Flag("--safe", "safe", "show args/kwargs as repr strings"),),
        aliases=("dump_active",),
    ),
    Command(
        "reserved",
        "inspect",
        "Tasks prefetched, not yet executing (not ETA).",
        aliases=("dump_reserved",),
    ),
    Command(
        "scheduled",
        "inspect",
        "Tasks waiting for their ETA/countdown.",
        aliases=("dump_schedule",),
    ),
    Command("revoked", "inspect", "Revoked task ids.", aliases=("dump_revoked",)),
    Command(
        "registered",
        "inspect",
        "Registered task names (with the given task attributes).",
        variadic="taskinfoitems",
        variadic_metavar="ATTR",
        flags=(Flag("--builtins", "builtins", "include celery.* built-in tasks"),),
        aliases=("dump_tasks",),
    ),
    Command(
        "query_task",
        "inspect",
        "Where a task is (active, reserved, scheduled, ready).",
        variadic="ids",
        variadic_metavar="ID",
        variadic_min=1,
    ),
    Command("active_queues", "inspect", "Queues the worker consumes from."),
    Command(
        "conf",
        "inspect",
        "Worker configuration (non-default settings unless --with-defaults).",
        args=(Arg("with_defaults", "WITH_DEFAULTS", "bool", required=False),),
        flags=(Flag("--with-defaults", "with_defaults", "include default settings too"),),
        aliases=("dump_conf",),
    ),
    Command("clock", "inspect", "The worker's logical (Lamport) clock."),
    Command(
        "hello",
        "inspect",
        "Mingle handshake: revoked ids and clock (FROM_NODE defaults to this client).",
        args=(Arg("from_node", "FROM_NODE", required=False),),
        defaults=MappingProxyType({"revoked": []}),
    ),
    Command("report", "inspect", "Software and platform report for bug reports."),
    Command("memsample", "inspect", "Sample the current RSS memory usage."),
    Command(
        "memdump",
        "inspect",
        "Statistics of previous memsample requests.",
        args=(Arg("samples", "SAMPLES", "int", required=False),),
    ),
    Command(
        "objgraph",
        "inspect",
        "Graph of uncollected objects (memory-leak debugging; needs objgraph).",
        args=(
            Arg("type", "TYPE", required=False),
            Arg("num", "NUM", "int", required=False),
            Arg("max_depth", "MAX_DEPTH", "int", required=False),
        ),
    ),
    # ---------------------------------------------------------------- control
    Command(
        "rate_limit",
        "control",
        "Set a task's rate limit (e.g. 10/s, 5/m, 100/h; 0 disables).",
        args=(Arg("task_name", "TASK"), Arg("rate_limit", "RATE")),
    ),
    Command(
        "time_limit",
        "control",
        "Set a task's soft and hard time limits in seconds.",
        args=(
            Arg("task_name", "TASK"),
            Arg("soft", "SOFT", "float"),
            Arg("hard", "HARD", "float", required=False),
        ),
    ),
    Command(
        "revoke",
        "control",
        "Revoke task(s) by id; with --terminate also kill them if running.",
        variadic="task_id",
        variadic_metavar="ID",
        variadic_min=1,
        flags=_TERMINATE_FLAGS,
    ),
    Command(
        "terminate",
        "control",
        "Revoke and terminate task(s) by id with the given signal.",
        args=(Arg("signal", "SIG"),),
        variadic="task_id",
        variadic_metavar="ID",
        variadic_min=1,
    ),
    Command(
        "revoke_by_stamped_headers",
        "control",
        "Revoke tasks by stamped header.",
        variadic="headers",
        variadic_metavar="KEY=VALUE",
        variadic_min=1,
        flags=_TERMINATE_FLAGS,
    ),
    Command(
        "add_consumer",
        "control",
        "Start consuming from a queue.",
        args=(
            Arg("queue", "QUEUE"),
            Arg("exchange", "EXCHANGE", required=False),
            Arg("exchange_type", "TYPE", required=False),
            Arg("routing_key", "ROUTING_KEY", required=False),
        ),
    ),
    Command(
        "cancel_consumer",
        "control",
        "Stop consuming from a queue.",
        args=(Arg("queue", "QUEUE"),),
    ),
    Command(
        "pool_grow",
        "control",
        "Grow the pool by N processes/threads (default 1).",
        args=(Arg("n", "N", "int", required=False),),
    ),
    Command(
        "pool_shrink",
        "control",
        "Shrink the pool by N processes/threads (default 1).",
        args=(Arg("n", "N", "int", required=False),),
    ),
    Command(
        "autoscale",
        "control",
        "Change the autoscale range.",
        args=(Arg("max", "MAX", "int"), Arg("min", "MIN", "int")),
    ),
    Command(
        "pool_restart",
        "control",
        "Restart the pool (optionally reloading modules).",
        variadic="modules",
        variadic_metavar="MODULE",
        flags=(Flag("--reload", "reload", "reload the modules"),),
    ),
    Command("enable_events", "control", "Start sending task events."),
    Command("disable_events", "control", "Stop sending task events."),
    Command("heartbeat", "control", "Send a worker-heartbeat event now."),
    Command(
        "shutdown",
        "control",
        "Warm shutdown of the worker(s); no reply is expected.",
        reply=False,
    ),
    Command(
        "election",
        "control",
        "Start a gossip election (sent without waiting for replies).",
        args=(Arg("id", "ID"), Arg("topic", "TOPIC"), Arg("action", "ACTION", required=False)),
        reply=False,
    ),
    # ---------------------------------------------------------------- client side
    Command("status", "local", "Who is online: ping everyone, list the nodes.", method="ping"),
    Command("commands", "local", "List these commands with their signatures (no broker)."),
    Command(
        "raw",
        "local",
        "Send any method, e.g. a custom worker command; values are JSON or text.",
        args=(Arg("method", "METHOD"),),
        variadic="arguments",
        variadic_metavar="KEY=VALUE",
    ),
)

_BY_NAME: dict[str, Command] = {}
for _cmd in COMMANDS:
    for _name in (_cmd.name, *_cmd.aliases):
        assert _name not in _BY_NAME, f"duplicate control command name {_name}"
        _BY_NAME[_name] = _cmd


def lookup(name: str) -> Command:
    """The command for a name or alias; UsageError with "did you mean" otherwise."""
    cmd = _BY_NAME.get(name)
    if cmd is not None:
        return cmd
    close = suggest(name)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else None
    hint = (hint + " " if hint else "") + "see 'amqptool control commands'"
    hint += "; 'raw METHOD' sends a custom command"
    raise UsageError(f"unknown control command {name!r}", hint=hint)


def suggest(name: str, *, limit: int = 2) -> list[str]:
    """Close names (and aliases) for a mistyped command."""
    names = list(_BY_NAME)
    close = difflib.get_close_matches(name, names, n=limit, cutoff=0.6)
    if not close:
        close = [n for n in names if name and (name in n or n in name)][:limit]
    return close


def visible_commands(kind: Kind | None = None) -> list[Command]:
    """Commands of one kind (or all), sorted by name."""
    return sorted((c for c in COMMANDS if kind is None or c.kind == kind), key=lambda c: c.name)


_TRUE = {"1", "true", "yes", "y", "on", "t"}
_FALSE = {"0", "false", "no", "n", "off", "f"}


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _convert(cmd: Command, arg: Arg, word: str) -> Any:
    try:
        if arg.type == "int":
            return int(word)
        if arg.type == "float":
            return float(word)
        if arg.type == "bool":
            return parse_bool(word)
        if arg.type == "json":
            return _json_or_text(word)
    except ValueError:
        what = {"int": "an integer", "float": "a number", "bool": "true or false"}[arg.type]
        raise UsageError(
            f"{cmd.name}: {arg.metavar} must be {what}, got {word!r}",
            hint=f"usage: {cmd.usage}",
        ) from None
    return word


def _json_or_text(word: str) -> Any:
    try:
        return json.loads(word)
    except ValueError:
        return word


def _raw_arguments(cmd: Command, words: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(
                f"{cmd.name}: expected KEY=VALUE, got {word!r}", hint=f"usage: {cmd.usage}"
            )
        out[key] = _json_or_text(value)
    return out


def compile_arguments(
    cmd: Command, words: Sequence[str], flags: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``arguments`` object for ``cmd`` given its positional words and flag values.

    ``flags`` maps a flag's ``dest`` to its value (``True`` for a switch, the text for an
    option); flags that were not given are absent or ``None``/``False``.
    """
    words = list(words)
    arguments: dict[str, Any] = {}
    required = [a for a in cmd.args if a.required]
    if len(words) < len(required):
        missing = " ".join(a.metavar for a in required[len(words) :])
        raise UsageError(f"{cmd.name}: missing {missing}", hint=f"usage: {cmd.usage}")
    for arg, word in zip(cmd.args, words, strict=False):
        arguments[arg.name] = _convert(cmd, arg, word)
    rest = words[len(cmd.args) :]
    if cmd.variadic is not None:
        if len(rest) < cmd.variadic_min:
            raise UsageError(
                f"{cmd.name}: missing {cmd.variadic_metavar}", hint=f"usage: {cmd.usage}"
            )
        arguments[cmd.variadic] = rest
    elif rest:
        raise UsageError(
            f"{cmd.name}: too many arguments: {' '.join(rest)}", hint=f"usage: {cmd.usage}"
        )
    for flag in cmd.flags:
        value = (flags or {}).get(flag.dest)
        if value is None or value is False:
            continue
        arguments[flag.dest] = value
        for key, implied in flag.implies:
            arguments.setdefault(key, implied)
    for key, value in cmd.defaults.items():
        arguments.setdefault(key, copy.copy(value))  # never share the table's lists
    return arguments


def compile_request(
    cmd: Command, words: Sequence[str], flags: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The wire ``method`` and ``arguments`` for a command line (``raw`` included)."""
    if cmd.name == "raw":
        if not words:
            raise UsageError("raw: missing METHOD", hint=f"usage: {cmd.usage}")
        return words[0], _raw_arguments(cmd, words[1:])
    return cmd.wire_method, compile_arguments(cmd, words, flags)


def all_names() -> Iterable[str]:
    """Every accepted name, aliases included."""
    return iter(_BY_NAME)
