"""The unit of work on a real SQLite database: state, events and the idempotent answer commit together or not at
all; the relay is woken and the callbacks run only after the commit; a batch rolls back only the use case that
refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import Clock
from shared.db import Backbone, backbone_tables, make_engine
from shared.errors import DomainError, Refusal
from shared.idempotency import Idempotency
from shared.outbox import Outbox
from shared.problems import STATUS_OF_REFUSAL
from shared.settings import Settings
from shared.uow import Call, Done, Idempotent, UnitOfWork, run, run_batch

T = datetime(2023, 10, 20, 2, 0, tzinfo=UTC)
md = sa.MetaData()
BACKBONE = backbone_tables(md)
notes = sa.Table("notes", md, sa.Column("id", sa.String(20), primary_key=True), sa.Column("text", sa.Text))
copies = sa.Table(
    "copies",
    md,
    sa.Column("id", sa.String(20), primary_key=True),
    sa.Column("sequence", sa.Integer),
    sa.Column("doc", sa.Text),
)


@dataclass
class Wiring:
    engine: AsyncEngine
    outbox: Outbox
    idempotency: Idempotency
    backbone: Backbone = BACKBONE
    wakes: list[str] = field(default_factory=list)

    def now(self) -> datetime:
        return T


@pytest.fixture
async def rt(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'uow.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(md.create_all)
    wiring = Wiring(
        engine, Outbox(BACKBONE, Settings(env="test"), "submissions", Clock()), Idempotency(BACKBONE)
    )
    wiring.outbox.on_commit = lambda: wiring.wakes.append("relay")
    yield wiring
    await engine.dispose()


@dataclass(frozen=True)
class Write:
    note: str
    refuse: bool = False


async def write(uow: UnitOfWork[Wiring], cmd: Write) -> dict[str, Any]:
    """Writes a note and its event; asks to be told after the commit (what it sees then is committed)."""
    await uow.conn.execute(notes.insert().values(id=cmd.note, text="x"))
    await uow.emit(
        "submission.withdrawn",
        {
            "submission_id": cmd.note,
            "kind": "experience_report",
            "part": "p",
            "author_id": "a",
            "unit_id": "u",
            "at": T,
        },
        tenant="soctrang-stnmt",
        subject=cmd.note,
    )
    uow.after_commit(lambda: uow.rt.wakes.append(f"after {cmd.note}"))
    if cmd.refuse:
        raise DomainError(Refusal.CONFLICT, "Already decided.", "Đã quyết định.", code="decided")
    return {"note": cmd.note}


async def _state(rt: Wiring) -> tuple[list[str], int, int]:
    async with rt.engine.connect() as conn:
        ids = list((await conn.execute(sa.select(notes.c.id).order_by(notes.c.id))).scalars())
        events = (await conn.execute(sa.select(sa.func.count()).select_from(BACKBONE.outbox))).scalar_one()
        keys = (await conn.execute(sa.select(sa.func.count()).select_from(BACKBONE.idempotency))).scalar_one()
    return ids, events, keys


async def test_state_event_and_answer_commit_together_then_the_relay_wakes(rt: Wiring) -> None:
    done = await run(rt, write, Write("n-1"), idempotent=Idempotent("t|p|notes", "k-1", {"note": "n-1"}, 201))
    assert done == Done({"note": "n-1"})
    assert await _state(rt) == (["n-1"], 1, 1)
    assert rt.wakes == ["relay", "after n-1"]  # the relay first, then the callbacks, after the commit


async def test_a_refusal_leaves_nothing_behind_and_wakes_nobody(rt: Wiring) -> None:
    with pytest.raises(DomainError):
        await run(rt, write, Write("n-1", refuse=True), idempotent=Idempotent("t|p|notes", "k-1", {}))
    assert await _state(rt) == ([], 0, 0)
    assert rt.wakes == []


async def test_a_retry_gets_the_first_answer_and_runs_nothing(rt: Wiring) -> None:
    key = Idempotent("t|p|notes", "k-1", {"note": "n-1"}, 201)
    await run(rt, write, Write("n-1"), idempotent=key)
    again = await run(rt, write, Write("n-1"), idempotent=key)  # would fail on the primary key if it ran
    assert again.replayed is not None and (again.replayed.status, again.replayed.body) == (
        201,
        {"note": "n-1"},
    )
    with pytest.raises(RuntimeError):
        again.unwrap()
    with pytest.raises(DomainError) as reused:
        await run(rt, write, Write("n-2"), idempotent=Idempotent("t|p|notes", "k-1", {"note": "n-2"}))
    assert (STATUS_OF_REFUSAL[reused.value.refusal], reused.value.code) == (422, "idempotency_key_reused")
    assert await _state(rt) == (["n-1"], 1, 1)


async def test_a_batch_rolls_back_only_the_use_case_that_refused(rt: Wiring) -> None:
    outcomes = await run_batch(
        rt,
        [
            Call(write, Write("n-1"), Idempotent("t|p|notes", "k-1", {"n": 1})),
            Call(write, Write("n-2", refuse=True), Idempotent("t|p|notes", "k-2", {"n": 2})),
            Call(write, Write("n-3")),
        ],
    )
    assert outcomes[0] == Done({"note": "n-1"}) and outcomes[2] == Done({"note": "n-3"})
    assert isinstance(outcomes[1], DomainError) and outcomes[1].code == "decided"
    assert await _state(rt) == (["n-1", "n-3"], 2, 1)  # n-2's note, event and answer rolled back
    assert rt.wakes == ["relay", "after n-1", "after n-3"]  # one commit, one wake


async def test_a_joined_unit_of_work_writes_in_its_owners_transaction(rt: Wiring) -> None:
    async with rt.engine.begin() as conn:  # a consumer's batch
        uow = UnitOfWork.joining(rt, conn)
        with pytest.raises(RuntimeError):
            await write(uow, Write("n-1"))  # no after_commit: the owner commits (and wakes the relay)
        assert (await conn.execute(sa.select(sa.func.count()).select_from(BACKBONE.outbox))).scalar_one() == 1
        await conn.rollback()  # the owner decides: nothing of it stays
    assert await _state(rt) == ([], 0, 0)
    assert rt.wakes == []


async def test_the_newest_fact_of_a_copy_wins_whatever_the_order_of_arrival(rt: Wiring) -> None:
    async def keep(uow: UnitOfWork[Wiring], fact: tuple[int, str]) -> None:
        await uow.upsert_newer(copies, {"id": "u-1", "sequence": fact[0], "doc": fact[1]})

    for fact in [(2, "renamed"), (1, "created"), (3, "merged"), (2, "renamed")]:
        await run(rt, keep, fact)
    async with rt.engine.connect() as conn:
        assert (await conn.execute(sa.select(copies.c.sequence, copies.c.doc))).one() == (3, "merged")


def _locked() -> sa.exc.OperationalError:
    import sqlite3

    return sa.exc.OperationalError("INSERT INTO notes …", {}, sqlite3.OperationalError("database is locked"))


@dataclass
class Flaky:
    """Writes like ``write``, but the first ``contended`` attempts meet a locked database after writing."""

    contended: int
    attempts: int = 0
    error: Exception = field(default_factory=_locked)


async def flaky_write(uow: UnitOfWork[Wiring], cmd: Flaky) -> dict[str, Any]:
    cmd.attempts += 1
    answer = await write(uow, Write(f"n-{cmd.attempts}"))
    if cmd.attempts <= cmd.contended:
        raise cmd.error
    return answer


async def test_contention_runs_the_whole_unit_again_and_only_the_last_attempt_commits(rt: Wiring) -> None:
    cmd = Flaky(contended=2)
    done = await run(rt, flaky_write, cmd, idempotent=Idempotent("t|p|notes", "k-1", {"n": 1}, 201))
    assert cmd.attempts == 3 and done == Done({"note": "n-3"})
    assert await _state(rt) == (["n-3"], 1, 1)  # the contended attempts left nothing behind
    assert rt.wakes == ["relay", "after n-3"]


async def test_contention_that_outlasts_the_attempts_is_a_503_with_retry_after_and_changes_nothing(
    rt: Wiring,
) -> None:
    cmd = Flaky(contended=99)
    with pytest.raises(DomainError) as refused:
        await run(rt, flaky_write, cmd, idempotent=Idempotent("t|p|notes", "k-1", {"n": 1}, 201))
    assert refused.value.refusal is Refusal.UNAVAILABLE and refused.value.code == "busy"
    assert refused.value.headers == {"Retry-After": "1"}
    assert cmd.attempts == 3
    assert await _state(rt) == ([], 0, 0) and rt.wakes == []


async def test_any_other_failure_is_not_run_again(rt: Wiring) -> None:
    cmd = Flaky(contended=99, error=sa.exc.OperationalError("SELECT", {}, Exception("no such table: notes")))
    with pytest.raises(sa.exc.OperationalError):
        await run(rt, flaky_write, cmd)
    assert cmd.attempts == 1 and await _state(rt) == ([], 0, 0)


def _commit_then_lose_the_connection(engine: AsyncEngine, times: int = 1) -> list[int]:
    """The next ``times`` COMMITs take effect, and then the connection is lost before the client hears so (a
    network cut, a server restarting as it answers): what the client sees is an invalidated connection."""
    lost: list[int] = []

    def commit(conn: sa.Connection) -> None:
        if len(lost) < times:
            lost.append(1)
            conn.connection.dbapi_connection.commit()  # type: ignore[union-attr]
            raise sa.exc.DBAPIError(
                "COMMIT", None, ConnectionResetError("connection lost"), connection_invalidated=True
            )

    sa.event.listen(engine.sync_engine, "commit", commit)
    return lost


async def test_a_connection_lost_during_commit_is_never_run_again_without_a_key(rt: Wiring) -> None:
    """The COMMIT may have taken effect: running the unit again could apply it twice. The caller is told it may
    have been saved, and it was — once."""
    lost = _commit_then_lose_the_connection(rt.engine)
    cmd = Flaky(contended=0)
    with pytest.raises(DomainError) as unknown:
        await run(rt, flaky_write, cmd)
    assert lost == [1] and cmd.attempts == 1
    assert (STATUS_OF_REFUSAL[unknown.value.refusal], unknown.value.code) == (503, "outcome_unknown")
    assert "có thể đã được lưu" in unknown.value.detail_vi
    assert await _state(rt) == (["n-1"], 1, 0)


async def test_a_connection_lost_during_commit_with_a_key_is_answered_from_what_committed(rt: Wiring) -> None:
    lost = _commit_then_lose_the_connection(rt.engine)
    cmd = Flaky(contended=0)
    done = await run(rt, flaky_write, cmd, idempotent=Idempotent("t|p|notes", "k-1", {"n": 1}, 201))
    assert lost == [1] and cmd.attempts == 1  # the second attempt found the first one's answer
    assert done.replayed is not None and (done.replayed.status, done.replayed.body) == (201, {"note": "n-1"})
    assert await _state(rt) == (["n-1"], 1, 1)
