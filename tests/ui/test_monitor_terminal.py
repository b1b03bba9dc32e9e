"""The live monitor in a real terminal: ``amqptool monitor`` on a pty, its output read by the
``pyte`` terminal emulator, fed hostile events through the real broker and pasted text.

What reaches the terminal is checked byte for byte: no escape sequence carried by an event
(window title, screen clear, OSC 8 link, one-byte CSI) is ever written, and the screen shows
the escaped text instead. A bracketed paste and a fast burst of keys beginning with ``/`` land in
the filter and never run the shortcuts (``q`` quits).
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyte

from amqptool.codec.events import encode_event, make_event
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests.harness import wait_until

COLS, ROWS = 140, 40
PAYLOADS = (
    b"\x1b]0;pwned\x07",  # window title
    b"\x1b]8;;http://evil.example/\x1b\\",  # OSC 8 link
    b"\x1b[2J",  # clear screen
    b"\xc2\x9b31m",  # one-byte CSI (U+009B in UTF-8)
)


class Terminal:
    """A pty running the monitor; output goes to a pyte screen and a raw byte log."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        env = {**env, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "amqptool", "monitor", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.raw.extend(data)
                self.stream.feed(data)

    def text(self) -> str:
        with self.lock:
            return "\n".join(self.screen.display)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def until(self, pred: Callable[[str], bool], what: str, timeout: float = 30.0) -> None:
        wait_until(lambda: pred(self.text()), timeout, message=f"{what}:\n{self.text()}")

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        code = self.proc.wait(20)
        os.close(self.master)
        self.reader.join(5)
        return code


@contextmanager
def monitor_in_terminal(env: dict[str, str], *args: str) -> Iterator[Terminal]:
    term = Terminal(env, *args)
    try:
        yield term
    finally:
        term.close()


def publish_hostile_events(url: str, marker: str) -> None:
    hostile = "".join(p.decode() for p in PAYLOADS)
    host = f"evil{hostile}@{marker}"
    task_id = f"{marker}-{uuid.uuid4().hex[:6]}"
    fields: dict[str, Any] = {"sw_ident": hostile, "sw_ver": hostile, "sw_sys": hostile}
    events = [
        make_event("worker-heartbeat", hostname=host, clock=1, freq=2.0, active=0, **fields),
        make_event(
            "task-received",
            hostname=host,
            clock=2,
            uuid=task_id,
            name=f"{marker}{hostile}.task",
            args=f"({hostile!s},)",
            kwargs=hostile,
        ),
        make_event(
            "task-failed",
            hostname=host,
            clock=3,
            uuid=task_id,
            exception=f"Boom{hostile}",
            traceback=f"Traceback{hostile}\n  line",
        ),
    ]
    with Connection(BrokerSettings.from_url(url, environ={})) as conn:
        channel = conn.channel()
        for event in events:
            channel.publish(encode_event(event))


def test_hostile_event_strings_never_reach_the_terminal_raw(
    cli_env: dict[str, str], broker_url: str
) -> None:
    marker = f"mk{uuid.uuid4().hex[:6]}"
    with monitor_in_terminal(cli_env) as term:
        term.until(lambda t: "● connected" in t, "the monitor to connect")
        deadline = time.monotonic() + 30
        # the event queue exists once connected; publish until the monitor shows the task
        while marker not in term.text():
            assert time.monotonic() < deadline, term.text()
            publish_hostile_events(broker_url, marker)
            time.sleep(0.5)
        term.until(lambda t: "\\x1b]0;pwned" in t, "the escaped payload on screen")
        time.sleep(0.5)  # a few more redraws with the hostile rows on screen
        with term.lock:
            raw = bytes(term.raw)
            title = term.screen.title
    for payload in PAYLOADS:
        assert payload not in raw, payload
    assert b"pwned\x07" not in raw and "pwned" not in title


def test_a_paste_and_fast_keys_after_slash_land_in_the_filter_in_a_real_terminal(
    cli_env: dict[str, str],
) -> None:
    with monitor_in_terminal(cli_env) as term:
        term.until(lambda t: "● connected" in t, "the monitor to connect")
        term.write(b"\x1b[200~/quick\x1b[201~")  # a bracketed paste
        term.until(lambda t: "quick" in t and "match 'quick'" in t, "the pasted filter")
        assert term.proc.poll() is None
        term.write(b"\x1b")  # Escape: clear the filter
        term.until(lambda t: "match 'quick'" not in t, "the filter cleared")
        term.write(b"/quick")  # as fast as one write: no paste brackets
        term.until(lambda t: "match 'quick'" in t, "the typed filter")
        assert term.proc.poll() is None
        term.write(b"\r")  # back to the table, then q quits with 0
        time.sleep(0.3)
        term.write(b"q")
        assert term.proc.wait(20) == 0


def test_a_refused_login_is_shown_in_the_header_and_quitting_exits_71(
    cli_env: dict[str, str], broker_url: str
) -> None:
    wrong = broker_url.replace("guest:guest@", "guest:not-the-password@")
    assert wrong != broker_url
    with monitor_in_terminal({**cli_env, "AMQP_URL": wrong}) as term:
        term.until(lambda t: "refused" in t.lower() and "✖" in t, "the refused login")
        assert "not-the-password" not in term.text()
        term.write(b"q")
        assert term.proc.wait(20) == 71
        with term.lock:
            raw = bytes(term.raw)
    assert b"not-the-password" not in raw
    assert b"error: " in raw  # the same reason on stderr after the screen is gone
