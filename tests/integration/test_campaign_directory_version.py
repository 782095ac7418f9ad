"""campaign's directory version on a migrated database (SQLite and PostgreSQL): a database upgraded with a
directory already in it gets a version row for its tenant, so the directory participation keeps parsed is
keyed on a version from the start; every row the copy gains or replaces — written by plain SQL, as the previous
release writes during a rolling update — changes it, and the kept parse is no longer handed out; a fact older
than the row kept changes nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from services.campaign.usecases import publishing
from shared import migrate
from tests.support.plans import database_url

TENANT = "quangtri-stnmt"
BEFORE = "e2a4c6b8d0f1"  # campaign's head before the version

# The previous release's write of a person (shared/copies.py: upsert_newer), in plain SQL.
UPSERT_PERSON = (
    "INSERT INTO copy_people (tenant, person_id, effective_from, unit_id, email, doc, sequence) "
    "VALUES (:t, :p, '1900-01-01', 'u-vp', :e, :d, :s) "
    "ON CONFLICT (tenant, person_id, effective_from) DO UPDATE SET email = excluded.email, doc = excluded.doc, "
    "sequence = excluded.sequence WHERE copy_people.sequence < excluded.sequence"
)
INSERT_UNIT = (
    "INSERT INTO copy_units (tenant, unit_id, effective_from, code, name, doc, sequence) "
    "VALUES (:t, 'u-vp', '1900-01-01', 'VP', 'Văn phòng Sở', :d, 1)"
)
UNIT = json.dumps({"id": "u-vp", "code": "VP", "name": "Văn phòng Sở", "kind": "office"}, ensure_ascii=False)


def _person(pid: str, email: str, *, tenant: str = TENANT) -> dict[str, Any]:
    doc = {"id": pid, "name": "Trần Văn Minh", "email": email, "title": "Chuyên viên", "unit": "u-vp"}
    return {"t": tenant, "p": pid, "e": email, "d": json.dumps(doc, ensure_ascii=False)}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_participations_kept_directory_follows_every_write_of_the_copy(
    dialect: str, test_servers: Any, tmp_path: Path
) -> None:
    url = database_url(dialect, tmp_path, test_servers, "campaign_version")
    migrate.upgrade("campaign", url, BEFORE)

    async def go() -> None:
        engine = create_async_engine(url, poolclass=NullPool)

        async def write(sql: str, **params: Any) -> None:
            async with engine.begin() as conn:
                await conn.execute(sa.text(sql), params)

        async def read(tenant: str = TENANT) -> tuple[tuple[int, str], dict[str, str]]:
            """(version, email per person) as participation reads it: the kept parse when it is current."""
            async with engine.connect() as conn:
                version = await publishing.directory_version(conn, tenant)
                directory = publishing.kept_directory(tenant, version)
                if directory is None:
                    docs = await publishing.stored_directory_docs(conn, tenant)
                    directory = publishing.parsed_directory(version, docs)
            assert publishing.kept_directory(tenant, version) is (directory if version[0] else None)
            return version, {p.id: p.email for p in directory.people}

        try:
            await write(INSERT_UNIT, t=TENANT, d=UNIT)
            await write(UPSERT_PERSON, **_person("p-0002", "minh@example.vn"), s=4)
            await asyncio.to_thread(migrate.upgrade, "campaign", url)
            version, people = await read()
            assert version[0] == 1 and people == {"p-0002": "minh@example.vn"}  # the upgrade numbered it

            await write(UPSERT_PERSON, **_person("p-0003", "an@example.vn"), s=1)
            later, people = await read()
            assert later[0] == 2 and people == {"p-0002": "minh@example.vn", "p-0003": "an@example.vn"}

            await write(UPSERT_PERSON, **_person("p-0002", "cu@example.vn"), s=3)  # older than the row kept
            assert await read() == (later, people)

            await write(UPSERT_PERSON, **_person("p-0002", "moi@example.vn"), s=5)
            newest, people = await read()
            # a newer version (on SQLite two: the listing's trigger clears the key the previous release left stale)
            assert newest[0] > later[0] and newest[1] != later[1] and people["p-0002"] == "moi@example.vn"

            # another tenant's copy has its own version, and an empty copy is version 0, never kept
            assert await read("hue-stnmt") == ((0, ""), {})
            await write(INSERT_UNIT, t="hue-stnmt", d=UNIT)
            await write(UPSERT_PERSON, **_person("p-0009", "x@example.vn", tenant="hue-stnmt"), s=1)
            assert (await read("hue-stnmt"))[0][0] == 2 and (await read())[0] == newest
        finally:
            await engine.dispose()

    asyncio.run(go())
