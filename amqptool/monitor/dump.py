"""``amqptool monitor --dump``: no UI, one line per event, for scripts and pipes.

stdout is data (one line per event, flushed), stderr is diagnostics. Two formats:

* text, like ``celery events --dump``:
  ``w1@host [2026-11-21 09:59:20.531838] task received: app.add(<uuid>) args=(4, 5) kwargs={}
  clock=50, ...``;
* ``--json``: one JSON object per line, the event as it came (``task.multi`` arrays split into
  their events) plus ``local_received``.

When to stop: after ``--count N`` events, or when ``--timeout S`` seconds have passed in total
(the whole run, not a silence: workers send heartbeats every 2 s, so a silence would rarely
come). Exit 0 when the count was reached or, without ``--count``, at the timeout; exit 69 when
``--count`` events did not arrive within ``--timeout``; exit 70 when the broker cannot be
reached or goes away (the dump does not reconnect: a script should see the gap).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from amqptool.errors import BlockedError, ExitCode, NoReplyError
from amqptool.settings import BrokerSettings
from amqptool.textsafe import escape_table, json_visible

__all__ = ["EventFormatter", "format_json", "run_dump"]

_NAME_CACHE_MAX = 10_000
# What a text dump line may not contain raw: every control character but tab, and the Unicode
# line breaks (str.splitlines() splits on them too).
_CONTROL = escape_table("\\n")


def _utc(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(ts)


class EventFormatter:
    """Celery's ``--dump`` text, remembering task names by uuid (bounded)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def format(self, event: Mapping[str, Any]) -> str:
        """One line: control characters (a newline in a forged hostname or task id, or in a
        traceback) are escaped, so one event is always one line of the dump."""
        return self._format(event).translate(_CONTROL)

    def _format(self, event: Mapping[str, Any]) -> str:
        ev = dict(event)
        timestamp = _utc(ev.pop("timestamp", None))
        etype = str(ev.pop("type", "?")).lower()
        hostname = ev.pop("hostname", "?")
        human = etype.replace("-", " ")
        if etype.startswith("task-"):
            uuid = str(ev.pop("uuid", "?"))
            if etype in ("task-received", "task-sent"):
                task = (
                    f"{ev.pop('name', '?')}({uuid}) args={ev.pop('args', None)} "
                    f"kwargs={ev.pop('kwargs', None)}"
                )
                self._remember(uuid, task)
            else:
                task = self.names.get(uuid, f"({uuid})")
            fields = ", ".join(f"{k}={ev[k]}" for k in sorted(ev))
            sep = ":" if fields else ""
            return f"{hostname} [{timestamp}] {human}{sep} {task} {fields}".rstrip()
        fields = ", ".join(f"{k}={ev[k]}" for k in sorted(ev))
        sep = ":" if fields else ""
        return f"{hostname} [{timestamp}] {human}{sep} {fields}".rstrip()

    def _remember(self, uuid: str, task: str) -> None:
        if len(self.names) >= _NAME_CACHE_MAX:
            for key in list(self.names)[: _NAME_CACHE_MAX // 2]:
                del self.names[key]
        self.names[uuid] = task


def format_json(event: Mapping[str, Any]) -> str:
    return json_visible(
        json.dumps(event, ensure_ascii=False, default=repr, separators=(", ", ": "))
    )


def run_dump(
    settings: BrokerSettings,
    *,
    out: TextIO,
    err: TextIO,
    as_json: bool = False,
    count: int | None = None,
    timeout: float | None = None,
) -> int:
    """Print events until ``count`` or ``timeout``; returns the exit code (see module doc)."""
    from amqptool.monitor.feed import EventFeed, FeedBatch, FeedStatus

    formatter = EventFormatter()
    seen = 0
    broken_pipe = False
    feed: EventFeed

    def on_batch(batch: FeedBatch) -> None:
        nonlocal seen, broken_pipe
        if batch.malformed:
            print(f"skipped {batch.malformed} malformed event message(s)", file=err, flush=True)
        try:
            for event in batch.events:
                if count is not None and seen >= count:
                    break
                out.write((format_json(event) if as_json else formatter.format(event)) + "\n")
                seen += 1
            out.flush()
        except BrokenPipeError:
            broken_pipe = True
            feed.stop()
            return
        if count is not None and seen >= count:
            feed.stop()

    def on_status(status: FeedStatus) -> None:
        if status.state == "connected":
            print(
                f"listening for events on {status.detail} (queue {status.queue})",
                file=err,
                flush=True,
            )

    feed = EventFeed(settings, on_batch, on_status, reconnect=False, batch_interval=0.05)
    timer: threading.Timer | None = None
    if timeout is not None:
        timer = threading.Timer(timeout, feed.stop)
        timer.daemon = True
        timer.start()
    started = time.monotonic()
    try:
        feed.run()
    finally:
        if timer is not None:
            timer.cancel()
    if broken_pipe:
        return ExitCode.OK
    if feed.blocked_reason is not None and (count is None or seen < count):
        raise BlockedError(feed.blocked_reason, hint="workers cannot send events meanwhile")
    if count is not None and seen < count:
        waited = time.monotonic() - started
        raise NoReplyError(f"only {seen} of {count} event(s) arrived within {waited:.1f}s")
    return ExitCode.OK
