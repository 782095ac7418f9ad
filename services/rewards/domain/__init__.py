"""Rewards rules (khen thưởng): what the kept facts are worth, and the priority list.

Pure: no framework, database or broker. State is folded from the facts kept for one subject (a submission or
an assignment) in ``sequence`` order, gaps allowed, so arrival order never matters: a withdrawal that arrives
before its receipt still leaves the submission withdrawn. "As of" views fold only the facts whose *business*
time is at or before the moment (a miss counts at its deadline, a receipt at its receipt time), never the time
they were published or applied. Business times are aware datetimes; texts shown to people are Vietnamese with
an English twin. A participant's standing assembled from per-subject pieces (marks) is ``domain.standings``.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from services.rewards.domain import standings
from shared import lifecycle
from shared.documents import format_datetime_vn
from shared.reward_rules import (
    EARLIEST_FULFILMENT,
    FEWER_MISSED,
    PER_PERSON_PER_PART,
    PER_UNIT_PER_PART,
    rule_keys,
)

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


# ------------------------------------------------------------------------------------------------ the rules


@dataclass(frozen=True)
class Rules:
    """The reward rules of one edition version (``rewards`` of ``edition.published``)."""

    edition_version: int = 1
    rules_version: int = 1
    points: Mapping[str, int] = field(default_factory=dict)
    deduct: int | None = None  # deadline_missed: {deduct: N}; None = a flag
    caps: Mapping[str, int] = field(default_factory=dict)
    eligibility: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tie_breakers: tuple[str, ...] = (EARLIEST_FULFILMENT,)
    author_shares: bool = False  # split an initiative's points by the authors' contribution percentages

    @classmethod
    def from_document(cls, rewards: Mapping[str, Any], edition_version: int = 1) -> Rules:
        """From the ``rewards`` mapping (already checked by ``shared.reward_rules.check_rewards``)."""
        missed = rewards.get("deadline_missed", "flag")
        deduct = int(missed["deduct"]) if isinstance(missed, Mapping) else None
        return cls(
            edition_version=edition_version,
            rules_version=int(rewards.get("rules_version", 1)),
            points=dict(rewards.get("points") or {}),
            deduct=deduct,
            caps=dict(rewards.get("caps") or {}),
            eligibility={k: tuple(v) for k, v in (rewards.get("eligibility") or {}).items()},
            tie_breakers=tuple(rewards.get("tie_breakers") or (EARLIEST_FULFILMENT,)),
            author_shares=bool(rewards.get("author_shares", False)),
        )

    def cap(self, kind: ParticipantKind) -> int | None:
        return self.caps.get(PER_PERSON_PER_PART if kind == "person" else PER_UNIT_PER_PART)


def points_for(points: Mapping[str, int] | None, part: str, kind: str) -> tuple[str, int]:
    """(rule, points) of a receipt: ``submission.received/<part id>``, else ``…/<kind>`` (``experience`` for an
    experience report), else 1 point when no rules are known at all (0 when the rules leave it out)."""
    candidates = rule_keys(RECEIVED, part, SHORT_KIND.get(kind, kind), kind)[:-1]
    if points is None:
        return candidates[0], DEFAULT_POINTS
    for rule in candidates:
        if rule in points:
            return rule, points[rule]
    return candidates[1], 0


def priced(
    points: Mapping[str, int] | None, fact_type: str, part: str | None, *forms: str
) -> tuple[str, int]:
    """(rule, points) of any other fact: ``<type>/<part id>``, else ``<type>/<form>``, else ``<type>``; 0 when
    the rules price none of them (the rule named is then the bare type)."""
    keys = rule_keys(fact_type, part, *forms)
    for rule in keys:
        if rule in (points or {}):
            return rule, (points or {})[rule]
    return keys[-1], 0


# ------------------------------------------------------------------------------------------------ the folds


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


# ---------------------------------------------------------------------------------------------- the ledger


@dataclass(frozen=True)
class LedgerEntry:
    """One achievement (or miss) of one participant, earned by one fact (``event_id``) under one rule.

    ``submission_id`` is the subject the fact is about: a submission, or an assignment for misses, fulfilments
    and the 90-day campaign.
    """

    submission_id: str
    participant_kind: ParticipantKind
    participant_id: str
    event_id: str
    rule: str
    points: float
    time: datetime
    edition: str
    part: str
    kind: str
    reason_vi: str
    reason_en: str


def _round(x: float) -> float:
    return round(x, 2)


def ledger_entries(
    s: Submission,
    *,
    points: Mapping[str, int] | None = None,
    part_title: str | None = None,
    author_shares: bool = False,
    selection_title: str | None = None,
) -> list[LedgerEntry]:
    """What a submission earns while it stands: its receipt (for each author; for the unit at receipt) and its
    selection by the council. Entries worth 0 points are not entries."""
    out: list[LedgerEntry] = []
    if s.withdrawn or s.rejected:
        return out
    edition = s.edition or ""

    def entry(
        kind: ParticipantKind,
        pid: str,
        event_id: str,
        rule: str,
        pts: float,
        at: datetime,
        part: str,
        vi: str,
        en: str,
    ) -> None:
        if pts:
            out.append(
                LedgerEntry(
                    s.submission_id,
                    kind,
                    pid,
                    event_id,
                    rule,
                    _round(pts),
                    at,
                    edition,
                    part,
                    s.kind or "initiative",
                    vi,
                    en,
                )
            )

    def people(authors: tuple[AuthorShare, ...], pts: float) -> list[tuple[str, float, str]]:
        named = [a for a in authors if a.person_id]
        if not named:
            return [(s.author_id, pts, "")] if s.author_id else []
        if author_shares:
            return [(str(a.person_id), pts * a.share / 100, f" ({a.share:g}%)") for a in named]
        return [(str(a.person_id), pts, "") for a in named]

    if s.active:
        assert s.received_event_id and s.received_at and s.kind and s.part and s.unit_id
        rule, pts = points_for(points, s.part, s.kind)
        when = format_datetime_vn(s.received_at)
        what_vi, what_en = KIND_VI.get(s.kind, s.kind), KIND_EN.get(s.kind, s.kind)
        where = f" «{part_title or s.part}»"
        receipt = f" số {s.receipt_number}" if s.receipt_number else ""
        receipt_en = f" no. {s.receipt_number}" if s.receipt_number else ""
        authors = s.authors if s.kind == "initiative" else ()
        for pid, p, share in people(authors, pts):
            entry(
                "person",
                pid,
                s.received_event_id,
                rule,
                p,
                s.received_at,
                s.part,
                f"Đã nộp {what_vi} (phần thi{where}), biên nhận{receipt} lúc {when}{share}",
                f"Submitted {what_en} (part{where}), receipt{receipt_en} at {when}{share}",
            )
        entry(
            "unit",
            s.unit_id,
            s.received_event_id,
            rule,
            pts,
            s.received_at,
            s.part,
            f"Thành viên của đơn vị đã nộp {what_vi} (phần thi{where}), biên nhận{receipt} lúc {when}",
            f"A member of the unit submitted {what_en} (part{where}), receipt{receipt_en} at {when}",
        )
    if s.selected and s.status != "withdrawn":
        assert s.selected_event_id and s.selected_at
        part = s.selection_part or "selection"
        selected_rule, pts = priced(points, SELECTED, s.selection_part)
        when = format_datetime_vn(s.selected_at)
        name = f" «{s.title}»" if s.title else ""
        authors = s.selection_authors or s.authors
        # the level comes from the edition (its selection part's destination), never assumed
        sent_vi = f" gửi dự thi {s.selection_destination}" if s.selection_destination else ""
        sent_en = f" to go on to «{s.selection_destination}»" if s.selection_destination else ""
        for pid, p, share in people(authors, pts):
            entry(
                "person",
                pid,
                s.selected_event_id,
                selected_rule,
                p,
                s.selected_at,
                part,
                f"Là tác giả sáng kiến{name} được Hội đồng chọn{sent_vi} lúc {when}{share}",
                f"Author of the initiative{name} selected by the council{sent_en} at {when}{share}",
            )
        unit = s.selection_unit_id or s.unit_id
        if unit:
            entry(
                "unit",
                unit,
                s.selected_event_id,
                selected_rule,
                pts,
                s.selected_at,
                part,
                f"Sáng kiến{name} của đơn vị được Hội đồng chọn{sent_vi} lúc {when}",
                f"The unit's initiative{name} was selected by the council{sent_en} at {when}",
            )
    return out


def assignment_entries(
    a: Assignment, rules: Rules | None, *, part_title: str | None = None
) -> list[LedgerEntry]:
    """What an assignment earns or costs: its fulfilment (if the rules price it), its standing miss (once),
    and the 90-day campaign's result. A council's assignment is nobody's achievement."""
    if a.assignee_kind not in ("person", "unit") or not a.assignee_id:
        return []
    kind: ParticipantKind = "person" if a.assignee_kind == "person" else "unit"
    points = rules.points if rules is not None else {}
    part = a.part or ""
    title = f" «{part_title or part}»"
    out: list[LedgerEntry] = []

    def entry(event_id: str, rule: str, pts: float, at: datetime, vi: str, en: str) -> None:
        out.append(
            LedgerEntry(
                a.assignment_id,
                kind,
                a.assignee_id or "",
                event_id,
                rule,
                _round(pts),
                at,
                a.edition or "",
                part,
                a.part_kind or "",
                vi,
                en,
            )
        )

    if a.fulfilment is not None and a.part_kind:
        rule, fulfilled_pts = priced(points, FULFILLED, a.part, a.part_kind)
        if fulfilled_pts:
            when = format_datetime_vn(a.fulfilment.at)
            late_vi, late_en = ("", "") if a.fulfilment.on_time else (" (trễ hạn)", " (late)")
            entry(
                a.fulfilment.event_id,
                rule,
                fulfilled_pts,
                a.fulfilment.at,
                f"Hoàn thành phần thi{title} lúc {when}{late_vi}",
                f"Fulfilled the part{title} at {when}{late_en}",
            )
    miss = a.standing_miss
    if miss is not None:
        missed_rule, missed_pts = priced(points, MISSED, a.part)
        pts: float = -rules.deduct if rules is not None and rules.deduct is not None else missed_pts
        when = format_datetime_vn(miss.deadline)
        effect_vi = f", trừ {-pts:g} điểm" if pts < 0 else " (ghi nhận, không trừ điểm)"
        effect_en = f", {-pts:g} points deducted" if pts < 0 else " (flagged, no deduction)"
        entry(
            miss.event_id,
            missed_rule,
            pts,
            miss.deadline,
            f"Không hoàn thành phần thi{title} trước hạn {when}{effect_vi}",
            f"Did not fulfil the part{title} by its deadline {when}{effect_en}",
        )
    if a.target_event_id is not None and a.target_at is not None:
        rule, target_pts = priced(points, TARGET_REACHED if a.target_reached else TARGET_MISSED, a.part)
        if target_pts:
            when = format_datetime_vn(a.target_at)
            if a.target_reached:
                vi, en = f"Đạt chỉ tiêu{title} lúc {when}", f"Reached the targets{title} at {when}"
            else:
                unmet = ", ".join(a.target_unmet)
                vi = f"Không đạt chỉ tiêu{title} ({unmet}) lúc {when}"
                en = f"Missed the targets{title} ({unmet}) at {when}"
            entry(a.target_event_id, rule, target_pts, a.target_at, vi, en)
    progress_rule, progress_pts = priced(points, PROGRESS, a.part)
    if a.first_progress_event_id and a.first_progress_at and progress_pts:
        when = format_datetime_vn(a.first_progress_at)
        entry(
            a.first_progress_event_id,
            progress_rule,
            progress_pts,
            a.first_progress_at,
            f"Báo cáo tiến độ{title} lúc {when}",
            f"Reported progress{title} at {when}",
        )
    return out


