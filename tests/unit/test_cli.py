"""The command-line skeleton: help, version, one-line errors with the contracted exit codes."""

from __future__ import annotations

import subprocess

from tests.harness import modules_loaded_by, run_amqptool, top_level


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_amqptool(*args, env=env, timeout=60)


def test_help_lists_every_subcommand_and_the_exit_codes() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for name in ("shell", "control", "monitor", "worker", "call"):
        assert name in proc.stdout
    assert "69 nobody answered" in proc.stdout


def test_version_and_help_do_not_import_the_ui_toolkits() -> None:
    code = (
        "from amqptool.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
    )
    loaded = top_level(modules_loaded_by(code))
    assert not {"textual", "prompt_toolkit", "pika", "celery"} & loaded


def test_bad_port_is_one_line_naming_the_port_with_exit_2() -> None:
    proc = run("shell", "-b", "amqp://x:y@host:notaport//", "queue.declare", "q")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "port 'notaport'" in lines[0]
    assert "Traceback" not in proc.stderr and "y@" not in proc.stderr + proc.stdout


def test_broker_option_is_accepted_before_the_subcommand_too() -> None:
    proc = run("-b", "amqp://x:secret@host:99999//", "shell", "queue.declare", "q")
    assert proc.returncode == 2 and "port 99999" in proc.stderr
    assert "secret" not in proc.stderr


def test_unknown_subcommand_is_a_usage_error() -> None:
    proc = run("frobnicate")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr and "Traceback" not in proc.stderr
