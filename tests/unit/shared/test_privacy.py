"""The one masking policy (shared/privacy.py): each reader sees what their work needs (Decree 13/2023)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from shared.copies import copy_tables
from shared.documents import Person, Unit
from shared.events.envelope import Envelope, make_event
from shared.privacy import MASK, Sight, Viewer, person_view

UNITS = [
    Unit(id="u-vpdkdd", code="VPDKDD", name="Văn phòng Đăng ký đất đai", kind="public_service_unit"),
    Unit(id="u-cn1", code="CN1", name="Chi nhánh 1", kind="branch", parent="u-vpdkdd"),
    Unit(id="u-tnn", code="TNN", name="Phòng Tài nguyên nước", kind="division"),
]
RECORD = {
    "id": "p-2",
    "name": "Trần Văn Minh",
    "email": "minh.tv@example.vn",
    "title": "Chuyên viên",
    "unit": "u-cn1",
    "date_of_birth": "1995-01-09",
    "qualification": "Kỹ sư Trắc địa",
}


def _viewer(pid: str, unit: str, *roles: str) -> Viewer:
    person = Person(id=pid, name="X", email="x@example.vn", title="T", unit=unit, roles=list(roles))
    return Viewer.of(pid, person, UNITS)


def test_each_role_sees_what_its_work_needs() -> None:
    official = _viewer("p-9", "u-tnn", "official")
    head = _viewer("p-1", "u-vpdkdd", "unit_head")  # the branch u-cn1 is under their unit
    other_head = _viewer("p-3", "u-tnn", "unit_head")
    secretariat = _viewer("p-4", "u-tnn", "official", "secretariat")
    council = _viewer("p-5", "u-tnn", "official", "reward_council")
    assert official.sight("p-2", "u-cn1") == Sight.public and official.sight("p-9", "u-tnn") == Sight.full
    assert head.sight("p-2", "u-cn1") == Sight.contact and other_head.sight("p-2", "u-cn1") == Sight.public
    assert secretariat.sight("p-2", "u-cn1") == Sight.full

    seen = person_view(official, RECORD)
    assert (seen["name"], seen["title"], seen["unit"]) == ("Trần Văn Minh", "Chuyên viên", "u-cn1")
    assert seen["email"] is None and seen["date_of_birth"] is None and seen["qualification"] is None
    assert person_view(head, RECORD)["email"] == "minh.tv@example.vn"
    assert person_view(head, RECORD)["date_of_birth"] is None
    assert person_view(secretariat, RECORD) == RECORD
    assert person_view(official, RECORD, mask=MASK)["email"] == "***"

    assert not official.sees_participation("p-2", "u-cn1") and official.sees_participation("p-9", "u-tnn")
    assert head.sees_participation("p-2", "u-cn1") and not other_head.sees_participation("p-2", "u-cn1")
    assert council.sees_all_participation and secretariat.sees_all_participation
    assert not Viewer.of("p-0", None).sees_participation("p-2", "u-cn1")  # not in the directory: nothing


def test_no_copy_keeps_a_date_of_birth_from_either_version_of_the_person_fact(tmp_path: Path) -> None:
    """v2 carries neither date of birth nor qualification; a v1 fact still in the stream is accepted, and the
    copy keeps neither from it either (README "Personal data")."""
    from shared.db import make_engine

    full = Person.model_validate({**RECORD, "roles": ["official"]})
    v2 = make_event(
        "directory.person.changed", {"person": full}, source="campaign", tenant="t", subject="p-2",
        sequence=1, time=datetime(2023, 10, 20, tzinfo=UTC),
    )  # fmt: skip
    assert v2.dataschemaversion == 2 and "date_of_birth" not in v2.data["person"]
    v1 = v2.model_copy(
        update={"dataschemaversion": 1, "sequence": 2, "data": {"person": full.model_dump(mode="json")}}
    )

    async def kept(env: Envelope) -> dict[str, object]:
        metadata = sa.MetaData()
        copies = copy_tables(metadata)
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/{env.dataschemaversion}.db")
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await copies.apply(conn, env)
            doc = (await conn.execute(sa.select(copies.people.c.doc))).scalar_one()
        await engine.dispose()
        return json.loads(doc)  # type: ignore[no-any-return]

    for env in (v1, v2):
        doc = asyncio.run(kept(env))
        assert doc["email"] == "minh.tv@example.vn" and doc["unit"] == "u-cn1"
        assert "date_of_birth" not in doc and "qualification" not in doc
