"""``Idempotency-Key`` for creating POSTs: a retry with the same key gets the original answer.

The key is scoped to (tenant, caller, route). The stored answer is written in the same transaction as the
record it describes, so either both exist or neither does. The same key with a different body is a 422: the
client has a bug, and guessing which request it meant would be worse.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db import Backbone
from shared.errors import DomainError, Refusal


@dataclass(frozen=True)
class Stored:
    status: int
    body: Any


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


MAX_KEY_LENGTH = 200


def key_too_long() -> DomainError:
    return DomainError(
        Refusal.INVALID,
        f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters.",
        f"Idempotency-Key dài quá {MAX_KEY_LENGTH} ký tự.",
        code="idempotency_key",
    )


def key_reused() -> DomainError:
    """The same key with another request: refused (422), never the first answer to another question."""
    return DomainError(
        Refusal.INVALID,
        "This Idempotency-Key was already used for a different request.",
        "Idempotency-Key này đã được dùng cho một yêu cầu khác.",
        code="idempotency_key_reused",
    )


class Idempotency:
    def __init__(self, backbone: Backbone) -> None:
        self.table = backbone.idempotency

    async def lookup(self, conn: AsyncConnection, scope: str, key: str | None, digest: str) -> Stored | None:
        if not key:
            return None
        if len(key) > MAX_KEY_LENGTH:
            raise key_too_long()
        t = self.table
        row = (
            await conn.execute(
                sa.select(t.c.request_hash, t.c.status, t.c.body).where(t.c.scope == scope, t.c.key == key)
            )
        ).first()
        if row is None:
            return None
        if row.request_hash != digest:
            raise key_reused()
        return Stored(row.status, json.loads(row.body))

    async def remember(
        self,
        conn: AsyncConnection,
        scope: str,
        key: str | None,
        digest: str,
        status: int,
        body: Any,
        now: datetime,
    ) -> None:
        if not key:
            return
        await conn.execute(
            self.table.insert().values(
                scope=scope,
                key=key,
                request_hash=digest,
                status=status,
                body=json.dumps(body, ensure_ascii=False, default=str).encode(),
                created_at=now,
            )
        )
