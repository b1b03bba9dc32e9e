"""Issue 18's command-line defects against the real broker: BOM, EPIPE, closed stdout,
a non-AMQP port, a URL without a password, TLS options on amqp://, the failover banner, and
the per-command timeout of a batch on a half-open connection."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from amqptool.settings import BrokerSettings
from amqptool.shell.repl import run_interactive
from tests.brokers import free_port
from tests.harness import ROOT
from tests.netfakes import TcpProxy, http_answering, silent_port
from tests.shell_support import live_shell, new_shell, run_cli


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    return lines[0]


def queue_depth(url: str, queue: str) -> int:
    with live_shell(url) as sh:
        out = sh.ok(f"queue.declare {queue} passive=yes")
    return int(out.split("messages:")[1].split()[0])


def test_a_batch_file_with_a_byte_order_mark_runs(
    cli_env: dict[str, str], tmp_path: Path, unique_name: str
) -> None:
    batch = tmp_path / "bom.txt"
    batch.write_bytes(
        f"queue.declare {unique_name}\nqueue.delete {unique_name}\n".encode("utf-8-sig")
    )
    proc = run_cli("-f", str(batch), env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"ok. queue:{unique_name} messages:0")


def test_a_closed_pipe_stops_the_batch_quietly_with_141(
    cli_env: dict[str, str], broker_url: str, tmp_path: Path, unique_name: str
) -> None:
    batch = tmp_path / "many.txt"
    batch.write_text(
        f"queue.declare {unique_name}\n"
        + "".join(f"basic.publish m{i} '' {unique_name}\n" for i in range(500))
    )
    script = (
        f"{sys.executable} -m amqptool shell -f {batch} | head -1; "
        'echo "status=${PIPESTATUS[0]}" >&2'
    )
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=cli_env, cwd=ROOT, timeout=120
    )
    assert proc.stdout == f"ok. queue:{unique_name} messages:0 consumers:0.\n"
    assert proc.stderr.strip() == "status=141"
    published = queue_depth(broker_url, unique_name)
    assert published < 500  # it stopped when the reader went away
    with live_shell(broker_url) as sh:
        sh.ok(f"queue.delete {unique_name}")


def test_help_with_stdout_closed_is_one_error_line(cli_env: dict[str, str]) -> None:
    script = f"{sys.executable} -m amqptool shell help >&-"
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=cli_env, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 1
    assert one_line(proc.stderr) == "error: cannot write the output: standard output is closed"


def test_a_silent_port_is_a_handshake_timeout_exit_70(cli_env: dict[str, str]) -> None:
    with silent_port() as port:
        url = f"amqp://guest:guest@127.0.0.1:{port}//?connection_timeout=1.5"
        proc = run_cli("-b", url, "queue.declare", "x", env=cli_env)
    assert proc.returncode == 70
    line = one_line(proc.stderr)
    assert line.startswith(f"error: handshake timed out: 127.0.0.1:{port} does not speak AMQP")


def test_an_http_port_is_named_as_not_amqp_exit_70(cli_env: dict[str, str]) -> None:
    with http_answering(400) as port:
        url = f"amqp://guest:guest@127.0.0.1:{port}//?connection_timeout=1.5"
        proc = run_cli("-b", url, "queue.declare", "x", env=cli_env)
    assert proc.returncode == 70
    # An HTTP server waits for a request line the AMQP header never ends: a handshake timeout.
    line = one_line(proc.stderr)
    assert f"127.0.0.1:{port}" in line and "does not speak AMQP" in line


def test_a_url_without_a_password_connects_like_celery(
    cli_env: dict[str, str], broker_url: str, unique_name: str
) -> None:
    url = broker_url.replace("guest:guest@", "guest@", 1)
    proc = run_cli(
        "-b",
        url,
        "-f",
        "-",
        env=cli_env,
        stdin=f"queue.declare {unique_name}\nqueue.delete {unique_name}\n",
    )
    assert proc.returncode == 0, proc.stderr


def test_ssl_ca_with_an_amqp_url_is_a_usage_error(cli_env: dict[str, str], tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    proc = run_cli(
        "--ssl-ca", str(ca), "-b", "amqp://guest:guest@127.0.0.1:5672//", "help", env=cli_env
    )
    assert proc.returncode == 2
    assert "--ssl-ca needs an amqps:// URL" in one_line(proc.stderr)


def test_the_failover_banner_names_the_url_that_answered(broker_url: str, tmp_path: Path) -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    url = f"{dead};{broker_url}"
    live = new_shell(url)
    broker = BrokerSettings.from_url(url, environ={}).redacted()
    with create_pipe_input() as pipe:
        pipe.send_text("\x04")
        code = run_interactive(
            live.shell,
            broker=broker,
            input=pipe,
            output=DummyOutput(),
            environ={"XDG_STATE_HOME": str(tmp_path)},
        )
    assert code == 0
    good = BrokerSettings.from_url(broker_url, environ={}).primary.redacted()
    assert live.stdout.getvalue().splitlines()[1] == f"-> connected to {good}."
    assert isinstance(live.stdout, io.StringIO)


def test_a_batch_on_a_half_open_connection_fails_by_its_timeout_exit_69(
    broker_url: str, cli_env: dict[str, str], unique_name: str
) -> None:
    with TcpProxy(5672) as proxy:
        args = ["shell", "--timeout", "2", "-b", proxy.url(broker_url), "-f", "-"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "amqptool", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env,
            cwd=ROOT,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"queue.declare {unique_name} auto_delete=yes\n")
        proc.stdin.flush()
        assert proc.stdout.readline().startswith(f"ok. queue:{unique_name}")
        proxy.freeze()
        proc.stdin.write(f"queue.declare {unique_name} passive=yes\n")
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        finally:
            proc.kill()
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 69
    assert one_line(err).startswith(
        "error: line 2: queue.declare: the broker did not answer within 2 s"
    )
