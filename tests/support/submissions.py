"""Helpers for submissions' integration and e2e tests: facts as campaign would publish them, and reading
submissions' own events off the stream."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from shared.events.envelope import make_event
from tests.support.system import EDITION, TENANT, System, _in_loop, _run_in_thread


def publish(
    system: System, type_: str, data: dict[str, Any], *, subject: str, sequence: int, time: datetime
) -> str:
    """Publish one fact on the system's stream exactly as a producer's relay does (``Nats-Msg-Id`` = id)."""
    import nats

    env = make_event(
        type_,
        data,
        source="campaign",
        tenant=TENANT,
        subject=subject,
        sequence=sequence,
        time=time,
        edition=EDITION,
    )

    async def go() -> str:
        nc = await nats.connect(system.nats_url)
        try:
            await nc.jetstream().publish(
                f"{system.prefix}.{TENANT}.{type_}",
                env.to_json(),
                stream=system.stream,
                headers={"Nats-Msg-Id": env.id},
            )
        finally:
            await nc.close()
        return env.id

    return _run_in_thread(go) if _in_loop() else asyncio.run(go())


def extend_deadline(
    system: System,
    *,
    part: str,
    assignee: str,
    kind: str,
    previous: datetime,
    new: datetime,
    sequence: int = 1,
) -> str:
    """A ``deadline.extended`` for one assignee, as campaign emits it."""
    assignment = f"a-{part}-{assignee}"
    return publish(
        system,
        "deadline.extended",
        {
            "assignment_id": assignment,
            "part": part,
            "assignee_kind": kind,
            "assignee_id": assignee,
            "previous_deadline": previous.isoformat(),
            "new_deadline": new.isoformat(),
            "reason": "Đơn vị bận tiếp đoàn kiểm tra",
            "approved_by": "p-0003",
        },
        subject=assignment,
        sequence=sequence,
        time=previous,
    )


def events_of(system: System, *types: str) -> list[dict[str, Any]]:
    return [e for _, e in system.events() if e.get("type") in types]


def load_catalogue(system: System, unit: str, codes: list[str], *, sequence: int = 1) -> str:
    """A ``procedure.catalogue.changed`` for one unit, as campaign emits it."""
    return publish(
        system,
        "procedure.catalogue.changed",
        {
            "unit_id": unit,
            "procedures": [
                {"code": c, "name": f"Thủ tục {c}", "level": "full_process", "eligible_full_process": True}
                for c in codes
            ],
            "at": "2023-10-01T00:00:00+07:00",
        },
        subject=unit,
        sequence=sequence,
        time=datetime.fromisoformat("2023-10-01T00:00:00+07:00"),
    )
