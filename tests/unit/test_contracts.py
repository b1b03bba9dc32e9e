"""The import contracts in pyproject.toml (import-linter) hold: layers, toolkits, no cycles.

``make lint`` runs the same check; this test keeps it in every ``pytest`` run too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT


def test_every_import_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout
