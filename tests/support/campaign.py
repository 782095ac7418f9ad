"""Campaign alone as real processes, and what its tests need around it: raw events published as submissions
would publish them (``intake.closed``, ``submission.received``), the outbox counted in its own database, the
deadline clock's view over HTTP, and extra replicas on the same database and NATS."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import nats

from shared.devserver import free_port
from shared.events.envelope import deterministic_id, make_event
from tests.support.servers import nats_client_options
from tests.support.system import EDITION, ROOT, TENANT, System
from tests.support.wait import eventually_sync

SECRETARIAT = "p-0004"  # Phạm Thị Thu Hà, secretariat in the seed
OFFICIAL = "p-0002"  # Trần Văn Minh, official with an experience assignment
OTHER = "p-0005"  # Đặng Minh Tuấn, official of VP


def vn(at: str) -> datetime:
    return datetime.fromisoformat(at)


@dataclass
class CampaignSystem:
    system: System
    replicas: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _seq: Counter[str] = field(default_factory=Counter)

    @property
    def db(self) -> str:
        return self.system.database_urls["campaign"]

    # -------------------------------------------------------------- clock
    def freeze(self, at: str) -> None:
        """Stop the simulated clock at ``at`` (rate 0) for every process."""
        self.system.set_clock(at, rate=0.0)

    def deadlines(self) -> dict[str, Any]:
        with self.system.client("campaign", SECRETARIAT) as c:
            r = c.get(f"/tenants/{TENANT}/editions/{EDITION}/deadlines")
            r.raise_for_status()
            return r.json()  # type: ignore[no-any-return]

    def clock_reached(self, at: str) -> bool:
        """True once the clock has ticked at ``at`` (frozen) in the process answering HTTP."""
        seen = self.deadlines()["clock_at"]
        return seen is not None and vn(seen) == vn(at)

    def state(self, part: str, assignee: str | None = None) -> str:
        return next(
            d["state"]
            for d in self.deadlines()["deadlines"]
            if d["part"] == part and d["assignee_id"] == assignee
        )

    # -------------------------------------------------------------- events in
    def publish(
        self, type_: str, data: dict[str, Any], *, subject: str, time: datetime, event_id: str
    ) -> None:
        self._seq[subject] += 1
        env = make_event(
            type_,
            data,
            source="submissions",
            tenant=TENANT,
            subject=subject,
            sequence=self._seq[subject],
            time=time,
            edition=EDITION,
            event_id=event_id,
        )

        async def go() -> None:
            nc = await nats.connect(self.system.nats_url, **nats_client_options(self.system.nats_url))
            try:
                await nc.jetstream().publish(
                    f"{self.system.prefix}.{TENANT}.{type_}",
                    env.to_json(),
                    stream=self.system.stream,
                    headers={"Nats-Msg-Id": env.id},
                )
            finally:
                await nc.close()

        asyncio.run(go())

    def intake_closed(
        self, part: str, deadline: str, accepted_on_time: int, assignee: str | None = None
    ) -> None:
        self.publish(
            "intake.closed",
            {
                "part": part,
                "deadline": deadline,
                "assignee_id": assignee,
                "accepted_on_time": accepted_on_time,
            },
            subject=f"{TENANT}/{EDITION}/{part}",
            time=vn(deadline),
            event_id=deterministic_id("intake.closed", part, deadline, assignee),
        )

    def report_received(self, person: str, unit: str, at: str) -> str:
        submission = deterministic_id("test-submission", person, at)
        self.publish(
            "submission.received",
            {
                "submission_id": submission,
                "kind": "experience_report",
                "part": "experience",
                "receipt_number": "2023-TN-000001",
                "received_at": at,
                "author_id": person,
                "unit_id": unit,
                "authors": [{"person_id": person, "name": "Cán bộ", "share": 100}],
                "procedures": ["1.004227", "1.000494", "1.001234", "2.000123", "1.011442"],
            },
            subject=submission,
            time=vn(at),
            event_id=deterministic_id("test-received", submission),
        )
        return submission

    def selected(self, submission: str, unit: str, at: str, council: str = "initiative-council") -> None:
        """``initiative.selected`` as submissions emits it when the council decides at ``at``."""
        self.publish(
            "initiative.selected",
            {
                "submission_id": submission,
                "part": "selection",
                "initiative_part": "initiative",
                "council_id": council,
                "unit_id": unit,
                "authors": [{"person_id": OFFICIAL, "name": "Trần Văn Minh", "share": 100}],
                "score": 80.0,
                "rank": 1,
                "at": at,
            },
            subject=submission,
            time=vn(at),
            event_id=deterministic_id("initiative.selected", TENANT, EDITION, "selection", submission),
        )

    def wait_past_duplicate_window(self, timeout: float = 15) -> None:
        """Until the stream has forgotten every message id published so far: a probe id published now is
        republished until the stream takes the copy as new (the probe's subject is no consumer's)."""
        probe = deterministic_id("duplicate-window-probe", self.system.prefix, str(self._seq.total()))
        self._seq["probe"] += 1

        async def publish() -> bool:
            nc = await nats.connect(self.system.nats_url, **nats_client_options(self.system.nats_url))
            try:
                ack = await nc.jetstream().publish(
                    f"{self.system.prefix}.probe.duplicate-window",
                    b"{}",
                    stream=self.system.stream,
                    headers={"Nats-Msg-Id": probe},
                )
            finally:
                await nc.close()
            return not ack.duplicate

        assert asyncio.run(publish()), "the probe's first publish is new"
        eventually_sync(
            lambda: asyncio.run(publish()), timeout=timeout, interval=0.1, message="window passed"
        )

    def clock_view(self, port: int) -> dict[str, Any]:
        """``GET …/deadlines`` of the campaign process on ``port`` (its clock's ticks and lease)."""
        r = httpx.get(
            f"http://127.0.0.1:{port}/tenants/{TENANT}/editions/{EDITION}/deadlines",
            headers={"Authorization": f"Bearer {self.system.token(SECRETARIAT)}"},
            timeout=5,
        )
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    def clock_ticks(self, port: int) -> int:
        """How many times the deadline clock of the campaign process on ``port`` has ticked."""
        return int(self.clock_view(port)["clock_ticks"])

    def clock_holder(self, ports: list[int]) -> int | None:
        """The port of the one replica whose clock holds the lease (None if none; fails if several do)."""
        held = [p for p in ports if self.clock_view(p)["clock_lease"]["held"]]
        assert len(held) <= 1, f"several replicas hold the clock's lease: {held}"
        return held[0] if held else None

    # -------------------------------------------------------------- what came out
    def outbox(self, type_: str) -> list[dict[str, Any]]:
        import json

        async def go() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(self.db.replace("postgresql+asyncpg://", "postgresql://", 1))
            try:
                rows = await conn.fetch(
                    "SELECT payload FROM outbox WHERE event_type = $1 ORDER BY position", type_
                )
            finally:
                await conn.close()
            return [json.loads(r["payload"]) for r in rows]

        return asyncio.run(go())

    def on_stream(self, type_: str) -> list[dict[str, Any]]:
        return [e for _, e in self.system.events() if e.get("type") == type_]

    def unpublished(self) -> int:
        async def go() -> int:
            conn = await asyncpg.connect(self.db.replace("postgresql+asyncpg://", "postgresql://", 1))
            try:
                return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
            finally:
                await conn.close()

        return asyncio.run(go())

    # -------------------------------------------------------------- replicas
    def start_replica(self) -> int:
        """Another campaign process on the same database and NATS (its own HTTP port)."""
        port = free_port()
        log = open(self.system.workdir / "logs" / f"campaign-{port}.log", "ab")  # noqa: SIM115
        self.replicas.append(
            subprocess.Popen(
                [sys.executable, "-m", "shared.cli", "serve", "campaign"],
                cwd=ROOT,
                env=self.system.env("campaign", HOITHI_CAMPAIGN_PORT=str(port)),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        return port

    def stop(self) -> None:
        for p in self.replicas:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.system.stop()


def campaign_system(
    test_servers: Any, workdir: Any, prefix: str, start_at: str, **env: str
) -> CampaignSystem:
    """Campaign alone, seeded with the 2023 edition, on a fresh PostgreSQL database, its clock frozen at
    ``start_at``."""
    from shared.settings import SERVICES

    dbs = {s: test_servers.create_database(s) for s in SERVICES}
    system = System(
        nats_url=test_servers.nats_url,
        prefix=prefix,
        workdir=workdir,
        database_urls=dbs,
        services=("campaign",),
        extra_env={"HOITHI_CAMPAIGN_CLOCK_INTERVAL": "0.1", **env},
    )
    system.workdir.mkdir(parents=True, exist_ok=True)
    system.set_clock(start_at, rate=0.0)
    system.start()
    return CampaignSystem(system)


@contextmanager
def running_campaign(
    test_servers: Any, workdir: Any, prefix: str, start_at: str, **env: str
) -> Iterator[CampaignSystem]:
    """:func:`campaign_system`, stopped when the block ends (however it ends): a test fixture's body."""
    system = campaign_system(test_servers, workdir, prefix, start_at, **env)
    try:
        yield system
    finally:
        system.stop()