def subject_kind(event_type: str) -> Literal["submission", "assignment"] | None:
    if event_type in SUBMISSION_SUBJECT_TYPES:
        return "submission"
    if event_type in ASSIGNMENT_SUBJECT_TYPES:
        return "assignment"
    return None


# ------------------------------------------------------------------------------------- the edition's standing


@dataclass(frozen=True)
class Eligibility:
    """A title a participant is eligible for (or has evidence for), with why."""

    key: str
    title_vi: str
    title_en: str
    reasons: tuple[tuple[str, str], ...]  # (vi, en)


@dataclass(frozen=True)
class Standing:
    """Everything the facts of one edition say, as of a moment: entries, eligibility and misses."""

    entries: tuple[LedgerEntry, ...]
    eligibility: Mapping[tuple[str, str], tuple[Eligibility, ...]]
    misses: Mapping[tuple[str, str], int]
    submissions: Mapping[str, Submission]
    assignments: Mapping[str, Assignment]
    marks: tuple[standings.Mark, ...] = ()


def fold_edition(
    facts: Iterable[Fact],
    rules: Rules | None,
    *,
    as_of: datetime | None = None,
    part_titles: Mapping[str, str] | None = None,
) -> Standing:
    """Fold every kept fact of an edition whose business time is at or before ``as_of`` (all when None)."""
    titles = part_titles or {}
    by_subject: dict[tuple[str, str], list[Fact]] = defaultdict(list)
    for f in facts:
        sk = subject_kind(f.type)
        if sk is None or (as_of is not None and business_time(f) > as_of):
            continue
        by_subject[(sk, f.subject)].append(f)
    subs: dict[str, Submission] = {}
    assigns: dict[str, Assignment] = {}
    entries: list[LedgerEntry] = []
    for (kind_of, subject), fs in sorted(by_subject.items()):
        if kind_of == "submission":
            s = fold_submission(subject, fs)
            subs[subject] = s
            entries += ledger_entries(
                s,
                points=rules.points if rules is not None else None,
                part_title=titles.get(s.part or ""),
                author_shares=rules.author_shares if rules is not None else False,
            )
        else:
            a = fold_assignment(subject, fs)
            assigns[subject] = a
            entries += assignment_entries(a, rules, part_title=titles.get(a.part or ""))
    marks: list[standings.Mark] = []
    for sid in sorted(subs):
        marks += standings.submission_marks(subs[sid])
    for aid in sorted(assigns):
        marks += standings.assignment_marks(assigns[aid], titles)
    held = standings.by_participant(marks)
    eligibility: dict[tuple[str, str], tuple[Eligibility, ...]] = {}
    misses: dict[tuple[str, str], int] = {}
    for who, ms in held.items():
        elig = standings.eligibility_of(rules, ms)
        if elig:
            eligibility[who] = elig
        if n := standings.misses_of(ms):
            misses[who] = n
    return Standing(
        entries=tuple(entries),
        eligibility=eligibility,
        misses=misses,
        submissions=subs,
        assignments=assigns,
        marks=tuple(marks),
    )


