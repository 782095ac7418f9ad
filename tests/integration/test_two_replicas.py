"""Two of everything: campaign, submissions, rewards and notify each run as two processes sharing one PostgreSQL
database and the same durable pull consumers; the test spreads its reports round-robin over both submissions
replicas (a request to a dead replica goes to the other, same Idempotency-Key). N reports (2,000 here,
``HOITHI_REPLICAS_N``; 10,000 with ``make soak``) go in five bursts, each with a fault, then two faults without
reports of their own, in sequence:

1. the outbox relay of a submissions replica killed between the stream's ack and the mark;
2. a consumer replica of campaign and of rewards killed after its commit, before its ack;
3. duplicate delivery: receipts already applied published again under their ids, after the 1 s window; and a
   poison message (not JSON) dead-lettered once per consuming service, not once per replica;
4. rewards' database unreachable (both replicas, through a TCP proxy) for twice ``ack_wait`` (5 s): no delivery
   spent meanwhile (the consumer's redelivery count stays 0, its readiness red), everything applied after;
5. the nats-server SIGKILLed mid-burst and restarted on the same store and port;
6. facts whose handler raises FileNotFoundError / TimeoutError while the database answers (a test failpoint):
   dead-lettered at their last delivery by each consuming service while the burst flows, readiness green.

Then the checker (tests/support/checker.py) compares the 201s with what campaign, rewards and notify applied —
0 lost, 0 applied twice — and, once the clock passes the part's deadline, 0 false misses and every miss once.
The fixed durations are the faults' own (the outage held for 10 s, the broker down for 6 s, the 1 s duplicate
window let pass); every wait for the system polls with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from shared.devserver import NatsServer
from shared.events.envelope import deterministic_id, make_event, new_event_id
from shared.settings import SERVICES
from shared.streams import CONSUMERS
from tests.support.checker import Verdict, check, receipts
from tests.support.faults import DURABLES, EXPERIENCE, READER, FaultSystem, query
from tests.support.replicas import Answer, post_reports, replica_keys, start_replica
from tests.support.servers import TestServers
from tests.support.system import EDITION, TENANT
from tests.support.tcpproxy import TcpProxy
from tests.support.wait import eventually

pytestmark = pytest.mark.fault

N = int(os.environ.get("HOITHI_REPLICAS_N", "2000"))
REPLICAS = 2
NOT_SUBMITTING = 25  # generated officials who never report: the deadline must miss exactly them (and the seed's)
ACK_WAIT = 5.0
OUTAGE = 2 * ACK_WAIT  # seconds rewards' database stays unreachable
NATS_DOWN_AT_LEAST = 6.0  # longer than the relay's 5 s publish timeout: publishes fail and are retried
DUPLICATE_WINDOW = 1.0  # seconds: a republish after it reaches the consumers, which must drop it
REPUBLISHED = max(10, N // 20)
# The run's reports are received on 15/10/2023, before the 7-day reminders and daily lists fall due (18/10): the
# start does not mail thousands of reminders first. The experience part's deadline is 25/10/2023 (end of day).
START = "2023-10-15T09:00:00+07:00"
AFTER_DEADLINE = "2023-10-26T00:30:00+07:00"
SCALE = max(1.0, N / 2000)  # timeouts grow with N (the soak)
ENV = {
    "HOITHI_ACK_WAIT": str(ACK_WAIT),
    "HOITHI_DUPLICATE_WINDOW": str(DUPLICATE_WINDOW),
    "HOITHI_MAX_DELIVER": "5",
    "HOITHI_NAK_MAX_DELAY": "2",
    "HOITHI_FAILPOINT": "handler-raises",
}
STOP_GRACE = 3.0
FACTS_CONSUMERS = {c.service: c for c in CONSUMERS if c.purpose == "facts"}


def consuming(event_type: str) -> set[str]:
    """The services whose facts consumer takes ``event_type``."""
    return {s for s, c in FACTS_CONSUMERS.items() if event_type in c.types}


class Run:
    """The system with two replicas of everything, the test's client, and what was accepted."""

    def __init__(self, fs: FaultSystem, nats: NatsServer, proxy: TcpProxy) -> None:
        self.fs = fs
        self.system = fs.system
        self.nats = nats
        self.proxy = proxy
        self.answers: dict[str, Answer] = {}
        self.timings: dict[str, float] = {}

    def keys(self, service: str) -> list[str]:
        return replica_keys(service, REPLICAS)

    def submissions_urls(self) -> list[str]:
        return [self.system.url(k) for k in self.keys("submissions") if k in self.system.procs]

    async def restart(self, key: str, *, kill: bool = False, **env: str) -> None:
        await asyncio.to_thread(
            self.system.stop_service, key, signal.SIGKILL if kill else signal.SIGTERM, STOP_GRACE
        )
        start_replica(self.system, key, **env)
        await asyncio.to_thread(self.system.wait_ready, key, 60)

    async def burst(
        self, people: list[str], on_answer: Callable[[int], Awaitable[None]] | None = None
    ) -> dict[str, Answer]:
        answers = await post_reports(
            self.submissions_urls, people, self.fs.token, concurrency=16, on_answer=on_answer
        )
        self.answers.update(answers)
        refused = {p: (a.status, str(a.body)[:200]) for p, a in answers.items() if a.status != 201}
        assert not refused, f"{len(refused)} reports refused: {list(refused.items())[:5]}"
        return answers

    async def outboxes_drained(self) -> bool:
        for s in SERVICES:
            if await self.fs.outbox_unpublished(s):
                return False
        return True

    async def settled(self) -> bool:
        if not await self.outboxes_drained():
            return False
        for s in SERVICES:
            if not await self.fs.consumer_drained(s):
                return False
        return True

    async def wait_settled(self, what: str, timeout: float = 600) -> None:
        # A deadline, not a duration: on a shared 2-core machine under load rewards applied ~5 facts/s.
        await eventually(self.settled, timeout=timeout * SCALE, interval=0.25, message=f"settled after {what}")

    async def consumer_info(self, service: str) -> Any:
        nc = await self.fs.connect()
        try:
            return await nc.jetstream().consumer_info(self.fs.stream, DURABLES[service])
        finally:
            await nc.close()

    async def publish(self, subject: str, data: bytes, msg_id: str | None = None) -> Any:
        nc = await self.fs.connect()
        try:
            return await nc.jetstream().publish(
                subject, data, stream=self.fs.stream, headers={"Nats-Msg-Id": msg_id} if msg_id else None
            )
        finally:
            await nc.close()

    async def verdict(self) -> Verdict:
        emails = {p: f"cb{p[3:]}@example.vn" for p in self.answers}  # seed_with_officials' addresses
        return await check(
            receipts(self.answers),
            self.fs.databases,
            tenant=TENANT,
            edition=EDITION,
            part=EXPERIENCE,
            rewards_url=self.system.url("rewards"),
            reader_token=self.fs.token(READER),
            mail=self.system.mail.messages() if self.system.mail else None,
            emails=emails,
        )

    def phase(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)
        print(f"two replicas, N={N}: {name}: {self.timings[name]} s", flush=True)  # progress, with -s


@pytest.fixture
async def run(
    tmp_path: Path,
    test_servers: TestServers,
    own_nats_server: NatsServer,
    postgres_proxy: TcpProxy,
    unique_prefix: str,
) -> AsyncIterator[Run]:
    started = time.monotonic()
    fs = FaultSystem.build(
        test_servers=test_servers,
        nats_url=own_nats_server.url,
        prefix=unique_prefix,
        workdir=tmp_path,
        officials=N + NOT_SUBMITTING,
        extra_env=ENV,
        proxies={"rewards": postgres_proxy},
        services=SERVICES,
    )
    fs.system.command_timeout = 600 * SCALE
    fs.system.catch_up_timeout = 600 * SCALE  # thousands of officials' directory facts, four services
    fs.system.set_clock(START)
    r = Run(fs, own_nats_server, postgres_proxy)
    try:
        await asyncio.to_thread(fs.system.start)
        for s in SERVICES:
            for key in r.keys(s)[1:]:
                start_replica(fs.system, key)
        for s in SERVICES:
            for key in r.keys(s)[1:]:
                await asyncio.to_thread(fs.system.wait_ready, key, 60)
        await r.wait_settled("start", timeout=600)
        r.phase("start", started)
        yield r
    finally:
        fs.stop(grace=STOP_GRACE)


def _slices(people: list[str], n: int) -> list[list[str]]:
    size = len(people) // n
    return [people[i * size : (i + 1) * size if i < n - 1 else len(people)] for i in range(n)]


