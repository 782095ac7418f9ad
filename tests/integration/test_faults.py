"""Fault tests of the event backbone: each on servers the test owns (its own nats-server, fresh databases, a TCP
proxy in front of PostgreSQL), each ending with the same question — was every accepted submission (201)
applied exactly once in rewards (one ledger entry, one receipt's points) and in campaign (the assignment
fulfilled, one ``assignment.fulfilled`` on the stream per assignment), and nothing else applied?

The services run as real processes (``tests.support.system.System``); notify is left out (no scenario here
needs it). Every wait polls with a deadline; the only fixed durations are the faults' own (an outage held for
10 s, the 1 s duplicate window let pass) and each says so where it happens.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.devserver import NatsServer
from shared.events.envelope import Envelope, deterministic_id, make_event, new_event_id
from tests.support.faults import EXPERIENCE, FaultSystem, query
from tests.support.servers import TestServers
from tests.support.system import DEMO_START, EDITION, TENANT
from tests.support.tcpproxy import TcpProxy
from tests.support.wait import eventually

pytestmark = pytest.mark.fault

OFFICIAL = "p-0002"  # Trần Văn Minh, an official of the seed with an experience-report assignment
OTHER = "p-0005"  # Đặng Minh Tuấn, another one
SHORT_WINDOW = {"HOITHI_DUPLICATE_WINDOW": "1"}  # seconds; streams are declared with it by `hoithi streams`
PAST_SHORT_WINDOW = 1.5  # seconds after the first publish: the stream has forgotten the id by then

MakeSystem = Callable[..., Awaitable[FaultSystem]]

# Stopping is not what these tests are about: a stop is SIGTERM with this grace (a service stops in well under a
# second), then SIGKILL, so a slow shutdown can never stretch the run.
STOP_GRACE = 3.0


@pytest.fixture
async def make_system(
    tmp_path: Path, test_servers: TestServers, own_nats_server: NatsServer, unique_prefix: str
) -> AsyncIterator[MakeSystem]:
    """Start a System on this test's own nats-server and fresh databases, seeded and settled."""
    built: list[FaultSystem] = []

    async def make(**options: Any) -> FaultSystem:
        fs = FaultSystem.build(
            test_servers=test_servers,
            nats_url=own_nats_server.url,
            prefix=unique_prefix,
            workdir=tmp_path,
            **options,
        )
        built.append(fs)
        fs.system.start()
        await fs.wait_settled()
        return fs

    yield make
    for fs in built:
        fs.stop(grace=STOP_GRACE)


async def _copies_on_stream(
    fs: FaultSystem, submission_id: str
) -> list[tuple[dict[str, str], dict[str, Any]]]:
    return [(h, e) for h, e in await fs.events("submission.received") if e["subject"] == submission_id]


async def _in_inbox(fs: FaultSystem, service: str, event_ids: list[str]) -> bool:
    rows = await query(
        fs.databases[service],
        "SELECT event_id FROM inbox WHERE purpose = 'facts' AND event_id = ANY($1::text[])",
        event_ids,
    )
    return {r["event_id"] for r in rows} == set(event_ids)


# ---------------------------------------------------------------------------------------------------- (a)


@pytest.mark.parametrize("window", [None, SHORT_WINDOW], ids=["within-duplicate-window", "after-1s-window"])
async def test_relay_killed_between_ack_and_mark_republishes_and_each_consumer_applies_once(
    make_system: MakeSystem, window: dict[str, str] | None
) -> None:
    fs = await make_system(extra_env=window or {})
    system = fs.system
    system.stop_service("submissions", timeout=STOP_GRACE)
    system.start_service("submissions", HOITHI_FAILPOINT="relay-after-ack")
    system.wait_ready("submissions")

    r = fs.post_report(OFFICIAL)
    assert r.status_code == 201, r.text
    sid = r.json()["submission_id"]

    dying = system.procs["submissions"]
    await eventually(lambda: dying.poll() is not None, timeout=15, message="the failpoint killed submissions")
    exited_at = time.monotonic()
    assert dying.returncode == 137
    assert "failpoint relay-after-ack" in system.log("submissions")
    system.stop_service("submissions")  # forget the dead process
    # The stream acknowledged the event; the row was never marked.
    assert len(await _copies_on_stream(fs, sid)) == 1
    assert await fs.outbox_unpublished("submissions") == 1

    if window:
        # The scenario's own timing, not a wait for the system: restart only once the 1 s window has passed
        # since the first publish (acknowledged before the exit), so the republish is not dropped by the stream.
        await eventually(lambda: time.monotonic() - exited_at >= PAST_SHORT_WINDOW, timeout=5, interval=0.05)
    system.start_service("submissions")
    system.wait_ready("submissions")

    async def republished() -> bool:
        return await fs.outbox_unpublished("submissions") == 0

    await eventually(republished, timeout=20, message="the restarted relay republished and marked the row")
    copies = await _copies_on_stream(fs, sid)
    assert len(copies) == (2 if window else 1), [e["id"] for _, e in copies]
    assert {(h.get("Nats-Msg-Id"), e["id"]) for h, e in copies} == {(copies[0][1]["id"], copies[0][1]["id"])}

    await fs.assert_applied_exactly_once({OFFICIAL: sid})


