"""Make sure Debian's ``chromium`` is installed (the browser test of ``monitor --serve``).

Idempotent: does nothing when ``/usr/bin/chromium`` is there. Otherwise, as root, installs the
Debian package with apt-get (never a browser download from anywhere else); as another user it
says what to run and exits 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

BROWSER = "/usr/bin/chromium"
#: The flags every headless run here uses (no GPU, no network of its own, no first-run UI).
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def main() -> int:
    if os.path.exists(BROWSER):
        return 0
    if os.geteuid() != 0:
        print(f"ensure_chromium: {BROWSER} is missing; run: apt-get install -y chromium")
        return 1
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = shutil.which("apt-get") or "apt-get"
    install = [apt, "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run([apt, "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    return 0 if os.path.exists(BROWSER) else 1


if __name__ == "__main__":
    sys.exit(main())
