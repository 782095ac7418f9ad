"""The whole of hoithi as real processes, for integration and end-to-end tests.

``System`` runs ``hoithi migrate``, ``hoithi seed`` and ``hoithi streams`` exactly as an operator does, then
``hoithi serve NAME`` per service, each on a free port, its own PostgreSQL database (or SQLite file), and
stream/subject names unique to the test so parallel runs on one server never collide. A real SMTP server
(``MailSink``) receives notify's mail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from shared.clock import write_clock_file
from shared.devserver import free_port
from shared.mailsink import MailSink
from shared.settings import SERVICES

from .servers import nats_client_options, service_credentials

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "deploy" / "seed" / "soctrang-stnmt-2023"
DEMO_START = "2023-10-20T09:00:00+07:00"
TENANT = "soctrang-stnmt"
EDITION = "2023"


def seed_with_officials(target: Path, extra_officials: int, extra_units: int = 0) -> Path:
    """The 2023 seed plus ``extra_officials`` generated officials (for bursts of distinct authors), spread over
    the seed's units and ``extra_units`` generated divisions (a ministry-sized directory)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED / "edition.yaml", target / "edition.yaml")
    directory = yaml.safe_load((SEED / "directory.yaml").read_text(encoding="utf-8"))
    for j in range(extra_units):
        directory["units"].append(
            {
                "id": f"u-x{j:04d}",
                "code": f"X{j:04d}",
                "name": f"Phòng Thử nghiệm {j:04d}",
                "kind": "division",
                "effective_from": date(2003, 1, 1),
            }
        )
    units = [u["id"] for u in directory["units"]]
    for i in range(extra_officials):
        directory["people"].append(
            {
                "id": f"p-x{i:05d}",
                "name": f"Cán bộ Thử nghiệm {i:05d}",
                "email": f"cb{i:05d}@example.vn",
                "title": "Chuyên viên",
                "unit": units[i % len(units)],
                "roles": ["official"],
            }
        )
    (target / "directory.yaml").write_text(yaml.safe_dump(directory, allow_unicode=True), encoding="utf-8")
    return target


def report_body(
    codes: Iterable[str] = ("1.004227", "1.000494", "1.001234", "2.000123", "1.011442.000.00.00.H38"),
) -> dict[str, Any]:
    return {
        "procedures": [
            {
                "code": c,
                "used_on": "2023-10-02",
                "portal": "Cổng Dịch vụ công tỉnh Sóc Trăng",
                "level": "toan_trinh" if i % 2 == 0 else "mot_phan",
                "rating": 1 + i % 5,
                "narrative": f"Nộp hồ sơ trực tuyến thủ tục {c}: nhanh, rõ ràng.",
            }
            for i, c in enumerate(codes)
        ]
    }


