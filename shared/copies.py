"""Each service's own copy of the directory and of the editions, kept from events.

Services never read campaign's database: they fold ``directory.*`` and ``edition.published`` into these tables
(units, unions, people, editions: the one definition of each; every service's models call ``copy_tables``).
Unit and person rows are effective-dated (a person's move is a new row from a date); a union is one row. A fact
older, by ``sequence``, than the one already kept never overwrites it — one statement decides that
(``upsert_newer``), so redelivery, reordering and two replicas writing at once never roll the copy backwards.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import VN
from shared.collation import folded, name_key
from shared.db import UtcDateTime, insert_if_absent, upsert_newer
from shared.documents import PERSON_SENSITIVE_FIELDS, Edition, Person, Union, Unit, unit_lineage
from shared.events.envelope import Envelope

CHUNK = 500  # ids per IN (…) of a many-ids read

FAR_PAST = date(1900, 1, 1)


@dataclass(frozen=True)
class Copies:
    units: sa.Table
    people: sa.Table
    editions: sa.Table
    unions: sa.Table
    # The last parsed document per (tenant, edition), with the text it was parsed from: the same text is not
    # parsed again (an edition's document is tens of kilobytes; every fact read it, once per event).
    _parsed: dict[tuple[str, str], tuple[str, Edition]] = field(
        default_factory=dict, compare=False, repr=False
    )

    # ------------------------------------------------------------------ writes (from events)
    async def apply(self, conn: AsyncConnection, env: Envelope) -> None:
        if env.type == "directory.unit.changed":
            await self._upsert_unit(conn, env)
        elif env.type == "directory.person.changed":
            await self._upsert_person(conn, env)
        elif env.type == "edition.published":
            await self._insert_edition(conn, env)

    async def _upsert(
        self, conn: AsyncConnection, table: sa.Table, key: dict[str, Any], row: dict[str, Any]
    ) -> None:
        await upsert_newer(conn, table, {**key, **row})

    async def _upsert_unit(self, conn: AsyncConnection, env: Envelope) -> None:
        parsed = env.parsed()
        unit = parsed.unit  # type: ignore[attr-defined]
        if unit is None:  # a union change travels in the same type
            union = parsed.union  # type: ignore[attr-defined]
            if union is not None:
                await self._upsert(
                    conn,
                    self.unions,
                    {"tenant": env.tenant, "union_id": union.id},
                    {"doc": union.model_dump_json(), "sequence": env.sequence},
                )
            return
        await self._upsert(
            conn,
            self.units,
            {"tenant": env.tenant, "unit_id": unit.id, "effective_from": unit.effective_from or FAR_PAST},
            {"code": unit.code, "name": unit.name, "doc": unit.model_dump_json(), "sequence": env.sequence},
        )

    async def _upsert_person(self, conn: AsyncConnection, env: Envelope) -> None:
        # Parsed through the catalogue (extra fields ignored), so a newer producer never breaks the copy. A v1
        # fact still carries date of birth and qualification: no copy keeps them (shared/privacy.py).
        person = env.parsed().person  # type: ignore[attr-defined]
        await self._upsert(
            conn,
            self.people,
            {
                "tenant": env.tenant,
                "person_id": person.id,
                "effective_from": person.effective_from or FAR_PAST,
            },
            {
                "unit_id": person.unit,
                "email": person.email,
                "doc": person.model_dump_json(exclude=set(PERSON_SENSITIVE_FIELDS)),
                "sequence": env.sequence,
                **(listing_values(person, env.sequence) if "name_key" in self.people.c else {}),
            },
        )

    async def _insert_edition(self, conn: AsyncConnection, env: Envelope) -> None:
        doc = env.parsed().document  # type: ignore[attr-defined]
        await insert_if_absent(
            conn,
            self.editions,
            {
                "tenant": env.tenant,
                "edition": doc.edition,
                "version": int(env.data.get("version", doc.version)),
                "doc": doc.model_dump_json(),
                "published_at": env.time,
            },
        )

    # ------------------------------------------------------------------ reads
    async def person(self, conn: AsyncConnection, tenant: str, person_id: str, at: datetime) -> Person | None:
        """The person's row in force on the Vietnamese date of ``at``."""
        t = self.people
        day = at.astimezone(VN).date()
        rows = (
            await conn.execute(
                sa.select(t.c.doc)
                .where(t.c.tenant == tenant, t.c.person_id == person_id, t.c.effective_from <= day)
                .order_by(t.c.effective_from.desc())
            )
        ).scalars()
        for doc in rows:
            p = Person.model_validate_json(doc)
            if p.effective_to is None or p.effective_to >= day:
                return p
            return None
        return None

    async def unit(self, conn: AsyncConnection, tenant: str, unit_id: str, at: datetime) -> Unit | None:
        t = self.units
        day = at.astimezone(VN).date()
        doc = (
            await conn.execute(
                sa.select(t.c.doc)
                .where(t.c.tenant == tenant, t.c.unit_id == unit_id, t.c.effective_from <= day)
                .order_by(t.c.effective_from.desc())
                .limit(1)
            )
        ).scalar()
        return Unit.model_validate_json(doc) if doc else None

    async def units_in_force(
        self, conn: AsyncConnection, tenant: str, unit_ids: Iterable[str], at: datetime
    ) -> dict[str, Unit]:
        """:meth:`unit` of many ids at once (one read per ``CHUNK`` ids): each one's row in force on the
        Vietnamese date of ``at``, by id; an id with none is left out."""
        t = self.units
        day = at.astimezone(VN).date()
        return {
            uid: Unit.model_validate_json(doc)
            async for uid, doc in _latest_rows(conn, t, t.c.unit_id, tenant, unit_ids, day)
        }

    async def people_in_force(
        self, conn: AsyncConnection, tenant: str, person_ids: Iterable[str], at: datetime
    ) -> dict[str, Person]:
        """:meth:`person` of many ids at once (one read per ``CHUNK`` ids), by id; an id whose latest row from
        before the Vietnamese date of ``at`` has ended by then is left out."""
        t = self.people
        day = at.astimezone(VN).date()
        out: dict[str, Person] = {}
        async for pid, doc in _latest_rows(conn, t, t.c.person_id, tenant, person_ids, day):
            p = Person.model_validate_json(doc)
            if p.effective_to is None or p.effective_to >= day:
                out[pid] = p
        return out

    async def lineage(self, conn: AsyncConnection, tenant: str, unit_id: str, at: datetime) -> dict[str, str]:
        """The units linked to ``unit_id`` by mergers, splits and renames that have happened by the Vietnamese
        date of ``at`` (``successor_of`` of rows in force from then or earlier, transitively): id ->
        "predecessor" | "successor"."""
        t = self.units
        day = at.astimezone(VN).date()
        docs = (
            await conn.execute(sa.select(t.c.doc).where(t.c.tenant == tenant, t.c.effective_from <= day))
        ).scalars()
        return unit_lineage((Unit.model_validate_json(d) for d in docs), unit_id)

    async def people_in(self, conn: AsyncConnection, tenant: str, at: datetime) -> list[Person]:
        t = self.people
        day = at.astimezone(VN).date()
        rows = (
            await conn.execute(
                sa.select(t.c.person_id, t.c.doc)
                .where(t.c.tenant == tenant, t.c.effective_from <= day)
                .order_by(t.c.person_id, t.c.effective_from.desc())
            )
        ).all()
        seen: set[str] = set()
        out = []
        for pid, doc in rows:
            if pid in seen:
                continue
            seen.add(pid)
            p = Person.model_validate_json(doc)
            if p.effective_to is None or p.effective_to >= day:
                out.append(p)
        return out

    async def unions_of(self, conn: AsyncConnection, tenant: str) -> dict[str, Union]:
        """Every union (Chi đoàn, Công đoàn) of ``tenant`` as last published, by id."""
        t = self.unions
        docs = (await conn.execute(sa.select(t.c.doc).where(t.c.tenant == tenant))).scalars()
        return {u.id: u for u in (Union.model_validate_json(d) for d in docs)}

    async def edition(self, conn: AsyncConnection, tenant: str, edition: str) -> Edition | None:
        """The latest published version of an edition (treat it as read-only: the same object is handed to
        every caller until the edition changes)."""
        t = self.editions
        doc = (
            await conn.execute(
                sa.select(t.c.doc)
                .where(t.c.tenant == tenant, t.c.edition == edition)
                .order_by(t.c.version.desc())
                .limit(1)
            )
        ).scalar()
        if not doc:
            return None
        cached = self._parsed.get((tenant, edition))
        if cached is not None and cached[0] == doc:
            return cached[1]
        parsed = Edition.model_validate_json(doc)
        self._parsed[(tenant, edition)] = (doc, parsed)
        return parsed

    async def latest_editions(self, conn: AsyncConnection) -> list[Edition]:
        """The latest version of every edition of every tenant (what a periodic job goes over at each tick), in
        one read; a document is parsed only if it is not the text last parsed for its edition (treat the
        editions as read-only). Not by version number alone: the same process may meet another database."""
        t = self.editions
        x = t.alias("newer")
        newest = (
            sa.select(sa.func.max(x.c.version))
            .where(x.c.tenant == t.c.tenant, x.c.edition == t.c.edition)
            .scalar_subquery()
        )
        rows = (
            await conn.execute(
                sa.select(t.c.tenant, t.c.edition, t.c.doc)
                .where(t.c.version == newest)
                .order_by(t.c.tenant, t.c.edition)
            )
        ).all()
        out = []
        for tenant, edition, doc in rows:
            cached = self._parsed.get((tenant, edition))
            if cached is None or cached[0] != doc:
                cached = self._parsed[(tenant, edition)] = (doc, Edition.model_validate_json(doc))
            out.append(cached[1])
        return out


