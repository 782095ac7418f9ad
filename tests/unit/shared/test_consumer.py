"""The subscriber helper's rules, on a real SQLite database and small fake messages (no broker)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from shared.events.envelope import Envelope
from shared.settings import Settings
from tests.support.consumers import FakeMsg, PullNC, withdrawn


async def test_an_event_is_applied_once_and_a_duplicate_is_acked_without_effect(harness: Any) -> None:
    env = withdrawn()
    first, dup = FakeMsg(env.to_json()), FakeMsg(env.to_json(), seq=2)
    await harness.consumer.process([first, dup])
    assert harness.applied == [env.id]
    assert first.log == [("ack", None)] and dup.log == [("ack", None)]
    await harness.consumer.process([FakeMsg(env.to_json(), seq=3)])
    assert harness.applied == [env.id]


async def test_an_invalid_payload_is_dead_lettered_with_its_bytes_then_acked(harness: Any) -> None:
    bad = FakeMsg(b"{not json", seq=7)
    good_env = withdrawn("s-2")
    good = FakeMsg(good_env.to_json(), seq=8)
    await harness.consumer.process([bad, good])
    assert bad.log == [("ack", None)]
    assert harness.applied == [good_env.id]
    [(subject, payload, headers)] = harness.consumer.nc.js.published
    record = json.loads(payload)
    assert subject == "hoithi-deadletter.soctrang-stnmt.rewards"
    assert record["type"] == "deadletter.recorded" and headers["Nats-Msg-Id"] == record["id"]
    assert record["data"]["reason"] == "invalid_payload"
    assert record["data"]["stream_sequence"] == 7
    import base64

    assert base64.b64decode(record["data"]["original_base64"]) == b"{not json"


async def test_a_failing_handler_naks_with_a_growing_delay_then_dead_letters_on_the_last_delivery(
    harness: Any,
) -> None:
    harness.fail["on"] = True
    env = withdrawn()
    delays = []
    for delivered in (1, 2):
        m = FakeMsg(env.to_json(), delivered=delivered)
        await harness.consumer.process([m])
        assert m.log[0][0] == "nak"
        delays.append(m.log[0][1])
    assert delays[1] > delays[0] > 0
    last = FakeMsg(env.to_json(), delivered=3)
    await harness.consumer.process([last])
    assert last.log == [("ack", None)]
    record = json.loads(harness.consumer.nc.js.published[-1][1])
    assert record["data"]["reason"] == "max_deliver_reached"
    assert harness.applied == []


async def test_a_poison_message_does_not_hold_back_the_rest_of_its_batch(harness: Any) -> None:
    good = [withdrawn(f"s-{i}") for i in range(3)]
    poison = withdrawn("s-poison")

    async def handler(conn: Any, env: Envelope) -> None:
        if env.subject == "s-poison":
            raise ValueError("cannot apply")
        harness.applied.append(env.id)

    harness.consumer.handlers["submission.withdrawn"] = handler
    msgs = [
        FakeMsg(good[0].to_json()),
        FakeMsg(poison.to_json()),
        FakeMsg(good[1].to_json()),
        FakeMsg(good[2].to_json()),
    ]
    await harness.consumer.process(msgs)
    # The failed batch's transaction rolled back: the database holds each good event once, the poison not.
    async with harness.engine.connect() as conn:
        kept = (await conn.execute(sa.select(harness.bb.inbox.c.event_id))).scalars().all()
    assert sorted(kept) == sorted(e.id for e in good)
    assert msgs[1].log[0][0] == "nak"
    assert all(m.log == [("ack", None)] for i, m in enumerate(msgs) if i != 1)


async def test_what_a_batch_shares_is_written_once_at_its_end_and_not_at_all_when_it_rolls_back(
    harness: Any,
) -> None:
    """``batch_local``: the handlers of one batch gather into one object, flushed once in the batch's
    transaction; a failed batch's object is dropped with its rollback, and the one-by-one retry gathers anew."""
    from shared.consumer import batch_local

    table = sa.Table("gathered", sa.MetaData(), sa.Column("subjects", sa.Text))
    async with harness.engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)

    class Gathered:
        def __init__(self) -> None:
            self.subjects: list[str] = []

        async def flush(self, conn: Any) -> None:
            await conn.execute(table.insert().values(subjects=",".join(self.subjects)))

    async def handler(conn: Any, env: Envelope) -> None:
        gathered = batch_local(Gathered, Gathered)
        assert gathered is not None, "a consumer's batch always has a scope"
        gathered.subjects.append(env.subject or "")
        if env.subject == "s-poison":
            raise ValueError("cannot apply")

    harness.consumer.handlers["submission.withdrawn"] = handler
    await harness.consumer.process([FakeMsg(withdrawn(s).to_json()) for s in ("s-1", "s-2", "s-3")])
    batch = [FakeMsg(withdrawn(s).to_json()) for s in ("s-4", "s-poison", "s-5")]
    await harness.consumer.process(batch)
    async with harness.engine.connect() as conn:
        rows = (await conn.execute(sa.select(table.c.subjects))).scalars().all()
    # one row for the first batch; the second rolled back whole, then each good fact got its own batch
    assert rows == ["s-1,s-2,s-3", "s-4", "s-5"]
    assert [m.log[0][0] for m in batch] == ["ack", "nak", "ack"]
    assert batch_local(Gathered, Gathered) is None  # outside a batch: the caller works inline


