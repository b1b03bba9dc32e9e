"""One-shot and batch modes start light: no prompt_toolkit, no textual, no codec for a declare."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import ROOT


def test_one_shot_mode_does_not_load_the_interactive_or_ui_toolkits() -> None:
    code = (
        "import sys, amqptool.cli, amqptool.shell.command, amqptool.shell.modes\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    loaded = set(proc.stdout.split())
    assert not {"prompt_toolkit", "textual"} & loaded
    assert "amqptool.codec.tasks" not in loaded  # only basic.get/consume need the task codec


def test_the_shell_core_is_pure() -> None:
    code = (
        "import sys\n"
        "import amqptool.shell.parser, amqptool.shell.completion, amqptool.shell.commands\n"
        "import amqptool.shell.render, amqptool.shell.messages, amqptool.shell.helptext\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert not {"pika", "prompt_toolkit", "textual"} & set(proc.stdout.split())
