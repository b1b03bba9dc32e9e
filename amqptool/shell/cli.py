"""``amqptool shell`` (also ``camqadm``): the AMQP 0-9-1 shell.

Kept light: argparse only at import time; pika and prompt_toolkit are imported by ``run``
(prompt_toolkit only for the interactive mode).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from amqptool.entrypoint import CliContext

__all__ = ["configure", "run"]

DESCRIPTION = (
    "Direct access to the AMQP 0-9-1 API (camqadm's successor). With a COMMAND it runs that one "
    "command and exits; with -f FILE, or when stdin is not a terminal, it runs one command per "
    "line (blank lines and # comments allowed); otherwise it starts an interactive shell. "
    "Type 'help' in the shell (or run '%(prog)s help') for the commands."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument(
        "-f", "--file", metavar="FILE", help="run the commands in FILE ('-' for stdin)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document per command on stdout"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="longest wait for the broker to answer one request of a command; then the "
        "command fails (exit 69) and the connection is reopened (default: 30; 0: no limit)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="do not ask before queue.purge and queue.delete (asked only in the interactive "
        "shell; scripts and batch files never ask)",
    )
    parser.add_argument(
        "--mgmt-url",
        metavar="URL",
        help="management HTTP API for the listing commands (default: http://HOST:15672 of the "
        "broker URL, with its user, password and vhost)",
    )
    parser.add_argument(
        "--stop-on-error",
        action="store_true",
        help="batch mode: stop at the first failed command (default: go on, exit non-zero)",
    )
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="COMMAND [ARG ...]",
        help="one shell command to run, e.g. queue.declare myq no yes no no",
    )


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from amqptool.shell.modes import main

    return main(args, ctx)