async def test_a_scope_on_the_same_connection_joins_the_batch_and_one_on_another_flushes_on_its_own(
    harness: Any,
) -> None:
    from shared.consumer import batch_local, batch_scope

    flushed: list[tuple[Any, int]] = []

    class Counted:
        def __init__(self) -> None:
            self.n = 0

        async def flush(self, conn: Any) -> None:
            flushed.append((conn, self.n))

    def counted() -> Counted:
        got = batch_local(Counted, Counted)
        assert got is not None
        return got

    async with harness.engine.begin() as outer:
        async with batch_scope(outer):
            counted().n += 1
            async with harness.engine.connect() as other:  # another transaction: its own batch
                async with batch_scope(other):
                    counted().n += 10
                assert flushed == [(other, 10)]
            async with batch_scope(outer):  # the same connection: still the outer batch
                counted().n += 1
            assert len(flushed) == 1
        assert flushed[1] == (outer, 2)


class LostAck(FakeMsg):
    """A message whose ack is lost because the broker is restarting (nats-py raises)."""

    async def ack(self) -> None:
        import nats.errors

        self.log.append(("ack-lost", None))
        raise nats.errors.UnexpectedEOF


async def test_the_fetch_loop_outlives_a_broker_restart_lost_fetches_and_lost_acks(harness: Any) -> None:
    """While NATS restarts, a fetch or an ack can fail in many ways: the loop goes on, the message whose ack was
    lost comes again and is applied once, and the next messages are applied."""
    import asyncio

    import nats.errors

    first, second = withdrawn("s-1"), withdrawn("s-2")
    batches: list[Any] = [
        nats.errors.UnexpectedEOF(),  # the connection broke mid-fetch
        [LostAck(first.to_json(), seq=1)],  # applied, ack lost
        nats.errors.NoRespondersError(),  # the server not up yet
        [FakeMsg(first.to_json(), seq=1, delivered=2), FakeMsg(second.to_json(), seq=2)],  # redelivered
    ]
    done = asyncio.Event()

    class Sub:
        async def fetch(self, batch: int, timeout: float) -> list[Any]:
            if not batches:
                done.set()
                await asyncio.sleep(timeout)  # a real fetch waits this long for messages
                raise nats.errors.TimeoutError
            item = batches.pop(0)
            if isinstance(item, Exception):
                raise item
            return item  # type: ignore[no-any-return]

    task = asyncio.create_task(harness.consumer.run(PullNC(Sub)))
    try:
        await asyncio.wait_for(done.wait(), 10)
        assert not task.done()  # still fetching
    finally:
        task.cancel()
    assert harness.applied == [first.id, second.id]


# ------------------------------------------------------------------ failures classified by probing the database


class HandlerBug(Exception):
    pass


async def _kept(harness: Any) -> list[str]:
    """The events whose effects committed (a rolled-back batch try leaves nothing)."""
    async with harness.engine.connect() as conn:
        return sorted((await conn.execute(sa.select(harness.bb.inbox.c.event_id))).scalars().all())


async def _no_such_table(conn: Any) -> None:
    await conn.execute(sa.text("SELECT * FROM no_such_table"))  # a real sqlite OperationalError


