"""``hoithi rewards …``: operator commands of the rewards service (mounted by shared/cli.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

app = typer.Typer(help="rewards: the priority list's projection and rules.", no_args_is_help=True)


@app.command("rebuild")
def rebuild_cmd(
    batch: Annotated[int, typer.Option(help="events per transaction")] = 500,
) -> None:
    """Re-read the stream from its start into a fresh generation (its own inbox), showing progress, and swap it
    in when complete; the live service keeps consuming meanwhile. Emits reward.priority.changed only for what
    differs at the swap, and records the rules version that produced the list."""
    from services.rewards.app import SPEC
    from services.rewards.usecases.rebuild import rebuild
    from shared.service import build_runtime

    async def run() -> None:
        rt = build_runtime(SPEC)
        try:
            await rebuild(rt, batch=batch, echo=typer.echo)
        finally:
            await rt.engine.dispose()

    asyncio.run(run())


@app.command("generations")
def generations_cmd() -> None:
    """List the projection's generations: which is live, which rules versions produced it."""
    import sqlalchemy as sa

    from services.rewards import models
    from services.rewards.app import SPEC
    from shared.service import build_runtime

    async def run() -> list[Any]:
        rt = build_runtime(SPEC)
        try:
            async with rt.engine.connect() as conn:
                return list(
                    (
                        await conn.execute(sa.select(models.generations).order_by(models.generations.c.id))
                    ).all()
                )
        finally:
            await rt.engine.dispose()

    rows = asyncio.run(run())
    if not rows:
        typer.echo("generation 0 (inbox facts): active, never rebuilt")
    for r in rows:
        typer.echo(
            f"generation {r.id} (inbox {r.purpose}): {r.status}; {r.facts} facts; rules {r.rules_versions}"
        )


@app.command("check-rules")
def check_rules_cmd(
    path: Annotated[Path, typer.Argument(help="an edition YAML/JSON, or its rewards section alone")],
) -> None:
    """Check reward rules before publishing them: every problem names its field (English and Vietnamese)."""
    from services.rewards.usecases.projection import check_rules

    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    rewards = doc.get("rewards", doc) if isinstance(doc, dict) else doc
    if not isinstance(rewards, dict):
        typer.echo("rewards: must be a mapping / phải là một bảng", err=True)
        raise typer.Exit(1)
    from shared.reward_rules import parts_of

    # An edition document lets its own part ids be named (submission.received/<part id>); a rules section alone
    # allows only the catalogue's kinds.
    errors = check_rules(rewards, parts_of(doc) if isinstance(doc, dict) and "parts" in doc else None)
    if not errors:
        typer.echo(f"rules valid (rules_version {rewards.get('rules_version', 1)}) / quy tắc hợp lệ")
        return
    for e in errors:
        typer.echo(
            json.dumps({"field": e.field, "message": e.en, "message_vi": e.vi}, ensure_ascii=False), err=True
        )
    raise typer.Exit(1)


commands = {"rewards": app}
