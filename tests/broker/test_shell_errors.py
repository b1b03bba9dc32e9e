"""Broker errors land on the command that caused them; the shell goes on; exit codes say so."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ROOT, rabbitmqctl, unique, wait_until
from tests.shell_support import LiveShell, live_shell, run_cli


@pytest.fixture
def sh(broker_url: str) -> Iterator[LiveShell]:
    with live_shell(broker_url) as live:
        yield live


def vhost_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_404_is_one_line_with_code_and_broker_text_and_the_shell_goes_on(
    sh: LiveShell, broker_url: str
) -> None:
    name = unique("shmissing")
    step = sh.fail(f"queue.declare {name} yes")
    assert step.err == (
        f"error: queue.declare: 404 NOT_FOUND - no queue '{name}' in vhost "
        f"'{vhost_of(broker_url)}'\n"
    )
    assert step.out == "" and step.outcome.exit_code == 1
    assert sh.ok(f"queue.declare {name}").startswith("ok.")  # a new channel, no fuss
    sh.ok(f"queue.delete {name}")


def test_406_and_403_name_the_command_and_keep_the_reply_code(sh: LiveShell) -> None:
    name = unique("shdurable")
    sh.ok(f"queue.declare {name} durable=yes")
    step = sh.fail(f"queue.declare {name}")
    assert step.err.startswith(
        f"error: queue.declare: 406 PRECONDITION_FAILED - inequivalent arg 'durable' for queue "
        f"'{name}'"
    )
    assert step.outcome.error is not None
    assert getattr(step.outcome.error, "reply_code", None) == 406
    step = sh.fail("exchange.declare amq.custom direct")
    assert step.err.startswith("error: exchange.declare: 403 ACCESS_REFUSED - exchange name")
    sh.ok(f"queue.delete {name}")


def test_ack_of_an_unknown_tag_fails_on_the_ack_not_on_the_next_command(sh: LiveShell) -> None:
    step = sh.fail("basic.ack 99")
    assert step.err == "error: basic.ack: 406 PRECONDITION_FAILED - unknown delivery tag 99\n"
    assert step.outcome.exit_code == 1
    assert sh.ok("queue.declare '' exclusive=yes").startswith("ok. queue:amq.gen-")
    assert "unknown delivery tag 7" in sh.fail("basic.reject 7").err
    assert "unknown delivery tag 8" in sh.fail("basic.nack 8").err


def test_a_channel_error_says_which_channel_state_was_lost(sh: LiveShell) -> None:
    name = unique("shheld")
    sh.ok(f"queue.declare {name}")
    sh.ok(f"basic.publish held '' {name}")
    sh.ok(f"basic.get {name}")
    sh.ok("basic.qos 5")
    step = sh.fail(f"queue.declare {name}-nope yes")
    assert step.err.endswith(
        "(the channel was closed; channel state lost: 1 unacknowledged message went back to "
        "its queue; delivery tags restart at 1, prefetch reset to 0)\n"
    )
    out = sh.ok(f"basic.get {name} yes")
    assert "'delivery_tag': 1" in out and "'redelivered': True" in out
    sh.ok(f"queue.delete {name}")


def test_a_connection_level_refusal_fails_the_command_and_the_shell_reconnects(
    sh: LiveShell,
) -> None:
    step = sh.fail(f"exchange.declare {unique('shx')} x-no-such-type")
    assert step.outcome.exit_code == 1
    assert "error: exchange.declare: 503 COMMAND_INVALID - unknown exchange type" in step.err
    assert "the broker closed the connection" in step.err
    step = sh.run("queue.declare '' exclusive=yes")
    assert step.outcome.ok
    assert "-> connection lost (closed by the broker after exchange.declare)" in step.err
    assert "-> reconnected." in step.err
    assert "guest:guest" not in step.err


def test_recover_without_requeue_is_refused_before_it_reaches_the_broker(sh: LiveShell) -> None:
    step = sh.fail("basic.recover no")
    assert step.outcome.exit_code == 2
    assert "RabbitMQ implements only requeue=yes" in step.err
    assert sh.ok("basic.recover") == "ok.\n"


def test_a_lost_connection_is_reestablished_before_the_next_command(fresh_vhost_url: str) -> None:
    vhost = vhost_of(fresh_vhost_url)
    name = unique("shlost")

    def connections() -> dict[str, str]:
        out = rabbitmqctl("list_connections", "pid", "vhost", "state")
        rows = [line.split("\t") for line in out.splitlines()]
        return {row[0]: row[2] for row in rows if len(row) == 3 and row[1] == vhost}

    with live_shell(fresh_vhost_url) as sh:
        sh.ok(f"queue.declare {name}")
        sh.ok(f"basic.publish m '' {name}")
        sh.ok(f"basic.get {name}")
        [pid] = connections()
        rabbitmqctl("close_connection", pid, "shell test")
        # the broker has sent connection.close and waits for our close-ok
        wait_until(lambda: connections().get(pid) != "running", timeout=20, message="close")
        step = sh.run(f"queue.declare {name} yes")
        assert step.outcome.ok
        assert step.out == f"ok. queue:{name} messages:1 consumers:0.\n"
        assert "-> connection lost (connection closed by the broker: 320 CONNECTION_FORCED" in (
            step.err
        )
        assert "-> reconnected. (channel state lost: 1 unacknowledged message" in step.err


# ------------------------------------------------------------------ exit codes (subprocess)


def test_one_shot_success_prints_only_the_result(cli_env: dict[str, str]) -> None:
    name = unique("shone")
    proc = run_cli("queue.declare", name, "no", "no", "no", "yes", env=cli_env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0,
        f"ok. queue:{name} messages:0 consumers:0.\n",
        "",
    )
    # one quoted argument is read as a whole line
    proc = run_cli(f"queue.declare '{name} 2' auto_delete=yes", env=cli_env)
    assert (proc.returncode, proc.stdout) == (0, f"ok. queue:{name} 2 messages:0 consumers:0.\n")


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (["queue.declare", "shell-missing-q", "yes"], 1, "404 NOT_FOUND - no queue"),
        (["basic.ack", "5"], 1, "basic.ack: 406 PRECONDITION_FAILED - unknown delivery tag 5"),
        (["basic.publish", "x", "amq.direct", "nowhere", "yes"], 1, "312 NO_ROUTE"),
        (["queue.declare"], 2, "expected 1 to 5 arguments, got 0"),
        (["basic.ack", "one"], 2, "usage: basic.ack delivery_tag multiple:no"),
        (["queue.delcare", "x"], 2, "did you mean 'queue.declare'?"),
        (["help", "nope"], 2, "help: no command 'nope'"),
    ],
)
def test_one_shot_failures_exit_with_the_contract_code(
    cli_env: dict[str, str], args: list[str], code: int, stderr: str
) -> None:
    proc = run_cli(*args, env=cli_env)
    assert proc.returncode == code
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and stderr in lines[0]


def test_unreachable_broker_is_exit_70_and_bad_credentials_71(cli_env: dict[str, str]) -> None:
    proc = run_cli("-b", "amqp://guest:sekrit@127.0.0.1:1//", "queue.declare", "q", env=cli_env)
    assert proc.returncode == 70 and "cannot connect" in proc.stderr
    assert "sekrit" not in proc.stderr
    proc = run_cli("-b", "amqp://guest:wrong@127.0.0.1:5672//", "queue.declare", "q", env=cli_env)
    assert proc.returncode == 71 and "wrong" not in proc.stderr


def test_help_works_without_a_broker(cli_env: dict[str, str]) -> None:
    proc = run_cli("-b", "amqp://guest:x@127.0.0.1:1//", "help", "basic.get", env=cli_env)
    assert proc.returncode == 0
    assert proc.stdout.startswith("basic.get queue no_ack:off\n")


def test_batch_keeps_going_and_exits_with_the_first_failure(cli_env: dict[str, str]) -> None:
    name = unique("shbatch")
    script = (
        "# comments and blank lines are fine\n\n"
        f"queue.declare {name}-missing yes\n"
        f"queue.declare {name}\n"
        f"basic.publish hello '' {name}\n"
        f"queue.delete {name}\n"
    )
    proc = run_cli(env=cli_env, stdin=script)
    assert proc.returncode == 1
    assert proc.stdout == (
        f"ok. queue:{name} messages:0 consumers:0.\nok.\nok. 1 messages deleted.\n"
    )
    assert proc.stderr.startswith("error: line 3: queue.declare: 404 NOT_FOUND")
    assert "-> connect" not in proc.stdout + proc.stderr  # no banner outside interactive mode


def test_stop_on_error_stops_and_file_mode_reads_the_file(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    name = unique("shstop")
    script = tmp_path / "cmds.amqp"
    script.write_text(f"queue.declare {name}\nbasic.ack nope\nqueue.delete {name}\n")
    proc = run_cli("--stop-on-error", "-f", str(script), env=cli_env)
    assert proc.returncode == 2
    assert proc.stdout == f"ok. queue:{name} messages:0 consumers:0.\n"
    assert proc.stderr.startswith("error: line 2: basic.ack: delivery_tag: expected an integer")
    proc = run_cli("-f", str(script), env=cli_env)
    assert proc.returncode == 2
    assert proc.stdout.endswith("ok. 0 messages deleted.\n")
    proc = run_cli("-f", str(tmp_path / "absent"), env=cli_env)
    assert proc.returncode == 2 and "cannot read" in proc.stderr


def test_batch_stops_when_the_broker_cannot_be_reached(cli_env: dict[str, str]) -> None:
    env = dict(cli_env, AMQP_URL="amqp://guest:guest@127.0.0.1:1//")
    proc = run_cli(env=env, stdin="queue.declare a\nqueue.declare b\n")
    assert proc.returncode == 70
    assert proc.stderr.count("error:") == 1


def test_json_mode_reports_errors_as_documents_on_stdout(cli_env: dict[str, str]) -> None:
    proc = run_cli("--json", env=cli_env, stdin="queue.declare shell-json-missing yes\nfoo\n")
    assert proc.returncode == 1
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    assert first["ok"] is False and first["error"]["reply_code"] == 404
    assert first["error"]["type"] == "ChannelClosedError"
    assert second["error"]["exit_code"] == 2 and second["command"] == ""
    assert second["error"]["message"] == "unknown syntax: 'foo'. how about some 'help'?"
    assert proc.stderr.count("error:") == 2


def test_camqadm_is_the_same_shell(cli_env: dict[str, str]) -> None:
    import subprocess

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from amqptool.cli import camqadm_main; sys.exit(camqadm_main())",
            "queue.purge",
            "shell-camqadm-missing",
        ],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "queue.purge: 404 NOT_FOUND" in proc.stderr
