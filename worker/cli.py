"""``amqptool worker`` (also ``python -m worker``): run a Celery-compatible worker.

The flags mirror :class:`worker.daemon.Worker`'s constructor. Light at import time: the worker
itself (and pika) is imported inside :func:`run`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from amqptool.entrypoint import quiet_pika
from amqptool.errors import UsageError
from amqptool.textsafe import escape_table
from worker.config import DEFAULT_SCHEDULE_FILE
from worker.policy.eta import DEFAULT_PARK_THRESHOLD

if TYPE_CHECKING:
    from amqptool.entrypoint import CliContext
    from amqptool.settings import BrokerSettings

__all__ = ["SUMMARY", "configure", "run"]

SUMMARY = "run a Celery-compatible task worker"  # the line `amqptool --help` shows too

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
        help="task module, Celery app (module, module:attribute, or a package whose celery "
        "submodule holds it); repeatable; the current directory is on the path",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print every resolved setting and where it came from (flag, env, app, module, "
        "default), passwords masked, and exit",
    )
    parser.add_argument(
        "-f",
        "--logfile",
        metavar="FILE",
        help="write the log to FILE instead of stderr (its directory must exist)",
    )
    parser.add_argument(
        "--pidfile",
        metavar="FILE",
        help="write the worker's pid to FILE; refuse to start while a live process holds it",
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
        default=None,
        help="queues to consume, comma-separated (default: a Celery app's queues, or celery)",
    )
    parser.add_argument(
        "-P",
        "--pool",
        choices=("prefork", "threads", "solo"),
        default=None,
        help="execution pool (default: a Celery app's worker_pool, or prefork)",
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
        default=None,
        help="prefetch = concurrency x N (default: a Celery app's setting, or 4; 0 = unlimited)",
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
        type=lambda text: [part for part in text.split(",") if part],
        metavar="LIST",
        default=None,
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
    parser.add_argument(
        "--result-backend",
        metavar="URL",
        default=None,
        help="where results go: rpc:// (default: reply messages), redis://host:port/db, "
        "rediss://..., db+postgresql://..., db+mysql://..., db+sqlite:///path",
    )
    parser.add_argument(
        "--result-expires",
        metavar="S",
        type=float,
        default=None,
        help="seconds a stored result is kept (default: result_expires, 86400; 0: forever)",
    )
    _configure_scheduling(parser)


TIME_LIMITS_HELP = (
    "Time limits: with -P prefork the soft limit raises SoftTimeLimitExceeded inside the task "
    "(it may catch it) and at the hard limit the pool process is killed and replaced; the task "
    "fails with TimeLimitExceeded and the worker goes on. The threads and solo pools cannot "
    "kill a thread: both limits are raised as exceptions in the task's thread, which Python "
    "delivers only between bytecodes, so a task blocked in a long C call (sleep, a socket "
    "read) gets them only when that call returns, and a task that catches TimeLimitExceeded "
    "keeps running and keeps its slot."
)


def _seconds_or_never(text: str) -> float | None:
    if text.strip().lower() in ("never", "off", "none"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return value


def _configure_scheduling(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scheduling", TIME_LIMITS_HELP)
    group.add_argument(
        "--eta-park-threshold",
        metavar="SECONDS",
        type=_seconds_or_never,
        default=DEFAULT_PARK_THRESHOLD,
        help="a task whose ETA is further away than this is parked on the broker (a delay "
        "queue that dead-letters it back in time) instead of held unacked in memory "
        f"(default {DEFAULT_PARK_THRESHOLD:g}, under RabbitMQ's 30 min consumer_timeout; "
        "'never' holds all, like Celery)",
    )
    group.add_argument(
        "--time-limit",
        metavar="SECONDS",
        type=float,
        help="default hard time limit of every task (a task's or message's own wins)",
    )
    group.add_argument(
        "--soft-time-limit",
        metavar="SECONDS",
        type=float,
        help="default soft time limit of every task (a task's or message's own wins)",
    )
    group.add_argument(
        "--max-tasks-per-child",
        metavar="N",
        type=int,
        help="prefork: replace a pool process after it ran N tasks",
    )
    group.add_argument(
        "--statedb",
        metavar="FILE",
        help="keep the revoked task ids in FILE, so they survive a restart",
    )
    group.add_argument(
        "--without-mingle",
        action="store_true",
        help="do not ask the running workers for their revoked ids at startup (hello)",
    )
    group.add_argument(
        "-B",
        "--beat",
        action="store_true",
        help="also run the periodic tasks (@periodic_task) from this worker; run only ONE "
        "scheduler per cluster, or each periodic task runs once per scheduler",
    )
    group.add_argument(
        "-s",
        "--schedule",
        metavar="FILE",
        default=DEFAULT_SCHEDULE_FILE,
        help="with -B: where the last run of each periodic task is kept, so a restart neither "
        f"skips nor doubles a run (default {DEFAULT_SCHEDULE_FILE} in the current directory)",
    )


# Control characters a message could smuggle into the log (task ids and names come from the
# wire). A newline starts an indented continuation line instead: a traceback stays readable, and
# no continuation can pass for a record of its own (records start at column 0 with '[').
_ESCAPES = escape_table("\n    ")


class RecordFormatter(logging.Formatter):
    """Each record starts exactly one line: control characters in the message are escaped and
    its other lines indented, so a task id with a newline in it cannot forge a log record."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.translate(_ESCAPES)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # a traceback quotes task data too
        return super().formatException(ei).translate(_ESCAPES)

    def formatStack(self, stack_info: str) -> str:
        return super().formatStack(stack_info).translate(_ESCAPES)


