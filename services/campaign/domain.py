"""Campaign's rules, pure: who must deliver what by when, and whether a submission's facts fulfil it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.documents import Directory, Edition, ExperienceReportPart, InitiativePart
from shared.events.envelope import deterministic_id


@dataclass(frozen=True)
class PlannedAssignment:
    id: str
    part: str
    part_kind: str
    assignee_kind: str  # unit | person | council
    assignee_id: str
    unit_id: str | None
    deadline: datetime


def assignment_id(tenant: str, edition: str, part: str, assignee_id: str) -> str:
    return deterministic_id("assignment", tenant, edition, part, assignee_id)


def derive_assignments(
    edition: Edition, directory: Directory, as_of: date | None = None
) -> list[PlannedAssignment]:
    """One assignment per assignee of each part, from the directory as of the edition's opening."""
    day = as_of or edition.opens
    out: list[PlannedAssignment] = []
    for part in edition.parts:
        deadline = edition.deadline_of(part.id)
        a = part.assignees

        def plan(
            kind: str, assignee: str, unit: str | None, part: Any = part, deadline: datetime = deadline
        ) -> PlannedAssignment:
            return PlannedAssignment(
                assignment_id(edition.tenant, edition.edition, part.id, assignee),
                part.id,
                part.kind,
                kind,
                assignee,
                unit,
                deadline,
            )

        if a.units is not None:
            out += [plan("unit", u.id, u.id) for u in directory.select_units(a.units, day)]
        if a.people is not None:
            out += [plan("person", p.id, p.unit) for p in directory.select_people(a.people, day)]
        if a.council is not None:
            out.append(plan("council", a.council, None))
    return out


def fulfilling_assignee(
    part: InitiativePart | ExperienceReportPart | object, author_id: str, unit_id: str
) -> str:
    """Whose assignment a submission fulfils: the unit's for an initiative, the author's for a report."""
    return unit_id if getattr(part, "kind", None) == "initiative" else author_id


@dataclass(frozen=True)
class SubmissionState:
    """A submission's standing, folded from its facts in sequence order (gaps allowed)."""

    received: bool = False
    withdrawn: bool = False
    rejected: bool = False
    received_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.received and not self.withdrawn and not self.rejected


def fold_submission(facts: Iterable[tuple[str, dict[str, object]]]) -> SubmissionState:
    """Fold ``(type, data)`` facts already sorted by sequence. A withdrawal is final, whatever arrives later."""
    received = withdrawn = rejected = False
    received_at: datetime | None = None
    for type_, data in facts:
        if type_ == "submission.received":
            received = True
            raw = data.get("received_at")
            received_at = datetime.fromisoformat(str(raw)) if raw else received_at
        elif type_ == "submission.withdrawn":
            withdrawn = True
        elif type_ == "submission.rejected":
            rejected = True
        elif type_ == "submission.reinstated":
            rejected = False
    return SubmissionState(received, withdrawn, rejected, received_at)
