"""Run amqptool with a distinctive broker password and prove it shows up nowhere.

A :class:`SecretWitness` owns a scratch directory that becomes the child's cwd, HOME, TMPDIR
and XDG directories, so every log, state or temp file the run writes lands where the witness
can read it. After the run, :meth:`SecretWitness.assert_clean` greps stdout, stderr and every
file written there (plus any extra paths, e.g. a ``--logfile`` or a state file elsewhere) for
the password in clear, percent-encoded, base64 and hex form.

    witness = SecretWitness(tmp_path)
    url = witness.url("127.0.0.1", 1)                      # amqp://guest:S3CRET-…@127.0.0.1:1//
    proc = witness.run(["shell", "-b", url, "queue.declare", "x"])
    assert proc.returncode == 70
    witness.assert_clean(proc)

Long-running children (worker, monitor) use :meth:`SecretWitness.popen`: their stdout and
stderr go to files inside the scratch directory, which ``assert_clean`` scans too.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from tests.harness import ROOT

__all__ = ["SecretWitness", "one_error_line"]


class SecretWitness:
    """A distinctive password, a scratch directory, and a grep over everything a run wrote."""

    def __init__(self, workdir: Path, *, password: str | None = None, user: str = "guest") -> None:
        self.password = password or f"S3CRET-{uuid.uuid4().hex[:10]}"
        self.user = user
        self.workdir = workdir
        for sub in ("home", "tmp", "state", "cache", "config", "data"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        self._outputs: list[Path] = []

    # ------------------------------------------------------------ what to run

    def url(self, host: str = "127.0.0.1", port: int = 5672, vhost: str = "/") -> str:
        path = "/" if vhost == "/" else quote(vhost, safe="")
        pw = quote(self.password, safe="")
        return f"amqp://{quote(self.user, safe='')}:{pw}@{host}:{port}/{path}"

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child's environment: every writable location points into the scratch dir."""
        env = dict(os.environ if base is None else base)
        env.update(
            HOME=str(self.workdir / "home"),
            TMPDIR=str(self.workdir / "tmp"),
            XDG_STATE_HOME=str(self.workdir / "state"),
            XDG_CACHE_HOME=str(self.workdir / "cache"),
            XDG_CONFIG_HOME=str(self.workdir / "config"),
            XDG_DATA_HOME=str(self.workdir / "data"),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
        )
        return env

    def command(self, args: Sequence[str]) -> list[str]:
        return [sys.executable, "-m", "amqptool", *args]

    def run(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """``amqptool ARGS`` to completion, in the scratch directory."""
        return subprocess.run(
            self.command(args),
            cwd=self.workdir,
            env=self.env(env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, name: str = "child"
    ) -> subprocess.Popen[bytes]:
        """``amqptool ARGS`` in the background; stdout/stderr go to files that get scanned.

        The caller stops the process (by its pid) before calling :meth:`assert_clean`.
        """
        out = self.workdir / f"{name}.stdout"
        err = self.workdir / f"{name}.stderr"
        self._outputs += [out, err]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            return subprocess.Popen(
                self.command(args),
                cwd=self.workdir,
                env=self.env(env),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )

    # ------------------------------------------------------------ the grep

    def needles(self) -> list[bytes]:
        pw = self.password.encode()
        return [
            pw,
            quote(self.password, safe="").encode(),
            base64.b64encode(pw),
            base64.b64encode(b"\0" + self.user.encode() + b"\0" + pw),  # AMQP PLAIN response
            pw.hex().encode(),
        ]

    def files(self, extra: Iterable[Path] = ()) -> list[Path]:
        found = [p for p in self.workdir.rglob("*") if p.is_file()]
        for path in extra:
            if path.is_dir():
                found += [p for p in path.rglob("*") if p.is_file()]
            elif path.is_file():
                found.append(path)
        return found

    def leaks(
        self,
        proc: subprocess.CompletedProcess[str] | None = None,
        *,
        texts: Iterable[str] = (),
        extra_paths: Iterable[Path] = (),
    ) -> list[str]:
        """Where the password was found (empty when nowhere)."""
        sources: list[tuple[str, bytes]] = []
        if proc is not None:
            sources += [("stdout", proc.stdout.encode()), ("stderr", proc.stderr.encode())]
        sources += [(f"text[{i}]", t.encode()) for i, t in enumerate(texts)]
        for path in self.files(extra_paths):
            try:
                sources.append((str(path), path.read_bytes()))
            except OSError:
                continue
        needles = self.needles()
        return [
            f"{where}: {needle.decode(errors='replace')}"
            for where, data in sources
            for needle in needles
            if needle in data
        ]

    def assert_clean(
        self,
        proc: subprocess.CompletedProcess[str] | None = None,
        *,
        texts: Iterable[str] = (),
        extra_paths: Iterable[Path] = (),
    ) -> int:
        """Fail if the password is anywhere; returns how many files were scanned."""
        found = self.leaks(proc, texts=texts, extra_paths=extra_paths)
        assert not found, "the broker password leaked:\n" + "\n".join(found)
        return len(self.files(extra_paths))


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """stderr is exactly one ``error: ...`` line and no traceback; returns that line."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]
