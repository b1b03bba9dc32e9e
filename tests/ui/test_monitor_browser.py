"""``amqptool monitor --serve``: the live view in headless Chromium (Debian's ``chromium``,
installed by ``make test`` through ``scripts/ensure_chromium.py``), driven over the DevTools
protocol with a small websocket client.

The page's terminal draws on a canvas, so what it shows is read from what it received: every
websocket frame the page got from the server is recorded through the protocol's Network events
(the terminal output, escape codes and all). The test waits for the header text, sends a key
to the terminal and checks the screen changed (the help screen's text arrives and the
screenshot differs). Also: the token is enforced, and a non-loopback address without a token is
refused.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scripts.ensure_chromium import BROWSER, HEADLESS_FLAGS
from tests.harness import wait_until

TOKEN = "s3cret-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served_monitor(env: dict[str, str], port: int, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "amqptool", "monitor", "--serve", f"127.0.0.1:{port}", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _listening(port), 20, message="the monitor's web server")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def chromium(url: str) -> Iterator[int]:
    """Headless Chromium on ``url``; yields its DevTools port."""
    assert Path(BROWSER).exists(), "make test installs chromium (scripts/ensure_chromium.py)"
    debug_port = free_port()
    with tempfile.TemporaryDirectory(prefix="amqptool-chromium-") as profile:
        proc = subprocess.Popen(
            [
                BROWSER,
                *HEADLESS_FLAGS,
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={debug_port}",
                "--window-size=1400,900",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_until(lambda: _listening(debug_port), 30, message="chromium's DevTools port")
            yield debug_port
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            shutil.rmtree(profile, ignore_errors=True)


class Page:
    """One tab over the DevTools protocol: commands, and the websocket frames it receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.received = ""  # every text the page got from the monitor, decoded
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            elif data.get("method") == "Network.webSocketFrameReceived":
                frame = data["params"]["response"]
                payload = frame["payloadData"]
                if frame.get("opcode") == 2:
                    payload = base64.b64decode(payload).decode("utf-8", "replace")
                self.received += payload

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        return await asyncio.wait_for(future, 20)

    async def until(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.received:
            assert time.monotonic() < deadline, f"{text!r} never reached the page"
            await asyncio.sleep(0.2)

    async def screenshot(self) -> bytes:
        reply = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(reply["result"]["data"])

    async def press(self, char: str) -> None:
        await self.call(
            "Runtime.evaluate",
            expression="document.querySelector('.xterm-helper-textarea').focus()",
        )
        for kind in ("keyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key=char, text=char)


async def _drive(debug_port: int, page_url: str) -> tuple[str, str, bytes, bytes]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{debug_port}/json/list") as response:
            targets = await response.json()
        target = next(t for t in targets if t.get("type") == "page")
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = Page(ws)
            await page.call("Network.enable")
            await page.call("Page.enable")
            await page.call("Page.navigate", url=page_url)  # now, with the frames recorded
            await page.until("amqptool monitor")
            await page.until("connected")
            await asyncio.sleep(1.0)
            before = await page.screenshot()
            seen = page.received
            await page.press("?")
            await page.until("amqptool monitor: keys")
            await asyncio.sleep(1.0)
            after = await page.screenshot()
            page.reader.cancel()
            return seen, page.received, before, after


def test_the_served_monitor_in_headless_chromium_shows_the_header_and_answers_a_key(
    cli_env: dict[str, str],
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/?token={TOKEN}"
    with served_monitor(cli_env, port, "--token", TOKEN), chromium("about:blank") as debug:
        seen, received, before, after = asyncio.run(_drive(debug, url))
    assert "amqptool monitor: keys" not in seen  # the help was not there before the key
    assert "amqptool monitor: keys" in received
    assert before[:8] == b"\x89PNG\r\n\x1a\n" and before != after


def test_the_token_is_required_and_beyond_loopback_needs_one(cli_env: dict[str, str]) -> None:
    port = free_port()
    with served_monitor(cli_env, port, "--token", TOKEN):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert refused.value.code == 401
        wrong = f"http://127.0.0.1:{port}/?token=nope"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(wrong, timeout=5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={TOKEN}", timeout=5) as ok:
            assert ok.status == 200 and "amqptool_monitor_token" in ok.headers["Set-Cookie"]
    proc = subprocess.run(
        [sys.executable, "-m", "amqptool", "monitor", "--serve", f"0.0.0.0:{free_port()}"],
        env={k: v for k, v in cli_env.items() if k != "AMQPTOOL_MONITOR_TOKEN"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --serve 0.0.0.0: listening beyond loopback needs a token")


def test_the_tabs_read_the_broker_url_from_the_file_given_to_serve(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    url_file = tmp_path / "broker-url"
    url_file.write_text(cli_env["AMQP_URL"] + "\n")
    url_file.chmod(0o600)
    env = {k: v for k, v in cli_env.items() if k not in ("AMQP_URL", "CELERY_BROKER_URL")}
    port = free_port()
    argv = ["--broker-file", str(url_file), "monitor", "--serve", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "amqptool", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _listening(port), 20, message="the monitor's web server")
        with chromium("about:blank") as debug:
            seen, _, _, _ = asyncio.run(_drive(debug, f"http://127.0.0.1:{port}/"))
        vhost = cli_env["AMQP_URL"].rsplit("/", 1)[1]
        assert vhost.startswith("amqptool-test") and vhost in seen  # the file's broker URL
    finally:
        proc.terminate()
        proc.wait(15)
