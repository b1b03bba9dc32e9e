"""`amqptool client` (placeholder until the client issue lands)."""

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
    raise AmqpToolError("amqptool client is not built yet")