# ---------------------------------------------------------------------------------------------------- (b)


@pytest.mark.parametrize("window", [None, SHORT_WINDOW], ids=["within-duplicate-window", "after-1s-window"])
async def test_event_published_again_under_its_id_is_applied_once(
    make_system: MakeSystem, window: dict[str, str] | None
) -> None:
    fs = await make_system(extra_env=window or {})
    r = fs.post_report(OFFICIAL)
    assert r.status_code == 201, r.text
    sid = r.json()["submission_id"]

    async def on_stream() -> list[tuple[int, dict[str, str], bytes]]:
        return [
            m
            for m in await fs.messages(fs.stream, fs.subject("submission.received"))
            if json.loads(m[2])["subject"] == sid
        ]

    ((_, headers, original),) = await eventually(on_stream, timeout=10, message="the receipt on the stream")
    first_seen = time.monotonic()
    event_id = json.loads(original)["id"]
    assert headers["Nats-Msg-Id"] == event_id
    await fs.assert_applied_exactly_once({OFFICIAL: sid})

    if window:
        # The scenario's own timing: publish again once the 1 s duplicate window has passed.
        await eventually(lambda: time.monotonic() - first_seen >= PAST_SHORT_WINDOW, timeout=5, interval=0.05)
    nc = await fs.connect()
    try:
        ack = await nc.jetstream().publish(
            fs.subject("submission.received"), original, stream=fs.stream, headers={"Nats-Msg-Id": event_id}
        )
    finally:
        await nc.close()
    assert bool(ack.duplicate) is (window is None)

    copies = await on_stream()
    assert len(copies) == (2 if window else 1)
    assert {m[2] for m in copies} == {original}
    # Both consumers have had the second copy (drained) and their inboxes dropped it.
    await fs.assert_applied_exactly_once({OFFICIAL: sid})


async def test_withdrawal_delivered_before_its_receipt_leaves_nothing_applied(
    make_system: MakeSystem,
) -> None:
    fs = await make_system()
    unit = (await fs.assignments())[OTHER]["unit_id"]
    sid = new_event_id()
    at = datetime.fromisoformat(DEMO_START)
    common = {"source": "submissions", "tenant": TENANT, "edition": EDITION, "subject": sid}
    received = make_event(
        "submission.received",
        {
            "submission_id": sid,
            "kind": "experience_report",
            "part": EXPERIENCE,
            "receipt_number": "2023-TN-999001",
            "received_at": at,
            "author_id": OTHER,
            "unit_id": unit,
            "authors": [{"person_id": OTHER, "name": "Đặng Minh Tuấn", "share": 100}],
            "procedures": ["1.004227", "1.000494", "1.001234", "2.000123", "1.011442"],
        },
        sequence=1,
        time=at,
        **common,
    )
    withdrawn = make_event(
        "submission.withdrawn",
        {
            "submission_id": sid,
            "kind": "experience_report",
            "part": EXPERIENCE,
            "author_id": OTHER,
            "unit_id": unit,
            "at": at + timedelta(minutes=5),
            "reason": "Nộp nhầm",
        },
        sequence=2,
        time=at + timedelta(minutes=5),
        **common,
    )
    nc = await fs.connect()
    try:
        js = nc.jetstream()
        for env in (withdrawn, received):  # the withdrawal first
            ack = await js.publish(
                fs.subject(env.type), env.to_json(), stream=fs.stream, headers={"Nats-Msg-Id": env.id}
            )
            assert not ack.duplicate
    finally:
        await nc.close()

    ids = [withdrawn.id, received.id]

    async def both_processed() -> bool:
        for service in ("campaign", "rewards"):
            if not (await _in_inbox(fs, service, ids) and await fs.consumer_drained(service)):
                return False
        return True

    await eventually(both_processed, timeout=20, message="campaign and rewards processed both facts")
    snap = await fs.snapshot()
    assert OTHER not in snap.ledger and sid not in snap.ledger_submissions
    assert snap.assignments[OTHER]["status"] == "open"
    assert snap.assignments[OTHER]["submission_id"] is None
    assert not [e for _, e in await fs.events("assignment.fulfilled") if e["data"]["submission_id"] == sid]

    # The consumers are still live; a real report afterwards is the only thing applied.
    r = fs.post_report(OFFICIAL)
    assert r.status_code == 201, r.text
    await fs.assert_applied_exactly_once({OFFICIAL: r.json()["submission_id"]})


