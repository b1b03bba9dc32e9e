"""``amqptool monitor``: the live cluster view (Textual), or ``--dump`` lines for pipes.

Light on purpose: textual and pika are imported inside :func:`run`, so ``amqptool --help``
stays fast.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from amqptool.errors import UsageError

if TYPE_CHECKING:
    from amqptool.cli import CliContext

DESCRIPTION = """\
Watch workers and tasks live, from the events Celery-protocol workers send (start workers
with -E for task events). Keys: ? shows them all. With --dump: no UI, one line per event on
stdout (text like `celery events --dump`, or JSON lines with --json).
--timeout is the total run time of a dump (not a silence). A dump exits 0 when --count
events arrived (or at --timeout without --count), 69 when --count events did not arrive
within --timeout, 70 when the broker cannot be reached or goes away."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    dump = parser.add_argument_group("dump mode (no UI)")
    dump.add_argument("--dump", action="store_true", help="print events, one per line")
    dump.add_argument("--json", action="store_true", help="with --dump: JSON lines")
    dump.add_argument(
        "--count", type=_positive_int, metavar="N", help="with --dump: stop after N events"
    )
    dump.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help="with --dump: stop after S seconds in total",
    )
    ui = parser.add_argument_group("live view")
    ui.add_argument(
        "--max-tasks",
        type=_positive_int,
        default=10_000,
        metavar="N",
        help="tasks kept in memory (default 10000; failed ones are kept longest)",
    )
    ui.add_argument(
        "--forget-offline",
        type=_seconds,
        default=3600.0,
        metavar="SECONDS",
        help="forget workers offline for longer than this (default 3600)",
    )
    ui.add_argument(
        "-Q",
        "--queues",
        metavar="QUEUES",
        help="comma-separated queues to show depths of (default: ask workers, active_queues)",
    )
    ui.add_argument(
        "--state",
        metavar="FILE",
        help="SQLite file keeping task history across restarts (searched by the filter)",
    )


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings()
    if not args.dump and (args.json or args.count is not None or args.timeout is not None):
        raise UsageError("--json, --count and --timeout go with --dump")
    if args.dump:
        from amqptool.monitor.dump import run_dump

        return run_dump(
            settings,
            out=ctx.stdout,
            err=ctx.stderr,
            as_json=args.json,
            count=args.count,
            timeout=args.timeout,
        )
    from amqptool.monitor.main import run_app

    queues = tuple(q.strip() for q in (args.queues or "").split(",") if q.strip())
    return run_app(
        settings,
        max_tasks=args.max_tasks,
        forget_offline=args.forget_offline,
        queues=queues,
        state_file=args.state,
    )