async def _latest_rows(
    conn: AsyncConnection, t: sa.Table, key: sa.Column[Any], tenant: str, ids: Iterable[str], day: date
) -> AsyncIterator[tuple[str, str]]:
    """(id, doc) of each id's latest row from ``day`` or before, ``CHUNK`` ids per read."""
    wanted = sorted(set(ids))
    for i in range(0, len(wanted), CHUNK):
        rows = await conn.execute(
            sa.select(key, t.c.doc)
            .where(t.c.tenant == tenant, key.in_(wanted[i : i + CHUNK]), t.c.effective_from <= day)
            .order_by(key, t.c.effective_from.desc())
        )
        last = None
        for rid, doc in rows.all():
            if rid != last:
                last = rid
                yield rid, doc


def _directory_table(
    metadata: sa.MetaData, name: str, key: str, *columns: sa.Column[Any] | sa.Index, dated: bool
) -> sa.Table:
    """One directory entity's copy: its id within the tenant (and the date a row is in force from, if dated),
    its own columns, the whole document, and the sequence of the fact that wrote it."""
    return sa.Table(
        name,
        metadata,
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column(key, sa.String(100), primary_key=True),
        *([sa.Column("effective_from", sa.Date, primary_key=True)] if dated else []),
        *columns,
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
    )


