"""``amqptool monitor``: the live cluster view (Textual), or ``--dump`` lines for pipes.

Light on purpose: textual and pika are imported inside :func:`run`, so ``amqptool --help``
stays fast.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from amqptool.errors import UsageError

if TYPE_CHECKING:
    from amqptool.entrypoint import CliContext

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


def _size(text: str) -> int:
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    unit = text[-1:].upper() if text[-1:].isalpha() else ""
    try:
        value = float(text[: len(text) - len(unit)]) * units[unit]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"not a size (like 64M or 1G): {text!r}") from None
    if not 1024 <= value < 2**50:
        raise argparse.ArgumentTypeError(f"must be at least 1K: {text!r}")
    return int(value)


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
        "--max-bytes",
        type=_size,
        default=64 * 1024 * 1024,
        metavar="SIZE",
        help="text kept in memory for tasks, e.g. 64M or 1G (default 64M; oldest go first)",
    )
    ui.add_argument(
        "--max-field",
        type=_positive_int,
        default=4096,
        metavar="CHARS",
        help="longest args/kwargs/result/exception kept; longer ones are cut, marked"
        " '…[cut N chars]' (default 4096; tracebacks 4x)",
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
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus /metrics (celery-exporter's names) on HOST:PORT; a bare PORT"
        " listens on 127.0.0.1",
    )
    ui.add_argument(
        "--no-tui",
        "--headless",
        dest="no_tui",
        action="store_true",
        help="with --metrics: no terminal UI, run as an exporter service (SIGTERM stops it)",
    )
    ui.add_argument(
        "--serve",
        metavar="HOST:PORT",
        help="show the live view in a browser (textual-serve) at http://HOST:PORT/; a bare"
        " PORT listens on 127.0.0.1; beyond loopback only with a token",
    )
    ui.add_argument(
        "--token",
        metavar="TOKEN",
        help="with --serve: the page needs ?token=TOKEN (default: $AMQPTOOL_MONITOR_TOKEN)",
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
    queues = tuple(q.strip() for q in (args.queues or "").split(",") if q.strip())
    metrics = None
    if args.metrics:
        try:
            from amqptool.monitor.metrics import parse_listen
        except ImportError:
            raise UsageError(
                "--metrics needs prometheus-client", hint="pip install 'amqptool[metrics]'"
            ) from None
        metrics = parse_listen(args.metrics)
    if args.serve:
        return _serve(args, ctx, queues)
    if args.no_tui:
        if metrics is None:
            raise UsageError("--no-tui needs --metrics HOST:PORT (it has nothing else to show)")
        from amqptool.monitor.core.state import MonitorState
        from amqptool.monitor.headless import run_headless

        state = MonitorState(
            max_tasks=args.max_tasks, max_bytes=args.max_bytes, field_limit=args.max_field
        )
        return run_headless(settings, metrics, err=ctx.stderr, queues=queues, state=state)
    from amqptool.monitor.main import run_app

    return run_app(
        settings,
        max_tasks=args.max_tasks,
        forget_offline=args.forget_offline,
        queues=queues,
        state_file=args.state,
        max_bytes=args.max_bytes,
        field_limit=args.max_field,
        err=ctx.stderr,
        metrics=metrics,
    )


def _serve(args: argparse.Namespace, ctx: CliContext, queues: tuple[str, ...]) -> int:
    import os

    from amqptool.monitor.metrics import parse_listen
    from amqptool.monitor.serve import TOKEN_ENV, monitor_command, run_serve

    if args.metrics or args.no_tui:
        raise UsageError("--serve goes without --metrics and --no-tui (run those separately)")
    listen = parse_listen(args.serve, option="--serve")
    token = args.token or os.environ.get(TOKEN_ENV) or None
    monitor_args = [
        f"--max-tasks={args.max_tasks}",
        f"--max-bytes={args.max_bytes}",
        f"--max-field={args.max_field}",
        f"--forget-offline={args.forget_offline}",
    ]
    if queues:
        monitor_args.append("--queues=" + ",".join(queues))
    if args.state:
        monitor_args.append(f"--state={os.path.abspath(args.state)}")
    global_args = [  # file paths, never secrets, on the tab processes' command line
        f"{flag}={os.path.abspath(path)}"
        for flag, path in (
            ("--ssl-ca", ctx.ssl_ca),
            ("--ssl-cert", ctx.ssl_cert),
            ("--ssl-key", ctx.ssl_key),
            ("--broker-file", ctx.broker_file),
            ("--control-key-file", ctx.control_key_file),
        )
        if path
    ]
    ctx.settings()  # a bad URL is an error here, not in every browser tab
    command = monitor_command(monitor_args, global_args)
    return run_serve(listen, command, token=token, broker_url=ctx.broker)
