"""What every command line entry point shares (pure: argparse, settings and errors only).

- :class:`CliContext`: what a subcommand gets besides its own arguments (broker settings, where
  to write, ``--debug``);
- :class:`CommandModule`: the shape of a subcommand's ``cli`` module (``configure``, ``run``);
- :func:`add_global_options` and :class:`UsageParser`: the broker options every subcommand
  accepts, and an argparse that raises :class:`~amqptool.errors.UsageError` (one line, exit 2);
- :func:`run_guarded`: the one place an error becomes one line on stderr and an exit code
  (a traceback only with ``--debug``);
- :func:`quiet_pika`: our programs' log handlers leave out pika's own records (below
  CRITICAL): a connection problem is reported once, translated, by us. pika's loggers
  themselves are not touched (task code in a worker sees stock pika);
- :func:`run_one`: one subcommand as a program of its own (``python -m worker``), with exactly
  the options, help and exit codes it has under ``amqptool``.

:mod:`amqptool.cli` builds the ``amqptool`` command from these; ``worker`` uses them without
importing the command line of the other front ends.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from amqptool.errors import AmqpToolError, ExitCode, UsageError
from amqptool.settings import BrokerSettings, TLSOptions, redact_url
from amqptool.textsafe import visible

if TYPE_CHECKING:
    from amqptool.celeryconf import Resolved

__all__ = [
    "CliContext",
    "CommandModule",
    "UsageParser",
    "add_global_options",
    "quiet_pika",
    "run_guarded",
    "run_one",
]


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
        """The validated broker settings (raises SettingsError naming the bad part); with
        ``--config`` or a Celery app, the broker URL is the resolved ``broker_url``."""
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

    def take_global_options(self, args: argparse.Namespace) -> None:
        self.broker = args.broker
        self.config_module = args.config
        self.broker_file = args.broker_file
        self.control_key_file = args.control_key_file
        self.ssl_ca, self.ssl_cert, self.ssl_key = args.ssl_ca, args.ssl_cert, args.ssl_key
        self.debug = bool(args.debug)


class CommandModule(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, ctx: CliContext) -> int: ...


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
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


class UsageParser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override,unused-ignore]  # raises
        raise UsageError(f"{self.prog}: {message}", hint=f"see '{self.prog} --help'")


class _QuietPika(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return record.levelno >= logging.CRITICAL or not (name == "pika" or name[:5] == "pika.")


def quiet_pika(handler: logging.Handler | None) -> None:
    """Leave pika's records below CRITICAL out of what ``handler`` writes (idempotent)."""
    if handler is not None and not any(isinstance(f, _QuietPika) for f in handler.filters):
        handler.addFilter(_QuietPika())


def debug_requested(argv: Sequence[str]) -> bool:
    return "--debug" in argv or bool(os.environ.get("AMQPTOOL_DEBUG"))


def run_guarded(ctx: CliContext, body: Callable[[], int]) -> int:
    """Run ``body``; any error becomes one line on stderr and its exit code."""
    quiet_pika(logging.lastResort)  # what prints when the program configured no logging
    try:
        return int(body())
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


def subcommand_parser(
    parser: argparse.ArgumentParser, module: CommandModule, *, suppress: bool
) -> argparse.ArgumentParser:
    """Give a subcommand's parser the global options and the subcommand's own."""
    add_global_options(parser, suppress=suppress)
    module.configure(parser)
    return parser


def run_one(prog: str, help_text: str, module: CommandModule, argv: Sequence[str]) -> int:
    """One subcommand as a program: ``prog`` is how ``amqptool`` names it (``amqptool worker``)."""
    ctx = CliContext(debug=debug_requested(argv))

    def body() -> int:
        parser = UsageParser(prog=prog, description=help_text, epilog=ExitCode.describe())
        args = subcommand_parser(parser, module, suppress=False).parse_args(argv)
        ctx.take_global_options(args)
        return module.run(args, ctx)

    return run_guarded(ctx, body)
