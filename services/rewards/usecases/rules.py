"""The reward rules of an edition: checking a rules document before it is published, and the versions received
with the edition. Queries: nothing is stored here (rules arrive with ``edition.published``: ``projection``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.rewards import models
from services.rewards.usecases import projection
from shared.errors import DomainError, Refusal, field_error
from shared.reward_rules import parts_of
from shared.service import Runtime


async def check(
    rt: Runtime, tenant: str, edition: str, body: dict[str, Any], rewards: dict[str, Any]
) -> None:
    """Refuse ``rewards`` (the rules section of ``body``) with one error per field (``invalid_rules``). The
    parts its rules may name are ``body``'s, when it is an edition document, else the edition's as rewards
    holds it (so its own part ids may be named)."""
    if isinstance(body.get("parts"), list):
        parts: dict[str, str] | None = parts_of(body)
    else:  # the parts of the edition as rewards holds it, so its own part ids may be named
        assert rt.copies is not None
        async with rt.engine.connect() as conn:
            held = await rt.copies.edition(conn, tenant, edition)
        parts = parts_of(held) if held is not None else None
    errors = projection.check_rules(rewards, parts)
    if errors:
        raise DomainError(
            Refusal.INVALID,
            "The reward rules are invalid: " + ", ".join(e.field for e in errors),
            "Quy tắc khen thưởng không hợp lệ: " + ", ".join(e.field for e in errors),
            code="invalid_rules",
            errors=[field_error(e.field, e.en, e.vi) for e in errors],
        )


async def versions(rt: Runtime, tenant: str, edition: str) -> list[Any]:
    """Every rules version received with the edition (refused ones too), oldest first."""
    r = models.rules
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(r).where(r.c.tenant == tenant, r.c.edition == edition).order_by(r.c.version)
            )
        ).all()
    return list(rows)
