"""The interactive shell through prompt_toolkit's pipe input, against the real broker."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.output.base import Output
from prompt_toolkit.output.plain_text import PlainTextOutput

from amqptool.settings import BrokerSettings
from amqptool.shell.repl import history_path, run_interactive
from tests.harness import unique
from tests.shell_support import new_shell, walkthrough_output

ENTER, CTRL_C, CTRL_D, UP = "\r", "\x03", "\x04", "\x1b[A"


def interact(
    url: str, keys: str, state: Path, *, output: Output | None = None
) -> tuple[int, str, str]:
    """Run one interactive session fed ``keys``; (exit code, stdout, stderr)."""
    live = new_shell(url)
    broker = BrokerSettings.from_url(url, environ={}).primary.redacted()
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        code = run_interactive(
            live.shell,
            broker=broker,
            input=pipe,
            output=output or DummyOutput(),
            environ={"XDG_STATE_HOME": str(state)},
            ask=False,  # as with --yes: these sessions replay camqadm, which never asked
        )
    return code, live.stdout.getvalue(), live.stderr.getvalue()


def test_the_seed_walkthrough_as_one_interactive_session(broker_url: str, tmp_path: Path) -> None:
    ex, q = unique("testexchange"), unique("testqueue")
    lines = [
        f"exchange.declare {ex} direct",
        f"queue.declare {q}",
        f"queue.bind {q} {ex} testkey",
        f'basic.publish "This is a message!" {ex} testkey',
        f"basic.get {q}",
        "basic.ack 1",
        f"queue.delete {q}",
        f"exchange.delete {ex}",
    ]
    code, out, err = interact(broker_url, ENTER.join(lines) + ENTER + CTRL_D, tmp_path)
    assert code == 0 and err == ""
    vhost = broker_url.rsplit("/", 1)[1]
    assert out == (
        f"-> connecting to amqp://guest:****@127.0.0.1:5672/{vhost}.\n-> connected.\n"
    ) + walkthrough_output(ex, q)


def test_prompts_are_numbered_by_commands_run(broker_url: str, tmp_path: Path) -> None:
    screen = io.StringIO()
    keys = "help exit" + ENTER + ENTER + "# a comment" + ENTER + "queue.purge nope" + ENTER
    code, _out, err = interact(
        broker_url, keys + "exit" + ENTER, tmp_path, output=PlainTextOutput(screen)
    )
    assert code == 0
    prompts = [p for p in ("1> ", "2> ", "3> ", "4> ") if p in screen.getvalue()]
    assert prompts == ["1> ", "2> ", "3> "]  # blank lines and comments do not count
    assert "queue.purge: 404 NOT_FOUND" in err


def test_ctrl_c_cancels_the_line_and_ctrl_d_leaves(broker_url: str, tmp_path: Path) -> None:
    name = unique("shcancel")
    keys = f"queue.declare {name}-cancelled" + CTRL_C + f"queue.declare {name}" + ENTER + CTRL_D
    code, out, _err = interact(broker_url, keys, tmp_path)
    assert code == 0
    assert f"{name}-cancelled" not in out
    assert out.endswith(f"ok. queue:{name} messages:0 consumers:0.\n")
    interact(broker_url, f"queue.delete {name}" + ENTER + "exit" + ENTER, tmp_path)


def test_errors_are_reported_and_the_session_goes_on(broker_url: str, tmp_path: Path) -> None:
    keys = ENTER.join(["queue.delcare x", "basic.ack 42", "basic.get", "queue.declare ''"])
    code, out, err = interact(broker_url, keys + ENTER + CTRL_D, tmp_path)
    assert code == 0
    assert err.splitlines() == [
        "error: unknown syntax: 'queue.delcare x'. how about some 'help'? "
        "did you mean 'queue.declare'?",
        "error: basic.ack: 406 PRECONDITION_FAILED - unknown delivery tag 42",
        "error: basic.get: expected 1 to 2 arguments, got 0 (queue is missing) "
        "(usage: basic.get queue no_ack:off)",
    ]
    assert out.splitlines()[-1].startswith("ok. queue:amq.gen-")


def test_history_is_kept_in_the_xdg_state_dir_across_sessions(
    broker_url: str, tmp_path: Path
) -> None:
    name = unique("shhistory")
    interact(broker_url, f"queue.declare {name}" + ENTER + CTRL_D, tmp_path)
    path = tmp_path / "amqptool" / "shell_history"
    assert path == history_path({"XDG_STATE_HOME": str(tmp_path)})
    assert f"+queue.declare {name}" in path.read_text()
    # a new session: Up recalls the last command of the previous one
    code, out, _err = interact(broker_url, UP + ENTER + CTRL_D, tmp_path)
    assert code == 0 and out.endswith(f"ok. queue:{name} messages:0 consumers:0.\n")
    interact(broker_url, f"queue.delete {name}" + ENTER + CTRL_D, tmp_path)


def test_history_defaults_to_the_local_state_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    assert history_path({}) == Path("/home/someone/.local/state/amqptool/shell_history")


def test_an_unreachable_broker_ends_the_session_with_exit_70(tmp_path: Path) -> None:
    code, out, err = interact("amqp://guest:guest@127.0.0.1:1/", "exit" + ENTER, tmp_path)
    assert code == 70
    assert out == "-> connecting to amqp://guest:****@127.0.0.1:1//.\n"
    assert err.startswith("error: amqp://guest:****@127.0.0.1:1//: cannot connect")
