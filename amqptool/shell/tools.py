"""The shell's message tools: ``queue.export``, ``queue.import``, ``queue.move``, ``exchange.tap``.

- ``queue.move``: each source message is acknowledged only after the broker confirmed its copy
  in the destination. A crash mid-move loses nothing; at worst the message being moved is in
  both queues (its copy confirmed, its ack not yet sent).
- ``queue.export``: messages are fetched with ``basic.get`` and held unacknowledged while they
  are written; then they are all requeued (default) or, with ``remove=yes``, each is acked only
  after its line was written (and flushed).
- ``queue.import``: every message published with a confirm (``mandatory``: an unroutable one
  fails the command).
- ``exchange.tap``: a server-named exclusive auto-delete queue bound to the exchange; what it
  receives is shown and acknowledged; the queue goes when the tap ends.

Long runs report progress through :attr:`Runner.progress` (the shell shows it on a terminal)
and tell the watchdog they are alive after every message.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from amqptool.codec.envelope import Envelope
from amqptool.errors import AmqpToolError, UsageError
from amqptool.private import create_private
from amqptool.shell.core.jsonl import envelope_from_line, line_from_envelope
from amqptool.shell.core.outcome import Consumed, Summary
from amqptool.shell.runner import PUBLISH_TIMEOUT

if TYPE_CHECKING:
    from amqptool.shell.core.parser import ParsedCommand
    from amqptool.shell.core.ports import ChannelLike
    from amqptool.shell.runner import OnMessage, Runner

__all__ = ["export", "import_", "move", "tap"]

_PROGRESS_EVERY = 100


def _ready(ch: ChannelLike, queue: str) -> int:
    """Messages ready in ``queue`` (passive declare: a missing queue is a 404 here)."""
    return ch.queue_declare(queue, passive=True).message_count


def _limit(count: int, ready: int) -> int:
    return ready if count == 0 else min(count, ready) if ready else count


class _Progress:
    def __init__(self, r: Runner, verb: str, total: int) -> None:
        self.r, self.verb, self.total, self.done = r, verb, total, 0

    def step(self) -> None:
        self.done += 1
        self.r.watchdog.alive()
        if self.r.progress is not None and self.done % _PROGRESS_EVERY == 0:
            self.r.progress(f"{self.verb} {self.done}/{self.total}")

    def finish(self) -> None:
        if self.r.progress is not None and self.done >= _PROGRESS_EVERY:
            self.r.progress("")


def move(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Summary:
    src, dst = c.values["source"], c.values["destination"]
    if src == dst:
        raise UsageError("queue.move: the source and the destination are the same queue")
    total = _limit(c.values["count"], _ready(ch, src))
    _ready(ch, dst)  # the destination must exist: a copy must never go nowhere
    r.names.add_queue(src)
    r.names.add_queue(dst)
    progress = _Progress(r, "moved", total)
    try:
        while progress.done < total:
            env = ch.get(src, no_ack=False)
            if env is None or env.delivery_tag is None:
                break
            copy = Envelope(body=env.body, properties=env.properties, exchange="", routing_key=dst)
            try:  # returns once the broker confirmed the copy
                ch.publish(copy, mandatory=True, timeout=PUBLISH_TIMEOUT)
            except AmqpToolError:
                with contextlib.suppress(AmqpToolError):  # the source keeps it (maybe twice)
                    ch.nack(env.delivery_tag, requeue=True)
                raise
            ch.ack(env.delivery_tag)
            progress.step()
    finally:
        progress.finish()
    r.sync(ch)
    n = progress.done
    return Summary(
        f"ok. {n} message{'s' if n != 1 else ''} moved from {src} to {dst}.",
        {"moved": n, "source": src, "destination": dst},
    )


@contextmanager
def _output(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdout
        return
    try:
        handle = create_private(path)  # message bodies: 0600, like the history
    except FileExistsError:
        raise UsageError(f"queue.export: {path} exists (choose a new file)") from None
    except OSError as exc:
        raise UsageError(f"queue.export: cannot write {path}: {exc.strerror}") from None
    with handle:
        yield handle


def export(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Summary:
    queue, path, remove = c.values["queue"], c.values["file"], c.values["remove"]
    total = _limit(c.values["count"], _ready(ch, queue))
    r.names.add_queue(queue)
    progress = _Progress(r, "exported", total)
    held: list[int] = []
    try:
        with _output(path) as out:
            while progress.done < total:
                env = ch.get(queue, no_ack=False)
                if env is None or env.delivery_tag is None:
                    break
                out.write(line_from_envelope(env) + "\n")
                if remove:
                    out.flush()
                    ch.ack(env.delivery_tag)
                else:
                    held.append(env.delivery_tag)
                progress.step()
    finally:
        progress.finish()
        if held:  # put them back, in one go, in their order
            ch.nack(held[-1], multiple=True, requeue=True)
    r.sync(ch)
    n = progress.done
    kept = "removed from" if remove else "left in"
    return Summary(
        f"ok. {n} message{'s' if n != 1 else ''} exported to {path} ({kept} {queue}).",
        {"exported": n, "queue": queue, "file": path, "removed": bool(remove)},
        on_stderr=path == "-",
    )


def _lines(r: Runner, path: str) -> list[str]:
    if path == "-":
        if r.stdin_is_commands:
            raise UsageError("queue.import: '-' reads stdin, but the commands come from stdin")
        return sys.stdin.readlines()
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.readlines()
    except OSError as exc:
        raise UsageError(f"queue.import: cannot read {path}: {exc.strerror}") from None


def import_(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Summary:
    path, dest = c.values["file"], c.values["destination"]
    envs = [
        envelope_from_line(line, f"queue.import: {path} line {n}")
        for n, line in enumerate(_lines(r, path), 1)
        if line.strip()
    ]
    exchange = dest[len("exchange:") :] if dest.startswith("exchange:") else None
    if exchange is None:
        _ready(ch, dest)  # a queue that does not exist is an error, not a silent drop
        r.names.add_queue(dest)
    progress = _Progress(r, "imported", len(envs))
    try:
        for env in envs:
            if exchange is None:
                env = Envelope(body=env.body, properties=env.properties, routing_key=dest)
            else:
                env = Envelope(
                    body=env.body,
                    properties=env.properties,
                    exchange=exchange,
                    routing_key=env.routing_key,
                )
            ch.publish(env, mandatory=True, timeout=PUBLISH_TIMEOUT)
            progress.step()
    finally:
        progress.finish()
    n = progress.done
    return Summary(
        f"ok. {n} message{'s' if n != 1 else ''} imported from {path} into {dest}.",
        {"imported": n, "file": path, "destination": dest},
    )


def tap(r: Runner, ch: ChannelLike, c: ParsedCommand, on_message: OnMessage, _w: Any) -> Consumed:
    from amqptool.shell.consume import wait_for
    from amqptool.shell.core.messages import MessageView, view_message

    exchange, key = c.values["exchange"], c.values["routing_key"]
    count, timeout = c.values["count"], c.values["timeout"]
    ch.exchange_declare(exchange, passive=True)
    queue = ch.queue_declare("", exclusive=True, auto_delete=True).name
    ch.queue_bind(queue, exchange, key)
    r.names.add_exchange(exchange)
    views: list[MessageView] = []
    deadline = time.monotonic() + timeout

    def on_envelope(env: Envelope) -> None:
        nonlocal deadline
        if len(views) >= count:
            return  # already delivered with the last batch; the queue goes with the tap
        view = view_message(env)
        views.append(view)
        deadline = time.monotonic() + timeout
        on_message(view)

    tag = ch.consume(queue, on_envelope, no_ack=True, exclusive=True)
    reason = wait_for(r, lambda: len(views) >= count, lambda: deadline)
    ch.cancel(tag)
    ch.queue_delete(queue)
    return Consumed(tuple(views), "tap", reason)
