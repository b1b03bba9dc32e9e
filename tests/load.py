"""Load for the reliability drills: many tasks out, every result counted, workers to break.

* :func:`push_tasks` publishes N v2 task messages (persistent, as Celery sends them) quickly;
* :class:`ResultTally` consumes a reply queue on a thread of its own (its own connection, which
  reconnects when the broker restarts) and counts results per task id;
* :class:`DrillWorker` is ``python -m worker`` as a subprocess that a drill may SIGKILL,
  SIGTERM and start again under the same node name;
* :func:`runs_per_task` reads the execution log the tasks in ``tests/peers/reliability_tasks.py``
  write, so a drill counts executions as well as results;
* :func:`record_figures` merges a drill's figures into the JSON summary
  ``tests/.artifacts/reliability.json`` (the README's "Reliability" table comes from it).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amqptool.codec.serialization import loads
from amqptool.codec.tasks import TaskMessage, encode_task
from amqptool.errors import AmqpToolError
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests.brokers import file_lock
from tests.harness import ROOT, unique, wait_until

__all__ = [
    "ARTIFACTS",
    "DrillWorker",
    "ResultTally",
    "push_tasks",
    "record_figures",
    "runs_per_task",
]

ARTIFACTS = ROOT / "tests" / ".artifacts"
SUMMARY = ARTIFACTS / "reliability.json"
TASKS_MODULE = "tests.peers.reliability_tasks"
LOG_ENV = "AMQPTOOL_RELIA_LOG"  # read by the tasks in TASKS_MODULE


def settings(url: str) -> BrokerSettings:
    return BrokerSettings.from_url(url, environ={})


# --------------------------------------------------------------------------- publishing


def push_tasks(
    url: str,
    queue: str,
    name: str,
    args_for: Iterable[Sequence[Any]],
    *,
    reply_to: str | None,
    declare: bool = True,
) -> list[str]:
    """Publish one task per argument tuple (confirmed at the end); returns the task ids.

    The queue is declared first, exactly as the worker declares it, so nothing published
    before a worker starts is dropped as unroutable.
    """
    ids: list[str] = []
    with Connection(settings(url), name="relia-publisher") as conn:
        ch = conn.channel()
        if declare:
            ch.exchange_declare(queue, "direct", durable=True)
            ch.queue_declare(queue, durable=True)
            ch.queue_bind(queue, queue, queue)
        for args in args_for:
            msg = TaskMessage(task=name, args=list(args), reply_to=reply_to)
            ch.publish(encode_task(msg, routing_key=queue))
            ids.append(msg.id)
        # A synchronous round trip: every publish before it has reached the broker.
        ch.queue_declare(queue, passive=True)
    return ids


def queue_depth(url: str, queue: str) -> tuple[int, int]:
    """``(messages ready, consumers)`` of ``queue``."""
    with Connection(settings(url), name="relia-probe") as conn:
        info = conn.channel().queue_declare(queue, passive=True)
        return info.message_count, info.consumer_count


# --------------------------------------------------------------------------- results


class ResultTally:
    """Count rpc:// results arriving on a reply queue, on a thread with its own connection.

    The queue is durable (it outlives a broker restart); after a lost connection the thread
    connects again (with a pause) and goes on consuming. ``statuses[task_id]`` lists every
    state seen for a task, in arrival order.
    """

    def __init__(
        self, url: str, queue: str | None = None, *, bind: tuple[str, str] | None = None
    ) -> None:
        self.url = url
        self.queue = queue or unique("relia-replies")
        self.bind = bind  # (fanout exchange, routing key) to bind the queue to, if any
        self.statuses: dict[str, list[str]] = collections.defaultdict(list)
        self.reconnects = 0
        self.undecodable = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="result-tally", daemon=True)
        self._error: BaseException | None = None

    # ------------------------------------------------------------ the thread

    def _on_result(self, env: Any) -> None:
        try:
            body = loads(env.body, env.properties.content_type, env.properties.content_encoding)
            task_id, status = body["task_id"], body["status"]
        except Exception:  # a drill's reply queue only gets results; count anything else
            self.undecodable += 1
            return
        with self._lock:
            self.statuses[str(task_id)].append(str(status))

    def _run(self) -> None:
        first = True
        try:
            while not self._stop.is_set():
                conn = Connection(settings(self.url), name=f"relia-tally {self.queue}")
                try:
                    conn.connect_with_retry(
                        interval_start=0.2,
                        interval_step=0.3,
                        interval_max=1.0,
                        should_stop=self._stop.is_set,
                    )
                    if not first:
                        self.reconnects += 1
                    first = False
                    ch = conn.channel()
                    ch.queue_declare(self.queue, durable=True)
                    if self.bind is not None:
                        ch.exchange_declare(self.bind[0], "fanout", durable=True)
                        ch.queue_bind(self.queue, *self.bind)
                    ch.consume(self.queue, self._on_result, no_ack=True)
                    self._ready.set()
                    while not self._stop.is_set():
                        conn.process_events(0.1)
                except AmqpToolError:
                    if self._stop.wait(0.2):
                        break
                finally:
                    conn.close()
        except BaseException as exc:  # surfaced to the test by wait()/close()
            self._error = exc
            self._ready.set()

    # ------------------------------------------------------------ the test's side

    def start(self) -> ResultTally:
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("the result tally could not start consuming")
        if self._error is not None:
            raise self._error
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        with contextlib.suppress(AmqpToolError), Connection(settings(self.url)) as conn:
            conn.channel().queue_delete(self.queue)

    def __enter__(self) -> ResultTally:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def snapshot(self) -> dict[str, list[str]]:
        with self._lock:
            return {k: list(v) for k, v in self.statuses.items()}

    def succeeded(self, ids: Iterable[str] | None = None) -> int:
        """How many task ids (of ``ids``, or of all seen) have at least one SUCCESS."""
        with self._lock:
            if ids is None:
                return sum(1 for v in self.statuses.values() if "SUCCESS" in v)
            return sum(1 for i in ids if "SUCCESS" in self.statuses.get(i, ()))

    def wait_all(self, ids: Sequence[str], timeout: float, on_tick: Any = None) -> None:
        """Wait until every id has a SUCCESS (``on_tick(done)`` is called while waiting)."""
        wanted = set(ids)

        def done() -> bool:
            if self._error is not None:
                raise self._error
            count = self.succeeded(wanted)
            if on_tick is not None:
                on_tick(count)
            return count == len(wanted)

        wait_until(
            done,
            timeout,
            interval=0.1,
            message=f"a SUCCESS for all {len(wanted)} tasks (have {self.succeeded(wanted)})",
        )

    def missing(self, ids: Iterable[str]) -> list[str]:
        with self._lock:
            return [i for i in ids if "SUCCESS" not in self.statuses.get(i, ())]

    def duplicates(self) -> int:
        """Results beyond the first SUCCESS of each task (a task run twice)."""
        with self._lock:
            return sum(max(0, v.count("SUCCESS") - 1) for v in self.statuses.values())

    def not_success(self) -> dict[str, list[str]]:
        with self._lock:
            return {k: v for k, v in self.statuses.items() if set(v) - {"SUCCESS"}}


def runs_per_task(log: Path) -> collections.Counter[str]:
    """How many times each task id ran (from the tasks' execution log)."""
    if not log.exists():
        return collections.Counter()
    return collections.Counter(
        line.split(" ", 1)[0] for line in log.read_text().splitlines() if line.strip()
    )


# --------------------------------------------------------------------------- workers


class DrillWorker:
    """``python -m worker -A tests.peers.reliability_tasks`` that a drill can kill and restart."""

    def __init__(
        self,
        url: str,
        queue: str,
        *args: str,
        nodename: str | None = None,
        log_dir: Path,
        exec_log: Path | None = None,
    ) -> None:
        self.url = url
        self.queue = queue
        self.nodename = nodename or f"{unique('relia')}@localhost"
        self.args = ["-A", TASKS_MODULE, "-Q", queue, "-n", self.nodename, *args]
        self.log = log_dir / f"{self.nodename.split('@')[0]}.log"
        self.exec_log = exec_log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.exit_codes: list[int] = []

    @property
    def connection_name(self) -> str:
        return f"amqptool-worker {self.nodename}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["AMQP_URL"] = self.url
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("CELERY_BROKER_URL", None)
        if self.exec_log is not None:
            env[LOG_ENV] = str(self.exec_log)
        return env

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self, timeout: float = 60.0) -> DrillWorker:
        """Start (again); returns once this start's ``ready.`` line is out."""
        before = self.output().count(" ready.")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(),
                cwd=ROOT,
            )
        self.starts += 1
        proc = self.proc
        wait_until(
            lambda: self.output().count(" ready.") > before or proc.poll() is not None,
            timeout,
            interval=0.1,
            message=f"worker {self.nodename} to start",
        )
        if proc.poll() is not None:
            raise RuntimeError(f"worker {self.nodename} died:\n{self.output()[-3000:]}")
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, *, reap: bool = True) -> None:
        """SIGKILL: no goodbye, no acks; whatever it held unacked goes back to the queue.

        With ``reap``, wait for its pool children (if any) to notice and exit too.
        """
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.exit_codes.append(self.proc.wait(30))
        if reap:
            self.reap_children()

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self.exit_codes.append(code)
        return code

    def reap_children(self, timeout: float = 30.0) -> None:
        """Pool children of a SIGKILLed prefork worker see their pipe close and exit; wait."""
        assert self.proc is not None
        pid = self.proc.pid

        def orphans() -> list[int]:
            found = []
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                with contextlib.suppress(OSError):
                    cmdline = (entry / "cmdline").read_bytes()
                    if self.nodename.encode() in cmdline and int(entry.name) != pid:
                        found.append(int(entry.name))
            return found

        wait_until(lambda: not orphans(), timeout, interval=0.1, message="pool children to exit")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            self.exit_codes.append(proc.wait(30))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> DrillWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def workers(*drill_workers: DrillWorker) -> Iterator[tuple[DrillWorker, ...]]:
    """Start them all; stop (SIGTERM, then SIGKILL) whichever still runs at the end."""
    try:
        for w in drill_workers:
            w.start()
        yield drill_workers
    finally:
        for w in drill_workers:
            w.stop()


