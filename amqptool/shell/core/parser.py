"""Turn a shell line (or argv tokens) into a typed :class:`ParsedCommand`.

Rules:

- Lines are split shell-style (:mod:`amqptool.shell.core.lexer`), so quoted message bodies work. A
  line whose first non-blank character is ``#`` is a comment, and so is the rest of a line from
  an unquoted ``#`` followed by a space (``queue.declare q  # note``).
- A ``NAME=VALUE`` word is an option only when ``NAME=`` is unquoted: ``'priority=5'`` is a
  positional argument (e.g. a message body).
- Positional arguments follow the command's signature in order; optional ones take the default
  shown as ``name:default`` in ``help``. Any argument may also be given by name (``durable=yes``).
- Booleans accept yes/no, on/off, true/false and 1/0.
- ``x-NAME=VALUE`` on declares, binds and consume are AMQP arguments, typed as the broker
  wants them (integers for ``x-message-ttl``, ``x-expires``, ``x-max-length`` ..., strings
  otherwise); ``arg.NAME=VALUE`` passes any other argument (e.g. headers-exchange bindings).
- On ``basic.publish``, ``content_type=...`` and the other property names set message
  properties and ``headers.NAME=VALUE`` sets a header.
- ``NAME:int=5`` (also ``:float``, ``:bool``, ``:str``, ``:json``) forces a type for ``x-``,
  ``arg.`` and ``headers.`` values. ``--`` makes every later token positional.

Every problem is a :class:`~amqptool.errors.UsageError` naming the command's signature. Pure.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from amqptool.errors import UsageError
from amqptool.shell.core.command_table import (
    ArgKind,
    ArgSpec,
    CommandSpec,
    OptionGroup,
    did_you_mean,
    lookup,
)
from amqptool.shell.core.lexer import SplitError, Word, split_words
from amqptool.shell.core.vocab import (
    BOOL_XARGS,
    EXCHANGE_TYPES,
    INT_XARGS,
    MAX_SHORTSTR,
    PROPERTY_NAMES,
)

__all__ = [
    "ParsedCommand",
    "UnknownCommandError",
    "is_blank_or_comment",
    "option_kind",
    "parse_bool",
    "parse_line",
    "parse_tokens",
    "split_line",
    "split_option",
]

_TRUE = frozenset({"yes", "on", "true", "1"})
_FALSE = frozenset({"no", "off", "false", "0"})
_OPTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*)(?::(int|float|bool|str|json))?=(.*)$", re.S)
_INT64 = (-(2**63), 2**63 - 1)
_INT_HEADERS = INT_XARGS | {"x-delay"}
_ARG_GROUPS = frozenset(
    {
        OptionGroup.QUEUE_ARGS,
        OptionGroup.EXCHANGE_ARGS,
        OptionGroup.BIND_ARGS,
        OptionGroup.CONSUME_ARGS,
    }
)


class UnknownCommandError(UsageError):
    """A line that names no command; carries close matches for "did you mean"."""

    def __init__(self, line: str, word: str) -> None:
        self.word = word
        self.suggestions = did_you_mean(word)
        hint = None
        if self.suggestions:
            hint = "did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
        super().__init__(f"unknown syntax: '{shown}'. how about some 'help'?", hint=hint)

    def user_line(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


@dataclass
class ParsedCommand:
    """A command with typed values, ready for the runner."""

    spec: CommandSpec
    values: dict[str, Any]
    arguments: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    line: str = ""

    @property
    def name(self) -> str:
        return self.spec.name


def is_blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def split_line(line: str) -> list[str]:
    """Split a line into words; an unbalanced quote is a usage error."""
    try:
        return list(split_words(line))
    except SplitError as exc:
        words = line.split()
        spec = lookup(words[0]) if words else None
        hint = f"usage: {spec.signature()}" if spec else None
        prefix = f"{spec.name}: " if spec else ""
        raise UsageError(f"{prefix}cannot split the line: {str(exc).lower()}", hint=hint) from None


def parse_bool(text: str) -> bool | None:
    """yes/no, on/off, true/false, 1/0 (any case); None for anything else."""
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return None


def split_option(token: str) -> tuple[str, str | None, str] | None:
    """``(name, type, value)`` for a ``NAME[:TYPE]=VALUE`` token, else None."""
    match = _OPTION.match(token)
    if match is None:
        return None
    return match.group(1), match.group(2), match.group(3)


def option_kind(spec: CommandSpec, name: str, typ: str | None = None) -> str | None:
    """What a ``NAME[:TYPE]=VALUE`` token is for ``spec``.

    ``"named"`` (an argument given by name), ``"argument"`` (an AMQP x-argument),
    ``"property"``, ``"header"``, or None (not an option: the token is positional).
    """
    if spec.arg(name) is not None and typ is None:
        return "named"
    groups = spec.options
    if groups & _ARG_GROUPS and (name.startswith(("x-", "arg.")) or _is_ae(name, groups)):
        return "argument"
    if OptionGroup.PROPERTIES in groups:
        if name in PROPERTY_NAMES and typ is None:
            return "property"
        if name.startswith("headers."):
            return "header"
    return None


def parse_line(line: str) -> ParsedCommand | None:
    """Parse one line; None for a blank line or a comment."""
    if is_blank_or_comment(line):
        return None
    return parse_tokens(split_line(line), line=line.strip())


def parse_tokens(tokens: Sequence[str], *, line: str | None = None) -> ParsedCommand:
    """Parse already-split tokens (the command name first)."""
    if line is None:
        line = shlex.join(tokens)
    if not tokens:
        raise UsageError("no command given", hint="try 'help'")
    spec = lookup(tokens[0])
    if spec is None:
        raise UnknownCommandError(line, tokens[0])
    return _Builder(spec, line).build(tokens[1:])


class _Builder:
    def __init__(self, spec: CommandSpec, line: str) -> None:
        self.spec = spec
        self.cmd = ParsedCommand(spec=spec, values={}, line=line)
        self.named: dict[str, str] = {}

    def fail(self, message: str) -> UsageError:
        return UsageError(f"{self.spec.name}: {message}", hint=f"usage: {self.spec.signature()}")

    def build(self, tokens: Sequence[str]) -> ParsedCommand:
        positional: list[str] = []
        options_done = False
        for token in tokens:
            if not options_done and token == "--":
                options_done = True
                continue
            if options_done or not self._take_option(token):
                positional.append(token)
        args = self.spec.args
        if len(positional) > len(args):
            raise self.fail(_count_message(self.spec, len(positional)))
        raw: dict[str, str] = {}
        for arg, token in zip(args, positional, strict=False):
            raw[arg.name] = token
        for name, token in self.named.items():
            if name in raw:
                raise self.fail(f"{name} given twice (by position and by name)")
            raw[name] = token
        for arg in args:
            if arg.name in raw:
                self.cmd.values[arg.name] = self._convert(arg, raw[arg.name])
            elif arg.required:
                raise self.fail(_count_message(self.spec, len(positional), missing=arg.name))
            else:
                self.cmd.values[arg.name] = self._convert(arg, arg.default or "")
        return self.cmd

    # ------------------------------------------------------------------ options

    def _take_option(self, token: str) -> bool:
        parts = split_option(token)
        if parts is None:
            return False
        if isinstance(token, Word) and not token.unquoted_prefix(token.index("=")):
            return False  # 'priority=5' typed in quotes: a positional value, not an option
        name, typ, value = parts
        kind = option_kind(self.spec, name, typ)
        if kind is None:
            return False
        if kind == "named":
            if name in self.named:
                raise self.fail(f"{name} given twice")
            self.named[name] = value
        elif kind == "argument":
            key = name[4:] if name.startswith("arg.") else name
            self._check_key(key, name)
            self.cmd.arguments[key] = self._xarg_value(key, typ, value)
        elif kind == "property":
            self.cmd.properties[name] = self._property(name, value)
        else:
            key = name[len("headers.") :]
            self._check_key(key, name)
            default = "int" if key in _INT_HEADERS else "str"
            self.cmd.headers[key] = self._typed(name, typ or default, value)
        return True

    def _check_key(self, key: str, name: str) -> None:
        if not key:
            raise self.fail(f"{name}: the name after the dot is empty")
        if len(key.encode()) > MAX_SHORTSTR:
            raise self.fail(f"{name}: name longer than {MAX_SHORTSTR} bytes")

    def _xarg_value(self, key: str, typ: str | None, value: str) -> Any:
        if key == "x-stream-offset" and typ is None:
            return self._stream_offset(value)
        if typ is None:
            typ = "int" if key in INT_XARGS else "bool" if key in BOOL_XARGS else "str"
        return self._typed(key, typ, value)

    def _stream_offset(self, value: str) -> Any:
        """first/last/next, an offset (an integer), or an interval such as 1h or 7D."""
        text = value.strip()
        if re.fullmatch(r"\d+", text):
            return _int(text, "x-stream-offset", 0, _INT64[1], self)
        if text in ("first", "last", "next") or re.fullmatch(r"\d+[YMDhms]", text):
            return text
        raise self.fail(
            f"x-stream-offset: expected first, last, next, an offset or an interval "
            f"(e.g. 1h), not {value!r}"
        )

    def _typed(self, name: str, typ: str, value: str) -> Any:
        if typ == "int":
            return _int(value, name, _INT64[0], _INT64[1], self)
        if typ == "float":
            return _float(value, name, -math.inf, math.inf, self)
        if typ == "bool":
            flag = parse_bool(value)
            if flag is None:
                raise self.fail(
                    f"{name}: expected yes/no, on/off, true/false or 1/0, not {value!r}"
                )
            return flag
        if typ == "json":
            import json  # only for :json values; keeps one-shot start-up light

            try:
                decoded = json.loads(value)
            except ValueError as exc:
                raise self.fail(f"{name}: not valid JSON: {exc}") from None
            _check_json(decoded, name, self)
            return decoded
        _check_text(value, name, self, limit=None)
        return value

    def _property(self, name: str, value: str) -> Any:
        if name == "delivery_mode":
            mode = {"1": 1, "2": 2, "transient": 1, "persistent": 2}.get(value.strip().lower())
            if mode is None:
                raise self.fail(
                    f"delivery_mode: expected 1 (transient) or 2 (persistent), not {value!r}"
                )
            return mode
        if name == "priority":
            return _int(value, name, 0, 255, self)
        if name == "timestamp":
            return _int(value, name, 0, _INT64[1], self)
        if name == "expiration":
            _int(value, name, 0, 2**32 - 1, self)
            return value.strip()
        _check_text(value, name, self, limit=MAX_SHORTSTR)
        return value

    # ------------------------------------------------------------------ positionals

    def _convert(self, arg: ArgSpec, token: str) -> Any:
        kind = arg.kind
        if kind is ArgKind.BOOL:
            flag = parse_bool(token)
            if flag is None:
                raise self.fail(
                    f"{arg.name}: expected yes/no, on/off, true/false or 1/0, not {token!r}"
                )
            return flag
        if kind is ArgKind.INT:
            lo = int(arg.minimum) if arg.minimum is not None else _INT64[0]
            hi = int(arg.maximum) if arg.maximum is not None else _INT64[1]
            return _int(token, arg.name, lo, hi, self)
        if kind is ArgKind.FLOAT:
            lo_f = arg.minimum if arg.minimum is not None else -math.inf
            hi_f = arg.maximum if arg.maximum is not None else math.inf
            return _float(token, arg.name, lo_f, hi_f, self)
        if kind is ArgKind.CHOICE:
            if token not in arg.choices:
                raise self.fail(
                    f"{arg.name}: expected one of {', '.join(arg.choices)}, not {token!r}"
                )
            return token
        if kind is ArgKind.EXCHANGE_TYPE and not _known_type(token):
            raise self.fail(
                f"type: unknown exchange type {token!r} "
                f"(expected {', '.join(EXCHANGE_TYPES)} or a plugin's x-... type)"
            )
        if kind is ArgKind.BODY:
            try:
                token.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                raise self.fail(f"{arg.name}: the text cannot be encoded") from None
            return token
        limit = None if kind is ArgKind.COMMAND else MAX_SHORTSTR
        _check_text(token, arg.name, self, limit=limit)
        return token


def _known_type(token: str) -> bool:
    return token in EXCHANGE_TYPES or (token.startswith("x-") and len(token) > 2)


def _is_ae(name: str, groups: frozenset[OptionGroup]) -> bool:
    return name == "alternate-exchange" and OptionGroup.EXCHANGE_ARGS in groups


def _count_message(spec: CommandSpec, given: int, missing: str | None = None) -> str:
    lo, hi = spec.min_args, len(spec.args)
    want = f"{lo}" if lo == hi else f"{lo} to {hi}"
    plural = "" if lo == hi == 1 else "s"
    text = f"expected {want} argument{plural}, got {given}"
    return f"{text} ({missing} is missing)" if missing else text


def _int(value: str, name: str, lo: int, hi: int, b: _Builder) -> int:
    text = value.strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise b.fail(f"{name}: expected an integer, not {value!r}")
    number = int(text)
    if not lo <= number <= hi:
        raise b.fail(f"{name}: {number} is out of range ({lo}..{hi})")
    return number


def _float(value: str, name: str, lo: float, hi: float, b: _Builder) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise b.fail(f"{name}: expected a number, not {value!r}") from None
    if math.isnan(number) or math.isinf(number) or not lo <= number <= hi:
        raise b.fail(f"{name}: {value.strip()} is out of range ({lo:g}..{hi:g})")
    return number


def _check_text(value: str, name: str, b: _Builder, *, limit: int | None) -> None:
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise b.fail(f"{name}: the text cannot be encoded as UTF-8") from None
    if limit is not None and size > limit:
        raise b.fail(f"{name}: longer than {limit} bytes")


def _check_json(value: Any, name: str, b: _Builder) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_text(value, name, b, limit=None)
    elif isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
        raise b.fail(f"{name}: integer {value} does not fit in 64 bits")
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise b.fail(f"{name}: {value} is not a finite number")
    if isinstance(value, list):
        for item in value:
            _check_json(item, name, b)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, name, b, limit=MAX_SHORTSTR)
            _check_json(item, name, b)
