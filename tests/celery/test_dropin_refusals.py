"""``-A`` refusals: one line, exit 2, before any connection (nothing half-started)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.dropin_support import clean_env
from tests.harness import wait_until

# No broker listens there: a worker that got as far as connecting would say so, not refuse.
NOWHERE = "amqp://guest:guest@127.0.0.1:1//"


def _worker(tmp_path: Path, *argv: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        f"{prelude}"
        "from amqptool.cli import main\n"
        f"sys.exit(main(['worker', '-b', {NOWHERE!r}, *{list(argv)!r}]))\n"
    )
    return _python(tmp_path, code)


def _python(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=clean_env(tmp_path),
        check=False,
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "ready" not in proc.stderr
    return lines[0]


def test_a_module_without_tasks_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notasks.py").write_text("VALUE = 1\n")
    line = _one_error_line(_worker(tmp_path, "-A", "notasks"))
    assert "no tasks to run" in line and "notasks" in line


def test_a_celery_app_without_celery_installed_is_refused(tmp_path: Path) -> None:
    # importing celery fails in that process, as it would where Celery is not installed
    proc = _worker(tmp_path, "-A", "proj", prelude="sys.modules['celery'] = None\n")
    line = _one_error_line(proc)
    assert "needs Celery, which is not installed" in line
    assert "amqptool[celery]" in proc.stderr


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("proj.celery:nothing", "has no 'nothing'"),
        ("proj.tasks:add", "is not a Celery app"),
        ("no_such_module_here", "cannot import task module"),
    ],
)
def test_bad_targets(tmp_path: Path, target: str, expected: str) -> None:
    assert expected in _one_error_line(_worker(tmp_path, "-A", target))


def test_module_colon_attribute_and_our_own_modules_mix(tmp_path: Path) -> None:
    """``proj.celery:app`` loads the app's tasks; ours join them (the banner lists both), and
    the worker goes on to connect (it retries: nobody listens on port 1)."""
    log = tmp_path / "worker.log"
    argv = ["worker", "-b", NOWHERE, "-A", "proj.celery:app", "-A", "tests.peers.amqptool_tasks"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "amqptool", *argv], stderr=out, env=clean_env(), cwd=tmp_path
        )
    try:

        def connecting() -> str:
            text = log.read_text()
            return text if "cannot connect" in text else ""

        text = wait_until(connecting, 30, message="the worker to try connecting")
    finally:
        proc.terminate()
        proc.wait(30)
    assert "proj.tasks.add" in text and "peer.add" in text, text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "CELERYD_CONCURENCY = 3\n",
            "error: config module dropin_badconf: unknown setting CELERYD_CONCURENCY "
            "(did you mean CELERYD_CONCURRENCY?)",
        ),
        (
            "import no_such_module_at_all\n",
            "error: --config dropin_badconf: the config module does not import: "
            "ModuleNotFoundError: No module named 'no_such_module_at_all'",
        ),
    ],
)
def test_a_bad_config_module_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "dropin_badconf.py").write_text(text)
    proc = _worker(tmp_path, "-A", "proj", "--config", "dropin_badconf")
    assert _one_error_line(proc) == expected


def test_our_own_task_modules_need_no_celery(tmp_path: Path) -> None:
    """With celery, kombu and billiard unimportable, a worker for our task modules is built
    (tasks loaded, nothing refused) and the CLI parses: Celery is an optional extra."""
    code = (
        "import sys\n"
        "for name in ('celery', 'kombu', 'billiard'):\n"
        "    sys.modules[name] = None\n"
        "from worker.daemon import Worker\n"
        f"w = Worker('tests.peers.amqptool_tasks', settings={NOWHERE!r}, pool='threads')\n"
        "print(sorted(n for n in w.tasks if n.startswith('peer.'))[:2])\n"
        "print(w.celery_app)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('celery.', 'kombu.'))))\n"
    )
    proc = _python(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["['peer.add', 'peer.echo']", "None", "[]"]
