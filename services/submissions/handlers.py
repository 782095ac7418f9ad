"""Submissions' event subscribers: its copies of the directory and the editions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from shared.consumer import Handler
from shared.events.envelope import Envelope
from shared.service import Runtime


def build(rt: Runtime) -> dict[str, dict[str, Handler]]:
    assert rt.copies is not None
    copies = rt.copies

    async def copy(conn: AsyncConnection, env: Envelope) -> None:
        await copies.apply(conn, env)

    async def keep(conn: AsyncConnection, env: Envelope) -> None:
        """Kept in the inbox; extensions and procedure catalogues are read from there (later issues)."""

    handlers: dict[str, Handler] = {
        "directory.unit.changed": copy,
        "directory.person.changed": copy,
        "edition.published": copy,
        "edition.opened": keep,
        "edition.closed": keep,
        "deadline.extended": keep,
        "procedure.catalogue.changed": keep,
    }
    return {"facts": handlers}
