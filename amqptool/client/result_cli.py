"""``amqptool result ID``: read a task's result by id from a stored result backend.

Any process can read a result that a worker stored in Redis or SQL, whoever sent the task.
Kept light: the backend driver is imported inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from amqptool.client.cli import seconds, wait_and_print
from amqptool.errors import NoReplyError, UsageError
from amqptool.textsafe import json_visible, visible

if TYPE_CHECKING:
    from amqptool.entrypoint import CliContext

__all__ = ["configure", "run"]

BACKEND_ENV = ("AMQPTOOL_RESULT_BACKEND", "CELERY_RESULT_BACKEND")

EPILOG = (
    "The backend is --backend URL, else $AMQPTOOL_RESULT_BACKEND, else $CELERY_RESULT_BACKEND "
    "(redis://host:port/db, rediss://..., db+postgresql://..., db+mysql://..., "
    "db+sqlite:///path; rpc:// results cannot be read by id from another process). Without "
    "--wait the current state is read once: a ready result is printed like --wait prints it, "
    "otherwise the state name.\n\n"
    "exit codes: 0 the task succeeded; 1 the task failed or was revoked; 2 usage or bad input "
    "(bad or missing backend URL); 69 not ready (within --timeout); 70 cannot reach the backend"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Read a task's result by id from a Redis or SQL result backend."
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("task_id", metavar="ID", help="the task id")
    parser.add_argument("--backend", metavar="URL", help="result backend URL")
    parser.add_argument("--wait", action="store_true", help="wait until the task is ready")
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=seconds,
        help="with --wait: give up after S seconds, exit 69 (implies --wait)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object")


def _backend_url(args: argparse.Namespace) -> str:
    url = args.backend or next((os.environ[n] for n in BACKEND_ENV if os.environ.get(n)), None)
    if not url:
        raise UsageError("no result backend", hint="give --backend URL (redis://, db+...)")
    return str(url)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from amqptool.backends import backend_from_url, is_rpc
    from amqptool.client.client import Client
    from amqptool.codec.results import READY_STATES

    url = _backend_url(args)
    if is_rpc(url):
        raise UsageError("rpc:// results go to the sender only; read them with a stored backend")
    backend = backend_from_url(url)
    client = Client(ctx.settings(), backend=backend)
    try:
        result = client.AsyncResult(args.task_id)
        if args.wait or args.timeout is not None:
            return wait_and_print(result, args, ctx)
        state = result.state
        if state in READY_STATES:
            args.timeout = 0
            return wait_and_print(result, args, ctx)
        if args.json:
            out = {"id": result.id, "state": state, "result": result.info}
            print(json_visible(json.dumps(out, default=repr, ensure_ascii=False)), file=ctx.stdout)
        else:
            print(visible(state), file=ctx.stdout)  # a custom state is the task's own text
        raise NoReplyError(f"task {args.task_id} is not ready (state: {state})")
    finally:
        backend.close()
