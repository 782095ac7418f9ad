"""Operator commands of submissions, mounted under ``hoithi submissions …``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated

import typer

app = typer.Typer(help="Submissions: intake closing and attachment collection.", no_args_is_help=True)


@app.command("close-intake")
def close_intake() -> None:
    """Emit intake.closed for every deadline already passed (what the background job does each second).

    Safe to run beside the service: the same deterministic ids, the same receipt lock."""
    from services.submissions.app import SPEC
    from services.submissions.usecases import intake
    from shared.service import build_runtime

    async def run() -> list[str]:
        rt = build_runtime(SPEC)
        try:
            return await intake.close_due(rt)
        finally:
            await rt.engine.dispose()

    done = asyncio.run(run())
    typer.echo("\n".join(done) if done else "nothing to close")


@app.command("collect-attachments")
def collect_attachments(
    grace_minutes: Annotated[float, typer.Option(help="keep objects younger than this")] = 10.0,
) -> None:
    """Delete attachment objects no row references (never one whose upload is pending)."""
    import nats

    from services.submissions.usecases import objects
    from shared.db import make_engine
    from shared.nats_auth import connect_options
    from shared.settings import get_settings, service_settings

    async def run() -> list[str]:
        settings = get_settings()
        engine = make_engine(service_settings("submissions", settings).database_url)
        nc = await nats.connect(**connect_options(settings, "submissions"))
        try:
            store = await objects.open_bucket(nc.jetstream(), settings)
            return await objects.collect(engine, store, grace=timedelta(minutes=grace_minutes))
        finally:
            await nc.close()
            await engine.dispose()

    deleted = asyncio.run(run())
    typer.echo(f"deleted {len(deleted)} unreferenced object(s)")


commands: dict[str, typer.Typer] = {"submissions": app}