# ---------------------------------------------------------------------------------------------------- (c)

OUTAGE = 10.0  # seconds the rewards database stays unreachable


async def test_rewards_database_outage_holds_events_until_it_returns(
    make_system: MakeSystem, postgres_proxy: TcpProxy
) -> None:
    people = [f"p-x{i:05d}" for i in range(20)]
    fs = await make_system(officials=len(people), proxies={"rewards": postgres_proxy})

    postgres_proxy.cut()
    cut_at = time.monotonic()

    async def rewards_not_ready() -> bool:
        return await fs.ready_status("rewards") == 503

    await eventually(rewards_not_ready, timeout=5, message="rewards readiness red during the outage")

    results = await fs.concurrent_reports(people, concurrency=8)
    assert {p: r[0] for p, r in results.items()} == {p: 201 for p in people}, results
    accepted = {p: r[1]["submission_id"] for p, r in results.items()}  # type: ignore[index]

    # Campaign's database is fine: it fulfils all 20 during rewards' outage.
    async def campaign_fulfilled() -> bool:
        a = await fs.assignments()
        return all(a[p]["status"] == "fulfilled" for p in people)

    await eventually(campaign_fulfilled, timeout=20, message="campaign fulfilled during rewards' outage")

    # Hold the outage for its duration (the scenario's own time), sampling readiness meanwhile: the sleep is
    # the sampling period of an outage of fixed length, not a wait for a condition.
    readiness: list[int] = []
    while time.monotonic() - cut_at < OUTAGE:
        readiness.append(await fs.ready_status("rewards"))
        await asyncio.sleep(0.5)
    assert readiness and set(readiness) == {503}, readiness
    assert not (await query(fs.databases["rewards"], "SELECT submission_id FROM ledger"))
    postgres_proxy.restore()

    async def rewards_ready() -> bool:
        return await fs.ready_status("rewards") == 200

    await eventually(rewards_ready, timeout=30, message="rewards ready again after the outage")
    await fs.assert_applied_exactly_once(accepted, timeout=60)
    assert await fs.deadletters() == []


# ---------------------------------------------------------------------------------------------------- (d)


async def test_malformed_payloads_are_dead_lettered_and_later_events_still_flow(
    make_system: MakeSystem,
) -> None:
    fs = await make_system()
    subject = fs.subject("submission.received")
    sid = new_event_id()
    incomplete = Envelope(  # a well-formed CloudEvent whose data misses the required fields
        id=new_event_id(),
        source="/hoithi/submissions",
        type="submission.received",
        time=datetime.fromisoformat(DEMO_START),
        subject=sid,
        data={"submission_id": sid, "kind": "experience_report"},
        tenant=TENANT,
        edition=EDITION,
        sequence=1,
        correlationid=sid,
    ).to_json()
    nc = await fs.connect()
    try:
        js = nc.jetstream()
        not_json = await js.publish(subject, b"{not json", stream=fs.stream)
        bad_data = await js.publish(
            subject, incomplete, stream=fs.stream, headers={"Nats-Msg-Id": json.loads(incomplete)["id"]}
        )
    finally:
        await nc.close()
    originals = {not_json.seq: b"{not json", bad_data.seq: incomplete}

    r = fs.post_report(OFFICIAL)  # behind the two bad messages on the stream
    assert r.status_code == 201, r.text

    expected = {
        deterministic_id("deadletter", service, fs.stream, seq): (service, seq)
        for service in ("campaign", "rewards")
        for seq in originals
    }

    async def recorded() -> list[dict[str, Any]]:
        records = await fs.deadletters()
        return records if {d["id"] for d in records} >= set(expected) else []

    records = await eventually(recorded, timeout=20, message="dead letters of campaign and rewards")
    assert sorted(d["id"] for d in records) == sorted(expected)  # nothing else dead-lettered
    for d in records:
        service, seq = expected[d["id"]]
        assert d["type"] == "deadletter.recorded"
        assert d["data"]["service"] == service and d["data"]["consumer"] == f"{service}-facts-v1"
        assert d["data"]["reason"] == "invalid_payload"
        assert d["data"]["original_subject"] == subject
        assert d["data"]["stream"] == fs.stream and d["data"]["stream_sequence"] == seq
        assert base64.b64decode(d["data"]["original_base64"]) == originals[seq]

    await fs.assert_applied_exactly_once({OFFICIAL: r.json()["submission_id"]})

    listed = json.loads(fs.system.hoithi("deadletters", "list", "--json"))
    assert {d["id"]: (d["data"]["service"], d["data"]["reason"]) for d in listed} == {
        i: (service, "invalid_payload") for i, (service, _) in expected.items()
    }


