"""Submissions' event subscribers: its copies of the directory and the editions, the extensions of deadlines
and the procedure catalogues — every fact it needs at intake, so intake never calls another service."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.submissions import models
from shared.consumer import Handler
from shared.db import upsert, upsert_newer
from shared.documents import national_procedure_code
from shared.events.envelope import Envelope
from shared.service import Runtime


async def _upsert_newer(
    conn: AsyncConnection, table: sa.Table, key: dict[str, object], row: dict[str, object]
) -> None:
    """Insert, or overwrite only with a fact of a higher ``sequence``: redelivery never rolls back."""
    await upsert_newer(conn, table, {**key, **row})


def build(rt: Runtime) -> dict[str, dict[str, Handler]]:
    assert rt.copies is not None
    copies = rt.copies

    async def copy(conn: AsyncConnection, env: Envelope) -> None:
        await copies.apply(conn, env)

    async def keep(conn: AsyncConnection, env: Envelope) -> None:
        """Kept in the inbox (its history); nothing to apply."""

    async def extended(conn: AsyncConnection, env: Envelope) -> None:
        data = env.parsed()
        await _upsert_newer(
            conn,
            models.extensions,
            {
                "tenant": env.tenant,
                "edition": env.edition or "",
                "part": data.part,  # type: ignore[attr-defined]
                "assignee_id": data.assignee_id,  # type: ignore[attr-defined]
            },
            {
                "assignment_id": data.assignment_id,  # type: ignore[attr-defined]
                "deadline": data.new_deadline,  # type: ignore[attr-defined]
                "reason": data.reason,  # type: ignore[attr-defined]
                "approved_by": data.approved_by,  # type: ignore[attr-defined]
                "sequence": env.sequence,
            },
        )

    async def catalogue(conn: AsyncConnection, env: Envelope) -> None:
        """Keep the unit's latest-dated list: a correction of a past period (an earlier ``at``, sent later)
        never replaces it, and a newer list arriving late still does."""
        data = env.parsed()
        codes = sorted({national_procedure_code(p.code) for p in data.procedures})  # type: ignore[attr-defined]
        t = models.procedure_catalogues
        row = {"codes": codes, "sequence": env.sequence, "at": data.at}  # type: ignore[attr-defined]
        values = {"tenant": env.tenant, "unit_id": data.unit_id, **row}  # type: ignore[attr-defined]
        # One statement (two replicas never keep the older list): overwrite only with a later (at, sequence).
        newer = lambda ex: sa.tuple_(t.c.at, t.c.sequence) < sa.tuple_(ex.at, ex.sequence)
        await conn.execute(upsert(conn, t, values, where=newer))

    handlers: dict[str, Handler] = {
        "directory.unit.changed": copy,
        "directory.person.changed": copy,
        "edition.published": copy,
        "edition.opened": keep,
        "edition.closed": keep,
        "deadline.extended": extended,
        "procedure.catalogue.changed": catalogue,
    }
    return {"facts": handlers}
