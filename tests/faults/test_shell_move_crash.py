"""queue.move killed mid-move (SIGKILL): nothing is lost, at most one message is duplicated."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys

from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests.harness import ROOT, unique, wait_until
from tests.shell_support import fill_queue

TOTAL = 2000


def test_a_move_killed_midway_loses_nothing(broker_url: str, cli_env: dict[str, str]) -> None:
    src, dst = unique("i18-crash-src"), unique("i18-crash-dst")
    settings = BrokerSettings.from_url(broker_url, environ={})
    fill_queue(broker_url, src, [f"m{i}".encode() for i in range(TOTAL)])
    fill_queue(broker_url, dst, [])
    with Connection(settings, name="i18-crash-witness") as conn:
        ch = conn.channel()
        proc = subprocess.Popen(
            [sys.executable, "-m", "amqptool", "shell", "queue.move", src, dst],
            env=cli_env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(
                lambda: ch.queue_declare(dst, passive=True).message_count >= 300,
                timeout=60,
                interval=0.01,
                message="the move to be under way",
            )
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL

        # The broker requeues what the dead shell held once it sees the socket closed.
        def settled() -> tuple[int, int] | None:
            info = ch.queue_declare(src, passive=True)
            moved = ch.queue_declare(dst, passive=True).message_count
            if info.consumer_count == 0 and info.message_count + moved >= TOTAL:
                return info.message_count, moved
            return None

        counts_now = wait_until(settled, timeout=30, interval=0.1, message="a settled count")
        assert counts_now is not None
        left, moved = counts_now
        assert moved < TOTAL  # it was killed midway
        bodies = []
        for queue in (src, dst):
            while (env := ch.get(queue, no_ack=True)) is not None:
                bodies.append(env.body)
        counts = collections.Counter(bodies)
        assert set(counts) == {f"m{i}".encode() for i in range(TOTAL)}  # 0 lost
        duplicates = sum(n - 1 for n in counts.values())
        assert duplicates <= 1
        print(f"killed after {moved} moved; {left} left; {duplicates} duplicate(s)")
        ch.queue_delete(src)
        ch.queue_delete(dst)
