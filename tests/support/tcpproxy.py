"""A small TCP proxy on 127.0.0.1 for simulating an outage of one service's database.

Tests never stop a shared PostgreSQL; instead the service under test connects through this proxy, and
``cut()`` makes the database unreachable for that service alone. Thread-based (no asyncio), so it works
whichever event loop the test runs, and keeps forwarding while the test's loop is busy.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Self

__all__ = ["TcpProxy"]

_CHUNK = 64 * 1024


def _abort(sock: socket.socket) -> None:
    """Close with RST (linger 0), as a crashed peer would: the other side fails at once instead of waiting."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv() on this socket
    with contextlib.suppress(OSError):
        sock.close()


class _Pair:
    """One client connection and its upstream connection, pumped by two threads."""

    def __init__(self, client: socket.socket, upstream: socket.socket, on_close: threading.Event) -> None:
        self.client = client
        self.upstream = upstream
        self._closed = on_close
        self._lock = threading.Lock()
        self._one_done = False

    def start(self) -> None:
        for src, dst in ((self.client, self.upstream), (self.upstream, self.client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True, name="tcpproxy-pump").start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            self.abort()
            return
        # Orderly half-close: pass the FIN on and let the other direction finish.
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        if self._both_done():
            self.close()

    def _both_done(self) -> bool:
        with self._lock:
            done = self._one_done
            self._one_done = True
            return done

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.close()
        self._closed.set()

    def abort(self) -> None:
        _abort(self.client)
        _abort(self.upstream)
        self._closed.set()


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port`` until ``cut()``.

    While cut, the proxy still accepts connections but closes them at once (RST): a client sees the database
    as unreachable within milliseconds rather than hanging on a connect timeout.
    """

    def __init__(self, target_host: str, target_port: int, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._listen_port = listen_port
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._pairs: set[_Pair] = set()
        self._lock = threading.Lock()
        self._cut = threading.Event()
        self._stopping = threading.Event()
        self.accepted = 0  # connections forwarded since start (a test counts its client's connections)

    @property
    def port(self) -> int:
        """The listening port (known after ``start()``; equal to ``listen_port`` if one was given)."""
        if self._listener is None:
            return self._listen_port
        port: int = self._listener.getsockname()[1]
        return port

    @property
    def is_cut(self) -> bool:
        return self._cut.is_set()

    @property
    def active_connections(self) -> int:
        with self._lock:
            self._pairs = {pair for pair in self._pairs if not pair._closed.is_set()}
            return len(self._pairs)

    def start(self) -> Self:
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._listen_port))
        listener.listen(128)
        listener.settimeout(0.2)  # lets the accept loop notice stop()
        self._listener = listener
        self._listen_port = self.port  # a later start() comes back on the same port
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name=f"tcpproxy-{self.port}")
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            client.settimeout(None)
            if self._cut.is_set():
                _abort(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5.0)
                upstream.settimeout(None)
            except OSError:
                _abort(client)
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream, threading.Event())
            with self._lock:
                if self._cut.is_set():  # cut() raced with this accept
                    pair.abort()
                    continue
                self._pairs.add(pair)
                self.accepted += 1
            pair.start()

    def cut(self) -> None:
        """Drop every current connection and refuse new ones (accept, then reset) until ``restore()``."""
        with self._lock:
            self._cut.set()
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            pair.abort()

    def restore(self) -> None:
        """Forward new connections again (connections dropped by ``cut()`` stay dropped, as after an outage)."""
        self._cut.clear()

    def stop(self) -> None:
        self._stopping.set()
        self.cut()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._listener = None
        self._thread = None
        self._cut.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "cut" if self.is_cut else "forwarding"
        return f"TcpProxy(127.0.0.1:{self.port} -> {self.target[0]}:{self.target[1]}, {state})"
