"""Who sees what of a person: the one masking policy every service's reads and exports apply.

Decree 13/2023/NĐ-CP on personal data protection asks each reader to see only what their work needs:

- everyone in the tenant sees another person's **name, title, unit, roles and unions** (the public face of an
  official), and everything of their own;
- a **unit head** also sees the contact data (e-mail) of the people of their unit and its branches;
- the **secretariat** (and the system administrator) see everything: they run the directory and the contest;
- points, misses and the reasons behind them are **participation detail**: the person themselves, the
  secretariat, the reward council (Hội đồng thi đua khen thưởng) and the head of the person's unit see them;
  anyone else — the director included, who reads the aggregates by unit and union — sees the name without the
  detail;
- **sensitive** fields (date of birth, qualification) only the person and the secretariat.

Masking is by omission (``None``) in JSON answers and by ``MASK`` in exports, so the shape of an answer never
depends on the reader. Every answer carrying personal data is sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from starlette.responses import Response

from shared.documents import PERSON_SENSITIVE_FIELDS, Person, Unit

CONTACT_FIELDS: tuple[str, ...] = ("email",)
SENSITIVE_FIELDS: tuple[str, ...] = PERSON_SENSITIVE_FIELDS
MASK = "***"  # what an export writes in a cell the reader need not see

NO_STORE: dict[str, str] = {"Cache-Control": "no-store"}

_EVERYTHING = frozenset({"secretariat", "admin"})
_PARTICIPATION = frozenset({"secretariat", "admin", "reward_council"})


class Sight(IntEnum):
    """How much of a person a reader sees; each level includes the ones below."""

    public = 1  # name, title, unit, roles, unions
    contact = 2  # + e-mail
    full = 3  # + date of birth, qualification


@dataclass(frozen=True)
class Viewer:
    """The reader, as the policy needs them: who, with which roles, heading which units."""

    person_id: str
    roles: frozenset[str] = frozenset()
    units_headed: frozenset[str] = frozenset()

    @classmethod
    def of(cls, person_id: str, person: Person | None, units: Iterable[Unit] = ()) -> Viewer:
        """``units``: the directory's units (to find the branches of a unit head's unit); may be empty."""
        return cls.with_parents(person_id, person, {u.id: u.parent for u in units})

    @classmethod
    def with_parents(cls, person_id: str, person: Person | None, parents: Mapping[str, str | None]) -> Viewer:
        """``parents``: unit id → its parent's id, for the units the reader's service knows."""
        if person is None:
            return cls(person_id)
        roles = frozenset(str(r) for r in person.roles)
        headed: frozenset[str] = frozenset()
        if "unit_head" in roles:  # their unit and its branches, as campaign scopes assignments
            headed = frozenset({person.unit, *(u for u, parent in parents.items() if parent == person.unit)})
        return cls(person_id, roles, headed)

    def sight(self, person_id: str, unit_id: str | None) -> Sight:
        """How much of the person ``person_id`` (of unit ``unit_id``) this reader sees."""
        if person_id == self.person_id or self.roles & _EVERYTHING:
            return Sight.full
        if unit_id is not None and unit_id in self.units_headed:
            return Sight.contact
        return Sight.public

    def sees_participation(self, person_id: str, unit_id: str | None) -> bool:
        """Whether this reader sees the person's points, misses and their reasons."""
        return (
            person_id == self.person_id
            or bool(self.roles & _PARTICIPATION)
            or (unit_id is not None and unit_id in self.units_headed)
        )

    @property
    def sees_all_participation(self) -> bool:
        return bool(self.roles & _PARTICIPATION)


def hidden_fields(sight: Sight) -> tuple[str, ...]:
    """The fields of a person record a reader with ``sight`` does not see."""
    if sight >= Sight.full:
        return ()
    if sight >= Sight.contact:
        return SENSITIVE_FIELDS
    return CONTACT_FIELDS + SENSITIVE_FIELDS


def person_view(viewer: Viewer, record: Mapping[str, Any], *, mask: Any = None) -> dict[str, Any]:
    """A person record (``id``/``person_id``, ``unit``/``unit_id``, …) with what ``viewer`` need not see set to
    ``mask`` (``None`` in JSON; ``MASK`` in exports). Fields not in the record stay absent."""
    pid = str(record.get("id") or record.get("person_id") or "")
    unit = record.get("unit", record.get("unit_id"))
    hidden = hidden_fields(viewer.sight(pid, unit))
    return {k: (mask if k in hidden and v is not None else v) for k, v in record.items()}


async def no_store(response: Response) -> None:
    """A route dependency: the answer carries personal data, so no cache (browser or proxy) keeps it. ``async``:
    FastAPI would run a plain ``def`` dependency in its thread pool."""
    response.headers.update(NO_STORE)