# ----------------------------------------------------------------------------------------- the priority list


@dataclass(frozen=True)
class Ranked:
    """A participant's place on the priority list, with the entries that count (its reasons)."""

    rank: int
    participant_id: str
    points: float
    first_at: datetime
    entries: tuple[LedgerEntry, ...]
    participant_kind: ParticipantKind = "person"
    eligibility: tuple[Eligibility, ...] = ()
    misses: int = 0

    def digest(self) -> str:
        """What a change notice compares: rank, points and eligibility."""
        raw = json.dumps([self.rank, self.points, sorted(e.key for e in self.eligibility)])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def counted(entries: Iterable[LedgerEntry], *, per_part_cap: int | None = None) -> list[LedgerEntry]:
    """The entries that count: with a cap, only the earliest ``per_part_cap`` rewarding entries per
    participant, part and rule (a deduction is never capped away)."""
    ordered = sorted(entries, key=lambda e: (e.time, e.event_id, e.rule))
    if per_part_cap is None:
        return ordered
    seen: dict[tuple[str, str, str, str], int] = defaultdict(int)
    out = []
    for e in ordered:
        if e.points <= 0:
            out.append(e)
            continue
        key = (e.participant_kind, e.participant_id, e.part, e.rule)
        if seen[key] < per_part_cap:
            seen[key] += 1
            out.append(e)
    return out


