"""The folds: a submission and an assignment as the facts kept for each say, in ``sequence`` order (any arrival
order, duplicates and gaps allowed). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.rewards.domain.facts import (
    CREATED,
    EXTENDED,
    FULFILLED,
    MISSED,
    PROGRESS,
    RECEIVED,
    REOPENED,
    REVISED,
    SELECTED,
    TARGET_MISSED,
    TARGET_REACHED,
    Fact,
    SubmissionStatus,
    _aware,
    _ordered,
    business_time,
)
from shared import lifecycle


@dataclass(frozen=True)
class AuthorShare:
    person_id: str | None
    name: str
    share: float


@dataclass(frozen=True)
class Submission:
    """One submission as the facts kept for it say: where it stands is its ``shared.lifecycle`` fold (``life``);
    what it is (author, unit, authors, title…) comes from its receipt, revisions and selection."""

    submission_id: str
    life: lifecycle.Lifecycle = field(default_factory=lifecycle.Lifecycle)
    edition: str | None = None
    kind: str | None = None
    part: str | None = None
    author_id: str | None = None
    unit_id: str | None = None
    union_ids: tuple[str, ...] = ()
    authors: tuple[AuthorShare, ...] = ()
    title: str | None = None
    receipt_number: str | None = None
    selection_part: str | None = None
    selection_unit_id: str | None = None
    selection_destination: str | None = None
    selection_authors: tuple[AuthorShare, ...] = ()

    @property
    def received(self) -> bool:
        return self.life.received

    @property
    def withdrawn(self) -> bool:
        return self.life.withdrawn

    @property
    def rejected(self) -> bool:
        return self.life.rejected

    @property
    def received_event_id(self) -> str | None:
        return self.life.received_event_id

    @property
    def received_at(self) -> datetime | None:
        return self.life.received_at

    @property
    def revision(self) -> int:
        return self.life.revision

    @property
    def selected_event_id(self) -> str | None:
        return self.life.selected_event_id

    @property
    def selected_at(self) -> datetime | None:
        return self.life.selected_at

    @property
    def active(self) -> bool:
        """Received, not withdrawn, and not rejected (or the rejection was reversed)."""
        return self.life.live

    @property
    def selected(self) -> bool:
        """Selected by the council, and not taken back by a withdrawal or an ineligibility ruling."""
        return self.life.selected

    @property
    def status(self) -> SubmissionStatus:
        state = self.life.state
        return "active" if state == "live" else state


def _authors(raw: Any) -> tuple[AuthorShare, ...]:
    return tuple(
        AuthorShare(a.get("person_id"), str(a.get("name", "")), float(a.get("share", 100))) for a in raw or ()
    )


def fold_submission(submission_id: str, facts: Iterable[Fact]) -> Submission:
    """Fold the facts kept for one submission (any arrival order, duplicates and gaps allowed).

    Where it stands (received, withdrawn, rejected, receipt time, revision) is ``shared.lifecycle``'s fold, the
    one every service uses. Here only what it is: revisions change the content (the authors of an
    initiative), never the achievement: the receipt stays the one fact that earns.
    """
    kept = lifecycle.in_sequence(facts)
    life = lifecycle.fold(kept)
    s = Submission(submission_id)
    revision = 0  # the content follows the latest revision seen so far, in sequence order
    for f in kept:
        d = f.data
        if f.type == RECEIVED and f.id == life.received_event_id:
            s = replace(
                s,
                edition=f.edition,
                kind=d["kind"],
                part=d["part"],
                author_id=d["author_id"],
                unit_id=d["unit_id"],
                union_ids=tuple(d.get("union_ids") or ()),
                authors=s.authors if revision > 1 and s.authors else _authors(d.get("authors")),
                title=d.get("title"),
                receipt_number=d.get("receipt_number"),
            )
            revision = max(revision, int(d.get("revision", 1)))
        elif f.type == REVISED:
            rev = int(d.get("revision", 2))
            if rev >= revision and d.get("authors") is not None:
                s = replace(s, authors=_authors(d["authors"]))
            revision = max(revision, rev)
        elif f.type == SELECTED and f.id == life.selected_event_id:
            s = replace(
                s,
                selection_part=d.get("part"),
                selection_unit_id=d.get("unit_id"),
                selection_destination=d.get("destination"),
                selection_authors=_authors(d.get("authors")),
            )
    return replace(s, life=life)


@dataclass(frozen=True)
class Miss:
    event_id: str
    deadline: datetime


@dataclass(frozen=True)
class Fulfilment:
    event_id: str
    at: datetime
    on_time: bool
    deadline: datetime


@dataclass(frozen=True)
class Assignment:
    """One assignment (a unit, person or council must deliver a part by a deadline), as its facts say."""

    assignment_id: str
    edition: str | None = None
    part: str | None = None
    part_kind: str | None = None
    assignee_kind: str | None = None
    assignee_id: str | None = None
    unit_id: str | None = None
    deadline: datetime | None = None  # in force
    fulfilment: Fulfilment | None = None
    misses: tuple[Miss, ...] = ()
    target_event_id: str | None = None
    target_reached: bool | None = None
    target_at: datetime | None = None
    target_unmet: tuple[str, ...] = ()
    first_progress_event_id: str | None = None
    first_progress_at: datetime | None = None

    @property
    def fulfilled(self) -> bool:
        return self.fulfilment is not None

    @property
    def standing_miss(self) -> Miss | None:
        """The miss this assignment costs (once, whatever the number of missed deadlines): none when it was
        fulfilled on time for the deadline in force (after an extension); else the latest deadline missed."""
        if not self.misses:
            return None
        if self.fulfilment is not None and self.fulfilment.on_time:
            return None
        return max(self.misses, key=lambda m: (m.deadline, m.event_id))


def fold_assignment(assignment_id: str, facts: Iterable[Fact]) -> Assignment:
    """Fold an assignment's kept facts in ``sequence`` order (any arrival order, duplicates and gaps allowed)."""
    a = Assignment(assignment_id)
    for f in _ordered(facts):
        d = f.data

        a = replace(
            a,
            edition=a.edition or f.edition,
            part=a.part or d.get("part"),
            part_kind=a.part_kind or d.get("part_kind"),
            assignee_kind=a.assignee_kind or d.get("assignee_kind"),
            assignee_id=a.assignee_id or d.get("assignee_id"),
            unit_id=a.unit_id or d.get("unit_id"),
        )
        if f.type == CREATED:
            a = replace(a, deadline=a.deadline or _aware(d.get("deadline"), f.time))
        elif f.type == EXTENDED:
            a = replace(a, deadline=_aware(d.get("new_deadline"), f.time))
        elif f.type == FULFILLED:
            dl = _aware(d.get("deadline"), f.time)
            a = replace(
                a,
                fulfilment=Fulfilment(
                    f.id, _aware(d.get("fulfilled_at"), f.time), bool(d.get("on_time")), dl
                ),
                deadline=a.deadline or dl,
            )
        elif f.type == REOPENED:
            a = replace(a, fulfilment=None)
        elif f.type == MISSED:
            dl = _aware(d.get("deadline"), f.time)
            if all(m.deadline != dl for m in a.misses):
                a = replace(a, misses=(*a.misses, Miss(f.id, dl)))
        elif f.type in (TARGET_REACHED, TARGET_MISSED):
            a = replace(
                a,
                target_event_id=f.id,
                target_reached=f.type == TARGET_REACHED,
                target_at=_aware(d.get("at"), f.time),
                target_unmet=tuple(d.get("unmet") or ()),
            )
        elif f.type == PROGRESS and a.first_progress_event_id is None:
            a = replace(a, first_progress_event_id=f.id, first_progress_at=business_time(f))
    return a
