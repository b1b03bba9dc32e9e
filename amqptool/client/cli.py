"""``amqptool call``: send one task by name and, with ``--wait``, print its result.

Kept light: the client (and so pika) is imported inside :func:`run`, never at module top.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from amqptool.errors import AmqpToolError, ExitCode, NoReplyError, UsageError
from amqptool.textsafe import json_visible, visible

if TYPE_CHECKING:
    from amqptool.client.result import AsyncResult
    from amqptool.entrypoint import CliContext

__all__ = ["configure", "parse_arg", "parse_kwargs", "run", "seconds", "wait_and_print"]

EPILOG = (
    "Arguments are read as JSON where they parse (2 -> int, '\"2\"' -> str, '[1,2]' -> list, "
    "null/true/false), otherwise taken as strings. Without --wait the task id is printed; "
    "with --wait (or --timeout) the result is printed instead: a string as it is, anything "
    "else as JSON; --json prints an object with id, state and result (or the exception). "
    "A failed or revoked task prints one line 'error: ExcType: message' on stderr.\n\n"
    "exit codes: 0 sent (or the task succeeded); 1 the task failed or was revoked; 2 usage or "
    "bad input (e.g. --kwargs not a JSON object); 69 no result within --timeout; 70 cannot "
    "connect to the broker; 71 broker refused the credentials or vhost"
)


def parse_arg(text: str) -> Any:
    """A command-line task argument: JSON if it parses, else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_kwargs(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"--kwargs is not valid JSON: {exc}", hint="e.g. --kwargs '{\"x\": 1}'"
        ) from None
    if not isinstance(value, dict):
        raise UsageError(f"--kwargs must be a JSON object, not {type(value).__name__}")
    return value


def _expires(text: str | None) -> float | str | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text  # an ISO 8601 time, checked by the client


def _priority(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"must be 0-255 (usually 0-9), not {value}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Send one task (Celery protocol v2) and optionally wait for its result."
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("task_name", metavar="TASK_NAME", help="registered task name")
    parser.add_argument("task_args", metavar="ARG", nargs="*", help="positional arguments")
    parser.add_argument("--kwargs", metavar="JSON", help="keyword arguments as a JSON object")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--countdown", metavar="S", type=seconds, help="run no sooner than in S s")
    when.add_argument("--eta", metavar="ISO", help="run no sooner than this ISO 8601 time")
    parser.add_argument(
        "--expires", metavar="S", help="expire after S seconds (or at an ISO 8601 time)"
    )
    parser.add_argument(
        "-Q", "--queue", help="queue (default: as task_routes / task_default_queue say: celery)"
    )
    parser.add_argument("--exchange", metavar="NAME", help="publish to this exchange")
    parser.add_argument("--routing-key", metavar="KEY", help="publish with this routing key")
    parser.add_argument(
        "-A",
        "--app",
        metavar="MODULE",
        help="a Celery app whose settings (task_routes, task_queues...) route the task",
    )
    parser.add_argument("--priority", metavar="N", type=_priority, help="message priority 0-9")
    parser.add_argument("--task-id", metavar="ID", help="use this task id instead of a new uuid")
    parser.add_argument(
        "--serializer",
        choices=["json", "msgpack", "yaml"],
        help="body format (default: task_serializer, json)",
    )
    parser.add_argument("--wait", action="store_true", help="wait for the result and print it")
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=seconds,
        help="with --wait: give up after S seconds, exit 69 (implies --wait; default: no limit)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object")


def _dump(value: Any) -> str:
    return json_visible(json.dumps(value, default=repr, ensure_ascii=False))


def _show(value: Any) -> str:
    return value if isinstance(value, str) else _dump(value)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    kwargs = parse_kwargs(args.kwargs)
    task_args = [parse_arg(a) for a in args.task_args]
    if args.app:
        from amqptool.celeryconf.app import find_app

        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        ctx.app = find_app(args.app)
    conf = ctx.conf()
    settings = ctx.settings()
    if ctx.debug:
        import logging

        from amqptool.entrypoint import quiet_pika

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
        for handler in logging.getLogger().handlers:
            quiet_pika(handler)
    from amqptool.client.client import PUBLISH_TIMEOUT, Client

    wait = bool(args.wait or args.timeout is not None)
    started = time.monotonic()
    publish_timeout = args.timeout if args.timeout is not None else PUBLISH_TIMEOUT
    with Client(settings, publish_timeout=publish_timeout, config=conf.values) as client:
        result = client.send_task(
            args.task_name,
            task_args,
            kwargs,
            task_id=args.task_id,
            countdown=args.countdown,
            eta=args.eta,
            expires=_expires(args.expires),
            queue=args.queue,
            exchange=args.exchange,
            routing_key=args.routing_key,
            priority=args.priority,
            serializer=args.serializer or conf["task_serializer"],
            compression=conf["task_compression"],
        )
        if not wait:
            print(_dump({"id": result.id}) if args.json else result.id, file=ctx.stdout)
            return ExitCode.OK
        left = None if args.timeout is None else args.timeout - (time.monotonic() - started)
        return wait_and_print(result, args, ctx, timeout=left)


def wait_and_print(
    result: AsyncResult,
    args: argparse.Namespace,
    ctx: CliContext,
    *,
    timeout: float | None = None,
) -> int:
    """Wait and print the value; a failed task raises (exit 1).

    ``timeout`` is what is left of ``args.timeout`` (the default: all of it).
    """
    if timeout is None:
        timeout = args.timeout
    from amqptool.errors import TaskTimeoutError

    try:
        value = result.get(timeout=timeout, propagate=False)
    except TaskTimeoutError:
        # Counted from the start of the command (connecting and publishing included).
        raise NoReplyError(
            f"task {result.id} did not finish within {args.timeout:g}s (state: {result.state})",
            hint="no worker took the task in time?",
        ) from None
    state = result.state
    if isinstance(value, BaseException):
        message = " ".join(str(value).split())
        line = f"{type(value).__name__}: {message}" if message else type(value).__name__
        if args.json:
            out: dict[str, Any] = {"id": result.id, "state": state, "exception": line}
            out["traceback"] = result.traceback
            print(_dump(out), file=ctx.stdout)
        raise AmqpToolError(line)
    if args.json:
        print(_dump({"id": result.id, "state": state, "result": value}), file=ctx.stdout)
    else:
        print(visible(_show(value)), file=ctx.stdout)  # a result is the peer's text
    return ExitCode.OK
