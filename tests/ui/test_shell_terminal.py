"""The interactive shell in a pseudo-terminal: Ctrl-C and the command timeout on a half-open
connection (through a proxy the test freezes), heartbeats at an idle prompt, bracketed paste,
questions before purge and delete, progress of a long move."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pexpect
import pytest

from tests.harness import ROOT, unique
from tests.netfakes import TcpProxy
from tests.shell_support import fill_queue

PASTE_START, PASTE_END, CTRL_C, CTRL_D = "\x1b[200~", "\x1b[201~", "\x03", "\x04"


class Term:
    """``amqptool shell`` in a pty; ``prompt(n)`` waits for the ``n>`` prompt."""

    def __init__(self, url: str, state: Path, *extra: str) -> None:
        env = dict(os.environ, XDG_STATE_HOME=str(state), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
        env["PYTHONPATH"] = str(ROOT)
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "amqptool", "shell", "-b", url, *extra],
            env=env,
            cwd=str(ROOT),
            encoding="utf-8",
            timeout=30,
            dimensions=(40, 250),
        )

    def prompt(self, number: int, timeout: float = 30) -> None:
        self.child.expect(f"{number}>", timeout=timeout)

    def line(self, text: str) -> None:
        self.child.send(text + "\r")

    def expect(self, text: str, timeout: float = 30) -> None:
        self.child.expect_exact(text, timeout=timeout)

    def close(self) -> None:
        if self.child.isalive():
            self.child.send(CTRL_D)
            self.child.expect(pexpect.EOF, timeout=15)
        self.child.close(force=True)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy(5672) as p:
        yield p


@contextmanager
def session(url: str, tmp_path: Path, *extra: str, ask: bool = False) -> Iterator[Term]:
    """A started shell (at its first prompt), closed afterwards; ``--yes`` unless ``ask``."""
    term = Term(url, tmp_path, *extra, *([] if ask else ["--yes"]))
    try:
        term.prompt(1)
        yield term
    finally:
        term.close()


def test_ctrl_c_aborts_a_command_stuck_on_a_half_open_connection(
    broker_url: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    q = unique("i18-stuck")
    with session(proxy.url(broker_url), tmp_path) as term:
        term.line(f"queue.declare {q}")
        term.expect(f"ok. queue:{q} messages:0")
        term.prompt(2)
        proxy.freeze()
        term.line(f"queue.declare {q}")
        assert proxy.received_while_frozen.wait(15)  # the request is on its way, no answer
        pressed = time.monotonic()
        term.child.send(CTRL_C)
        term.expect("error: interrupted (the connection will be reopened)", timeout=2)
        term.prompt(3, timeout=2)
        print(f"Ctrl-C to prompt: {time.monotonic() - pressed:.3f} s")
        proxy.thaw()
        term.line(f"queue.delete {q}")
        term.expect("-> connection lost (interrupted); reconnecting")
        term.expect("-> reconnected.")
        term.expect("ok. 0 messages deleted.")
        term.prompt(4)


def test_the_command_timeout_fires_on_a_half_open_connection(
    broker_url: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    q = unique("i18-timeout")
    with session(proxy.url(broker_url), tmp_path, "--timeout", "2") as term:
        proxy.freeze()
        term.line(f"queue.declare {q}")
        term.expect("error: queue.declare: the broker did not answer within 2 s")
        term.prompt(2)
        proxy.thaw()
        term.line(f"queue.delete {q}")
        term.expect("-> connection lost (no answer within 2 s); reconnecting")
        term.expect("ok.")
        term.prompt(3)


def test_a_dead_peer_is_noticed_at_the_idle_prompt_through_heartbeats(
    broker_url: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    q = unique("i18-idle")
    with session(proxy.url(broker_url) + "?heartbeat=2", tmp_path) as term:
        proxy.freeze()
        # The shell, idle at its prompt, finds the silent peer by itself and hangs up.
        assert proxy.client_hung_up.wait(60)
        proxy.thaw()
        term.line(f"queue.declare {q} auto_delete=yes")
        term.expect("-> connection lost (connection to the broker lost: No activity or too many")
        term.expect("-> reconnected.")
        term.expect(f"ok. queue:{q}")
        term.prompt(2)


def test_a_bracketed_paste_of_two_lines_runs_two_commands(broker_url: str, tmp_path: Path) -> None:
    a, b = unique("i18-paste-a"), unique("i18-paste-b")
    with session(broker_url, tmp_path) as term:
        term.child.send(f"{PASTE_START}queue.declare {a}\rqueue.declare {b}\r{PASTE_END}\r")
        term.expect(f"ok. queue:{a} messages:0 consumers:0.")
        term.expect(f"ok. queue:{b} messages:0 consumers:0.")
        term.prompt(3)
        term.line(f"queue.delete {a}")
        term.prompt(4)
        term.line(f"queue.delete {b}")
        term.prompt(5)


def test_purge_and_delete_ask_first_unless_yes(broker_url: str, tmp_path: Path) -> None:
    q = unique("i18-ask")
    with session(broker_url, tmp_path, ask=True) as term:
        term.line(f"queue.declare {q}")
        term.prompt(2)
        term.line(f"basic.publish one '' {q}")
        term.prompt(3)
        term.line(f"queue.purge {q}")
        term.expect(f"delete every ready message of queue '{q}'? [y/N]")
        term.line("n")
        term.expect("not done.")
        term.prompt(4)
        term.line(f"queue.purge {q}")
        term.expect("[y/N]")
        term.line("y")
        term.expect("ok. 1 messages deleted.")
        term.prompt(5)
    with session(broker_url, tmp_path) as term:
        term.line(f"queue.delete {q}")
        term.expect("ok. 0 messages deleted.")
        term.prompt(2)


def test_a_long_move_shows_progress_and_a_final_count(broker_url: str, tmp_path: Path) -> None:
    src, dst = unique("i18-prog-src"), unique("i18-prog-dst")
    fill_queue(broker_url, src, [f"p{i}".encode() for i in range(1000)])
    fill_queue(broker_url, dst, [])
    with session(broker_url, tmp_path) as term:
        term.line(f"queue.move {src} {dst}")
        term.expect("moved 100/1000")
        term.expect(f"ok. 1000 messages moved from {src} to {dst}.")
        term.prompt(2)
        term.line(f"queue.delete {src}")
        term.prompt(3)
        term.line(f"queue.delete {dst}")
        term.expect("ok. 1000 messages deleted.")
