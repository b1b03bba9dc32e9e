"""The seed walkthrough as a batch file and on stdin, in a real process, with camqadm's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import unique
from tests.shell_support import run_cli, walkthrough_output


def walkthrough(ex: str, q: str) -> str:
    return "\n".join(
        [
            "# camqadm's walkthrough (Celery 1.0 docs)",
            f"exchange.declare {ex} direct",
            f"queue.declare {q}",
            f"queue.bind {q} {ex} testkey",
            f'basic.publish "This is a message!" {ex} testkey',
            f"basic.get {q}",
            "basic.ack 1",
            f"queue.delete {q}",
            f"exchange.delete {ex}",
            "",
        ]
    )


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_the_seed_walkthrough_as_a_batch(cli_env: dict[str, str], tmp_path: Path, how: str) -> None:
    ex, q = unique("testexchange"), unique("testqueue")
    script = walkthrough(ex, q)
    if how == "file":
        path = tmp_path / "walkthrough.amqp"
        path.write_text(script)
        proc = run_cli("-f", str(path), env=cli_env)
    else:
        proc = run_cli(env=cli_env, stdin=script)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == walkthrough_output(ex, q)


def test_exit_ends_a_batch_early(cli_env: dict[str, str]) -> None:
    proc = run_cli(env=cli_env, stdin="help exit\nexit\nqueue.declare never-run yes\n")
    assert proc.returncode == 0
    assert proc.stdout.startswith("exit\n") and "never-run" not in proc.stdout + proc.stderr
