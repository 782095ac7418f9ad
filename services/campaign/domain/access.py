"""Who sees which assignments, pure: the scope of a caller over a directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.documents import Directory, Person


class Roles(Protocol):
    """What the rule needs of a caller (``shared.service.Caller`` is one)."""

    def has_role(self, *roles: str) -> bool: ...


@dataclass(frozen=True)
class Visible:
    """Which assignments a caller may see: those of ``units`` (None: any unit) whose assignee is among ``people``
    (None: anyone). Called as ``visible(assignee_id, unit_id)``; a reader that asks the database says the same
    in SQL (``services/campaign/usecases/editions.py``)."""

    units: frozenset[str] | None = None
    people: frozenset[str] | None = None

    def __call__(self, assignee: str, unit: str | None) -> bool:
        return (self.units is None or unit in self.units) and (self.people is None or assignee in self.people)


def scope_of(caller: Roles, person: Person, directory: Directory) -> tuple[str, Visible | None]:
    """What a caller may see of assignments, as ``(scope, visible)``; None: nothing beyond their own (their own
    and their unit's: :func:`own`). The director and the secretariat see everything; a unit head their unit and
    its branches; a union secretary their union's members. The head of the Department Office (Chánh Văn phòng,
    the unit of kind ``office``) leads the secretariat and sees everything too."""
    units = {u.id: u for u in directory.units}
    office_head = (
        caller.has_role("unit_head") and person.unit in units and units[person.unit].kind == "office"
    )
    if caller.has_role("director", "secretariat", "admin") or office_head:
        return "all", Visible()
    if caller.has_role("unit_head"):
        own_units = frozenset({person.unit, *(u.id for u in directory.units if u.parent == person.unit)})
        return f"unit:{person.unit}", Visible(units=own_units)
    if caller.has_role("union_secretary"):
        mine = {u.id for u in directory.unions if u.secretary == person.id} or set(person.unions)
        # and every union below theirs: a Bí thư sees the members of the Chi đoàn under their Đoàn
        below = set(mine)
        while grown := {u.id for u in directory.unions if u.parent in below} - below:
            below |= grown
        members = frozenset(p.id for p in directory.people if set(p.unions) & below)
        return "union:" + ",".join(sorted(mine)), Visible(people=members)
    return f"person:{person.id}", None


def own(person: Person) -> Visible:
    """What anyone sees: their own assignments and their unit's (an initiative is the unit's)."""
    return Visible(people=frozenset({person.id, person.unit}))
