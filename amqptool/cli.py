"""``amqptool`` command line: global broker options and lazy subcommand dispatch.

Each subcommand lives in a light ``cli`` module exposing ``configure(parser)`` and
``run(args, ctx) -> int``. Heavy imports (textual, prompt_toolkit, pika) happen inside ``run``,
so ``amqptool --help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import cast

from amqptool import __version__
from amqptool.entrypoint import (
    CliContext,
    CommandModule,
    UsageParser,
    add_global_options,
    debug_requested,
    run_guarded,
    subcommand_parser,
)
from amqptool.errors import ExitCode

__all__ = ["CliContext", "build_parser", "camqadm_main", "main"]

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "shell": ("amqptool.shell.cli", "interactive AMQP shell (also installed as camqadm)"),
    "control": ("amqptool.control.cli", "broadcast remote-control commands to workers"),
    "monitor": ("amqptool.monitor.cli", "live monitor of workers and tasks"),
    "worker": ("worker.cli", "run a Celery-compatible task worker"),
    "call": ("amqptool.client.cli", "send one task and optionally wait for its result"),
    "result": ("amqptool.client.result_cli", "read a task's result by id from a backend"),
}


def _load(name: str) -> CommandModule:
    module_name = SUBCOMMANDS[name][0]
    module = importlib.import_module(module_name)
    return cast(CommandModule, module)  # command modules are duck-typed


def build_parser(*, only: str | None = None, camqadm: bool = False) -> argparse.ArgumentParser:
    """The full parser. With ``only``, just that subcommand's module is imported.

    ``camqadm``: the shell runs under its old name, so its help, version and usage errors say
    ``camqadm``.
    """
    parser = UsageParser(
        prog="camqadm" if camqadm else "amqptool",
        description="AMQP 0-9-1 toolkit for RabbitMQ and Celery-style task systems.",
        epilog=ExitCode.describe(),
    )
    parser.add_argument("--version", action="version", version=f"amqptool {__version__}")
    add_global_options(parser, suppress=False)
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=UsageParser)
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sub = subs.add_parser(
            name, help=help_text, description=help_text, epilog=ExitCode.describe()
        )
        if camqadm and name == "shell":
            sub.prog = "camqadm"
            sub.add_argument(
                "--version", action="version", version=f"camqadm (amqptool {__version__})"
            )
        if only is not None and name == only:
            subcommand_parser(sub, _load(name), suppress=True)
            continue
        add_global_options(sub, suppress=True)
        if only is None:
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
    ctx = CliContext(debug=debug_requested(argv))

    def body() -> int:
        command = _peek_command(argv)
        parser = build_parser(only=command, camqadm=camqadm)
        if command is None:
            args = parser.parse_args(argv)
            if not getattr(args, "command", None):
                parser.print_help()
                return ExitCode.USAGE
            return ExitCode.USAGE
        args = parser.parse_args(argv)
        ctx.take_global_options(args)
        return int(_load(command).run(args, ctx))

    return run_guarded(ctx, body)


def camqadm_main(argv: Sequence[str] | None = None) -> int:
    """``camqadm``: the shell under its old name."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return main(["shell", *argv], camqadm=True)


def entry() -> None:
    sys.exit(main())
