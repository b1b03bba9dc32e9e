"""``amqptool worker`` (also ``python -m worker``): run a Celery-compatible worker.

The flags mirror :class:`worker.daemon.Worker`'s constructor. Light at import time: the worker
itself (and pika) is imported inside :func:`run`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

from amqptool.errors import UsageError

if TYPE_CHECKING:
    from amqptool.cli import CliContext

__all__ = ["configure", "run"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run a worker that executes tasks sent in Celery's task protocol, returns results a "
        "Celery client can read (rpc://), sends events and answers remote control. "
        "SIGTERM/SIGINT: warm shutdown (running tasks finish, unstarted ones go back to the "
        "queue, exit 0); a second signal or SIGQUIT: cold shutdown (exit 1)."
    )
    parser.add_argument(
        "-A",
        "--app",
        metavar="MODULE",
        action="append",
        required=True,
        help="module defining the tasks (repeatable; the current directory is on the path)",
    )
    parser.add_argument(
        "-n",
        "--hostname",
        metavar="NAME@HOST",
        help="node name; %%h, %%n and %%d expand to host, name and domain (default: celery@%%h)",
    )
    parser.add_argument(
        "-Q",
        "--queues",
        metavar="Q1,Q2",
        default="celery",
        help="queues to consume, comma-separated (default: celery)",
    )
    parser.add_argument(
        "-P",
        "--pool",
        choices=("prefork", "threads", "solo"),
        default="prefork",
        help="execution pool (default: prefork)",
    )
    parser.add_argument(
        "-c",
        "--concurrency",
        metavar="N",
        type=int,
        help="pool size (default: one per CPU; solo is always 1)",
    )
    parser.add_argument(
        "--prefetch-multiplier",
        metavar="N",
        type=int,
        default=4,
        help="prefetch = concurrency x N (default 4; 0 = unlimited)",
    )
    parser.add_argument(
        "-E", "--events", action="store_true", help="send task events (worker events always)"
    )
    parser.add_argument(
        "-l",
        "--loglevel",
        metavar="LEVEL",
        default="WARNING",
        type=str.upper,
        choices=LEVELS,
        help="log level (default: WARNING)",
    )
    parser.add_argument(
        "--accept-content",
        metavar="LIST",
        default="json",
        help="serializers or content types accepted, comma-separated (default: json; "
        "pickle only when named here)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        metavar="S",
        type=float,
        default=2.0,
        help="seconds between worker-heartbeat events (default 2)",
    )
    parser.add_argument(
        "--disable-control",
        metavar="CMD1,CMD2",
        default="",
        help="remote control commands to refuse with an error reply, comma-separated "
        "(e.g. shutdown,pool_shrink; aliases count as the command)",
    )


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("[%(asctime)s: %(levelname)s/%(processName)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The worker logs what it does at INFO; its broker link's retries at ERROR.
    logging.getLogger("worker").setLevel(level)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings()
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    _setup_logging(args.loglevel)
    from worker.daemon import Worker

    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("-c/--concurrency must be at least 1")
    w = Worker(
        args.app,
        settings=settings,
        queues=args.queues,
        pool=args.pool,
        concurrency=args.concurrency,
        prefetch_multiplier=args.prefetch_multiplier,
        events=args.events,
        nodename=args.hostname,
        accept_content=args.accept_content,
        heartbeat_interval=args.heartbeat_interval,
        install_signal_handlers=True,
        disable_control=args.disable_control,
    )
    cfg = w.config
    names = sorted(n for n in w.tasks if not n.startswith("celery."))
    banner = [
        f"{cfg.nodename} v{_version()}",
        f"  broker:      {settings.redacted()}",
        f"  queues:      {', '.join(cfg.queues)}",
        f"  pool:        {cfg.pool} (concurrency {cfg.concurrency}, prefetch "
        f"{cfg.prefetch or 'unlimited'})",
        f"  task events: {'on' if cfg.task_events else 'off'}",
        *(
            [f"  refused:     {', '.join(sorted(cfg.disable_control))}"]
            if cfg.disable_control
            else []
        ),
        "  tasks:",
        *[f"    . {n}" for n in names],
    ]
    ctx.info("\n".join(banner))

    w.consumer.on_ready = lambda: ctx.info(f"{cfg.nodename} ready.")
    return w.run()


def _version() -> str:
    from amqptool import __version__

    return __version__