# ---------------------------------------------------------------------------------------------------- (e)

BURST = 500
KILL_AT = 250  # accepted reports before the nats-server is SIGKILLed
DURING_OUTAGE = 100  # reports accepted while it is down, before it restarts
# …and it stays down at least this long (the scenario's own duration): longer than the relay's 5 s publish
# timeout, so publishes fail and are retried, rather than only buffered by the client across a short blip.
NATS_DOWN_AT_LEAST = 6.0


async def test_nats_server_killed_mid_burst_loses_nothing_and_applies_each_once(
    make_system: MakeSystem, own_nats_server: NatsServer
) -> None:
    people = [f"p-x{i:05d}" for i in range(BURST)]
    # An ack lost in the crash is redelivered after ack_wait (30 s by default) and dropped by the inbox; a
    # shorter ack_wait (declared with the consumers by `hoithi streams`) only brings that redelivery forward.
    fs = await make_system(officials=BURST, extra_env={"HOITHI_ACK_WAIT": "5"})

    progress = {"accepted": 0, "done": False}

    async def count(accepted: int) -> None:
        progress["accepted"] = accepted

    burst = asyncio.create_task(fs.concurrent_reports(people, concurrency=16, on_answer=count))
    burst.add_done_callback(lambda _: progress.update(done=True))
    await eventually(
        lambda: progress["accepted"] >= KILL_AT, timeout=60, interval=0.01, message="half accepted"
    )
    await asyncio.to_thread(own_nats_server.kill)
    down_from, at_kill = time.monotonic(), progress["accepted"]
    await eventually(
        lambda: progress["accepted"] >= at_kill + DURING_OUTAGE or progress["done"],
        timeout=60,
        interval=0.01,
        message="reports accepted while NATS is down",
    )
    await eventually(lambda: time.monotonic() - down_from >= NATS_DOWN_AT_LEAST, timeout=10, interval=0.05)
    down_until = time.monotonic()
    await asyncio.to_thread(own_nats_server.restart)
    results = await asyncio.wait_for(burst, timeout=120)

    refused = {p: r[:2] for p, r in results.items() if r[0] != 201}
    assert not refused, refused
    during = [p for p, r in results.items() if r[2] >= down_from and r[3] <= down_until]
    assert len(during) >= 20, f"only {len(during)} POSTs fell inside the outage"
    accepted = {p: r[1]["submission_id"] for p, r in results.items()}  # type: ignore[index]

    async def all_published() -> bool:
        return await fs.outbox_unpublished("submissions") == 0

    await eventually(all_published, timeout=60, message="submissions' outbox drained after the restart")
    retried = await query(fs.databases["submissions"], "SELECT count(*) AS n FROM outbox WHERE attempts > 0")
    assert retried[0]["n"] > 0, "the relay never felt the outage: nothing was retried"
    received = Counter(e["subject"] for _, e in await fs.events("submission.received"))
    assert set(received) == set(accepted.values())
    assert {s: n for s, n in received.items() if n != 1} == {}, "a receipt twice on the stream"

    await fs.assert_applied_exactly_once(accepted, timeout=90)
    assert await fs.deadletters() == []