async def test_two_replicas_of_everything_through_every_fault_lose_nothing_and_apply_each_once(run: Run) -> None:
    t0 = time.monotonic()
    fs, system = run.fs, run.system
    people = [f"p-x{i:05d}" for i in range(N)]
    relay_slice, consumer_slice, outage_slice, broker_slice, raising_slice = _slices(people, 5)

    # -- 1. a submissions replica's relay dies between the stream's ack and the mark. ------------------------
    t = time.monotonic()
    await run.restart("submissions", HOITHI_FAILPOINT="relay-after-ack")
    dying = system.procs["submissions"]
    burst = asyncio.create_task(run.burst(relay_slice))
    await eventually(lambda: dying.poll() is not None, timeout=300, message="the relay failpoint fired")
    assert dying.returncode == 137 and "failpoint relay-after-ack" in system.log("submissions")
    await run.restart("submissions", **ENV)  # the rows it left unmarked go out again (either relay)
    await asyncio.wait_for(burst, 120 * SCALE)
    await run.wait_settled("the relay kill")
    run.phase("relay killed between ack and mark", t)

    # -- 2. a consumer replica of campaign and of rewards dies after its commit, before its ack. ------------
    t = time.monotonic()
    for s in ("campaign", "rewards"):
        await run.restart(s, HOITHI_FAILPOINT="consumer-before-ack")
    dying_consumers = {s: system.procs[s] for s in ("campaign", "rewards")}
    burst = asyncio.create_task(run.burst(consumer_slice))
    for s, p in dying_consumers.items():
        await eventually(lambda p=p: p.poll() is not None, timeout=300, message=f"{s}'s consumer failpoint")
        assert p.returncode == 137 and "failpoint consumer-before-ack" in system.log(s)
        await run.restart(s, **ENV)
    await asyncio.wait_for(burst, 120 * SCALE)
    # The killed replicas' batches come back after ack_wait to whichever replica fetches: the inbox drops them.
    await run.wait_settled("the consumer kills")
    run.phase("consumer replicas killed before ack", t)

    # -- 3. duplicate delivery, and a poison message. --------------------------------------------------------
    t = time.monotonic()
    subject = fs.subject("submission.received")
    # distinct facts: a fact the killed relay sent again after the window is in the stream twice, and publishing
    # both copies now would be one publish and one duplicate within the window
    distinct: dict[str, tuple] = {}
    for m in await fs.messages(fs.stream, subject):
        distinct.setdefault(m[1]["Nats-Msg-Id"], m)
    received = list(distinct.values())[:REPUBLISHED]
    assert len(received) == REPUBLISHED
    for _, headers, data in received:  # far past the 1 s window: the stream takes them as new messages
        ack = await run.publish(subject, data, headers["Nats-Msg-Id"])
        assert not ack.duplicate
    poison = await run.publish(subject, b"{not json")
    expected_poison = {
        deterministic_id("deadletter", s, fs.stream, poison.seq) for s in consuming("submission.received")
    }

    async def poison_recorded() -> bool:
        return {d["id"] for d in await fs.deadletters()} >= expected_poison

    await eventually(poison_recorded, timeout=120 * SCALE, message="the poison message dead-lettered by each service")
    await run.wait_settled("the republish")
    run.phase("duplicates and poison", t)

    # -- 4. rewards' database unreachable for twice ack_wait, both replicas. -----------------------------------
    t = time.monotonic()
    before = await run.consumer_info("rewards")
    assert before.num_redelivered == 0, before
    run.proxy.cut()
    cut_at = time.monotonic()
    burst = asyncio.create_task(run.burst(outage_slice))
    samples: list[tuple[int, int, list[int]]] = []  # (ack pending, redelivered, readiness of each replica)
    # The outage's own duration (at least 2 × ack_wait, and as long as the burst), sampled every 0.5 s.
    while time.monotonic() - cut_at < OUTAGE or (not burst.done() and time.monotonic() - cut_at < 300 * SCALE):
        info = await run.consumer_info("rewards")
        ready = [await fs.ready_status(k) for k in run.keys("rewards")]
        samples.append((info.num_ack_pending, info.num_redelivered, ready))
        await asyncio.sleep(0.5)
    run.proxy.restore()
    await burst
    assert time.monotonic() - cut_at >= 2 * ACK_WAIT
    assert any(pending > 0 for pending, _, _ in samples), f"rewards held nothing during the outage: {samples}"
    assert {redelivered for _, redelivered, _ in samples} == {0}, f"deliveries spent in the outage: {samples}"
    assert {s for _, _, ready in samples[-5:] for s in ready} == {503}, f"readiness during the outage: {samples}"
    await run.wait_settled("the database outage")
    after = await run.consumer_info("rewards")
    assert after.num_redelivered == 0
    run.phase(f"rewards database outage {OUTAGE:.0f}s", t)

    # -- 5. the nats-server SIGKILLed mid-burst, restarted on the same store and port. ------------------------
    t = time.monotonic()
    progress = {"accepted": 0}

    async def count(accepted: int) -> None:
        progress["accepted"] = accepted

    burst = asyncio.create_task(run.burst(broker_slice, on_answer=count))
    half = len(broker_slice) // 2
    await eventually(lambda: progress["accepted"] >= half, timeout=120 * SCALE, interval=0.01, message="half")
    await asyncio.to_thread(run.nats.kill)
    down_from = time.monotonic()
    await eventually(lambda: time.monotonic() - down_from >= NATS_DOWN_AT_LEAST, timeout=30, interval=0.05)
    during = progress["accepted"] - half
    await asyncio.to_thread(run.nats.restart)
    await asyncio.wait_for(burst, 180 * SCALE)
    assert during > 0, "no report was accepted while the broker was down"
    await run.wait_settled("the broker kill")
    run.phase("nats-server SIGKILL mid-burst", t)

    # -- 6. handlers raising OSError / TimeoutError while the database answers. -------------------------------
    t = time.monotonic()
    at = datetime.fromisoformat(START)
    failing = []
    for prefix in ("failpoint-oserror", "failpoint-timeout"):
        sid = f"{prefix}-{new_event_id()}"
        env = make_event(
            "submission.withdrawn",
            {
                "submission_id": sid,
                "kind": "experience_report",
                "part": EXPERIENCE,
                "author_id": "p-0002",
                "unit_id": "u-vp",
                "at": at,
            },
            source="submissions",
            tenant=TENANT,
            edition=EDITION,
            subject=sid,
            sequence=2,
            time=at,
        )
        ack = await run.publish(fs.subject(env.type), env.to_json(), env.id)
        failing.append(ack.seq)
    expected_failures = {
        deterministic_id("deadletter", s, fs.stream, seq)
        for s in consuming("submission.withdrawn")
        for seq in failing
    }
    readiness: list[int] = []

    async def sample_readiness() -> None:
        while True:  # until cancelled below, every 0.5 s
            for s in ("campaign", "rewards", "notify"):
                readiness.extend([await fs.ready_status(k) for k in run.keys(s)])
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_readiness())
    try:
        await run.burst(raising_slice)

        async def failures_recorded() -> list[dict[str, Any]]:
            records = [d for d in await fs.deadletters() if d["id"] in expected_failures]
            return records if {d["id"] for d in records} == expected_failures else []

        records = await eventually(failures_recorded, timeout=300 * SCALE, message="handler failures dead-lettered")
    finally:
        sampler.cancel()
    assert {d["data"]["reason"] for d in records} == {"max_deliver_reached"}
    assert {d["data"]["deliveries"] for d in records} == {5}
    assert all(
        ("FileNotFoundError" in d["data"]["error"]) or ("TimeoutError" in d["data"]["error"]) for d in records
    )
    assert readiness and set(readiness) == {200}, _tally(readiness)
    await run.wait_settled("the raising handlers")
    run.phase("handlers raising while the database answers", t)

    # -- the checker: 0 lost, 0 applied twice. ----------------------------------------------------------------
    t = time.monotonic()
    accepted = receipts(run.answers)
    assert len(accepted) == N

    async def notify_sent() -> bool:  # the receipts' mails have left (notify delivers after its commit)
        rows = await query(
            fs.databases["notify"],
            "SELECT count(*) AS n FROM deliveries WHERE template = 'submission.received' AND status = 'sent'",
        )
        return int(rows[0]["n"]) >= N

    await eventually(notify_sent, timeout=600 * SCALE, interval=0.5, message="receipt mails sent")
    verdict = await run.verdict()
    assert verdict.ok, verdict.summary()
    dead = await fs.deadletters()
    assert {d["id"] for d in dead} == expected_poison | expected_failures, [
        (d["data"]["service"], d["data"]["reason"], d["data"]["error"][:100])
        for d in dead
        if d["id"] not in expected_poison | expected_failures
    ]
    run.phase("checker", t)

    # -- past the deadline: every assignee without a report missed once, nobody with one. --------------------
    t = time.monotonic()
    open_rows = await query(
        fs.databases["campaign"],
        "SELECT id FROM assignments WHERE tenant = $1 AND edition = $2 AND part = $3 AND status = 'open'",
        TENANT,
        EDITION,
        EXPERIENCE,
    )
    must_miss = {r["id"] for r in open_rows}
    assert len(must_miss) >= NOT_SUBMITTING
    system.set_clock(AFTER_DEADLINE)

    async def misses() -> set[str]:
        rows = await query(
            fs.databases["campaign"], "SELECT payload FROM outbox WHERE event_type = 'deadline.missed'"
        )
        found = {
            json.loads(r["payload"])["data"]["assignment_id"]
            for r in rows
            if json.loads(r["payload"])["data"]["part"] == EXPERIENCE
        }
        return found if found >= must_miss else set()

    missed = await eventually(misses, timeout=600 * SCALE, interval=0.5, message="the deadline's misses")
    await run.wait_settled("the deadline")
    verdict = await run.verdict()
    assert verdict.ok, verdict.summary()
    assert missed == must_miss and verdict.misses == len(must_miss), (
        sorted(missed - must_miss)[:5],
        verdict.summary(),
    )
    run.phase("deadline passed", t)
    run.timings["total"] = round(time.monotonic() - t0 + run.timings["start"], 1)
    print(f"\ntwo replicas, N={N}: {verdict.summary()}\n  timings (s): {json.dumps(run.timings)}")


def _tally(values: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out