def rank(
    entries: Iterable[LedgerEntry],
    *,
    per_part_cap: int | None = None,
    eligibility: Mapping[tuple[str, str], tuple[Eligibility, ...]] | None = None,
    misses: Mapping[tuple[str, str], int] | None = None,
    tie_breakers: Sequence[str] = (EARLIEST_FULFILMENT,),
    kind: ParticipantKind | None = None,
) -> list[Ranked]:
    """Rank participants by points (descending), then by the tie-breakers in order (earliest fulfilment: the
    first rewarding entry; fewer missed deadlines), then equal. Equal participants share a rank (1, 2, 2, 4);
    the list order then follows the id, so it is stable. A participant with only eligibility or a miss is
    listed too (0 points)."""
    elig = eligibility or {}
    miss = misses or {}
    by_participant: dict[tuple[str, str], list[LedgerEntry]] = defaultdict(list)
    for e in counted(entries, per_part_cap=per_part_cap):
        if kind is None or e.participant_kind == kind:
            by_participant[(e.participant_kind, e.participant_id)].append(e)
    for key in (*elig, *miss):
        if kind is None or key[0] == kind:
            by_participant.setdefault(key, [])

    def first(es: list[LedgerEntry]) -> datetime:
        return min((e.time for e in es if e.points > 0), default=FAR_FUTURE)

    def sort_key(item: tuple[tuple[str, str], list[LedgerEntry]]) -> tuple[Any, ...]:
        key, es = item
        tb: list[Any] = []
        for t in tie_breakers:
            if t == EARLIEST_FULFILMENT:
                tb.append(first(es))
            elif t == FEWER_MISSED:
                tb.append(miss.get(key, 0))
        return (-_round(sum(e.points for e in es)), *tb)

    rows = sorted(by_participant.items(), key=lambda item: (sort_key(item), item[0][1]))
    out: list[Ranked] = []
    previous: tuple[Any, ...] | None = None
    for i, item in enumerate(rows):
        (pkind, pid), es = item
        k = sort_key(item)
        place = out[-1].rank if out and k == previous else i + 1
        previous = k
        out.append(
            Ranked(
                rank=place,
                participant_id=pid,
                points=_round(sum(e.points for e in es)),
                first_at=first(es),
                entries=tuple(es),
                participant_kind="person" if pkind == "person" else "unit",
                eligibility=elig.get((pkind, pid), ()),
                misses=miss.get((pkind, pid), 0),
            )
        )
    return out


