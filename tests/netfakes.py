"""Loopback network stand-ins the tests control: a TCP proxy that can go quiet, a port that
accepts and says nothing, and a tiny HTTP server with a fixed answer."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator

__all__ = ["TcpProxy", "http_answering", "silent_port"]


class TcpProxy:
    """Forwards loopback TCP to ``target``; :meth:`freeze` stops forwarding, keeps sockets open.

    A frozen proxy is a half-open peer: the client's writes succeed, nothing comes back.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._frozen = threading.Event()
        self.received_while_frozen = threading.Event()  # a request is waiting at the proxy
        self.client_hung_up = threading.Event()  # the client closed its socket while frozen
        self.broker_hung_up = threading.Event()  # the broker did
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, vhost_url: str) -> str:
        """``vhost_url`` (an amqp:// URL on 127.0.0.1:5672) rewritten to go through the proxy."""
        return vhost_url.replace("@127.0.0.1:5672/", f"@127.0.0.1:{self.port}/", 1)

    def freeze(self) -> None:
        self.received_while_frozen.clear()
        self.client_hung_up.clear()
        self.broker_hung_up.clear()
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()

    def close(self) -> None:
        # A frozen proxy stays frozen while it closes: what it held must never reach the peer
        # (a pump thawed here could still forward it between its recv and the socket close).
        self._stop.set()
        with self._lock:
            for sock in [self._listener, *self._sockets]:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst, gone in (
                (client, upstream, self.client_hung_up),
                (upstream, client, self.broker_hung_up),
            ):
                threading.Thread(target=self._pump, args=(src, dst, gone), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, gone: threading.Event) -> None:
        """Copy src to dst; while frozen, read and hold (so a hang-up is still seen)."""
        src.settimeout(0.1)
        held = bytearray()
        eof = False
        while not self._stop.is_set():
            data: bytes | None = None
            if eof:
                self._stop.wait(0.05)
            else:
                try:
                    data = src.recv(65536)
                except TimeoutError:
                    data = None
                except OSError:
                    data = b""
                eof = data == b""
                held += data or b""
            if self._frozen.is_set():
                if data:
                    self.received_while_frozen.set()
                if eof:
                    gone.set()
                continue
            try:
                if held:
                    dst.sendall(held)
                    held.clear()
                if eof:
                    dst.shutdown(socket.SHUT_WR)
                    return
            except OSError:
                return

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never sends a byte (not AMQP, not anything)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        for sock in [listener, *accepted]:
            sock.close()


@contextlib.contextmanager
def http_answering(status: int, body: bytes = b"") -> Iterator[int]:
    """A loopback HTTP server answering every request with ``status``; yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
