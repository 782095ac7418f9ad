"""Helpers for the fault tests: a System on servers the test owns, and the one question every fault test asks —
was every accepted submission applied exactly once, in rewards and in campaign, and nothing else?

What "applied" means here, read from where each service keeps it:
- rewards: its ``ledger`` table (read directly from rewards' own test database: the priority list caps points
  per person and part, so a second entry would not show in the API) and the priority list's points;
- campaign: the experience assignment of the author is fulfilled by that submission (its HTTP API), and the
  events stream holds exactly one ``assignment.fulfilled`` per assignment.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
from nats.js.errors import NotFoundError

from shared.settings import SERVICES
from shared.streams import CONSUMERS
from tests.support.servers import TestServers, nats_client_options, via_proxy
from tests.support.system import EDITION, SEED, TENANT, System, report_body, seed_with_officials
from tests.support.tcpproxy import TcpProxy
from tests.support.wait import eventually

__all__ = [
    "CORE_SERVICES",
    "EXPERIENCE",
    "FaultSystem",
    "Snapshot",
    "query",
]

CORE_SERVICES = ("campaign", "submissions", "rewards")
EXPERIENCE = "experience"  # the experience-report part of the 2023 edition
# A seed person every service's directory copy knows: reads the priority list and the assignments.
READER = "p-0001"
# Each service's facts consumer as declared (its version moves: notify's is v3), never a guessed name.
DURABLES = {c.service: c.durable for c in CONSUMERS if c.purpose == "facts"}


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@dataclass
class Snapshot:
    """What rewards and campaign have applied, at one moment."""

    ledger: dict[str, list[str]]  # person -> submission ids of their ledger rows (rewards' table)
    ledger_submissions: set[str]  # every submission id in the ledger (person and unit rows)
    points: dict[str, tuple[int, int]]  # person -> (points, number of reasons) on the priority list
    assignments: dict[str, dict[str, Any]]  # assignee -> their experience assignment (campaign's API)

    @property
    def fulfilled(self) -> dict[str, str | None]:
        return {
            a: row["submission_id"] for a, row in self.assignments.items() if row["status"] == "fulfilled"
        }


@dataclass
class FaultSystem:
    """A ``System`` on servers the test owns, plus the direct URLs of its databases (never through a proxy)."""

    system: System
    databases: dict[str, str]  # direct URLs, for the test's own reads
    tokens: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        *,
        test_servers: TestServers,
        nats_url: str,
        prefix: str,
        workdir: Path,
        officials: int = 0,
        extra_env: dict[str, str] | None = None,
        proxies: dict[str, TcpProxy] | None = None,
        services: tuple[str, ...] = CORE_SERVICES,
    ) -> FaultSystem:
        """Fresh databases for all four services (``hoithi migrate`` migrates all four), the services of
        ``services`` started; a service in ``proxies`` reaches its database through that proxy."""
        databases = {s: test_servers.create_database(f"{s}_{prefix}") for s in SERVICES}
        routed = {
            s: via_proxy(u, proxies[s]) if proxies and s in proxies else u for s, u in databases.items()
        }
        seed = seed_with_officials(workdir / "seed", officials) if officials else SEED
        system = System(
            nats_url=nats_url,
            prefix=prefix,
            workdir=workdir,
            database_urls=routed,
            seed_dir=seed,
            extra_env=dict(extra_env or {}),
            services=services,
        )
        return cls(system, databases)

    def stop(self, grace: float) -> None:
        """SIGTERM every service at once, SIGKILL what is still running after ``grace`` seconds, then stop the
        rest of the System (its mail sink)."""
        procs = list(self.system.procs.values())
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.system.stop()

    @property
    def stream(self) -> str:
        return self.system.stream

    @property
    def deadletter_stream(self) -> str:
        return f"{self.system.stream}_DL"

    def subject(self, type_: str, tenant: str = TENANT) -> str:
        return f"{self.system.prefix}.{tenant}.{type_}"

    def token(self, person: str) -> str:
        if person not in self.tokens:
            self.tokens[person] = self.system.token(person)
        return self.tokens[person]

    def headers(self, person: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(person)}"}

    # ------------------------------------------------------------------ NATS
    async def connect(self) -> nats.NATS:
        return await nats.connect(
            self.system.nats_url, connect_timeout=5, max_reconnect_attempts=0,
            **nats_client_options(self.system.nats_url),
        )  # fmt: skip

    async def consumer_drained(self, service: str) -> bool:
        """The service's facts consumer has nothing pending and nothing delivered but unacknowledged."""
        nc = await self.connect()
        try:
            info = await nc.jetstream().consumer_info(self.stream, DURABLES[service])
            return bool(info.num_pending == 0 and info.num_ack_pending == 0)
        finally:
            await nc.close()

    async def messages(
        self, stream: str, subject: str | None = None
    ) -> list[tuple[int, dict[str, str], bytes]]:
        """(stream sequence, headers, data) of every message of ``stream`` (on ``subject`` only, if given)."""
        nc = await self.connect()
        js = nc.jetstream()
        out: list[tuple[int, dict[str, str], bytes]] = []
        try:
            try:
                info = await js.stream_info(stream)
            except NotFoundError:
                return []
            if not info.state.messages:
                return []
            seq = max(info.state.first_seq, 1)
            last = info.state.last_seq
            while seq <= last:  # bounded by the stream's last sequence
                try:
                    m = await js.get_msg(stream, seq, subject=subject, next=True)
                except NotFoundError:
                    break
                out.append((m.seq, dict(m.headers or {}), m.data or b""))
                seq = m.seq + 1
        finally:
            await nc.close()
        return out

    async def events(self, type_: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """Every event of ``type_`` on the events stream: (headers, CloudEvent)."""
        return [(h, json.loads(d)) for _, h, d in await self.messages(self.stream, self.subject(type_))]

    async def deadletters(self) -> list[dict[str, Any]]:
        return [json.loads(d) for _, _, d in await self.messages(self.deadletter_stream)]

    # ------------------------------------------------------------------ readiness of the data
    async def outbox_unpublished(self, service: str) -> int:
        rows = await query(
            self.databases[service], "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"
        )
        return int(rows[0]["n"])

    async def settled(self, services: Iterable[str] | None = None) -> bool:
        """Campaign has published everything the seed wrote, and each service's consumer has caught up."""
        if await self.outbox_unpublished("campaign"):
            return False
        for s in services or self.system.services:
            if not await self.consumer_drained(s):
                return False
        return True

    async def wait_settled(self, timeout: float = 60) -> None:
        """After start: readiness says the processes are up, not that submissions' and rewards' copies of the
        directory are loaded (a POST before that is a 403). Wait for that."""
        await eventually(self.settled, timeout=timeout, interval=0.2, message="seed facts applied everywhere")

    # ------------------------------------------------------------------ HTTP
    def post_report(self, person: str, key: str | None = None) -> httpx.Response:
        return self.system.submit_report(person, key=key)

    async def ready_status(self, service: str) -> int:
        async with httpx.AsyncClient(timeout=5) as c:
            return (await c.get(f"{self.system.url(service)}/health/ready")).status_code

    # ------------------------------------------------------------------ what was applied
    async def snapshot(self) -> Snapshot:
        rows = await query(
            self.databases["rewards"], "SELECT participant_kind, participant_id, submission_id FROM ledger"
        )
        ledger: dict[str, list[str]] = {}
        for r in rows:
            if r["participant_kind"] == "person":
                ledger.setdefault(r["participant_id"], []).append(r["submission_id"])
        async with httpx.AsyncClient(timeout=30, headers=self.headers(READER)) as c:
            pl = await c.get(
                f"{self.system.url('rewards')}/tenants/{TENANT}/editions/{EDITION}/priority-list"
            )
            pl.raise_for_status()
        return Snapshot(
            ledger=ledger,
            ledger_submissions={r["submission_id"] for r in rows},
            points={p["person_id"]: (p["points"], len(p["reasons"])) for p in pl.json()["persons"]},
            assignments=await self.assignments(),
        )

    async def assignments(self) -> dict[str, dict[str, Any]]:
        """assignee -> their experience-report assignment, from campaign's API."""
        async with httpx.AsyncClient(timeout=30, headers=self.headers(READER)) as c:
            r = await c.get(
                f"{self.system.url('campaign')}/tenants/{TENANT}/editions/{EDITION}/assignments",
                params={"part": EXPERIENCE},
            )
            r.raise_for_status()
        return {a["assignee_id"]: a for a in r.json()}

    async def assert_applied_exactly_once(self, accepted: dict[str, str], timeout: float = 60) -> Snapshot:
        """Every accepted submission (author -> submission id) applied exactly once in rewards and campaign,
        and nothing else applied. Waits (bounded) until both consumers have caught up, then checks."""
        want = set(accepted)

        async def converged() -> Snapshot | None:
            snap = await self.snapshot()
            if set(snap.ledger) != want or set(snap.fulfilled) != want:
                return None
            if await self.outbox_unpublished("campaign"):
                return None
            for s in ("campaign", "rewards"):
                if not await self.consumer_drained(s):
                    return None
            return snap

        try:
            await eventually(
                converged, timeout=timeout, interval=0.25, message="accepted submissions applied"
            )
        except AssertionError as error:
            snap = await self.snapshot()
            raise AssertionError(
                f"{error}\n  accepted {len(want)}; rewards ledger persons {len(snap.ledger)} "
                f"(missing {sorted(want - set(snap.ledger))[:10]}, extra {sorted(set(snap.ledger) - want)[:10]}); "
                f"campaign fulfilled {len(snap.fulfilled)} (missing {sorted(want - set(snap.fulfilled))[:10]}, "
                f"extra {sorted(set(snap.fulfilled) - want)[:10]})"
            ) from error
        # Re-read once everything is drained: a late duplicate would show now.
        snap = await self.snapshot()

        # rewards: one ledger entry per person, for their submission; their points are one receipt's.
        assert snap.ledger == {p: [sid] for p, sid in accepted.items()}, "rewards ledger differs"
        assert snap.ledger_submissions == set(accepted.values()), "ledger rows for other submissions"
        assert {p: snap.points.get(p) for p in accepted} == {p: (1, 1) for p in accepted}, (
            "priority-list points"
        )
        assert set(snap.points) == want, "priority list has other people"

        # campaign: each author's assignment fulfilled by that submission, and nothing else fulfilled.
        assert snap.fulfilled == accepted, "campaign assignments differ"
        fulfilled_events = await self.events("assignment.fulfilled")
        per_assignment = Counter(e["subject"] for _, e in fulfilled_events)
        expected_ids = {snap.assignments[p]["id"] for p in accepted}
        assert set(per_assignment) == expected_ids, "assignment.fulfilled for other assignments"
        twice = {a: n for a, n in per_assignment.items() if n != 1}
        assert not twice, f"assignment.fulfilled more than once on the stream: {twice}"
        by_assignment = {e["subject"]: e["data"]["submission_id"] for _, e in fulfilled_events}
        assert by_assignment == {snap.assignments[p]["id"]: sid for p, sid in accepted.items()}
        return snap

    async def concurrent_reports(
        self,
        people: list[str],
        *,
        concurrency: int = 16,
        on_answer: Any = None,
    ) -> dict[str, tuple[int, dict[str, Any] | str, float, float]]:
        """POST one report per person, ``concurrency`` at a time; person -> (status, body, sent, answered)
        (monotonic instants). ``on_answer(count_201)`` is awaited after each answer (a fault trigger)."""
        url = f"{self.system.url('submissions')}/tenants/{TENANT}/editions/{EDITION}/experience-reports"
        body = report_body()
        results: dict[str, tuple[int, dict[str, Any] | str, float, float]] = {}
        gate = asyncio.Semaphore(concurrency)
        accepted = 0
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:

            async def one(person: str) -> None:
                nonlocal accepted
                async with gate:
                    sent = time.monotonic()
                    try:
                        r = await client.post(
                            url,
                            json=body,
                            headers={**self.headers(person), "Idempotency-Key": f"burst-{person}"},
                        )
                        status, payload = r.status_code, (r.json() if r.status_code == 201 else r.text)
                    except httpx.HTTPError as exc:
                        status, payload = -1, repr(exc)
                    results[person] = (status, payload, sent, time.monotonic())
                    if status == 201:
                        accepted += 1
                if on_answer is not None:  # outside the gate: a fault trigger must not hold a slot
                    await on_answer(accepted)

            await asyncio.gather(*(one(p) for p in people))
        return results
