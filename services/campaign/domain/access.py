"""Who sees which assignments, pure: the scope of a caller over a directory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from shared.documents import Directory, Person


class Roles(Protocol):
    """What the rule needs of a caller (``shared.service.Caller`` is one)."""

    def has_role(self, *roles: str) -> bool: ...


def scope_of(
    caller: Roles, person: Person, directory: Directory
) -> tuple[str, Callable[[str, str | None], bool] | None]:
    """What a caller may see of assignments, as ``(scope, visible(assignee_id, unit_id))``; None: nothing beyond
    their own. The director and the secretariat see everything; a unit head their unit and its branches; a union
    secretary their union's members. The head of the Department Office (Chánh Văn phòng, the unit of kind
    ``office``) leads the secretariat and sees everything too."""
    units = {u.id: u for u in directory.units}
    office_head = (
        caller.has_role("unit_head") and person.unit in units and units[person.unit].kind == "office"
    )
    if caller.has_role("director", "secretariat", "admin") or office_head:
        return "all", lambda assignee, unit: True
    if caller.has_role("unit_head"):
        own = {person.unit, *(u.id for u in directory.units if u.parent == person.unit)}
        return f"unit:{person.unit}", lambda assignee, unit: unit in own
    if caller.has_role("union_secretary"):
        mine = {u.id for u in directory.unions if u.secretary == person.id} or set(person.unions)
        # and every union below theirs: a Bí thư sees the members of the Chi đoàn under their Đoàn
        below = set(mine)
        while grown := {u.id for u in directory.unions if u.parent in below} - below:
            below |= grown
        members = {p.id for p in directory.people if set(p.unions) & below}
        return "union:" + ",".join(sorted(mine)), lambda assignee, unit: assignee in members
    return f"person:{person.id}", None
