"""``amqptool control``: send remote-control commands to Celery-compatible workers.

``amqptool control [-d NODE[,NODE...]] [-t TIMEOUT] [--limit N] [--json]
[--pattern GLOB [--matcher glob|pcre]] COMMAND [ARG ...]``

Options may also follow COMMAND (``amqptool control ping -d w1@host``). This module stays light:
the client (and with it pika) is imported only when a broker is needed, and nothing of
textual, prompt_toolkit, celery or the user's task modules is ever imported.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import TYPE_CHECKING, Any, TextIO

from amqptool.control.command_table import COMMANDS, Command, compile_request, lookup
from amqptool.control.render import (
    error_nodes,
    nodes_online,
    render_command_list,
    render_replies,
    to_json,
)
from amqptool.errors import ExitCode, NoReplyError, UsageError
from amqptool.textsafe import visible

if TYPE_CHECKING:
    from amqptool.entrypoint import CliContext

__all__ = ["configure", "run"]

_COMMON = ("destination", "timeout", "limit", "json", "pattern", "matcher", "idle", "app")
_BROKER = (
    "broker",
    "broker_file",
    "control_key_file",
    "config_module",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "debug",
)


class _ArgParser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override,unused-ignore]  # raises
        raise UsageError(f"{self.prog}: {message}", hint=f"see '{self.prog} --help'")


def _node_list(text: str) -> list[str]:
    nodes = [n.strip() for n in text.split(",") if n.strip()]
    if not nodes:
        raise argparse.ArgumentTypeError("expected NODE[,NODE...]")
    return nodes


def _add_common_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def d(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("remote control options")
    group.add_argument(
        "-A",
        "--app",
        metavar="MODULE",
        default=d(None),
        help="a Celery app whose settings (broker_url...) apply, as celery -A does",
    )
    group.add_argument(
        "-d",
        "--destination",
        metavar="NODE[,NODE...]",
        type=_node_list,
        action="extend",
        default=d(None),
        help="only these nodes (comma-separated; repeatable); the reply wait ends as soon as "
        "they all answered",
    )
    group.add_argument(
        "-t",
        "--timeout",
        type=float,
        metavar="SECONDS",
        default=d(1.0),
        help="how long to wait for the first reply (default 1.0)",
    )
    group.add_argument(
        "--limit",
        type=int,
        metavar="N",
        default=d(None),
        help="stop as soon as N replies are in (default: the number of -d nodes)",
    )
    group.add_argument(
        "--idle",
        type=float,
        metavar="SECONDS",
        default=d(None),
        help="after a reply to a broadcast, wait this long for more "
        "(default max(0.25, timeout/4), at most the timeout)",
    )
    group.add_argument(
        "-j",
        "--json",
        action="store_true",
        default=d(False),
        help="print one JSON document {node: reply} on stdout, nothing else",
    )
    group.add_argument(
        "--pattern", metavar="GLOB", default=d(None), help="only nodes whose name matches"
    )
    group.add_argument(
        "--matcher",
        choices=("glob", "pcre"),
        default=d(None),
        help="how --pattern matches (default glob)",
    )


def _add_broker_options(parser: argparse.ArgumentParser) -> None:
    # the global broker options, also accepted after COMMAND
    hidden = argparse.SUPPRESS
    parser.add_argument("-b", "--broker", metavar="URL", default=hidden, help=hidden)
    parser.add_argument("--broker-file", metavar="FILE", default=hidden, help=hidden)
    parser.add_argument("--config", dest="config_module", default=hidden, help=hidden)
    parser.add_argument("--control-key-file", metavar="FILE", default=hidden, help=hidden)
    parser.add_argument("--ssl-ca", metavar="FILE", default=hidden, help=hidden)
    parser.add_argument("--ssl-cert", metavar="FILE", default=hidden, help=hidden)
    parser.add_argument("--ssl-key", metavar="FILE", default=hidden, help=hidden)
    parser.add_argument("--debug", action="store_true", default=hidden, help=hidden)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.usage = (
        "%(prog)s [-d NODE[,NODE...]] [-t SECONDS] [--limit N] [--json]\n"
        "       [--pattern GLOB [--matcher glob|pcre]] COMMAND [ARG ...]"
    )
    parser.epilog = (
        render_command_list(COMMANDS)
        + "\n\nexit codes: 0 every reply ok; 1 a node replied with an error; 2 usage; "
        "69 nobody replied; 70 cannot connect to the broker"
    )
    _add_common_options(parser, suppress=False)
    parser.add_argument("command", nargs="?", metavar="COMMAND", help="see the list below")
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="ARG", help=argparse.SUPPRESS)


def _command_parser(cmd: Command) -> argparse.ArgumentParser:
    parser = _ArgParser(
        prog=f"amqptool control {cmd.name}",
        description=cmd.help,
        usage=f"%(prog)s {cmd.signature}".rstrip(),
    )
    _add_common_options(parser, suppress=True)
    _add_broker_options(parser)
    for flag in cmd.flags:
        if flag.is_switch:
            parser.add_argument(flag.option, dest=flag.dest, action="store_true", help=flag.help)
        else:
            parser.add_argument(flag.option, dest=flag.dest, metavar=flag.metavar, help=flag.help)
    parser.add_argument("words", nargs="*", help=argparse.SUPPRESS)
    return parser


def _parse(args: argparse.Namespace, ctx: CliContext) -> tuple[Command, argparse.Namespace]:
    if not args.command:
        raise UsageError(
            "amqptool control: missing COMMAND", hint="see 'amqptool control commands'"
        )
    cmd = lookup(args.command)
    inner = _command_parser(cmd).parse_intermixed_args(list(args.words or []))
    for name in _COMMON:
        if hasattr(inner, name):
            if name == "destination" and args.destination:
                setattr(args, name, [*args.destination, *inner.destination])
            else:
                setattr(args, name, getattr(inner, name))
    for name in _BROKER:
        if hasattr(inner, name):
            setattr(ctx, name, getattr(inner, name))
    if args.destination:
        args.destination = list(dict.fromkeys(args.destination))
    if not args.timeout > 0:
        raise UsageError(f"-t/--timeout must be a positive number, got {args.timeout}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    if args.idle is not None and args.idle < 0:
        raise UsageError(f"--idle must not be negative, got {args.idle}")
    if args.matcher and not args.pattern:
        raise UsageError("--matcher needs --pattern")
    if args.pattern and args.destination:
        raise UsageError("use either -d/--destination or --pattern, not both")
    return cmd, inner


def _targets(args: argparse.Namespace) -> str:
    if args.destination:
        return ", ".join(args.destination)
    if args.pattern:
        return f"nodes matching {args.pattern!r}"
    return "all nodes"


def _emit(stream: TextIO, text: str) -> None:
    print(text, file=stream, flush=True)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    cmd, inner = _parse(args, ctx)
    stdout = ctx.stdout
    if cmd.name == "commands":
        if inner.words:
            raise UsageError(f"commands: too many arguments: {' '.join(inner.words)}")
        if args.json:
            listing = [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "aliases": list(c.aliases),
                    "signature": c.signature,
                    "help": c.help,
                    "reply": c.reply,
                }
                for c in sorted(COMMANDS, key=lambda c: (c.kind, c.name))
            ]
            _emit(stdout, to_json(listing))
        else:
            _emit(stdout, render_command_list(COMMANDS))
        return ExitCode.OK
    flags = {f.dest: getattr(inner, f.dest, None) for f in cmd.flags}
    method, arguments = compile_request(cmd, inner.words, flags)
    if cmd.name == "hello" and "from_node" not in arguments:
        arguments["from_node"] = f"amqptool@{socket.gethostname()}"
    if args.app:
        from amqptool.celeryconf.app import find_app

        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        ctx.app = find_app(args.app)
    settings = ctx.settings()

    from amqptool.control.client import ControlClient  # pika is imported here, not before

    with ControlClient(settings) as client:
        if not cmd.reply:
            client.cast(
                method,
                arguments,
                destination=args.destination,
                pattern=args.pattern,
                matcher=args.matcher,
            )
            message = f"{cmd.name} sent to {_targets(args)} (no reply expected)"
            if args.json:
                _emit(stdout, "{}")
                ctx.info(message)
            else:
                _emit(stdout, message)
            return ExitCode.OK
        replies = client.call(
            method,
            arguments,
            destination=args.destination,
            pattern=args.pattern,
            matcher=args.matcher,
            timeout=args.timeout,
            limit=args.limit,
            idle=args.idle,
        )
        for what in client.malformed:
            ctx.info(f"warning: not a well-formed reply, not counted as a node: {what}")
    return _report(cmd, args, ctx, replies)


def _report(
    cmd: Command, args: argparse.Namespace, ctx: CliContext, replies: dict[str, Any]
) -> int:
    stdout = ctx.stdout
    if args.json:
        _emit(stdout, to_json(replies))
    if not replies:
        raise NoReplyError(f"no nodes replied within {args.timeout}s")
    if not args.json:
        _emit(stdout, visible(render_replies(replies, show_body=cmd.name != "status")))
        _emit(stdout, "\n" + nodes_online(len(replies)))
    if args.destination:
        missing = [n for n in args.destination if n not in replies]
        if missing:
            ctx.info(f"no reply from: {', '.join(missing)}")
    failed = error_nodes(replies)
    if failed:
        ctx.error(
            f"{len(failed)} of {len(replies)} "
            f"{'node' if len(replies) == 1 else 'nodes'} replied with an error: "
            + ", ".join(failed)
        )
        return ExitCode.FAILED
    return ExitCode.OK
