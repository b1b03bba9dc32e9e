"""What is expected at the cursor, and which candidates fit there. Pure (no prompt_toolkit).

:func:`analyze` reads the text before the cursor and says what kind of thing is being typed (a
command name, a positional argument of a given kind, an option name, an option's value);
:func:`candidates` maps that to completions, using the names the shell has seen;
:func:`signature_hint` gives the signature of the command being typed, current argument marked.
The prompt_toolkit adapter in :mod:`amqptool.shell.completer` only translates.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from enum import Enum

from amqptool.shell.core.command_table import (
    COMMANDS,
    ArgKind,
    ArgSpec,
    CommandSpec,
    OptionGroup,
    lookup,
    matches_command,
)
from amqptool.shell.core.names import KnownNames
from amqptool.shell.core.parser import option_kind, split_option
from amqptool.shell.core.vocab import (
    BIND_XARGS,
    BOOL_XARGS,
    CONSUME_XARGS,
    EXCHANGE_TYPES,
    EXCHANGE_XARGS,
    PROPERTY_NAMES,
    PROPERTY_VALUES,
    QUEUE_XARGS,
    XARG_VALUES,
)

__all__ = ["Candidate", "Expectation", "Hint", "Kind", "analyze", "candidates", "signature_hint"]

_BOOLS = ("yes", "no", "on", "off", "true", "false", "1", "0")
_EXCHANGE_VALUED = frozenset({"x-dead-letter-exchange", "alternate-exchange"})


class Kind(Enum):
    COMMAND = "command"  # the first word
    ARG = "arg"  # a positional argument (maybe an option name instead)
    OPTION_VALUE = "option_value"  # the value after NAME=
    NOTHING = "nothing"  # unknown command, or past every argument with no options


@dataclass(frozen=True)
class Expectation:
    kind: Kind
    prefix: str  # the current word so far, unquoted
    replace: int  # how many characters before the cursor a completion replaces
    spec: CommandSpec | None = None
    arg: ArgSpec | None = None  # the positional argument at the cursor
    option: str | None = None  # OPTION_VALUE: the name before '='
    given: frozenset[str] = frozenset()  # argument names already given by name or position


@dataclass(frozen=True)
class Candidate:
    text: str  # what replaces the current word
    start: int  # negative offset from the cursor where the replacement starts
    display: str
    meta: str = ""


@dataclass(frozen=True)
class Hint:
    """A signature with the argument under the cursor marked."""

    command: str
    parts: tuple[tuple[str, bool], ...]  # (formatted argument, is it the current one)
    summary: str

    def plain(self) -> str:
        marked = (f"[{text}]" if current else text for text, current in self.parts)
        return " ".join([self.command, *marked])


def _scan(text: str) -> tuple[list[str], int | None]:
    """Raw token spans of ``text``; the start of an unfinished last token, if any."""
    raws: list[str] = []
    start: int | None = None
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"':
                i += 1
        elif ch in "'\"":
            quote = ch
            start = i if start is None else start
        elif ch == "\\":
            start = i if start is None else start
            i += 1
        elif ch.isspace():
            if start is not None:
                raws.append(text[start:i])
                start = None
        elif start is None:
            start = i
        i += 1
    if start is not None:
        raws.append(text[start:])
    return raws, start


def _unquote(raw: str) -> str:
    for suffix in ("", "'", '"', "\\"):
        try:
            return "".join(shlex.split(raw + suffix))
        except ValueError:
            continue
    return raw


def analyze(text: str) -> Expectation:
    raws, open_start = _scan(text)
    current_raw = raws.pop() if open_start is not None else ""
    words = [_unquote(r) for r in raws]
    prefix = _unquote(current_raw)
    if not words:
        return Expectation(Kind.COMMAND, prefix, len(current_raw))
    spec = lookup(words[0])
    if spec is None:
        return Expectation(Kind.NOTHING, prefix, len(current_raw))
    positional = 0
    given: set[str] = set()
    options_done = False
    for word in words[1:]:
        if not options_done and word == "--":
            options_done = True
            continue
        parts = None if options_done else split_option(word)
        if parts is not None and option_kind(spec, parts[0], parts[1]) is not None:
            given.add(parts[0])
            continue
        if positional < len(spec.args):
            given.add(spec.args[positional].name)
        positional += 1
    parts = None if options_done else split_option(prefix)
    if parts is not None and option_kind(spec, parts[0], parts[1]) is not None:
        name, _typ, value = parts
        value_raw = current_raw[current_raw.find("=") + 1 :] if "=" in current_raw else value
        return Expectation(
            Kind.OPTION_VALUE, value, len(value_raw), spec, option=name, given=frozenset(given)
        )
    arg = spec.args[positional] if positional < len(spec.args) else None
    kind = Kind.ARG if arg is not None or spec.options else Kind.NOTHING
    return Expectation(kind, prefix, len(current_raw), spec, arg, given=frozenset(given))


def _quote(value: str) -> str:
    return shlex.quote(value) if value else "''"


def _values_for(kind: ArgKind, arg: ArgSpec | None, names: KnownNames) -> list[tuple[str, str]]:
    if kind is ArgKind.BOOL:
        return [(v, "") for v in _BOOLS]
    if kind is ArgKind.EXCHANGE_TYPE:
        return [(t, "exchange type") for t in EXCHANGE_TYPES]
    if kind is ArgKind.EXCHANGE:
        return [(n, "exchange") for n in names.exchanges()]
    if kind in (ArgKind.QUEUE, ArgKind.ROUTING_KEY):
        return [(n, "queue") for n in names.queues()]
    if kind is ArgKind.CHOICE and arg is not None:
        return [(c, "") for c in arg.choices]
    if kind is ArgKind.COMMAND:
        return [(c, COMMANDS[c].summary) for c in COMMANDS]
    return []


def _option_names(exp: Expectation) -> list[tuple[str, str]]:
    spec = exp.spec
    assert spec is not None
    out = [(f"{a.name}=", a.help) for a in spec.args if a.name not in exp.given]
    groups = spec.options
    tables = (
        (OptionGroup.QUEUE_ARGS, QUEUE_XARGS),
        (OptionGroup.EXCHANGE_ARGS, EXCHANGE_XARGS),
        (OptionGroup.BIND_ARGS, BIND_XARGS),
        (OptionGroup.CONSUME_ARGS, CONSUME_XARGS),
    )
    for group, table in tables:
        if group in groups:
            out.extend((f"{n}=", "argument") for n in table if n not in exp.given)
    if OptionGroup.PROPERTIES in groups:
        out.extend((f"{p}=", "property") for p in PROPERTY_NAMES if p not in exp.given)
        out.append(("headers.", "header"))
    return out


def _option_values(exp: Expectation, names: KnownNames) -> list[tuple[str, str]]:
    spec, option = exp.spec, exp.option or ""
    assert spec is not None
    arg = spec.arg(option)
    if arg is not None:
        return _values_for(arg.kind, arg, names)
    if option in _EXCHANGE_VALUED:
        return [(n, "exchange") for n in names.exchanges()]
    if option in BOOL_XARGS:
        return [(v, "") for v in _BOOLS[:2]]
    values = XARG_VALUES.get(option) or PROPERTY_VALUES.get(option) or ()
    return [(v, "") for v in values]


def candidates(exp: Expectation, names: KnownNames) -> list[Candidate]:
    """Completions for an expectation, filtered by its prefix."""
    start = -exp.replace
    prefix = exp.prefix
    if exp.kind is Kind.COMMAND:
        return [
            Candidate(name, start, name, spec.summary)
            for name, spec in COMMANDS.items()
            if matches_command(name, prefix)
        ]
    if exp.kind is Kind.OPTION_VALUE:
        return [
            Candidate(_quote(v), start, v, meta)
            for v, meta in _option_values(exp, names)
            if v.startswith(prefix)
        ]
    if exp.kind is not Kind.ARG:
        return []
    found: list[Candidate] = []
    if exp.arg is not None:
        values = _values_for(exp.arg.kind, exp.arg, names)
        if exp.arg.kind is ArgKind.BOOL and not prefix:
            values = values[:2]
        found.extend(
            Candidate(_quote(v), start, v, meta) for v, meta in values if v.startswith(prefix)
        )
    if prefix or exp.arg is None:
        found.extend(
            Candidate(n, start, n, meta)
            for n, meta in _option_names(exp)
            if n.startswith(prefix) and n != prefix
        )
    return found


def signature_hint(text: str) -> Hint | None:
    """The signature of the command being typed (None while the command name is unfinished)."""
    exp = analyze(text)
    spec = exp.spec
    if spec is None:
        if exp.kind is Kind.COMMAND:
            matches = [n for n in COMMANDS if matches_command(n, exp.prefix)]
            if exp.prefix and len(matches) == 1:
                spec = COMMANDS[matches[0]]
                return Hint(spec.name, tuple((a.format(), False) for a in spec.args), spec.summary)
        return None
    current = exp.arg.name if exp.arg is not None and exp.kind is Kind.ARG else exp.option
    parts = tuple((a.format(), a.name == current) for a in spec.args)
    return Hint(spec.name, parts, spec.summary)