@pytest.mark.parametrize("failure", ["OSError", "TimeoutError", "no such table"])
async def test_a_handler_failing_like_an_outage_while_the_database_answers_is_naked_then_dead_lettered(
    harness: Any, failure: str
) -> None:
    """An OSError, a TimeoutError or an OperationalError("no such table") from a handler is not an outage when
    the database answers: the message is naked with a delay, then dead-lettered at its last delivery, while the
    others of its batch are applied — and the consumer never reports not-ready."""
    import asyncio

    async def handler(conn: Any, env: Envelope) -> None:
        if env.subject == "s-poison":
            if failure == "OSError":
                raise FileNotFoundError(2, "No such file or directory", "/templates/missing.j2")
            if failure == "TimeoutError":
                raise TimeoutError("an upstream call timed out")
            await _no_such_table(conn)
        harness.applied.append(env.id)

    harness.consumer.handlers["submission.withdrawn"] = handler
    poison, good = withdrawn("s-poison"), [withdrawn(f"s-{i}") for i in range(2)]
    first = [FakeMsg(good[0].to_json()), FakeMsg(poison.to_json(), seq=2), FakeMsg(good[1].to_json(), seq=3)]
    # Old behaviour: the batch was held forever as "database down"; a deadline turns that into a failure.
    await asyncio.wait_for(harness.consumer.process(first), 10)
    assert first[1].log[0][0] == "nak" and first[1].log[0][1] > 0
    assert first[0].log == [("ack", None)] and first[2].log == [("ack", None)]
    assert await _kept(harness) == sorted(e.id for e in good)
    assert harness.consumer.state.ready and harness.consumer.state.db_reachable

    last = FakeMsg(poison.to_json(), seq=2, delivered=3)  # max_deliver=3 in the harness
    later = withdrawn("s-later")
    await asyncio.wait_for(harness.consumer.process([last, FakeMsg(later.to_json(), seq=4)]), 10)
    assert last.log == [("ack", None)]
    [(_, payload, _)] = harness.consumer.nc.js.published
    assert json.loads(payload)["data"]["reason"] == "max_deliver_reached"
    assert await _kept(harness) == sorted(e.id for e in [*good, later])
    assert harness.consumer.state.ready


def _locked() -> sa.exc.OperationalError:
    import sqlite3

    return sa.exc.OperationalError("INSERT INTO ledger …", {}, sqlite3.OperationalError("database is locked"))


async def test_a_locked_database_is_retried_in_place_without_a_nak_and_readiness_stays_green(
    harness: Any,
) -> None:
    import asyncio

    calls: list[bool] = []  # readiness seen by each attempt

    async def handler(conn: Any, env: Envelope) -> None:
        calls.append(harness.consumer.state.ready)
        if len(calls) < 3:
            raise _locked()
        harness.applied.append(env.id)

    harness.consumer.handlers["submission.withdrawn"] = handler
    env = withdrawn()
    m = FakeMsg(env.to_json(), delivered=1)
    await asyncio.wait_for(harness.consumer.process([m]), 10)
    assert harness.applied == [env.id]
    assert [e for e, _ in m.log if e != "wpi"] == ["ack"]  # no nak: the delivery was not spent
    assert calls == [True, True, True]  # a lock is not an outage: never taken out of service