@dataclass
class System:
    nats_url: str
    prefix: str
    workdir: Path
    database_urls: dict[str, str]
    seed_dir: Path = SEED
    extra_env: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = SERVICES
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    mail: MailSink | None = None
    catch_up_timeout: float = 60  # a seed of thousands of officials needs longer on a loaded machine
    command_timeout: float = 120  # each `hoithi` command of start() (a seed of thousands takes longer)

    # ------------------------------------------------------------------ environment
    @property
    def stream(self) -> str:
        return self.prefix.upper()

    def env(self, name: str | None = None, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOITHI_")}
        env.update(
            {
                "HOITHI_ENV": "test",
                "HOITHI_DATA_DIR": str(self.workdir / "data"),
                "HOITHI_NATS_URL": self.nats_url,
                "HOITHI_EVENT_PREFIX": self.prefix,
                "HOITHI_DEADLETTER_PREFIX": f"{self.prefix}-dl",
                "HOITHI_REPLAY_PREFIX": f"{self.prefix}-replay",
                "HOITHI_STREAM": self.stream,
                "HOITHI_DEADLETTER_STREAM": f"{self.stream}_DL",
                "HOITHI_REPLAY_STREAM": f"{self.stream}_REPLAY",
                "HOITHI_CLOCK_FILE": str(self.clock_file),
                "HOITHI_LOG_JSON": "true",
                "HOITHI_NAK_BASE_DELAY": "0.2",
                # A service killed mid-test hands its periodic jobs over within seconds, not the 15 s default.
                "HOITHI_LEASE_TTL": "3",
            }
        )
        own_user = service_credentials(self.nats_url, name) if name in SERVICES else None
        if own_user is not None:  # a service connects as its own user, allowed only its own work
            env["HOITHI_NATS_USER"], env["HOITHI_NATS_PASSWORD"] = own_user
        for s in SERVICES:
            env[f"HOITHI_{s.upper()}_DATABASE_URL"] = self.database_urls[s]
            if s in self.ports:
                env[f"HOITHI_{s.upper()}_PORT"] = str(self.ports[s])
        if self.mail is not None:
            env["HOITHI_NOTIFY_SMTP_HOST"] = "127.0.0.1"
            env["HOITHI_NOTIFY_SMTP_PORT"] = str(self.mail.port)
        env.update(self.extra_env)
        env.update(overrides)
        return env

    @property
    def clock_file(self) -> Path:
        return self.workdir / "clock.json"

    def set_clock(self, at: str | datetime, rate: float = 1.0) -> None:
        """Move every service of this system to ``at`` (ISO with offset, or an aware datetime)."""
        write_clock_file(
            self.clock_file, datetime.fromisoformat(at) if isinstance(at, str) else at, rate=rate
        )

    def hoithi(self, *args: str, timeout: float | None = None, **env: str) -> str:
        res = subprocess.run(
            [sys.executable, "-m", "shared.cli", *args],
            cwd=ROOT,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout or self.command_timeout,
            check=False,
        )
        if res.returncode != 0:
            raise RuntimeError(
                f"hoithi {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
            )
        return res.stdout

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> System:
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        if not self.clock_file.exists():
            self.set_clock(DEMO_START)
        self.mail = MailSink(self.workdir / "mail").start()
        for s in self.services:
            self.ports[s] = free_port()
        self.hoithi("migrate")
        self.hoithi("seed", str(self.seed_dir))
        self.hoithi("streams")
        for s in self.services:
            self.start_service(s)
        for s in self.services:
            self.wait_ready(s)
        self.wait_caught_up(self.catch_up_timeout)
        return self

    def wait_caught_up(self, timeout: float = 60) -> None:
        """Until every running service's consumers have applied all that is on the stream (the seed included),
        so a test's first request never races the directory reaching a service."""
        import asyncio

        import nats

        durables = [f"{s}-facts-v" for s in self.services]

        async def behind() -> int:
            nc = await nats.connect(self.nats_url, **nats_client_options(self.nats_url))
            try:
                js = nc.jetstream()
                total = 0
                for c in await js.consumers_info(self.stream):
                    if any(c.name.startswith(d) for d in durables):
                        total += (c.num_pending or 0) + (c.num_ack_pending or 0)
                return total
            finally:
                await nc.close()

        def unpublished() -> int:
            """Rows still in the running services' outboxes (the seed's facts wait there until each relay has
            published them, and a stream with nothing on it yet is not a stream caught up)."""
            total = 0
            for s in self.services:
                try:
                    text = httpx.get(f"{self.url(s)}/metrics", timeout=5).text
                except httpx.HTTPError:
                    continue  # not running (a test stopped it): nothing of it can drain now
                total += sum(
                    int(float(line.split()[-1]))
                    for line in text.splitlines()
                    if line.startswith("hoithi_outbox_depth ")
                )
            return total

        deadline = time.monotonic() + timeout
        while (n := unpublished() + (_run_in_thread(behind) if _in_loop() else asyncio.run(behind()))) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"consumers still {n} messages behind after {timeout}s")
            time.sleep(0.1)

    def start_service(self, name: str, **env: str) -> None:
        log = open(self.workdir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - owned by the process
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "serve", name],
            cwd=ROOT,
            env=self.env(name, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop_service(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        p = self.procs.pop(name, None)
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        return p.returncode

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            p = self.procs.get(name)
            if p is not None and p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}:\n{self.log(name)[-3000:]}")
            try:
                r = httpx.get(f"{self.url(name)}/health/ready", timeout=2)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready within {timeout}s: {last}\n{self.log(name)[-3000:]}")

    def stop(self) -> None:
        for s in list(self.procs):
            self.stop_service(s)
        if self.mail is not None:
            self.mail.stop()

    def log(self, name: str) -> str:
        path = self.workdir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------------ clients
    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def token(self, person: str, tenant: str = TENANT) -> str:
        from shared.auth import issue_token
        from shared.settings import Settings

        return issue_token(Settings(env="test"), person, tenant)

    def client(self, name: str, person: str | None = None, tenant: str = TENANT) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(person, tenant)}"} if person else {}
        return httpx.Client(base_url=self.url(name), headers=headers, timeout=30)

    def submit_report(
        self, person: str, key: str | None = None, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        with self.client("submissions", person) as c:
            return c.post(
                f"/tenants/{TENANT}/editions/{EDITION}/experience-reports",
                json=body or report_body(),
                headers=headers,
            )

    def events(self, stream: str | None = None) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """Every message of a stream: (headers, CloudEvent)."""
        import asyncio

        import nats

        async def read() -> list[tuple[dict[str, str], dict[str, Any]]]:
            nc = await nats.connect(self.nats_url, **nats_client_options(self.nats_url))
            js = nc.jetstream()
            out = []
            try:
                info = await js.stream_info(stream or self.stream)
                for seq in range(info.state.first_seq, info.state.last_seq + 1):
                    try:
                        m = await js.get_msg(stream or self.stream, seq)
                    except nats.js.errors.NotFoundError:  # deleted from the stream
                        continue
                    try:
                        body = json.loads(m.data)
                    except ValueError:
                        body = {"_raw": m.data.decode(errors="replace")}
                    out.append((dict(m.headers or {}), body))
            finally:
                await nc.close()
            return out

        return asyncio.run(read()) if not _in_loop() else _run_in_thread(read)


def _in_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def _run_in_thread(factory: Any) -> Any:
    import asyncio
    import threading

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["v"] = asyncio.run(factory())
        except BaseException as exc:  # noqa: BLE001
            box["e"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]
    return box["v"]
