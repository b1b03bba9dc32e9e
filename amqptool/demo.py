"""``make demo``: a worker with example tasks, a stream of tasks, and the live monitor.

Starts ``amqptool worker -A examples.demo_tasks -E`` on its own queue, sends a stream of tasks
(successes, failures, retries, scheduled and slow ones) from the task client, and opens the
monitor. With no terminal attached it prints the event stream and a summary instead and exits
by itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from amqptool.client import AsyncResult, Client
from amqptool.control.client import ControlClient
from amqptool.errors import AmqpToolError
from amqptool.settings import BrokerSettings

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "amqptool-demo"


def _say(text: str) -> None:
    print(f"demo: {text}", file=sys.stderr, flush=True)


def _start_worker(node: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "worker",
        "-A",
        "examples.demo_tasks",
        "-n",
        node,
        "-Q",
        QUEUE,
        "-E",
        "-P",
        "threads",
        "-c",
        "4",
        "-l",
        "WARNING",
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)


def _wait_online(settings: BrokerSettings, node: str, proc: subprocess.Popen[bytes]) -> None:
    control = ControlClient(settings)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AmqpToolError(f"the demo worker exited with code {proc.returncode}")
            if control.call("ping", destination=[node], timeout=1.0):
                return
        raise AmqpToolError("the demo worker did not answer ping within 30 s")
    finally:
        control.close()


def _send_stream(
    client: Client,
    count: int,
    pause: float,
    results: list[tuple[str, AsyncResult]],
    stop: threading.Event,
) -> None:
    rng = random.Random(7)
    for i in range(count):
        args: tuple[Any, ...]
        countdown: float | None
        if stop.is_set():
            return
        pick = i % 8
        if pick in (0, 1, 2):
            name, args, countdown = "demo.add", (i, rng.randint(1, 9)), None
        elif pick == 3:
            name, args, countdown = "demo.fail", (f"demo failure #{i}",), None
        elif pick == 4:
            name, args, countdown = "demo.flaky", (2,), None
        elif pick == 5:
            name, args, countdown = "demo.add", (i, 100), 3.0
        elif pick == 6:
            name, args, countdown = "demo.slow", (round(rng.uniform(0.2, 1.5), 2),), None
        else:
            name, args, countdown = "demo.progress", (3,), None
        results.append((name, client.send_task(name, args, queue=QUEUE, countdown=countdown)))
        stop.wait(pause)


def _human(event: dict[str, Any]) -> str:
    kind = str(event.get("type", "?"))
    host = str(event.get("hostname", "?"))
    extra = ""
    if kind.startswith("task-"):
        uuid = str(event.get("uuid", ""))[:8]
        name = event.get("name")
        detail = event.get("result") or event.get("exception") or ""
        extra = f" {uuid}" + (f" {name}" if name else "") + (f" -> {detail}" if detail else "")
    return f"{host} {kind}{extra}"


def _dump_events(
    env: dict[str, str], seconds: float, seen: Counter[str], ready: threading.Event
) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "amqptool",
        "monitor",
        "--dump",
        "--json",
        "--timeout",
        str(seconds),
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )

    def pump() -> None:
        assert proc.stdout is not None
        ready.set()
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            seen[str(event.get("type"))] += 1
            print(_human(event), flush=True)

    threading.Thread(target=pump, daemon=True).start()
    return proc


def _summary(results: list[tuple[str, AsyncResult]], seen: Counter[str]) -> None:
    states: Counter[str] = Counter()
    for _name, res in results:
        with contextlib.suppress(AmqpToolError, TimeoutError):
            res.get(timeout=10, propagate=False)
        states[res.state] += 1
    print("", flush=True)
    print(
        f"summary: {len(results)} tasks sent; final states: "
        + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
    )
    print("summary: events seen: " + ", ".join(f"{k} {v}" for k, v in sorted(seen.items())))


def main() -> int:
    try:
        settings = BrokerSettings.from_url(None)
    except AmqpToolError as exc:
        print(f"error: {exc.user_line()}", file=sys.stderr)
        return int(exc.exit_code)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    node = f"demo-{os.getpid()}@{socket.gethostname()}"
    interactive = sys.stdout.isatty() and sys.stdin.isatty()
    _say(f"broker {settings.redacted()}; starting worker {node} on queue {QUEUE!r}")
    worker = _start_worker(node, env)
    stop = threading.Event()
    results: list[tuple[str, AsyncResult]] = []
    client = Client(settings)
    try:
        _wait_online(settings, node, worker)
        if interactive:
            sender = threading.Thread(
                target=_send_stream, args=(client, 400, 0.25, results, stop), daemon=True
            )
            sender.start()
            _say("opening the monitor (press q to quit, ? for keys)")
            subprocess.call(
                [sys.executable, "-m", "amqptool", "monitor", "-Q", QUEUE], cwd=ROOT, env=env
            )
            stop.set()
            return 0
        seen: Counter[str] = Counter()
        ready = threading.Event()
        dumper = _dump_events(env, 14.0, seen, ready)
        ready.wait(5)
        time.sleep(1.0)  # let the dump's event queue bind before the first task event
        _send_stream(client, 32, 0.2, results, stop)
        dumper.wait(timeout=30)
        _summary(results, seen)
        return 0
    except AmqpToolError as exc:
        print(f"error: {exc.user_line()}", file=sys.stderr)
        return int(exc.exit_code)
    finally:
        stop.set()
        client.close()
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        _say("worker stopped")


if __name__ == "__main__":
    sys.exit(main())
