"""``amqptool`` command line: global broker options and lazy subcommand dispatch.

Each subcommand lives in a light ``cli`` module exposing ``configure(parser)`` and
``run(args, ctx) -> int``. Heavy imports (textual, prompt_toolkit, pika) happen inside ``run``,
so ``amqptool --help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO, cast

from amqptool import __version__
from amqptool.errors import AmqpToolError, ExitCode, UsageError
from amqptool.settings import BrokerSettings, TLSOptions, redact_url
from amqptool.textsafe import visible

if TYPE_CHECKING:
    from amqptool.celeryconf import Resolved

__all__ = ["CliContext", "build_parser", "camqadm_main", "main"]

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "shell": ("amqptool.shell.cli", "interactive AMQP shell (also installed as camqadm)"),
    "control": ("amqptool.control.cli", "broadcast remote-control commands to workers"),
    "monitor": ("amqptool.monitor.cli", "live monitor of workers and tasks"),
    "worker": ("worker.cli", "run a Celery-compatible task worker"),
    "call": ("amqptool.client.cli", "send one task and optionally wait for its result"),
    "result": ("amqptool.client.result_cli", "read a task's result by id from a backend"),
}


class CommandModule(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, ctx: CliContext) -> int: ...


@dataclass
class CliContext:
    """What a subcommand gets besides its own arguments."""

    broker: str | None = None
    broker_file: str | None = None
    control_key_file: str | None = None
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None
    debug: bool = False
    config_module: str | None = None  # --config
    app: Any = None  # a Celery app named by -A (its conf is a settings layer)
    flags: dict[str, Any] = field(default_factory=dict)  # settings given as flags
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    _settings: BrokerSettings | None = None
    _conf: Resolved | None = None

    def conf(self) -> Resolved:
        """Every setting resolved: flags > env > the Celery app > --config module > defaults."""
        if self._conf is None:
            from amqptool.celeryconf import resolve

            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())  # the config module may sit here
            flags = dict(self.flags, broker_url=self.broker)
            self._conf = resolve(flags=flags, app=self.app, module=self.config_module)
        return self._conf

    def settings(self) -> BrokerSettings:
        """The validated broker settings (raises SettingsError naming the bad part)."""
        if self._settings is None:
            tls = TLSOptions(self.ssl_ca, self.ssl_cert, self.ssl_key)
            url = self.broker
            if url is None and (self.config_module or self.app is not None):
                url = self.conf()["broker_url"]
            self._settings = BrokerSettings.from_url(
                url,
                tls=tls,
                url_file=self.broker_file,
                control_key_file=self.control_key_file,
            )
        return self._settings

    def error(self, message: str) -> None:
        print(f"error: {visible(redact_url(message))}", file=self.stderr, flush=True)

    def info(self, message: str) -> None:
        print(visible(redact_url(message)), file=self.stderr, flush=True)


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("broker options")
    group.add_argument(
        "-b",
        "--broker",
        metavar="URL",
        default=default,
        help="broker URL(s), ';'-separated for failover (default: $AMQP_URL, "
        "$CELERY_BROKER_URL, amqp://guest:guest@localhost:5672//); '@FILE' reads it from FILE",
    )
    group.add_argument(
        "--broker-file",
        metavar="FILE",
        default=default,
        help="read the broker URL(s) from FILE (one per line), so no password shows in ps "
        "(also $AMQP_URL_FILE, $CELERY_BROKER_URL_FILE)",
    )
    group.add_argument(
        "--control-key-file",
        metavar="FILE",
        default=default,
        help="shared key that signs remote-control commands and replies "
        "(also $AMQPTOOL_CONTROL_KEY, $AMQPTOOL_CONTROL_KEY_FILE)",
    )
    group.add_argument(
        "--config",
        metavar="MODULE",
        default=default,
        help="a Celery config module (celeryconfig): lowercase or old upper-case setting names",
    )
    group.add_argument("--ssl-ca", metavar="FILE", default=default, help="CA bundle for amqps://")
    group.add_argument("--ssl-cert", metavar="FILE", default=default, help="client certificate")
    group.add_argument("--ssl-key", metavar="FILE", default=default, help="client private key")
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="show tracebacks for errors",
    )


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override,unused-ignore]  # raises
        raise UsageError(f"{self.prog}: {message}", hint=f"see '{self.prog} --help'")


def _load(name: str) -> CommandModule:
    module_name = SUBCOMMANDS[name][0]
    module = importlib.import_module(module_name)
    return cast(CommandModule, module)  # command modules are duck-typed


def build_parser(*, only: str | None = None, camqadm: bool = False) -> argparse.ArgumentParser:
    """The full parser. With ``only``, just that subcommand's module is imported.

    ``camqadm``: the shell runs under its old name, so its help, version and usage errors say
    ``camqadm``.
    """
    parser = _Parser(
        prog="camqadm" if camqadm else "amqptool",
        description="AMQP 0-9-1 toolkit for RabbitMQ and Celery-style task systems.",
        epilog=ExitCode.describe(),
    )
    parser.add_argument("--version", action="version", version=f"amqptool {__version__}")
    _add_global_options(parser, suppress=False)
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sub = subs.add_parser(
            name, help=help_text, description=help_text, epilog=ExitCode.describe()
        )
        if camqadm and name == "shell":
            sub.prog = "camqadm"
            sub.add_argument(
                "--version", action="version", version=f"camqadm (amqptool {__version__})"
            )
        _add_global_options(sub, suppress=True)
        if only is not None and name == only:
            _load(name).configure(sub)
        elif only is None:
            sub.set_defaults(_lazy=True)
    return parser


def _peek_command(argv: Sequence[str]) -> str | None:
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg in (
            "-b",
            "--broker",
            "--broker-file",
            "--config",
            "--control-key-file",
            "--ssl-ca",
            "--ssl-cert",
            "--ssl-key",
        ):
            skip_next = True
            continue
        if arg.startswith("-"):
            continue
        return arg if arg in SUBCOMMANDS else None
    return None


def main(argv: Sequence[str] | None = None, *, camqadm: bool = False) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("AMQPTOOL_DEBUG"))
    ctx = CliContext(debug=debug)
    try:
        command = _peek_command(argv)
        parser = build_parser(only=command, camqadm=camqadm)
        if command is None:
            args = parser.parse_args(argv)
            if not getattr(args, "command", None):
                parser.print_help()
                return ExitCode.USAGE
            return ExitCode.USAGE
        args = parser.parse_args(argv)
        ctx.broker = args.broker
        ctx.config_module = args.config
        ctx.broker_file = args.broker_file
        ctx.control_key_file = args.control_key_file
        ctx.ssl_ca, ctx.ssl_cert, ctx.ssl_key = args.ssl_ca, args.ssl_cert, args.ssl_key
        ctx.debug = bool(args.debug)
        return int(_load(command).run(args, ctx))
    except AmqpToolError as exc:
        if ctx.debug:
            traceback.print_exc()
        ctx.error(exc.user_line())
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as exc:  # last line of defence: one line, no traceback
        if ctx.debug:
            traceback.print_exc()
        ctx.error(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)")
        return ExitCode.FAILED


def camqadm_main(argv: Sequence[str] | None = None) -> int:
    """``camqadm``: the shell under its old name."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return main(["shell", *argv], camqadm=True)


def entry() -> None:
    sys.exit(main())
