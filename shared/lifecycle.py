"""A submission's lifecycle (vòng đời bài dự thi), folded in one place for every service that keeps its facts.

Pure: no framework, database or broker. The facts of one submission (``submission.received`` / ``.revised`` /
``.withdrawn`` / ``.rejected`` / ``.reinstated`` and ``initiative.selected``, all with the submission id as
their subject) are folded in the producer's ``sequence`` order, whatever order they arrived in, duplicates and
gaps allowed:

- a withdrawal is final, even one kept before its receipt;
- a rejection holds until a later (by sequence) reinstatement, and a reinstatement before any rejection is
  nothing;
- a revision is the same submission: it raises the revision number, never the receipt time;
- a second receipt of the same submission is the same receipt (the first by sequence counts).

``as_of`` folds only the facts whose *business* time (a receipt at its receipt time, any other change at its
``at``) is at or before that instant, for "as of" views.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

RECEIVED = "submission.received"
REVISED = "submission.revised"
WITHDRAWN = "submission.withdrawn"
REJECTED = "submission.rejected"
REINSTATED = "submission.reinstated"
SELECTED = "initiative.selected"
LIFECYCLE_TYPES: tuple[str, ...] = (RECEIVED, REVISED, WITHDRAWN, REJECTED, REINSTATED, SELECTED)

State = Literal["pending", "live", "withdrawn", "rejected"]


class SubmissionFact(Protocol):
    """What the fold reads of a kept fact (a CloudEvent envelope)."""

    @property
    def id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def time(self) -> datetime: ...
    @property
    def sequence(self) -> int: ...
    @property
    def data(self) -> dict[str, Any]: ...


def instant(value: Any, fallback: datetime) -> datetime:
    """A business instant from a fact's data (a datetime or ISO 8601 text), else ``fallback``."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return fallback


def fact_time(f: SubmissionFact) -> datetime:
    """The business time of a lifecycle fact: a receipt at its receipt time, any other at its ``at``."""
    key = "received_at" if f.type == RECEIVED else "at"
    return instant(f.data.get(key), f.time)


F = TypeVar("F", bound=SubmissionFact)


def in_sequence(facts: Iterable[F]) -> list[F]:
    """The lifecycle facts among ``facts``, each once (by event id), in the producer's sequence order."""
    unique = {f.id: f for f in facts if f.type in LIFECYCLE_TYPES}
    return sorted(unique.values(), key=lambda f: (f.sequence, fact_time(f), f.id))


@dataclass(frozen=True)
class Lifecycle:
    """Where one submission stands. ``kind``, ``part``, ``author_id`` and ``unit_id`` come from whichever fact
    is kept (every lifecycle fact carries them), so a withdrawal kept before its receipt already says whose
    submission it is."""

    submission_id: str | None = None
    received: bool = False
    withdrawn: bool = False
    rejected: bool = False
    received_at: datetime | None = None
    received_event_id: str | None = None
    revision: int = 0
    kind: str | None = None
    part: str | None = None
    author_id: str | None = None
    unit_id: str | None = None
    selected_event_id: str | None = None
    selected_at: datetime | None = None
    selection_part: str | None = None
    council_id: str | None = None

    @property
    def state(self) -> State:
        if self.withdrawn:
            return "withdrawn"
        if not self.received:
            return "pending"
        return "rejected" if self.rejected else "live"

    @property
    def live(self) -> bool:
        """Received, not withdrawn, and not rejected (or the rejection was reversed)."""
        return self.state == "live"

    @property
    def selected(self) -> bool:
        """Selected by the council, and not taken back by a withdrawal or a standing rejection."""
        return self.selected_event_id is not None and not self.withdrawn and not self.rejected

    @property
    def assignee_id(self) -> str | None:
        """Whose assignment it counts for: the unit's for an initiative, the author's for a report."""
        return self.unit_id if self.kind == "initiative" else self.author_id


def fold(facts: Iterable[SubmissionFact], *, as_of: datetime | None = None) -> Lifecycle:
    """Fold one submission's facts (any order, duplicates and gaps allowed); see the module docstring."""
    s = Lifecycle()
    for f in in_sequence(facts):
        if as_of is not None and fact_time(f) > as_of:
            continue
        d = f.data
        if f.type == SELECTED:
            if s.selected_event_id is None:
                s = replace(
                    s,
                    submission_id=s.submission_id or d.get("submission_id"),
                    selected_event_id=f.id,
                    selected_at=instant(d.get("at"), f.time),
                    selection_part=d.get("part"),
                    council_id=d.get("council_id"),
                    unit_id=s.unit_id or d.get("unit_id"),
                    kind=s.kind or "initiative",
                )
            continue
        s = replace(
            s,
            submission_id=s.submission_id or d.get("submission_id"),
            kind=s.kind or d.get("kind"),
            part=s.part or d.get("part"),
            author_id=s.author_id or d.get("author_id"),
            unit_id=s.unit_id or d.get("unit_id"),
        )
        if f.type == RECEIVED:
            if not s.received:
                s = replace(
                    s,
                    received=True,
                    received_at=instant(d.get("received_at"), f.time),
                    received_event_id=f.id,
                    revision=max(s.revision, int(d.get("revision", 1))),
                )
        elif f.type == REVISED:
            s = replace(s, revision=max(s.revision, int(d.get("revision", 2))))
        elif f.type == WITHDRAWN:
            s = replace(s, withdrawn=True)
        elif f.type == REJECTED:
            s = replace(s, rejected=True)
        elif f.type == REINSTATED:
            s = replace(s, rejected=False)
    return s
