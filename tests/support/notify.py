"""Helpers for notify's integration tests: a scripted run of facts, a second replica, a webhook receiver.

notify's tests publish the facts they need themselves (as campaign and submissions would), straight onto the
test's stream with ``Nats-Msg-Id``: the run is exactly the one the expected table describes, whatever the other
services do with the clock.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import nats
import sqlalchemy as sa

from services.notify import handlers
from shared.devserver import free_port
from shared.documents import Directory, Edition, Person, Role, load_directory, load_edition
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import Envelope, make_event
from shared.mailsink import MailSink
from shared.service import Runtime
from tests.support.system import ROOT, TENANT, System
from tests.support.wait import eventually


@dataclass
class Facts:
    """Builds and publishes CloudEvents; keeps every one so the whole run can be delivered again."""

    system: System
    sent: list[Envelope] = field(default_factory=list)
    sequences: Counter[str] = field(default_factory=Counter)

    def event(
        self, type_: str, data: Any, *, subject: str, at: datetime, edition: str | None = "2023"
    ) -> Envelope:
        self.sequences[subject] += 1
        # the catalogue's producer: consumers dead-letter a fact from any other source (subject_mismatch)
        source = CATALOGUE[type_].producer
        env = make_event(
            type_,
            data,
            source=source,
            tenant=TENANT,
            subject=subject,
            sequence=self.sequences[subject],
            time=at,
            edition=edition,
        )
        self.sent.append(env)
        return env

    async def publish(self, *envs: Envelope) -> None:
        nc = await nats.connect(self.system.nats_url)
        try:
            js = nc.jetstream()
            for env in envs:
                await js.publish(
                    f"{self.system.prefix}.{env.tenant}.{env.type}",
                    env.to_json(),
                    stream=self.system.stream,
                    headers={"Nats-Msg-Id": env.id},
                )
        finally:
            await nc.close()

    async def emit(
        self, type_: str, data: Any, *, subject: str, at: datetime, edition: str | None = "2023"
    ) -> Envelope:
        env = self.event(type_, data, subject=subject, at=at, edition=edition)
        await self.publish(env)
        return env

    async def directory(self, directory: Directory, at: datetime) -> None:
        envs = [
            self.event("directory.unit.changed", {"unit": u}, subject=u.id, at=at, edition=None)
            for u in directory.units
        ]
        envs += [
            self.event("directory.unit.changed", {"union": u}, subject=u.id, at=at, edition=None)
            for u in directory.unions
        ]
        envs += [
            self.event("directory.person.changed", {"person": p}, subject=p.id, at=at, edition=None)
            for p in directory.people
        ]
        await self.publish(*envs)

    async def edition(self, edition: Edition, at: datetime) -> None:
        await self.emit(
            "edition.published", {"version": edition.version, "document": edition}, subject="2023", at=at
        )

    async def redeliver_all(self, timeout: float = 30) -> None:
        """Every event of the run again, same ids, each stored by the stream as a new message (each is
        republished until its duplicate window has passed), so the inbox is what must drop them."""
        nc = await nats.connect(self.system.nats_url)
        try:
            js = nc.jetstream()
            for env in self.sent:

                async def stored(env: Envelope = env) -> bool:
                    ack = await js.publish(
                        f"{self.system.prefix}.{env.tenant}.{env.type}",
                        env.to_json(),
                        stream=self.system.stream,
                        headers={"Nats-Msg-Id": env.id},
                    )
                    return not ack.duplicate

                await eventually(stored, timeout=timeout, interval=0.1, message=f"copy of {env.id} stored")
        finally:
            await nc.close()


def extra_officials(unit: str, n: int, template: Person) -> list[Person]:
    return [
        template.model_copy(
            update={
                "id": f"p-x{i:03d}",
                "name": f"Cán bộ Thử nghiệm {i:03d}",
                "email": f"x{i:03d}@example.vn",
                "unit": unit,
                "roles": [Role.official],
                "unions": [],
                "effective_from": None,
                "effective_to": None,
            }
        )
        for i in range(n)
    ]


# ------------------------------------------------------------------------------------------------- processes


@dataclass
class Replica:
    """A further notify process on its own port (``HOITHI_NOTIFY_PORT``), same database and consumer."""

    system: System
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def log_path(self) -> Path:
        return self.system.workdir / "logs" / f"{self.name}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {timeout}s:\n{self.log()[-3000:]}")

    def wait_exit(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_replica(system: System, name: str, **env: str) -> Replica:
    port = free_port()
    (system.workdir / "logs").mkdir(parents=True, exist_ok=True)
    log = open(system.workdir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "serve", "notify"],
        cwd=ROOT,
        env=system.env("notify", HOITHI_NOTIFY_PORT=str(port), **env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Replica(system, name, port, proc)


def stop_mail(system: System) -> int:
    assert system.mail is not None
    port = system.mail.port
    system.mail.stop()
    return port


def start_mail(system: System, port: int) -> None:
    assert system.mail is not None
    system.mail = MailSink(system.mail.directory, port=port).start()


def mail_table(system: System) -> Counter[tuple[str, str]]:
    """(recipient address, template) -> how many emails the SMTP server received."""
    assert system.mail is not None
    return Counter((str(m["To"]), str(m["X-Hoithi-Template"])) for m in system.mail.messages())


def mails(system: System, to: str, template: str) -> list[EmailMessage]:
    assert system.mail is not None
    return [
        m for m in system.mail.messages() if str(m["To"]) == to and str(m["X-Hoithi-Template"]) == template
    ]


def body_text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------ webhook receiver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """A real local HTTP server: answers 200, or 500 on the paths in ``failing``; keeps every request."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.failing: set[str] = {"/failing"}
        self.redirects: dict[str, str] = {}  # path -> Location answered with 302
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                if self.path in receiver.redirects:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirects[self.path])
                    self.end_headers()
                    return
                self.send_response(500 if self.path in receiver.failing else 200)
                self.end_headers()
                # an internal-looking answer: it must never show up in notify's delivery log
                self.wfile.write(
                    b'{"internal": "db password hunter2"}' if self.path in receiver.failing else b"{}"
                )

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def on(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def event_ids(self, path: str) -> Counter[str]:
        return Counter(json.loads(r.body)["id"] for r in self.on(path))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@contextmanager
def running_notify(
    test_servers: Any, prefix: str, workdir: Path, at: datetime, **env: str
) -> Iterator[System]:
    """Notify alone as a real process (every service's database made), its clock at ``at``, stopped when the
    block ends. The local :class:`WebhookReceiver` is on loopback: admitted only through the explicit
    allow-list, which this sets."""
    from shared.settings import SERVICES

    system = System(
        nats_url=test_servers.nats_url,
        prefix=prefix,
        workdir=workdir,
        database_urls={s: test_servers.create_database(s) for s in SERVICES},
        services=("notify",),
        extra_env={**env, "HOITHI_NOTIFY_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"},
    )
    system.set_clock(at)
    try:
        system.start()
        yield system
    finally:
        system.stop()


# ------------------------------------------------------------------------------------------ in-process handlers

SEED = ROOT / "deploy" / "seed" / "soctrang-stnmt-2023"
DEADLINE = datetime(2023, 10, 25, 17, 0, tzinfo=UTC)


def vn(text: str) -> datetime:
    return datetime.fromisoformat(text + "+07:00")


class HandlerRun:
    """notify's real handlers applied in-process (no servers), one transaction per ``apply``."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.handlers = handlers.build(rt)["facts"]
        self.seq: dict[str, int] = {}

    def event(
        self, type_: str, data: Any, subject: str, at: datetime, edition: str | None = "2023"
    ) -> Envelope:
        self.seq[subject] = self.seq.get(subject, 0) + 1
        env = make_event(
            type_,
            data,
            source="test",
            tenant=TENANT,
            subject=subject,
            sequence=self.seq[subject],
            time=at,
            edition=edition,
        )
        return Envelope.from_json(env.to_json())

    def receipt(self, n: int, person: str, unit: str, at: datetime) -> Envelope:
        """submissions' ``submission.received`` of experience report ``s-b<n>`` by ``person``."""
        return self.event(
            "submission.received",
            {
                "submission_id": f"s-b{n}",
                "kind": "experience_report",
                "part": "experience",
                "receipt_number": f"2023-TN-{n:06d}",
                "received_at": at,
                "author_id": person,
                "unit_id": unit,
                "authors": [{"person_id": person, "name": "Người nộp", "share": 100}],
            },
            f"s-b{n}",
            at,
        )

    async def apply(self, *envs: Envelope) -> None:
        async with self.rt.engine.begin() as conn:
            for env in envs:
                await self.handlers[env.type](conn, env)

    async def count(self, table: sa.Table, *where: Any) -> int:
        async with self.rt.engine.connect() as conn:
            return int(
                (await conn.execute(sa.select(sa.func.count()).select_from(table).where(*where))).scalar_one()
            )


async def seeded_notify(rt: Runtime) -> HandlerRun:
    """The 2023 directory and edition, and two open experience-report assignments (deadline 25/10/2023)."""
    run = HandlerRun(rt)
    at = vn("2023-10-18T09:00:00")
    d = load_directory(SEED / "directory.yaml")
    await run.apply(
        *[run.event("directory.unit.changed", {"unit": u}, u.id, at, None) for u in d.units],
        *[run.event("directory.unit.changed", {"union": u}, u.id, at, None) for u in d.unions],
        *[run.event("directory.person.changed", {"person": p}, p.id, at, None) for p in d.people],
        run.event(
            "edition.published", {"version": 1, "document": load_edition(SEED / "edition.yaml")}, "2023", at
        ),
        *[
            run.event(
                "assignment.created",
                {
                    "assignment_id": f"a-{pid}",
                    "part": "experience",
                    "part_kind": "experience_report",
                    "assignee_kind": "person",
                    "assignee_id": pid,
                    "unit_id": unit,
                    "deadline": DEADLINE,
                },
                f"a-{pid}",
                at,
            )
            for pid, unit in (("p-0008", "u-tnn-ks"), ("p-0016", "u-ccbvmt"))
        ],
    )
    return run
