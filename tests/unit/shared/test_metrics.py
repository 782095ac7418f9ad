"""Counters a consumer and the HTTP middleware keep (shared/metrics.py), read back from the registry."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from shared import metrics
from tests.support.consumers import FakeMsg, withdrawn


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_consumer_counts_applied_duplicate_naked_and_dead_lettered(harness: Any) -> None:
    def count(outcome: str) -> float:
        return _value("hoithi_messages_total", purpose="facts", outcome=outcome)

    before = {o: count(o) for o in ("applied", "duplicate", "naked", "dead_lettered")}
    timed = _value(
        "hoithi_handler_duration_seconds_count", purpose="facts", event_type="submission.withdrawn"
    )
    env = withdrawn("s-m1")
    await harness.consumer.process([FakeMsg(env.to_json()), FakeMsg(env.to_json(), seq=2)])
    harness.fail["on"] = True
    await harness.consumer.process([FakeMsg(withdrawn("s-m2").to_json(), seq=3, delivered=1)])
    await harness.consumer.process([FakeMsg(withdrawn("s-m3").to_json(), seq=4, delivered=3)])  # the last
    after = {o: count(o) for o in before}
    assert {o: after[o] - before[o] for o in before} == {
        "applied": 1,
        "duplicate": 1,
        "naked": 1,
        "dead_lettered": 1,
    }
    assert _value("hoithi_deadletters_total", consumer="rewards-facts-v1", reason="max_deliver_reached") >= 1
    assert (
        _value("hoithi_handler_duration_seconds_count", purpose="facts", event_type="submission.withdrawn")
        - timed
        == 3
    )


def test_http_requests_are_counted_by_route_template_not_path() -> None:
    app = FastAPI()

    @app.get("/tenants/{tenant}/things/{thing_id}")
    async def thing(tenant: str, thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    app.add_middleware(metrics.HttpMetrics)
    route = "/tenants/{tenant}/things/{thing_id}"
    before = _value("hoithi_http_requests_total", method="GET", route=route, status="200")
    unmatched = _value("hoithi_http_requests_total", method="GET", route=metrics.UNMATCHED, status="404")
    with TestClient(app) as client:
        assert client.get("/tenants/a/things/1").status_code == 200
        assert client.get("/tenants/b/things/2").status_code == 200
        assert client.get("/nowhere/at/all").status_code == 404
    assert _value("hoithi_http_requests_total", method="GET", route=route, status="200") - before == 2
    assert (
        _value("hoithi_http_requests_total", method="GET", route=metrics.UNMATCHED, status="404") - unmatched
        == 1
    )
    assert _value("hoithi_http_request_duration_seconds_count", method="GET", route=route) >= 2


async def test_every_statement_of_every_engine_is_counted_by_its_kind(tmp_path: Any) -> None:
    """``hoithi_db_statements_total``: an async engine's statements and a plain one's, each once, by its first
    keyword (an executemany of three rows is one statement)."""
    import sqlalchemy as sa

    from shared.db import make_engine

    kinds = ("select", "insert", "update", "delete", "other")
    before = {k: _value("hoithi_db_statements_total", kind=k) for k in kinds}
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'count.db'}")
    t = sa.Table("t", sa.MetaData(), sa.Column("a", sa.Integer))
    async with engine.begin() as conn:  # BEGIN IMMEDIATE and the pragmas count as "other"
        await conn.run_sync(t.metadata.create_all)
        await conn.execute(t.insert(), [{"a": 1}, {"a": 2}, {"a": 3}])
        await conn.execute(t.update().values(a=4).where(t.c.a == 1))
        await conn.execute(t.delete().where(t.c.a == 2))
        assert (await conn.execute(sa.select(sa.func.count()).select_from(t))).scalar_one() == 2
    await engine.dispose()
    plain = sa.create_engine(f"sqlite:///{tmp_path / 'count.db'}")
    with plain.connect() as conn:
        assert conn.execute(sa.select(t.c.a).order_by(t.c.a)).scalars().all() == [3, 4]
    plain.dispose()
    grew = {k: _value("hoithi_db_statements_total", kind=k) - before[k] for k in kinds}
    assert {k: grew[k] for k in ("insert", "update", "delete")} == {"insert": 1, "update": 1, "delete": 1}
    assert grew["select"] >= 2  # the count and the plain engine's read (and whatever the dialect asks itself)
    assert grew["other"] >= 2  # BEGIN IMMEDIATE, CREATE TABLE
