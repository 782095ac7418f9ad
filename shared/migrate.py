"""Alembic, once for every service: each service's ``migrations/env.py`` calls ``run_env(name)``.

Migrations run as their own step (``hoithi migrate``), never inside a service's start-up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.settings import load, registry, service_settings


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
