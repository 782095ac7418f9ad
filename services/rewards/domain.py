"""Rewards rules (khen thưởng): what a submission's kept facts are worth, and the priority list.

Pure: no framework, database or broker. State is folded from the facts kept for one submission in
``sequence`` order, gaps allowed, so arrival order never matters: a withdrawal that arrives before its receipt
still leaves the submission withdrawn. Business times are aware datetimes; texts shown to people are
Vietnamese with an English twin.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from shared.documents import format_datetime_vn

RECEIVED = "submission.received"
REVISED = "submission.revised"
WITHDRAWN = "submission.withdrawn"
REJECTED = "submission.rejected"
REINSTATED = "submission.reinstated"
SUBMISSION_TYPES: tuple[str, ...] = (RECEIVED, REVISED, WITHDRAWN, REJECTED, REINSTATED)

DEFAULT_POINTS = 1
PER_PERSON_PER_PART = "per_person_per_part"

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


class Fact(Protocol):
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
    def edition(self) -> str | None: ...
    @property
    def data(self) -> dict[str, Any]: ...


# ------------------------------------------------------------------------------------------------ the fold


@dataclass(frozen=True)
class Submission:
    """One submission as the facts kept for it say. ``received`` facts fill in what it is."""

    submission_id: str
    received: bool = False
    withdrawn: bool = False
    rejected: bool = False
    received_event_id: str | None = None
    received_at: datetime | None = None
    edition: str | None = None
    kind: str | None = None
    part: str | None = None
    author_id: str | None = None
    unit_id: str | None = None
    receipt_number: str | None = None
    revision: int = 0

    @property
    def active(self) -> bool:
        """Received, not withdrawn, and not rejected (or the rejection was reversed)."""
        return self.received and not self.withdrawn and not self.rejected

    @property
    def status(self) -> SubmissionStatus:
        if self.withdrawn:
            return "withdrawn"
        if not self.received:
            return "pending"
        return "rejected" if self.rejected else "active"


def fold_submission(submission_id: str, facts: Iterable[Fact]) -> Submission:
    """Fold the facts kept for one submission in ``sequence`` order (any arrival order, gaps allowed).

    A withdrawal is final. A rejection holds until a later (by sequence) reinstatement. Revisions change the
    content, never the achievement: the receipt stays the one fact that earns points.
    """
    s = Submission(submission_id)
    for f in sorted(facts, key=lambda f: (f.sequence, f.time)):
        d = f.data
        if f.type == RECEIVED:
            if s.received:  # a second receipt of the same submission is the same achievement
                continue
            s = replace(
                s,
                received=True,
                received_event_id=f.id,
                received_at=_aware(d.get("received_at"), f.time),
                edition=f.edition,
                kind=d["kind"],
                part=d["part"],
                author_id=d["author_id"],
                unit_id=d["unit_id"],
                receipt_number=d.get("receipt_number"),
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


def _aware(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return fallback


# ---------------------------------------------------------------------------------------------- the ledger


@dataclass(frozen=True)
class LedgerEntry:
    """One achievement of one participant, earned by one fact (``event_id``)."""

    submission_id: str
    participant_kind: ParticipantKind
    participant_id: str
    event_id: str
    rule: str
    points: int
    time: datetime
    edition: str
    part: str
    kind: str
    reason_vi: str
    reason_en: str


def points_for(points: Mapping[str, int] | None, part: str, kind: str) -> tuple[str, int]:
    """(rule, points) of a receipt: ``submission.received/<part id>``, else ``…/<kind>``, else 1 point."""
    by_part, by_kind = f"{RECEIVED}/{part}", f"{RECEIVED}/{kind}"
    points = points or {}
    if by_part in points:
        return by_part, points[by_part]
    if by_kind in points:
        return by_kind, points[by_kind]
    return by_part, DEFAULT_POINTS


def ledger_entries(
    s: Submission, *, points: Mapping[str, int] | None = None, part_title: str | None = None
) -> list[LedgerEntry]:
    """The entries an active submission earns: one for its author, one for the author's unit at receipt."""
    if not s.active:
        return []
    assert s.received_event_id and s.received_at and s.kind and s.part and s.author_id and s.unit_id
    rule, pts = points_for(points, s.part, s.kind)
    when = format_datetime_vn(s.received_at)
    what_vi, what_en = KIND_VI.get(s.kind, s.kind), KIND_EN.get(s.kind, s.kind)
    where = f" «{part_title}»" if part_title else f" «{s.part}»"
    receipt = f" số {s.receipt_number}" if s.receipt_number else ""
    receipt_en = f" no. {s.receipt_number}" if s.receipt_number else ""

    def entry(kind: ParticipantKind, participant_id: str, vi: str, en: str) -> LedgerEntry:
        assert s.received_event_id and s.received_at and s.kind and s.part
        return LedgerEntry(
            submission_id=s.submission_id,
            participant_kind=kind,
            participant_id=participant_id,
            event_id=s.received_event_id,
            rule=rule,
            points=pts,
            time=s.received_at,
            edition=s.edition or "",
            part=s.part,
            kind=s.kind,
            reason_vi=vi,
            reason_en=en,
        )

    return [
        entry(
            "person",
            s.author_id,
            f"Đã nộp {what_vi} (phần thi{where}), biên nhận{receipt} lúc {when}",
            f"Submitted {what_en} (part{where}), receipt{receipt_en} at {when}",
        ),
        entry(
            "unit",
            s.unit_id,
            f"Thành viên của đơn vị đã nộp {what_vi} (phần thi{where}), biên nhận{receipt} lúc {when}",
            f"A member of the unit submitted {what_en} (part{where}), receipt{receipt_en} at {when}",
        ),
    ]


# ----------------------------------------------------------------------------------------- the priority list


@dataclass(frozen=True)
class Ranked:
    """A participant's place on the priority list, with the entries that count (its reasons)."""

    rank: int
    participant_id: str
    points: int
    first_at: datetime
    entries: tuple[LedgerEntry, ...]


def counted(entries: Iterable[LedgerEntry], *, per_part_cap: int | None = None) -> list[LedgerEntry]:
    """The entries that count: with a cap, only the earliest ``per_part_cap`` per participant and part."""
    ordered = sorted(entries, key=lambda e: (e.time, e.event_id))
    if per_part_cap is None:
        return ordered
    seen: dict[tuple[str, str, str], int] = defaultdict(int)
    out = []
    for e in ordered:
        key = (e.participant_kind, e.participant_id, e.part)
        if seen[key] < per_part_cap:
            seen[key] += 1
            out.append(e)
    return out


def rank(entries: Iterable[LedgerEntry], *, per_part_cap: int | None = None) -> list[Ranked]:
    """Rank participants by points (descending); a tie goes to the earliest fulfilment (first counted entry).

    Participants equal on both share a rank (1, 2, 2, 4); the list order then follows the id, so it is stable.
    """
    by_participant: dict[str, list[LedgerEntry]] = defaultdict(list)
    for e in counted(entries, per_part_cap=per_part_cap):
        by_participant[e.participant_id].append(e)
    rows = sorted(
        (
            (pid, sum(e.points for e in es), min(e.time for e in es), tuple(es))
            for pid, es in by_participant.items()
        ),
        key=lambda r: (-r[1], r[2], r[0]),
    )
    out: list[Ranked] = []
    for i, (pid, pts, first, es) in enumerate(rows):
        if out and (out[-1].points, out[-1].first_at) == (pts, first):
            place = out[-1].rank
        else:
            place = i + 1
        out.append(Ranked(place, pid, pts, first, es))
    return out