def _setup_logging(level: str, logfile: str | None = None) -> None:
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    if logfile:
        try:
            handler = logging.FileHandler(os.path.expanduser(logfile), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--logfile {logfile}: cannot open it: {exc}") from exc
    quiet_pika(handler)
    handler.setFormatter(
        RecordFormatter("[%(asctime)s: %(levelname)s/%(processName)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The worker logs what it does at INFO; its broker link's retries at ERROR.
    logging.getLogger("worker").setLevel(level)


_FLAG_SETTINGS = {
    "pool": "worker_pool",
    "concurrency": "worker_concurrency",
    "prefetch_multiplier": "worker_prefetch_multiplier",
    "time_limit": "task_time_limit",
    "soft_time_limit": "task_soft_time_limit",
    "max_tasks_per_child": "worker_max_tasks_per_child",
    "accept_content": "accept_content",
    "result_backend": "result_backend",
    "result_expires": "result_expires",
}


def _configure(args: argparse.Namespace, ctx: CliContext) -> BrokerSettings:
    """Resolve the settings (flags > env > a Celery app's conf > --config module > defaults)
    and fill what the flags left unset. A Celery app named by ``-A`` is imported first."""
    from worker.celery_app import import_target

    ctx.app = import_target(list(args.app or ()), prepare=False)
    ctx.flags = {name: getattr(args, flag) for flag, name in _FLAG_SETTINGS.items()}
    ctx.flags["worker_send_task_events"] = True if args.events else None
    conf = ctx.conf()
    for flag, name in _FLAG_SETTINGS.items():
        setattr(args, flag, conf[name])
    args.events = bool(conf["worker_send_task_events"])
    from worker.celery_conf import apply_task_defaults, default_queue_names, queue_spec_of

    args.queue_specs = None
    if ctx.app is None and conf["task_queues"]:
        args.queue_specs = {q.name: queue_spec_of(q) for q in conf["task_queues"]}
    if args.queues is None:
        if ctx.app is not None:
            args.queues = ",".join(default_queue_names(ctx.app))
        elif args.queue_specs:
            args.queues = ",".join(args.queue_specs)
        else:
            args.queues = conf["task_default_queue"]
    apply_task_defaults(conf, ctx.app)
    from worker.pool import error_mail

    error_mail.configure(conf.values)
    return ctx.settings()


def _resolved(ctx: CliContext) -> dict[str, tuple[Any, str]]:
    """Every resolved setting with its source, and a Celery app's other changed settings."""
    conf = ctx.conf()
    out = {name: (value, conf.sources[name]) for name, value in conf.values.items()}
    if ctx.app is not None:
        for name, value in ctx.app.conf.table(with_defaults=False).items():
            out.setdefault(name, (value, "app"))
    return out


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from worker.service import Notifier, PidFile, check_parent_dir

    for flag, path in (("--logfile", args.logfile), ("--pidfile", args.pidfile)):
        check_parent_dir(flag, path)
    check_parent_dir("--statedb", args.statedb)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    pidfile = PidFile(args.pidfile) if args.pidfile else None
    if pidfile is not None:
        pidfile.acquire()
    try:
        return _run(args, ctx, Notifier())
    finally:
        if pidfile is not None:
            pidfile.release()


def _run(args: argparse.Namespace, ctx: CliContext, notifier: Any) -> int:
    _setup_logging(args.loglevel, args.logfile)
    settings = _configure(args, ctx)
    if args.print_config:
        print("\n".join(ctx.conf().lines()), file=ctx.stdout)
        return 0
    from amqptool.backends.urls import redact
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
        eta_park_threshold=args.eta_park_threshold,
        time_limit=args.time_limit,
        soft_time_limit=args.soft_time_limit,
        max_tasks_per_child=args.max_tasks_per_child,
        statedb=args.statedb,
        mingle=not args.without_mingle,
        beat=args.beat,
        schedule_file=args.schedule,
        queue_specs=args.queue_specs,
        resolved=_resolved(ctx),
        disable_rate_limits=bool(ctx.conf()["worker_disable_rate_limits"]),
        result_backend=args.result_backend,
        result_expires=args.result_expires,
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
        f"  results:     {redact(cfg.result_backend) if cfg.result_backend else 'rpc://'}",
        *(
            [f"  refused:     {', '.join(sorted(cfg.disable_control))}"]
            if cfg.disable_control
            else []
        ),
        *([f"  beat:        on (schedule file {cfg.schedule_file})"] if cfg.beat else []),
        *(["  control:     signed commands only (HMAC-SHA256)"] if settings.control_key else []),
        "  tasks:",
        *[f"    . {n}" for n in names],
    ]
    ctx.info("\n".join(banner))

    send_signal = celery_worker_signal if ctx.app is not None else _no_signal

    def on_ready() -> None:
        ctx.info(f"{cfg.nodename} ready.")
        logging.getLogger("worker").info("%s ready.", cfg.nodename)
        notifier.ready(alive=lambda: w.exit_code is None)
        send_signal("worker_ready")

    w.consumer.on_ready = on_ready
    w.on_stopping = notifier.stopping
    send_signal("worker_init")  # before the pool's children are forked, as in Celery
    try:
        return w.run()
    finally:
        notifier.stopping()
        send_signal("worker_shutdown")


def _no_signal(name: str) -> None:
    """No Celery app: no Celery signals."""


def celery_worker_signal(name: str) -> None:
    """Send Celery's worker signal ``name`` (``worker_init``, ``worker_ready``,
    ``worker_shutdown``) to a Celery app's handlers; a raising handler is logged."""
    from celery import signals

    for _receiver, result in getattr(signals, name).send_robust(sender=None):
        if isinstance(result, Exception):
            logging.getLogger("worker").error("%s handler raised: %r", name, result)


def _version() -> str:
    from amqptool import __version__

    return __version__