# The columns a directory listed page by page needs (``listed=True``: campaign's, which serves ``GET …/people``):
# the name's Vietnamese sort key (``shared.collation``), its folded form for accent-insensitive search, the day the
# row stops being in force, all from the document, and the ``sequence`` they were computed at. This code writes
# them with the row (``listing_values``), so a page is a range of ``ix_copy_people_listed`` filtered in SQL.
# During a rolling update the release before these columns writes rows too: an insert leaves ``name_key`` NULL, and
# an update that changes ``sequence`` without ``listed_sequence`` has it set NULL by a trigger
# (``listing_triggers``); the listing fills such rows in before it reads (``services/campaign/usecases/
# directory.py``), so a name the previous release changed is never listed under its old key.
def _listing_columns() -> tuple[Any, ...]:
    return (
        sa.Column("name_key", sa.LargeBinary, nullable=True),
        sa.Column("name_folded", sa.String(300), nullable=True),
        sa.Column("effective_to", sa.Date, nullable=True),
        sa.Column("listed_sequence", sa.Integer, nullable=True),
        sa.Index(
            "ix_copy_people_listed",
            "tenant",
            "name_key",
            "person_id",
            "name_folded",
            "effective_from",
            "effective_to",
        ),
        sa.Index("ix_copy_people_unit_listed", "tenant", "unit_id", "name_key", "person_id"),
    )


