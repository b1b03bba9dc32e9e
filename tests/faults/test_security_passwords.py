"""No broker password in any output, error line, traceback, --json document or file a run wrote."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import harness
from tests.brokers import free_port
from tests.passwords import SecretWitness, one_error_line


@pytest.fixture
def witness(tmp_path: Path) -> SecretWitness:
    return SecretWitness(tmp_path)


@pytest.fixture
def secret_user(broker_vhost: str, tmp_path: Path) -> Iterator[SecretWitness]:
    """A real broker user whose password is the distinctive one (main broker, session vhost)."""
    user = harness.unique("amqptool-secret")
    witness = SecretWitness(tmp_path, user=user)
    harness.rabbitmqctl("add_user", user, witness.password)
    try:
        harness.rabbitmqctl("set_permissions", "-p", broker_vhost, user, ".*", ".*", ".*")
        yield witness
    finally:
        harness.rabbitmqctl("delete_user", user, check=False)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["shell", "--help"],
        ["control", "--help"],
        ["call", "--help"],
        ["worker", "--help"],
        ["monitor", "--help"],
    ],
    ids=lambda a: " ".join(a),
)
def test_help_does_not_show_a_password_taken_from_the_environment(
    witness: SecretWitness, args: list[str]
) -> None:
    proc = witness.run(args, env={"AMQP_URL": witness.url(), "CELERY_BROKER_URL": witness.url()})
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout
    witness.assert_clean(proc)


@pytest.mark.parametrize(
    ("url_template", "names"),
    [
        ("amqp://guest:{pw}@127.0.0.1:notaport//", "port 'notaport'"),
        ("guest:{pw}@127.0.0.1:5672//", "no scheme"),
        ("amqp://guest:{pw}@127.0.0.1:5672//?hearbeat=5", "'hearbeat'"),
        ("amqp://guest:{pw}@[::1//", "malformed"),
        ("amqp://guest:{pw}@h\uff03st:5672//", "malformed"),
        ("amqp://guest:{pw}@127.0.0.1:5672//?heartbeat=inf", "heartbeat"),
    ],
)
def test_a_bad_url_is_one_line_exit_2_without_the_password(
    witness: SecretWitness, url_template: str, names: str
) -> None:
    url = url_template.format(pw=witness.password)
    proc = witness.run(["shell", "-b", url, "queue.declare", "x"])
    assert proc.returncode == 2
    assert names in one_error_line(proc)
    witness.assert_clean(proc)


@pytest.mark.parametrize(
    "args",
    [
        ["shell", "queue.declare", "x"],
        ["control", "ping"],
        ["call", "t.add", "1", "2"],
    ],
    ids=lambda a: a[0],
)
def test_an_unreachable_broker_is_one_line_exit_70_without_the_password(
    witness: SecretWitness, args: list[str]
) -> None:
    url = witness.url("127.0.0.1", free_port())
    proc = witness.run([args[0], "-b", url, *args[1:]])
    assert proc.returncode == 70
    line = one_error_line(proc)
    assert "cannot connect" in line and "guest:****@127.0.0.1" in line
    witness.assert_clean(proc)


@pytest.mark.parametrize(
    "args",
    [
        ["shell", "queue.declare", "x"],
        ["control", "ping"],
        ["call", "t.add", "1", "2"],
    ],
    ids=lambda a: a[0],
)
def test_with_debug_the_diagnostics_do_not_show_the_password(
    witness: SecretWitness, args: list[str]
) -> None:
    url = witness.url("127.0.0.1", free_port())
    proc = witness.run([args[0], "--debug", "-b", url, *args[1:]])
    assert proc.returncode == 70
    assert "cannot connect" in proc.stderr
    witness.assert_clean(proc)


def test_failover_lists_are_redacted_in_errors(witness: SecretWitness) -> None:
    urls = ";".join(witness.url("127.0.0.1", free_port()) for _ in range(2))
    proc = witness.run(["shell", "-b", urls, "queue.declare", "x"])
    assert proc.returncode == 70
    one_error_line(proc)
    witness.assert_clean(proc)


def test_a_refused_password_is_exit_71_without_the_password(
    witness: SecretWitness, broker_vhost: str
) -> None:
    proc = witness.run(["shell", "-b", witness.url(vhost=broker_vhost), "queue.declare", "x"])
    assert proc.returncode == 71
    assert "credentials" in one_error_line(proc)
    witness.assert_clean(proc)


def test_a_successful_json_run_does_not_show_the_password(
    secret_user: SecretWitness, broker_vhost: str, unique_name: str
) -> None:
    url = secret_user.url(vhost=broker_vhost)
    proc = secret_user.run(
        ["shell", "--json", "-b", url, "-f", "-"],
        input=(
            f"queue.declare {unique_name} no no no yes\n"
            f"basic.publish hello '' {unique_name}\n"
            f"basic.get {unique_name}\n"
            "queue.declare nosuchqueue-for-sure yes\n"  # a failed command in the batch
            f"queue.delete {unique_name}\n"
        ),
    )
    docs = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [d["command"] for d in docs][:3] == ["queue.declare", "basic.publish", "basic.get"]
    assert docs[0]["ok"] is True and any(d["ok"] is False for d in docs)
    assert proc.returncode != 0  # the batch had a failure
    secret_user.assert_clean(proc)


def test_a_failed_command_after_connecting_does_not_show_the_password(
    secret_user: SecretWitness, broker_vhost: str
) -> None:
    url = secret_user.url(vhost=broker_vhost)
    proc = secret_user.run(["shell", "-b", url, "queue.declare", "nosuchqueue-for-sure", "yes"])
    assert proc.returncode == 1
    assert "404" in one_error_line(proc)
    secret_user.assert_clean(proc)
