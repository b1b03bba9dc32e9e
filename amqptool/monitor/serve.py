"""``amqptool monitor --serve HOST:PORT``: the same live view in a browser (textual-serve).

Each browser tab gets its own monitor process (``python -m amqptool monitor`` with the same
options), drawn over a websocket by Textual's web driver. The monitor can revoke tasks and shut
workers down, so:

* it listens on loopback unless a token is set (``--token`` or ``$AMQPTOOL_MONITOR_TOKEN``);
* with a token every page and websocket needs it: open ``http://HOST:PORT/?token=TOKEN`` once,
  the page sets an HttpOnly, SameSite=Strict cookie the websocket then carries. Without the
  token (or cookie) the answer is 401. There is no TLS: beyond a trusted network put it behind
  an HTTPS proxy.

The broker URL goes to the tab processes through the environment (``AMQP_URL``), never on their
command line, so its password is not in ``ps``.
"""

from __future__ import annotations

import hmac
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from amqptool.errors import UsageError
from amqptool.monitor.metrics import is_loopback

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["TOKEN_COOKIE", "check_serve_address", "monitor_command", "run_serve"]

TOKEN_COOKIE = "amqptool_monitor_token"
TOKEN_ENV = "AMQPTOOL_MONITOR_TOKEN"


def check_serve_address(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without a token (anyone reaching it could act)."""
    if not is_loopback(host) and not token:
        raise UsageError(
            f"--serve {host}: listening beyond loopback needs a token"
            " (--token or $AMQPTOOL_MONITOR_TOKEN): whoever opens the page can revoke tasks"
            " and shut workers down"
        )


def monitor_command(monitor_args: list[str], global_args: list[str]) -> str:
    """The command each browser tab runs: this Python, this package, the same options."""
    return shlex.join([sys.executable, "-m", "amqptool", *global_args, "monitor", *monitor_args])


def _token_middleware(token: str) -> Any:
    from aiohttp import web

    expected = token.encode()

    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith("/static/"):
            return await handler(request)  # the page's scripts and fonts: nothing to protect
        given = request.query.get("token") or request.cookies.get(TOKEN_COOKIE, "")
        if not hmac.compare_digest(given.encode(), expected):
            return web.Response(status=401, text="401: open this page with ?token=TOKEN\n")
        response = await handler(request)
        if request.query.get("token") and not response.prepared:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        return response

    return check


def run_serve(
    listen: tuple[str, int],
    command: str,
    *,
    token: str | None = None,
    broker_url: str | None = None,
) -> int:
    """Serve the monitor until SIGINT/SIGTERM; returns the exit code."""
    host, port = listen
    check_serve_address(host, token)
    try:
        from textual_serve.server import Server
    except ImportError:
        raise UsageError(
            "--serve needs textual-serve", hint="pip install 'amqptool[web]'"
        ) from None
    if broker_url:
        os.environ["AMQP_URL"] = broker_url  # for the tab processes, not their command line

    class TokenServer(Server):
        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            if token:
                app.middlewares.append(_token_middleware(token))
            return app

    TokenServer(command, host=host, port=port, title="amqptool monitor").serve()
    return 0
