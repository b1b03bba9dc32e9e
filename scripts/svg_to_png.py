"""Turn a Textual snapshot SVG into a PNG for the README, with Debian's headless chromium.

python scripts/svg_to_png.py tests/ui/__snapshots__/.../x.svg docs/x.png
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.ensure_chromium import BROWSER, HEADLESS_FLAGS


def main(svg: str, png: str) -> int:
    view = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', Path(svg).read_text())
    if view is None:
        print(f"{svg}: no viewBox", file=sys.stderr)
        return 2
    width, height = (round(float(v)) for v in view.groups())
    with tempfile.TemporaryDirectory(prefix="amqptool-png-") as profile:
        command = [
            BROWSER,
            *HEADLESS_FLAGS,
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={Path(png).resolve()}",
            Path(svg).resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    return 0 if done.returncode == 0 and Path(png).exists() else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
