"""The directory (danh bạ) as use cases: importing a document or an HR list (all rows or none), and the
queries that read it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import models
from services.campaign.domain.directory_io import DirectoryImportError
from services.campaign.domain.documents import invalid
from services.campaign.usecases import documents
from services.campaign.usecases.publishing import stored_directory
from shared import paging
from shared.clock import VN
from shared.collation import folded
from shared.copies import listing_values_of_doc
from shared.documents import Directory, Person, Unit
from shared.service import Runtime
from shared.uow import UnitOfWork


@dataclass(frozen=True)
class ImportDirectory:
    """The secretariat imports a directory document or an HR list (``filename`` says which kind)."""

    tenant: str
    content: bytes
    filename: str


async def import_directory(uow: UnitOfWork[Runtime], cmd: ImportDirectory) -> dict[str, Any]:
    try:
        lines = await documents.import_directory_file(
            uow.conn, uow.rt.outbox, cmd.tenant, cmd.content, cmd.filename, uow.now()
        )
    except DirectoryImportError as exc:
        raise invalid(exc) from None
    return {"result": lines}


async def directory(rt: Runtime, tenant: str) -> Directory:
    """The whole directory campaign holds for ``tenant`` (every effective-dated row)."""
    async with rt.engine.connect() as conn:
        return await stored_directory(conn, tenant)


@dataclass(frozen=True)
class PeopleQuery:
    """A page of the people in force today: in the Vietnamese order of names (``shared.collation``), those whose
    name has a word beginning with each word of ``search`` (accents, vowel marks and case aside), or whose id is
    ``search``; of ``unit`` only; of ``ids`` only; after the person ``after`` names (``cursor``)."""

    tenant: str
    search: str | None = None
    unit: str | None = None
    ids: Sequence[str] = ()
    limit: int = 100
    after: tuple[bytes, str] | None = None
    units: bool = False  # also every unit row (a unit head reads: the branches of their unit)


@dataclass(frozen=True)
class PeoplePage:
    people: list[Person]
    units: list[Unit]  # every unit row when asked (``PeopleQuery.units``), else none
    next: str | None  # the cursor of the next page; None: this is the last


def cursor(key: bytes, person_id: str) -> str:
    """The cursor naming a place in the order: after (``key``, ``person_id``)."""
    return paging.encode(key.hex(), person_id)


def parse_cursor(values: tuple[str, ...]) -> tuple[bytes, str] | None:
    """(key, person id) of a decoded cursor :func:`cursor` made; None if its key is not one."""
    try:
        return bytes.fromhex(values[0]), values[1]
    except ValueError:
        return None


async def people(rt: Runtime, query: PeopleQuery) -> PeoplePage:
    """One page of :class:`PeopleQuery`: a range of ``ix_copy_people_listed`` read in its order, each person's
    row in force today decided in SQL, so a page costs its own rows whatever the directory's size."""
    p = models.copies.people
    later = p.alias("later")
    day = rt.now().astimezone(VN).date()
    stmt = sa.select(p.c.person_id, p.c.name_key, p.c.doc).where(
        p.c.tenant == query.tenant,
        p.c.effective_from <= day,
        sa.or_(p.c.effective_to.is_(None), p.c.effective_to >= day),
        ~sa.exists().where(
            later.c.tenant == p.c.tenant,
            later.c.person_id == p.c.person_id,
            later.c.effective_from > p.c.effective_from,
            later.c.effective_from <= day,
        ),
    )
    if query.unit is not None:
        stmt = stmt.where(p.c.unit_id == query.unit)
    if query.ids:
        # a few rows by key, put in order below: ordered by the database, SQLite walks the whole order for them
        stmt = stmt.where(p.c.person_id.in_(sorted(set(query.ids))))
    else:
        stmt = stmt.where(p.c.name_key.is_not(None))
        stmt = stmt.order_by(p.c.name_key, p.c.person_id).limit(query.limit + 1)
    if query.search is not None and query.search.strip():
        # folded words hold letters and digits only: nothing in them is a LIKE wildcard
        words = [
            sa.literal(" ").concat(p.c.name_folded).like(f"% {w}%") for w in folded(query.search).split()
        ]
        by_id = p.c.person_id == query.search.strip()
        stmt = stmt.where(sa.or_(sa.and_(*words), by_id) if words else by_id)
    if query.after is not None:
        key, pid = query.after
        stmt = stmt.where(sa.or_(p.c.name_key > key, sa.and_(p.c.name_key == key, p.c.person_id > pid)))
    await _fill_listing(rt, query.tenant)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
        units = await units_of(conn, query.tenant) if query.units else []
    if query.ids:  # a row written since the fill has no key yet: listed once it is filled
        keyed = (r for r in rows if r.name_key is not None)
        rows = sorted(keyed, key=lambda r: (r.name_key, r.person_id))[: query.limit + 1]
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    found = [Person.model_validate_json(doc) for _, _, doc in rows]
    return PeoplePage(found, units, cursor(rows[-1].name_key, rows[-1].person_id) if more else None)


async def _fill_listing(rt: Runtime, tenant: str) -> None:
    """Write the listing columns of every row of ``tenant`` without a key (rows the release before them wrote,
    ``shared.copies._listing_columns``): one indexed look when there is none, which is always but during and
    just after a rolling update. A row rewritten meanwhile (its ``sequence`` moved on) is left to its writer."""
    p = models.copies.people
    missing = sa.select(p.c.person_id).where(p.c.tenant == tenant, p.c.name_key.is_(None)).limit(1)
    async with rt.engine.connect() as conn:
        if (await conn.execute(missing)).first() is None:
            return
    fill = (
        sa.update(p)
        .where(
            p.c.tenant == sa.bindparam("k_tenant"),
            p.c.person_id == sa.bindparam("k_person"),
            p.c.effective_from == sa.bindparam("k_since"),
            p.c.sequence == sa.bindparam("k_sequence"),
        )
        .values({c: sa.bindparam(c) for c in ("name_key", "name_folded", "effective_to", "listed_sequence")})
    )
    while True:
        async with rt.engine.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(p.c.person_id, p.c.effective_from, p.c.sequence, p.c.doc)
                    .where(p.c.tenant == tenant, p.c.name_key.is_(None))
                    .limit(500)
                )
            ).all()
            if not rows:
                return
            done = await conn.execute(
                fill,
                [
                    {
                        "k_tenant": tenant,
                        "k_person": r.person_id,
                        "k_since": r.effective_from,
                        "k_sequence": r.sequence,
                        **listing_values_of_doc(r.doc, r.sequence),
                    }
                    for r in rows
                ],
            )
            if not done.rowcount:  # every row rewritten meanwhile: its writer's turn
                return


async def units_of(conn: AsyncConnection, tenant: str) -> list[Unit]:
    """Every unit row of ``tenant`` (all periods): enough to find a unit head's branches."""
    u = models.copies.units
    docs = (await conn.execute(sa.select(u.c.doc).where(u.c.tenant == tenant))).scalars()
    return [Unit.model_validate_json(d) for d in docs]