async def test_contention_that_outlasts_its_retries_is_naked_not_held(
    harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import shared.consumer

    monkeypatch.setattr(shared.consumer, "CONTENTION_RETRIES", 2)

    async def handler(conn: Any, env: Envelope) -> None:
        raise _locked()

    harness.consumer.handlers["submission.withdrawn"] = handler
    msgs = [FakeMsg(withdrawn(f"s-{i}").to_json(), seq=i) for i in range(2)]
    await asyncio.wait_for(harness.consumer.process(msgs), 10)
    for m in msgs:
        assert [e for e, _ in m.log if e != "wpi"] == ["nak"]
    assert harness.consumer.state.ready


async def test_while_the_database_is_down_in_the_one_by_one_fallback_the_rest_of_the_batch_is_kept_in_progress(
    harness: Any,
) -> None:
    """A poison message sends the batch one by one; if the database goes away then, every message still
    waiting in that batch is told "in progress", or the server redelivers it after ack_wait and spends a
    delivery."""
    import asyncio

    down = {"on": False, "g1 attempts": 0}

    class Probe:
        async def answers(self) -> bool:
            return not down["on"]

    harness.consumer.probe = Probe()

    async def handler(conn: Any, env: Envelope) -> None:
        if env.subject == "s-poison":
            raise HandlerBug("cannot apply")
        if env.subject == "s-1":
            down["g1 attempts"] += 1
            down["on"] = down["g1 attempts"] <= 2  # its first two tries fall in an outage
            if down["on"]:
                raise sa.exc.OperationalError("SELECT 1", {}, OSError("connection refused"))
        harness.applied.append(env.id)

    harness.consumer.handlers["submission.withdrawn"] = handler
    envs = [withdrawn("s-poison"), withdrawn("s-1"), withdrawn("s-2")]
    msgs = [FakeMsg(e.to_json(), seq=i) for i, e in enumerate(envs)]
    await asyncio.wait_for(harness.consumer.process(msgs), 10)
    assert msgs[0].log[0][0] == "nak"
    assert msgs[1].log[-1] == ("ack", None) and ("wpi", None) in msgs[1].log
    assert ("wpi", None) in msgs[2].log, msgs[2].log  # kept alive while s-1 waited for the database
    assert msgs[2].log[-1] == ("ack", None)
    assert await _kept(harness) == sorted([envs[1].id, envs[2].id])


async def test_a_replay_for_a_purpose_the_service_does_not_have_is_settled_not_left_pending(
    harness: Any,
) -> None:
    import asyncio

    import nats.errors

    from shared.consumer import PURPOSE_HEADER

    ours, theirs = withdrawn("s-ours"), withdrawn("s-theirs")
    foreign = FakeMsg(theirs.to_json(), headers={PURPOSE_HEADER: "retired-purpose"}, seq=1)
    own = FakeMsg(ours.to_json(), headers={PURPOSE_HEADER: "facts"}, seq=2)
    batches: list[Any] = [[foreign, own]]
    done = asyncio.Event()

    class Sub:
        async def fetch(self, batch: int, timeout: float) -> list[Any]:
            if not batches:
                done.set()
                await asyncio.sleep(timeout)
                raise nats.errors.TimeoutError
            return batches.pop(0)  # type: ignore[no-any-return]

    task = asyncio.create_task(harness.consumer.run(PullNC(Sub, durable="rewards-replay-v1"), replay=True))
    try:
        await asyncio.wait_for(done.wait(), 10)
    finally:
        task.cancel()
    assert harness.applied == [ours.id]
    assert own.log == [("ack", None)]
    assert foreign.log == [("ack", None)]  # settled: the server will not redeliver it until max_deliver


async def test_the_fetch_loop_stops_when_cancelled_even_if_the_fetch_turns_the_cancellation_into_a_timeout(
    harness: Any,
) -> None:
    """nats-py's fetch can answer a cancellation with its own TimeoutError; a loop that then went on would never
    stop (a service's shutdown, a test's teardown, hanging)."""
    import asyncio

    import nats.errors

    fetching = asyncio.Event()
    swallow = {"on": True}

    class Sub:
        async def fetch(self, batch: int, timeout: float) -> list[Any]:
            fetching.set()
            try:
                await asyncio.sleep(timeout)
            except asyncio.CancelledError:
                if swallow["on"]:
                    raise nats.errors.TimeoutError from None
                raise
            raise nats.errors.TimeoutError

    task = asyncio.create_task(harness.consumer.run(PullNC(Sub)))
    await asyncio.wait_for(fetching.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:  # the old loop went on: let a second cancellation through, so the test run can end
        swallow["on"] = False
        task.cancel()
        await asyncio.wait({task}, timeout=5)
    assert done == {task} and task.cancelled()


async def test_a_batch_slower_than_ack_wait_is_kept_in_progress_so_no_other_replica_gets_it(
    harness: Any,
) -> None:
    """With two replicas, a batch whose transaction outlasts ack_wait (a loaded machine, a big fold) would be
    redelivered to the other replica while the first still applies it, spending deliveries on both: every
    message of the batch is told "in progress" every ack_wait/3 while it is applied, then acked once."""
    import asyncio

    harness.consumer.settings = Settings(env="test", max_deliver=3, ack_wait=0.3)

    async def handler(conn: Any, env: Envelope) -> None:
        if env.subject == "s-1":
            await asyncio.sleep(0.9)  # the slow work itself: the transaction runs for 3 × ack_wait
        harness.applied.append(env.id)

    harness.consumer.handlers["submission.withdrawn"] = handler
    envs = [withdrawn("s-1"), withdrawn("s-2")]
    msgs = [FakeMsg(e.to_json(), seq=i) for i, e in enumerate(envs)]
    await asyncio.wait_for(harness.consumer.process(msgs), 10)
    for m in msgs:
        assert m.log.count(("wpi", None)) >= 2, m.log
        assert m.log[-1] == ("ack", None) and m.log.count(("ack", None)) == 1
    assert await _kept(harness) == sorted(e.id for e in envs)