def priority(standing: Standing, rules: Rules | None) -> tuple[list[Ranked], list[Ranked]]:
    """(persons, units) ranked under ``rules``."""
    tbs = rules.tie_breakers if rules is not None else (EARLIEST_FULFILMENT,)
    common: dict[str, Any] = {
        "eligibility": standing.eligibility,
        "misses": standing.misses,
        "tie_breakers": tbs,
    }
    persons = rank(
        standing.entries, per_part_cap=rules.cap("person") if rules else None, kind="person", **common
    )
    units = rank(standing.entries, per_part_cap=rules.cap("unit") if rules else None, kind="unit", **common)
    return persons, units


def rollup(points: Mapping[str, float], parents: Mapping[str, str | None]) -> dict[str, float]:
    """Each node's own points plus its descendants' (a unit tree: branches into their parent; a union tree)."""
    out: dict[str, float] = defaultdict(float)
    for node, p in points.items():
        seen: set[str] = set()
        cur: str | None = node
        while cur is not None and cur not in seen:
            seen.add(cur)
            out[cur] += p
            cur = parents.get(cur)
    return {k: _round(v) for k, v in out.items()}


@dataclass(frozen=True)
class Change:
    """A participant whose rank, points or eligibility differ between two lists (``reward.priority.changed``)."""

    participant_kind: ParticipantKind
    participant_id: str
    before: Ranked | None
    after: Ranked | None


def changes(before: Iterable[Ranked], after: Iterable[Ranked]) -> list[Change]:
    """Participants whose digest (rank, points, eligibility) differs, in a stable order."""
    b = {(r.participant_kind, r.participant_id): r for r in before}
    a = {(r.participant_kind, r.participant_id): r for r in after}
    out = []
    for key in sorted(set(a) | set(b)):
        rb, ra = b.get(key), a.get(key)
        if (rb.digest() if rb else None) != (ra.digest() if ra else None):
            out.append(Change(key[0], key[1], rb, ra))
    return out