def listing_values(person: Person, sequence: int) -> dict[str, Any]:
    """The listing columns of a person's row written at ``sequence`` (``_listing_columns``)."""
    return {
        "name_key": name_key(person.name),
        "name_folded": folded(person.name),
        "effective_to": person.effective_to,
        "listed_sequence": sequence,
    }


def listing_values_of_doc(doc: str, sequence: int) -> dict[str, Any]:
    """:func:`listing_values` of a stored document, read leniently: a row is filled in whatever a release before
    wrote in it (no name: listed first, under an empty one; an end that is not a date: no end)."""
    try:
        data = json.loads(doc)
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    name = data["name"] if isinstance(data.get("name"), str) else ""
    try:
        ends = date.fromisoformat(data["effective_to"]) if data.get("effective_to") else None
    except (TypeError, ValueError):
        ends = None
    return {
        "name_key": name_key(name),
        "name_folded": folded(name),
        "effective_to": ends,
        "listed_sequence": sequence,
    }


def listing_triggers(dialect: str) -> list[str]:
    """SQL (PostgreSQL or SQLite) clearing ``name_key`` of a ``copy_people`` row whose ``sequence`` a writer
    changed without its listing columns. Campaign's migration ``a9d1f3b5c7e2`` keeps its own copy."""
    if dialect == "postgresql":
        return [
            (
                "CREATE OR REPLACE FUNCTION copy_people_listing_stale() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                "BEGIN\n  IF NEW.listed_sequence IS DISTINCT FROM NEW.sequence THEN NEW.name_key := NULL; END IF;\n"
                "  RETURN NEW;\nEND $$"
            ),
            (
                "CREATE TRIGGER copy_people_listing_stale BEFORE UPDATE ON copy_people "
                "FOR EACH ROW EXECUTE FUNCTION copy_people_listing_stale()"
            ),
        ]
    if dialect == "sqlite":
        return [
            (
                "CREATE TRIGGER copy_people_listing_stale AFTER UPDATE OF sequence ON copy_people FOR EACH ROW "
                "WHEN NEW.listed_sequence IS NOT NEW.sequence AND NEW.name_key IS NOT NULL BEGIN "
                "UPDATE copy_people SET name_key = NULL WHERE tenant = NEW.tenant AND person_id = NEW.person_id "
                "AND effective_from = NEW.effective_from; END"
            )
        ]
    raise ValueError(f"no listing triggers for {dialect}")


