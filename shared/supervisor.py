"""A small process supervisor for ``hoithi up``: every program is kept running, each on its own.

honcho's manager (what ``hoithi up`` used before) stops everything as soon as one process exits, so killing the
demo's nats-server took the four services down with it. Here a program that exits — crashed, killed, or ended
by itself — is started again with the same command and environment (nats-server: the same store directory and
config, so JetStream finds its streams again) after a back-off that doubles from ``base`` up to ``cap`` and
starts over once the program has stayed up for ``healthy`` seconds. The other programs keep running meanwhile.

SIGINT (Ctrl-C) or SIGTERM stops everything: SIGTERM to each program's process group, SIGKILL to whatever is
still running after ``grace`` seconds. Each program runs in its own process group (a shell command's children
included), its output is prefixed with its name, and its current pid is written to ``<run_dir>/<name>.pid`` so an
operator (or a test) can find it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

__all__ = ["Backoff", "Program", "Supervisor", "describe_exit"]


@dataclass
class Backoff:
    """Delay before restart number n (1-based) of a program: base·2^(n-1), at most ``cap``; a program that ran
    ``healthy`` seconds or longer before it exited starts over at ``base``."""

    base: float = 0.5
    cap: float = 30.0
    healthy: float = 30.0

    def delay(self, failures: int) -> float:
        return float(min(self.cap, self.base * 2 ** max(0, failures - 1)))


@dataclass
class Program:
    """One supervised program: an argv list (run directly) or a shell command string."""

    name: str
    command: list[str] | str
    env: dict[str, str] | None = None
    # Counters for the log and for tests.
    starts: int = 0
    failures: int = 0  # exits in a row without a healthy period in between
    pid: int | None = None
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)


def describe_exit(code: int) -> str:
    """``asyncio``'s return code as words: ``exit code 3`` or ``killed by SIGKILL``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    def __init__(
        self,
        programs: list[Program],
        *,
        run_dir: Path | None = None,
        backoff: Backoff | None = None,
        grace: float = 10.0,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len({p.name for p in programs}) != len(programs):
            raise ValueError("program names must be unique")
        self.programs = programs
        self.run_dir = run_dir
        self.backoff = backoff or Backoff()
        self.grace = grace
        self.out = out or sys.stdout
        self.clock = clock
        self._stopping = asyncio.Event()
        self._width = max((len(p.name) for p in programs), default=8)

    # ------------------------------------------------------------------ output
    def log(self, name: str, line: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        self.out.write(f"{stamp} {name:<{self._width}} | {line}\n")
        self.out.flush()

    def _system(self, line: str) -> None:
        self.log("system", line)

    # ------------------------------------------------------------------ running
    def stop(self) -> None:
        """Ask every program to stop (what SIGINT and SIGTERM do)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> int:
        """Run every program until ``stop()`` or SIGINT/SIGTERM; then stop them all. Returns 0."""
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        tasks = [asyncio.create_task(self._keep(p), name=f"supervise-{p.name}") for p in self.programs]
        try:
            await self._stopping.wait()
        finally:
            await self._shutdown()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sig in installed:
                loop.remove_signal_handler(sig)
        return 0

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self.stopping:
            self._system(f"{sig.name} received: stopping every program")
        self.stop()

    async def _start(self, p: Program) -> asyncio.subprocess.Process:
        common = {
            "stdin": asyncio.subprocess.DEVNULL,
            "stdout": asyncio.subprocess.PIPE,
            "stderr": asyncio.subprocess.STDOUT,
            "env": p.env,
            "start_new_session": True,  # its own process group: a stop reaches a shell's children too
        }
        if isinstance(p.command, str):
            proc = await asyncio.create_subprocess_shell(p.command, **common)  # type: ignore[arg-type]
        else:
            proc = await asyncio.create_subprocess_exec(*p.command, **common)  # type: ignore[arg-type]
        p.process, p.pid = proc, proc.pid
        p.starts += 1
        if self.run_dir is not None:
            (self.run_dir / f"{p.name}.pid").write_text(f"{proc.pid}\n")
        return proc

    async def _pipe(self, p: Program, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            self.log(p.name, line.decode(errors="replace").rstrip())

    async def _keep(self, p: Program) -> None:
        """Start ``p``, and start it again each time it exits, until the supervisor stops."""
        while not self.stopping:
            try:
                proc = await self._start(p)
            except OSError as exc:
                p.failures += 1
                delay = self.backoff.delay(p.failures)
                self._system(f"{p.name} could not be started ({exc}); trying again in {delay:.1f}s")
                await self._pause(delay)
                continue
            started = self.clock()
            self._system(
                f"{p.name} started (pid {proc.pid})" + (f", start #{p.starts}" if p.starts > 1 else "")
            )
            pipe = asyncio.create_task(self._pipe(p, proc))
            code = await proc.wait()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pipe, 2)
            if self.stopping:
                return
            # A program that exited leaves its group's children behind only if they ignore its end: end them.
            _signal_group(proc.pid, signal.SIGKILL)
            ran = self.clock() - started
            p.failures = 1 if ran >= self.backoff.healthy else p.failures + 1
            delay = self.backoff.delay(p.failures)
            self._system(
                f"{p.name} (pid {proc.pid}) stopped after {ran:.1f}s ({describe_exit(code)}); "
                f"restarting in {delay:.1f}s (restart {p.starts}, {p.failures} in a row)"
            )
            await self._pause(delay)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _shutdown(self) -> None:
        running = [p for p in self.programs if p.process is not None and p.process.returncode is None]
        for p in running:
            assert p.process is not None
            _signal_group(p.process.pid, signal.SIGTERM)
        deadline = self.clock() + self.grace
        for p in running:
            assert p.process is not None
            try:
                await asyncio.wait_for(p.process.wait(), max(0.0, deadline - self.clock()))
            except TimeoutError:
                self._system(f"{p.name} (pid {p.process.pid}) still running after {self.grace:.0f}s: SIGKILL")
                _signal_group(p.process.pid, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(p.process.wait(), 5)
            _signal_group(p.process.pid, signal.SIGKILL)  # what the program left behind in its group
        for p in self.programs:
            if self.run_dir is not None:
                with contextlib.suppress(FileNotFoundError):
                    (self.run_dir / f"{p.name}.pid").unlink()
        self._system("every program stopped")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
