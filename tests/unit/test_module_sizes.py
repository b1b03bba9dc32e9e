"""Modules stay small (one job each): none in amqptool/ or worker/ is over 500 lines."""

from __future__ import annotations

from tests.harness import ROOT

LIMIT = 500


def test_no_module_is_over_500_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for package in ("amqptool", "worker")
        for path in (ROOT / package).rglob("*.py")
    }
    assert sizes, "no modules found: the test would pass on nothing"
    over = {name: n for name, n in sizes.items() if n > LIMIT}
    assert over == {}
