"""The one masking policy (shared/privacy.py): each reader sees what their work needs (Decree 13/2023)."""

from __future__ import annotations

from shared.documents import Person, Unit
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
