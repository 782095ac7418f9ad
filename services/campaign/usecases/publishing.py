"""Importing the directory and publishing an edition: the state change and its events in one transaction.

Both are idempotent: a unit, person or edition identical to what is stored publishes nothing, so re-running
``hoithi seed`` (or ``make run``) never duplicates a fact.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.campaign import domain, models
from services.campaign.domain.documents import refuse_what_any_service_would
from shared.copies import FAR_PAST
from shared.copies import directory_version as copies_version
from shared.db import upsert
from shared.documents import Directory, Edition, Person, Union, Unit
from shared.events.catalogue import PersonFact
from shared.events.envelope import deterministic_id
from shared.events.versions import EmitVersions, for_process
from shared.outbox import Outbox


async def import_directory(
    conn: AsyncConnection,
    outbox: Outbox,
    directory: Directory,
    now: datetime,
    versions: EmitVersions | None = None,
) -> list[str]:
    """Publish what changed. A person fact goes out at the highest version every durable consumer of it accepts
    (``versions``, by default this process's: shared/events/versions.py): v1 while a consumer of the previous
    release may still read it, v2 (no date of birth, no qualification) once none does."""
    c = models.copies
    tenant = directory.tenant
    changed: list[str] = []
    person_version: int | None = None

    async def person_fact(person: Person) -> tuple[PersonFact | Person, int]:
        nonlocal person_version
        if person_version is None:  # asked once per import, and only when a person changed
            asker = versions or for_process(outbox.settings, outbox.service)
            person_version = await asker.version("directory.person.changed")
        return (person if person_version == 1 else PersonFact.of(person)), person_version

    async def publish_if_changed(
        table: sa.Table, id_col: str, record: Unit | Person, type_: str, key: str
    ) -> None:
        stored = (
            await conn.execute(
                sa.select(table.c.doc).where(
                    table.c.tenant == tenant,
                    table.c[id_col] == record.id,
                    table.c.effective_from == (record.effective_from or FAR_PAST),
                )
            )
        ).scalar()
        if stored == record.model_dump_json():
            return
        fact, version = await person_fact(record) if isinstance(record, Person) else (record, None)
        env = await outbox.emit(
            conn, type_, {key: fact}, tenant=tenant, subject=record.id, time=now, version=version
        )
        assert env is not None
        await c.apply(conn, env)
        if isinstance(record, Person):  # only campaign's directory keeps date of birth and qualification
            await conn.execute(
                sa.update(table)
                .where(
                    table.c.tenant == tenant,
                    table.c[id_col] == record.id,
                    table.c.effective_from == (record.effective_from or FAR_PAST),
                )
                .values(doc=record.model_dump_json())
            )
        changed.append(record.id)

    for unit in directory.units:
        await publish_if_changed(c.units, "unit_id", unit, "directory.unit.changed", "unit")
    for union in directory.unions:
        doc = union.model_dump_json()
        # Published once per content (deterministic id); campaign's copy follows like everyone else's.
        env = await outbox.emit(
            conn,
            "directory.unit.changed",
            {"union": union},
            tenant=tenant,
            subject=union.id,
            time=now,
            event_id=deterministic_id("union", tenant, doc),
        )
        if env is not None:
            await c.apply(conn, env)
        else:  # this content was published before (a change undone): the copy takes it, keeping its sequence
            row = {"tenant": tenant, "union_id": union.id, "doc": doc, "sequence": 0}
            await conn.execute(upsert(conn, c.unions, row, set_={"doc": doc}))
    for person in directory.people:
        await publish_if_changed(c.people, "person_id", person, "directory.person.changed", "person")
    return [f"directory {tenant}: {len(changed)} units/people published"]


async def stored_directory(conn: AsyncConnection, tenant: str) -> Directory:
    """The whole directory campaign holds for ``tenant``: every effective-dated row, nothing deleted."""
    return directory_of(await stored_directory_docs(conn, tenant))


@dataclass(frozen=True)
class DirectoryDocs:
    """The stored directory as read, not yet parsed (``directory_of`` parses it, off the loop if it is large)."""

    tenant: str
    units: list[str]
    people: list[str]
    unions: list[Union]


async def stored_directory_docs(conn: AsyncConnection, tenant: str, *, people: bool = True) -> DirectoryDocs:
    """The stored directory's documents; without its people (``people=False``), its units and unions alone."""
    c = models.copies
    u, p = c.units, c.people
    units = (
        (
            await conn.execute(
                sa.select(u.c.doc).where(u.c.tenant == tenant).order_by(u.c.unit_id, u.c.effective_from)
            )
        )
        .scalars()
        .all()
    )
    persons = (
        (
            await conn.execute(
                sa.select(p.c.doc).where(p.c.tenant == tenant).order_by(p.c.person_id, p.c.effective_from)
            )
        )
        .scalars()
        .all()
        if people
        else []
    )
    unions = (await c.unions_of(conn, tenant)).values()
    return DirectoryDocs(tenant, list(units), list(persons), list(unions))


# The last directory parsed per tenant, by the version of the copy it was parsed from (read-only).
_PARSED: dict[str, tuple[tuple[int, str], Directory]] = {}


async def directory_version(conn: AsyncConnection, tenant: str) -> tuple[int, str]:
    """The version of the stored directory of ``tenant`` (``models.directory_versions``, kept by triggers)."""
    return await copies_version(conn, models.directory_versions, tenant)


def kept_directory(tenant: str, version: tuple[int, str]) -> Directory | None:
    """The directory last parsed for ``tenant`` if it was parsed from the copy at ``version`` (read-only)."""
    cached = _PARSED.get(tenant)
    return cached[1] if cached is not None and cached[0] == version else None


def parsed_directory(version: tuple[int, str], docs: DirectoryDocs) -> Directory:
    """``docs`` (read after ``version``, in the same connection) parsed, and kept for the next read of the same
    version (``kept_directory``): one primary-key read then tells whether the copy changed, where comparing the
    stored docs read every row of it (tens of MB at 100,000 people). Version 0 (an empty copy) is not kept. A
    snapshot is never older than the version it is kept under: at worst newer, and then parsed again once that
    newer version is read."""
    directory = directory_of(docs)
    if version[0]:
        if len(_PARSED) >= 8:
            _PARSED.clear()
        _PARSED[docs.tenant] = (version, directory)
    return directory


async def current_directory(conn: AsyncConnection, tenant: str) -> Directory:
    """The stored directory of ``tenant`` as this connection sees it (read-only): the one kept for the copy's
    version when there is one, else read and parsed in a thread (``parsed_directory``) and kept — a read that
    needs the directory costs one primary-key row, not a parse of every person at each call."""
    version = await directory_version(conn, tenant)  # before the copy (``parsed_directory``)
    directory = kept_directory(tenant, version)
    if directory is None:
        docs = await stored_directory_docs(conn, tenant)
        directory = await asyncio.to_thread(parsed_directory, version, docs)
    return directory


def directory_of(docs: DirectoryDocs) -> Directory:
    return Directory.model_validate(
        {
            "tenant": docs.tenant,
            "units": [Unit.model_validate_json(d) for d in docs.units],
            "unions": docs.unions,
            "people": [Person.model_validate_json(d) for d in docs.people],
        }
    )


async def publish_edition(
    conn: AsyncConnection, outbox: Outbox, edition: Edition, directory: Directory, now: datetime
) -> list[str]:
    """Publish ``edition`` (the next version if it changed) and create its assignments; refused, writing
    nothing, when any service would refuse it (``refuse_what_any_service_would``)."""
    refuse_what_any_service_would(edition)
    e = models.copies.editions
    latest = (
        await conn.execute(
            sa.select(e.c.version, e.c.doc)
            .where(e.c.tenant == edition.tenant, e.c.edition == edition.edition)
            .order_by(e.c.version.desc())
            .limit(1)
        )
    ).first()
    lines: list[str] = []
    if latest is not None and Edition.model_validate_json(latest.doc).model_copy(update={"version": 1}) == (
        edition.model_copy(update={"version": 1})
    ):
        lines.append(f"edition {edition.tenant}/{edition.edition}: version {latest.version} unchanged")
    else:
        version = (latest.version + 1) if latest else max(edition.version, 1)
        doc = edition.model_copy(update={"version": version})
        env = await outbox.emit(
            conn,
            "edition.published",
            {"version": version, "document": doc},
            tenant=doc.tenant,
            edition=doc.edition,
            subject=f"{doc.tenant}/{doc.edition}",
            time=now,
        )
        assert env is not None
        await models.copies.apply(conn, env)  # campaign keeps its editions exactly as every service does
        lines.append(f"edition {doc.tenant}/{doc.edition}: version {version} published")
        edition = doc
    if now >= edition.opens_at:
        await outbox.emit(
            conn,
            "edition.opened",
            {"at": edition.opens_at, "edition_version": edition.version},
            tenant=edition.tenant,
            edition=edition.edition,
            subject=f"{edition.tenant}/{edition.edition}",
            time=edition.opens_at,
            event_id=deterministic_id("edition.opened", edition.tenant, edition.edition),
        )
    a = models.assignments
    existing = set(
        (
            await conn.execute(
                sa.select(a.c.id).where(a.c.tenant == edition.tenant, a.c.edition == edition.edition)
            )
        )
        .scalars()
        .all()
    )
    created = 0
    for plan in domain.derive_assignments(edition, directory):
        if plan.id in existing:
            continue
        await conn.execute(
            a.insert().values(
                id=plan.id,
                tenant=edition.tenant,
                edition=edition.edition,
                part=plan.part,
                part_kind=plan.part_kind,
                assignee_kind=plan.assignee_kind,
                assignee_id=plan.assignee_id,
                unit_id=plan.unit_id,
                deadline=plan.deadline,
                status="open",
                created_at=now,
                standing="open",  # participation's read model (``participation.restand``): no fact yet
                standing_since=now,
            )
        )
        await outbox.emit(
            conn,
            "assignment.created",
            {
                "assignment_id": plan.id,
                "part": plan.part,
                "part_kind": plan.part_kind,
                "assignee_kind": plan.assignee_kind,
                "assignee_id": plan.assignee_id,
                "unit_id": plan.unit_id,
                "deadline": plan.deadline,
                "edition_version": edition.version,
            },
            tenant=edition.tenant,
            edition=edition.edition,
            subject=plan.id,
            time=now,
        )
        created += 1
    lines.append(
        f"assignments {edition.tenant}/{edition.edition}: {created} created, {len(existing)} existing"
    )
    return lines
