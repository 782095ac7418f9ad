"""notify's directory copy version on a migrated database (SQLite and PostgreSQL): a database upgraded with copies
already in it starts without a version row (version 0), and every row the copy gains or replaces changes it —
written by plain SQL, as the previous release's notify writes during a rolling update without knowing the
version exists (its unions go into its own notify_unions, mirrored into copy_unions by triggers) — so this
release's kept directory (``queue.people``) is read again; a fact older than the row kept changes nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from services.notify import models
from services.notify.usecases import queue
from shared import migrate

TENANT = "soctrang-stnmt"
BEFORE = "8e2f4a7c1b90"  # notify's head before the version
AT = datetime(2023, 10, 20, 2, 0, tzinfo=UTC)


def _person(pid: str, email: str) -> dict[str, Any]:
    doc = {"id": pid, "name": "Trần Văn Minh", "email": email, "title": "Chuyên viên", "unit": "u-vp"}
    return {"p": pid, "e": email, "d": json.dumps(doc, ensure_ascii=False)}


# The previous release's write of a person (shared/copies.py as it was: upsert_newer), in plain SQL.
UPSERT_PERSON = (
    "INSERT INTO copy_people (tenant, person_id, effective_from, unit_id, email, doc, sequence) "
    "VALUES ('soctrang-stnmt', :p, '1900-01-01', 'u-vp', :e, :d, :s) "
    "ON CONFLICT (tenant, person_id, effective_from) DO UPDATE SET email = excluded.email, doc = excluded.doc, "
    "sequence = excluded.sequence WHERE copy_people.sequence < excluded.sequence"
)
UNION = json.dumps(
    {"id": "cd", "code": "CD", "name": "Chi đoàn Sở", "kind": "youth_union", "secretary": "p-0002"}
)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_an_upgraded_copy_is_versioned_whoever_writes_it(
    dialect: str, test_servers: Any, tmp_path: Path
) -> None:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}"
        if dialect == "sqlite"
        else test_servers.create_database("notify_version")
    )
    migrate.upgrade("notify", url, BEFORE)

    async def go() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        rt: Any = SimpleNamespace(engine=engine, copies=models.copies, extra={})

        async def write(sql: str, **params: Any) -> None:
            async with engine.begin() as conn:
                await conn.execute(sa.text(sql), params)

        async def read() -> tuple[tuple[int, str], set[str], dict[str, str | None]]:
            async with engine.connect() as conn:
                who = await queue.people(conn, rt, TENANT, AT)
                version = await queue._version(conn, TENANT)
            return version, {p.id for p in who.people}, {u.id: u.secretary for u in who.unions.values()}

        try:
            await write(UPSERT_PERSON, **_person("p-0002", "minh@example.vn"), s=4)
            await asyncio.to_thread(migrate.upgrade, "notify", url)
            version, people, unions = await read()
            assert (
                version == (0, "") and people == {"p-0002"} and unions == {}
            )  # no row yet: nothing changed since the upgrade

            await write(UPSERT_PERSON, **_person("p-0003", "an@example.vn"), s=1)  # below the 4 kept
            version, people, _ = await read()
            assert version[0] == 1 and people == {"p-0002", "p-0003"}

            await write(
                UPSERT_PERSON, **_person("p-0002", "cu@example.vn"), s=3
            )  # older than the row: refused
            assert (await read())[0] == version

            await write(
                "INSERT INTO notify_unions (tenant, union_id, doc, sequence) VALUES ('soctrang-stnmt', 'cd', :d, 2)",
                d=UNION,
            )
            later, _, unions = await read()
            assert later[0] == 2 and later[1] != version[1] and unions == {"cd": "p-0002"}
        finally:
            await engine.dispose()

    asyncio.run(go())
