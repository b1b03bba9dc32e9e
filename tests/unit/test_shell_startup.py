"""One-shot and batch modes start light: no prompt_toolkit, no textual, no codec for a declare."""

from __future__ import annotations

from tests.harness import modules_loaded_by


def test_one_shot_mode_does_not_load_the_interactive_or_ui_toolkits() -> None:
    loaded = modules_loaded_by("import amqptool.cli, amqptool.shell.cli, amqptool.shell.modes")
    assert not {"prompt_toolkit", "textual"} & loaded
    assert "amqptool.codec.tasks" not in loaded  # only basic.get/consume need the task codec
