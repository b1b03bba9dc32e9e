"""`amqptool monitor` (placeholder until the monitor issue lands)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from amqptool.errors import AmqpToolError

if TYPE_CHECKING:
    from amqptool.cli import CliContext


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.settings()
    raise AmqpToolError("amqptool monitor is not built yet")
