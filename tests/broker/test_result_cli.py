"""``amqptool result ID`` in a subprocess: reads what a worker stored, by id, exit codes."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from amqptool.backends import backend_from_url, result_document
from tests.backend_support import REDIS_URL, forget_redis_keys
from tests.harness import run_amqptool


def result(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_amqptool("result", *args, env=env)


@pytest.fixture
def stored(cli_env: dict[str, str]) -> Iterator[dict[str, str]]:
    backend = backend_from_url(REDIS_URL)
    ids = {name: str(uuid.uuid4()) for name in ("ok", "bad", "pending")}
    backend.store(result_document(ids["ok"], "SUCCESS", {"a": [1, 2]}))
    backend.store(result_document(ids["bad"], "FAILURE", ValueError("bad thing"), traceback="tb"))
    backend.store(result_document(ids["pending"], "PROGRESS", {"done": 50}))
    cli_env["AMQPTOOL_RESULT_BACKEND"] = REDIS_URL
    yield ids
    forget_redis_keys(ids.values())


def test_a_stored_success_prints_the_value(cli_env: dict[str, str], stored: dict[str, str]) -> None:
    proc = result(cli_env, stored["ok"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, '{"a": [1, 2]}\n', "")


def test_json_has_id_state_and_result(cli_env: dict[str, str], stored: dict[str, str]) -> None:
    proc = result(cli_env, stored["ok"], "--json", "--backend", REDIS_URL)
    assert json.loads(proc.stdout) == {
        "id": stored["ok"],
        "state": "SUCCESS",
        "result": {"a": [1, 2]},
    }


def test_a_failed_task_is_one_error_line_and_exit_1(
    cli_env: dict[str, str], stored: dict[str, str]
) -> None:
    proc = result(cli_env, stored["bad"], "--wait")
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", "error: ValueError: bad thing\n")


def test_not_ready_is_exit_69_with_the_state(
    cli_env: dict[str, str], stored: dict[str, str]
) -> None:
    proc = result(cli_env, stored["pending"])
    assert (proc.returncode, proc.stdout) == (69, "PROGRESS\n")
    waited = result(cli_env, stored["pending"], "--wait", "--timeout", "0.5")
    assert waited.returncode == 69
    assert "did not finish within 0.5s (state: PROGRESS)" in waited.stderr


@pytest.mark.parametrize(
    ("url", "code"),
    [("bogus://x", 2), ("rpc://", 2), ("redis://127.0.0.1:1/0", 70)],
)
def test_bad_or_unreachable_backend(cli_env: dict[str, str], url: str, code: int) -> None:
    proc = result(cli_env, "some-id", "--backend", url)
    assert proc.returncode == code
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1


def test_no_backend_at_all_is_a_usage_error(cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if "RESULT_BACKEND" not in k}
    proc = result(env, "some-id")
    assert proc.returncode == 2
    assert "no result backend" in proc.stderr
