"""The facts rewards folds (their types, the business time each happened at) and the vocabulary the rules
share: participant kinds, the kinds of submission and their names in Vietnamese and English. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal, Protocol

from shared import lifecycle

RECEIVED = "submission.received"
REVISED = "submission.revised"
WITHDRAWN = "submission.withdrawn"
REJECTED = "submission.rejected"
REINSTATED = "submission.reinstated"
SELECTED = "initiative.selected"
SUBMISSION_TYPES: tuple[str, ...] = (RECEIVED, REVISED, WITHDRAWN, REJECTED, REINSTATED)
SUBMISSION_SUBJECT_TYPES: tuple[str, ...] = (*SUBMISSION_TYPES, SELECTED)

CREATED = "assignment.created"
FULFILLED = "assignment.fulfilled"
REOPENED = "assignment.reopened"
MISSED = "deadline.missed"
EXTENDED = "deadline.extended"
PROGRESS = "onlineservice.progress.reported"
TARGET_REACHED = "onlineservice.target.reached"
TARGET_MISSED = "onlineservice.target.missed"
ASSIGNMENT_SUBJECT_TYPES: tuple[str, ...] = (
    CREATED,
    FULFILLED,
    REOPENED,
    MISSED,
    EXTENDED,
    PROGRESS,
    TARGET_REACHED,
    TARGET_MISSED,
)
SCORED_TYPES: tuple[str, ...] = (*SUBMISSION_SUBJECT_TYPES, *ASSIGNMENT_SUBJECT_TYPES)

DEFAULT_POINTS = 1

SHORT_KIND = {"experience_report": "experience", "initiative": "initiative"}

ParticipantKind = Literal["person", "unit"]
SubmissionStatus = Literal["pending", "active", "withdrawn", "rejected"]

KIND_VI: dict[str, str] = {
    "experience_report": "báo cáo trải nghiệm dịch vụ công trực tuyến",
    "initiative": "sáng kiến cải cách hành chính",
}
KIND_EN: dict[str, str] = {
    "experience_report": "an online public service experience report",
    "initiative": "an administrative reform initiative",
}
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


class Fact(lifecycle.SubmissionFact, Protocol):
    """What the fold reads of a kept fact (a CloudEvent envelope): a lifecycle fact's fields, and these."""

    @property
    def edition(self) -> str | None: ...
    @property
    def subject(self) -> str: ...


_aware = lifecycle.instant


def business_time(f: Fact) -> datetime:
    """When the fact happened in the business sense: a receipt at its receipt time, a miss at its deadline,
    a fulfilment at its fulfilment time, anything else at its ``at`` (else the envelope time)."""
    d = f.data
    if f.type == RECEIVED:
        return _aware(d.get("received_at"), f.time)
    if f.type == MISSED:
        return _aware(d.get("deadline"), f.time)
    if f.type == FULFILLED:
        return _aware(d.get("fulfilled_at"), f.time)
    if f.type in (PROGRESS,):
        return _aware(d.get("period_end"), f.time)
    return _aware(d.get("at"), f.time)


def _ordered(facts: Iterable[Fact]) -> list[Fact]:
    return sorted(facts, key=lambda f: (f.sequence, business_time(f), f.id))