# --------------------------------------------------------------------------- the summary


def record_figures(drill: str, figures: dict[str, Any]) -> Path:
    """Merge one drill's figures into ``tests/.artifacts/reliability.json`` and total them.

    Several pytest sessions may write at once: the merge holds a file lock.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ignore = ARTIFACTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    with file_lock(ARTIFACTS / "reliability.lock", timeout=60):
        try:
            doc: dict[str, Any] = json.loads(SUMMARY.read_text())
        except (OSError, ValueError):
            doc = {}
        drills: dict[str, Any] = doc.get("drills", {})
        drills[drill] = dict(figures, finished=datetime.now(UTC).isoformat(timespec="seconds"))
        doc["drills"] = drills
        doc["totals"] = _totals(drills)
        tmp = SUMMARY.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        tmp.replace(SUMMARY)
    return SUMMARY


TOTAL_KEYS = (
    "tasks_pushed",
    "sigkills",
    "restarts",
    "connections_closed",
    "broker_restarts",
    "failovers",
    "warm_shutdowns",
    "malformed_sent",
    "tasks_lost",
    "duplicate_runs",
    "duplicate_results",
)


def _totals(drills: dict[str, Any]) -> dict[str, int]:
    totals = dict.fromkeys(TOTAL_KEYS, 0)
    for figures in drills.values():
        for key in TOTAL_KEYS:
            value = figures.get(key, 0)
            if isinstance(value, int):
                totals[key] += value
    # The README's "crashes and restarts survived": every fault a running system rode out.
    totals["crashes_and_restarts_survived"] = sum(
        totals[k]
        for k in (
            "sigkills",
            "connections_closed",
            "broker_restarts",
            "failovers",
            "warm_shutdowns",
        )
    )
    return totals


def elapsed_since(start: float) -> float:
    return round(time.monotonic() - start, 1)
