"""Dead letters: reading the dead-letter stream, for ``hoithi deadletters`` and for each service's read-only
HTTP view (``GET /tenants/{tenant}/dead-letters``), so the secretariat can look at what a service could not apply
without a shell on the machine.

Every service mounts the router (``shared/service.py``); it shows that service's own dead letters of the caller's
tenant, to the secretariat and the administrator only. Replaying stays an operator's command
(``hoithi deadletters replay``). The service's NATS user may read the dead-letter stream's messages
(``$JS.API.STREAM.MSG.GET``, ``shared/nats_auth.py``) and publish to it only under its own name.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from shared.directory import Role
from shared.errors import Problem
from shared.privacy import no_store
from shared.problems import problem_responses
from shared.service import CallerDep, RuntimeDep


async def read(js: Any, stream: str) -> list[dict[str, Any]]:
    """Every dead-letter record (``deadletter.recorded`` envelopes, as JSON) on ``stream``, oldest first."""
    from nats.js.errors import NotFoundError

    out = []
    info = await js.stream_info(stream)
    # An empty stream reports first_seq 0 (or last_seq + 1 after a purge): there is nothing to read.
    first = max(info.state.first_seq, 1)
    for seq in range(first, info.state.last_seq + 1) if info.state.messages else ():
        try:
            m = await js.get_msg(stream, seq)
        except NotFoundError:
            continue
        out.append(json.loads(m.data))
    return out


class DeadLetter(BaseModel):
    id: str = Field(description="the record's id (for `hoithi deadletters replay`)")
    recorded_at: datetime
    service: str
    consumer: str
    reason: str = Field(description="why: invalid payload, max deliveries reached, …")
    error: str
    event_type: str | None = Field(description="the type of the event that could not be applied")
    event_id: str | None
    original_subject: str
    stream: str
    stream_sequence: int
    deliveries: int | None


def _original(record: dict[str, Any]) -> dict[str, Any]:
    try:
        found = json.loads(base64.b64decode(record["data"].get("original_base64") or ""))
    except (ValueError, TypeError):
        return {}
    return found if isinstance(found, dict) else {}


def view(record: dict[str, Any]) -> DeadLetter:
    d, original = record["data"], _original(record)
    return DeadLetter(
        id=record["id"],
        recorded_at=record["time"],
        service=d["service"],
        consumer=d["consumer"],
        reason=d["reason"],
        error=d["error"],
        event_type=original.get("type"),
        event_id=original.get("id"),
        original_subject=d["original_subject"],
        stream=d["stream"],
        stream_sequence=d["stream_sequence"],
        deliveries=d.get("deliveries"),
    )


router = APIRouter(tags=["dead letters"])


@router.get(
    "/tenants/{tenant}/dead-letters",
    response_model=list[DeadLetter],
    dependencies=[Depends(no_store)],
    responses=problem_responses(403, 503, s403="not the secretariat", s503="the broker is not reachable"),
)
async def dead_letters(tenant: str, rt: RuntimeDep, caller: CallerDep) -> list[DeadLetter]:
    """This service's dead letters of the tenant, newest first: what it could not apply, and why (read-only;
    replay with ``hoithi deadletters replay <id>``)."""
    if not caller.has_role(Role.secretariat, Role.admin):
        raise Problem(
            403,
            "Only the secretariat may look at dead letters.",
            "Chỉ Thường trực Hội thi (Văn phòng Sở) được xem các sự kiện không xử lý được.",
            code="secretariat_only",
        )
    try:
        records = await read(rt.nc.jetstream(), rt.settings.deadletter_stream)
    except Exception as exc:  # no broker, no stream: say so, never a 500
        raise Problem(
            503,
            f"The dead-letter stream cannot be read now ({type(exc).__name__}).",
            "Tạm thời không đọc được danh sách sự kiện không xử lý được.",
            code="broker_unavailable",
        ) from exc
    mine = [r for r in records if r.get("tenant") == tenant and r.get("data", {}).get("service") == rt.name]
    return [view(r) for r in reversed(mine)]
