"""Alembic, once for every service: each service's ``migrations/env.py`` calls ``run_env(name)``.

Migrations run as their own step (``hoithi migrate``), never inside a service's start-up.

The tables every service has — the backbone (outbox, inbox, sequences, idempotency keys, ``shared/db.py``) and
the directory and edition copies (``shared/copies.py``) — are defined once, there; a service's Alembic history
creates them by name with ``create_shared_tables`` (its initial revision: ``BACKBONE_V1``), never with DDL of
its own. A later change to one of them is one step here that every service's history calls in a revision of
its own (as ``copy_unions`` was added).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.settings import load, registry, service_settings

# The shared tables each service's initial revision creates (names as in shared/db.py and shared/copies.py).
BACKBONE_V1: tuple[str, ...] = (
    "outbox",
    "inbox",
    "event_sequences",
    "idempotency_keys",
    "copy_units",
    "copy_people",
    "copy_editions",
)


def shared_tables() -> sa.MetaData:
    """The one definition of every table shared/ gives a service (a fresh MetaData: nothing is bound)."""
    from shared.copies import copy_tables
    from shared.db import backbone_tables

    metadata = sa.MetaData()
    backbone_tables(metadata)
    copy_tables(metadata)
    return metadata


def create_shared_tables(*names: str) -> None:
    """Inside a revision's ``upgrade()``: create the named shared tables with their keys and indexes."""
    tables = shared_tables().tables
    for name in names:
        table = tables[name]
        op.create_table(name, *(c._copy() for c in table.columns))
        for index in sorted(table.indexes, key=lambda ix: ix.name or ""):
            op.create_index(index.name, name, [c.name for c in index.columns], unique=index.unique)


def move_into_shared_table(name: str, old: str, select: str | None = None) -> None:
    """Inside ``upgrade()``: a service's own table of a shared thing moves into the shared definition — create
    ``name``, copy ``old``'s rows into it (``select``: its columns, in order, as expressions over ``old``; by
    default the same names), drop ``old``."""
    create_shared_tables(name)
    columns = ", ".join(c.name for c in shared_tables().tables[name].columns)
    op.execute(f"INSERT INTO {name} ({columns}) SELECT {select or columns} FROM {old}")
    op.drop_table(old)


def move_out_of_shared_table(name: str, old: sa.Table) -> None:
    """Inside ``downgrade()``: the reverse — re-create ``old`` as it was, copy its columns back, drop ``name``."""
    op.create_table(old.name, *(c._copy() for c in old.columns))
    columns = ", ".join(c.name for c in old.columns)
    op.execute(f"INSERT INTO {old.name} ({columns}) SELECT {columns} FROM {name}")
    drop_shared_tables(name)


def drop_shared_tables(*names: str) -> None:
    """Inside a revision's ``downgrade()``: the reverse of ``create_shared_tables`` (indexes go with them)."""
    for name in reversed(names):
        op.drop_table(name)


def _metadata(name: str) -> sa.MetaData:
    return load(registry()[name].models).metadata  # type: ignore[no-any-return]


def alembic_config(name: str, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(registry()[name].migrations))
    cfg.set_main_option("sqlalchemy.url", (url or service_settings(name).database_url).replace("%", "%%"))
    cfg.attributes["service"] = name
    return cfg


def upgrade(name: str, url: str | None = None, revision: str = "head") -> None:
    if url is None:
        url = service_settings(name).database_url
    if url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        db = make_url(url).database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(name, url), revision)


def revision(name: str, message: str) -> None:
    command.revision(alembic_config(name), message=message, autogenerate=True)


def run_env(name: str) -> None:
    """The body of every service's ``migrations/env.py``."""
    url = context.config.get_main_option("sqlalchemy.url") or service_settings(name).database_url
    metadata = _metadata(name)
    sqlite = url.startswith("sqlite")

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=sqlite)
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(conn: Any) -> None:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=sqlite)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
            await conn.commit()
        await engine.dispose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run())
        return
    # Called from inside a running loop (tests): run in a fresh thread with its own loop.
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    th = threading.Thread(target=target)
    th.start()
    th.join()
    if errors:
        raise errors[0]