def copy_tables(metadata: sa.MetaData, *, listed: bool = False) -> Copies:
    """The copy tables, the one definition every service's models reuse; ``listed``: people with the columns a
    directory read page by page needs (``_listing_columns``)."""
    units = _directory_table(
        metadata,
        "copy_units",
        "unit_id",
        sa.Column("code", sa.String(50), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        dated=True,
    )
    people = _directory_table(
        metadata,
        "copy_people",
        "person_id",
        sa.Column("unit_id", sa.String(100), nullable=False),
        sa.Column("email", sa.String(300), nullable=False),
        *(_listing_columns() if listed else ()),
        dated=True,
    )
    if listed:

        def make_triggers(table: sa.Table, connection: sa.Connection, **_: Any) -> None:
            for sql in listing_triggers(connection.dialect.name):
                connection.exec_driver_sql(sql)

        sa.event.listen(people, "after_create", make_triggers)
    unions = _directory_table(metadata, "copy_unions", "union_id", dated=False)
    editions = sa.Table(
        "copy_editions",
        metadata,
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("edition", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=False),
    )
    return Copies(units, people, editions, unions)


# ------------------------------------------------------------------ the copy's version
# A version of a service's directory copy, per tenant: what a directory parsed in memory is checked against —
# one primary-key read, not a read of every row of the copy (tens of MB at 100,000 people). Triggers on
# copy_people, copy_units and copy_unions (``directory_version_triggers``) add 1 and draw a new ``stamp`` in the
# same transaction as every row they insert, replace or delete, whoever writes it: this release's code, the
# previous release's during a rolling update (it knows nothing of this table), the unions' mirror triggers. A
# fact ``upsert_newer`` refuses writes no row and changes no version. No row for a tenant: nothing changed
# since the table was made (version 0). The stamp is there because a number alone can come back: a
# transaction that changed the copy and read the directory may roll back, and another replica then commit a
# different change under the same number; a stamp is drawn anew by each change.

VERSIONED_COPIES = ("copy_people", "copy_units", "copy_unions")


def directory_versions_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """A service's table of copy versions (``{service}_directory_versions``), kept by triggers: made with the
    copy tables when the models make the database (tests), and by the service's migration otherwise."""
    table = sa.Table(
        name,
        metadata,
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("stamp", sa.String(36), nullable=False),
    )

    def make_triggers(copy: sa.Table, connection: sa.Connection, **_: Any) -> None:
        for sql in directory_version_triggers(connection.dialect.name, name, copy.name):
            connection.exec_driver_sql(sql)

    for copy_name in VERSIONED_COPIES:
        sa.event.listen(metadata.tables[copy_name], "after_create", make_triggers)
    return table


def directory_version_triggers(dialect: str, versions: str, table: str) -> list[str]:
    """SQL (PostgreSQL or SQLite) making every insert, update and delete of the copy table ``table`` change its
    tenant's row of ``versions``. A migration that makes them keeps its own copy of this SQL, as a migration
    must (notify: 4f6b9e2d81a3)."""
    bump = (
        f"INSERT INTO {versions} (tenant, version, stamp) VALUES ({{tenant}}, 1, {{stamp}}) "
        f"ON CONFLICT (tenant) DO UPDATE SET version = {versions}.version + 1, stamp = excluded.stamp"
    )
    name = f"{table}_directory_version"
    if dialect == "postgresql":
        function = versions.removesuffix("s") + "_bump"
        return [
            (
                f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                "DECLARE t text;\nBEGIN\n  IF TG_OP = 'DELETE' THEN t := OLD.tenant; ELSE t := NEW.tenant; END IF;\n"
                f"  {bump.format(tenant='t', stamp='CAST(gen_random_uuid() AS text)')};\n  RETURN NULL;\nEND $$"
            ),
            (
                f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            ),
        ]
    if dialect == "sqlite":
        stamp = "lower(hex(randomblob(16)))"
        return [
            f"CREATE TRIGGER {name}_{op} AFTER {op.upper()} ON {table} FOR EACH ROW "
            f"BEGIN {bump.format(tenant=f'{row}.tenant', stamp=stamp)}; END"
            for op, row in (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD"))
        ]
    raise ValueError(f"no directory version triggers for {dialect}")


async def directory_version(conn: AsyncConnection, versions: sa.Table, tenant: str) -> tuple[int, str]:
    """The version of the directory copy of ``tenant`` (``directory_versions_table``), as this connection sees
    it: a change applied by its own transaction or committed by another replica is seen.

    Not ``max(sequence)`` of the copy: a sequence is the producer's per subject (per person, unit, union), so a
    newly added person's row may well have a lower sequence than rows already kept, and the maximum would not
    move."""
    row = (await conn.execute(_version_of(versions), {"tenant": tenant})).first()
    return (0, "") if row is None else (int(row.version), str(row.stamp))


@functools.cache
def _version_of(versions: sa.Table) -> sa.Select[Any]:
    """The statement of ``directory_version``, built once (``shared/db.py``: hot statements)."""
    return sa.select(versions.c.version, versions.c.stamp).where(versions.c.tenant == sa.bindparam("tenant"))


# The previous release's own union tables, kept (mirrored) for one release: the next release drops them.
PREVIOUS_RELEASE_UNIONS = frozenset({"directory_unions", "notify_unions"})


def previous_release_unions(metadata: sa.MetaData, name: str, *, sequence: bool) -> sa.Table:
    """The previous release's own table of unions (campaign's ``directory_unions``, notify's ``notify_unions``):
    no code of this release reads or writes it, triggers keep it in step with ``copy_unions`` so the previous
    release's processes still work during a rolling update; the next release drops it
    (shared/upgrades.NEXT_CONTRACTS)."""
    assert name in PREVIOUS_RELEASE_UNIONS, name
    return sa.Table(
        name,
        metadata,
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("union_id", sa.String(100), primary_key=True),
        sa.Column("doc", sa.Text, nullable=False),
        *([sa.Column("sequence", sa.Integer, nullable=False)] if sequence else []),
    )


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)
