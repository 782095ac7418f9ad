"""The edition's standing (every kept fact folded, as of a moment: entries, eligibility, misses) and the
priority list ranked from it: points, then the rules' tie-breakers; roll-ups; what changed between two lists.
Pure."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.rewards.domain import standings
from services.rewards.domain.facts import FAR_FUTURE, Fact, ParticipantKind, business_time
from services.rewards.domain.folds import Assignment, Submission, fold_assignment, fold_submission
from services.rewards.domain.ledger import (
    LedgerEntry,
    _round,
    assignment_entries,
    ledger_entries,
    subject_kind,
)
from services.rewards.domain.rules import Rules
from shared.reward_rules import EARLIEST_FULFILMENT

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
    stored_sums: tuple[RuleSum, ...] | None = None  # kept with the standing; None: summed from ``entries``

    @property
    def sums(self) -> tuple[RuleSum, ...]:
        """What each rule earned, part by part (a unit's reasons in brief, whatever its size)."""
        return self.stored_sums if self.stored_sums is not None else rule_sums(self.entries)

    def digest(self) -> str:
        """What a change notice compares: rank, points and eligibility."""
        raw = json.dumps([self.rank, self.points, sorted(e.key for e in self.eligibility)])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RuleSum:
    """What one rule earned a participant in one part: how many of its entries count, and their points."""

    part: str
    rule: str
    count: int
    points: float


def rule_sums(counted: Iterable[LedgerEntry]) -> tuple[RuleSum, ...]:
    """The entries that count, summed per part and rule (in that order)."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in counted:
        groups[(e.part, e.rule)].append(e.points)
    return tuple(RuleSum(part, rule, len(ps), _round(sum(ps))) for (part, rule), ps in sorted(groups.items()))


def sums_json(sums: Iterable[RuleSum]) -> str:
    """As stored beside a standing: ``[[part, rule, count, points], …]``."""
    return json.dumps([[s.part, s.rule, s.count, s.points] for s in sums], ensure_ascii=False)


def sums_from_json(raw: str | None) -> tuple[RuleSum, ...] | None:
    """What ``sums_json`` stored; None for a row written before it was kept."""
    if raw is None:
        return None
    return tuple(RuleSum(str(p), str(r), int(n), float(x)) for p, r, n, x in json.loads(raw))


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
    first rewarding entry; fewer missed deadlines), then equal (``place``). A participant with only
    eligibility or a miss is listed too (0 points)."""
    elig = eligibility or {}
    miss = misses or {}
    by_participant: dict[tuple[str, str], list[LedgerEntry]] = defaultdict(list)
    for e in counted(entries, per_part_cap=per_part_cap):
        if kind is None or e.participant_kind == kind:
            by_participant[(e.participant_kind, e.participant_id)].append(e)
    for key in (*elig, *miss):
        if kind is None or key[0] == kind:
            by_participant.setdefault(key, [])
    totals = [
        standings.Total(
            participant_kind=key[0],
            participant_id=key[1],
            points=_round(sum(e.points for e in es)),
            first_at=min((e.time for e in es if e.points > 0), default=FAR_FUTURE),
            misses=miss.get(key, 0),
            counted=tuple(es),
            eligibility=elig.get(key, ()),
        )
        for key, es in by_participant.items()
    ]
    return place(totals, tie_breakers)


def place(totals: Iterable[standings.Total], tie_breakers: Sequence[str]) -> list[Ranked]:
    """The listed participants' places: in ``standings.sort_key`` order, then by id (so the order is stable);
    equal participants share a rank (1, 2, 2, 4)."""
    rows = sorted(
        (t for t in totals if t.listed),
        key=lambda t: (standings.sort_key(t, tie_breakers), t.participant_id),
    )
    out: list[Ranked] = []
    previous: tuple[Any, ...] | None = None
    for i, t in enumerate(rows):
        k = standings.sort_key(t, tie_breakers)
        out.append(
            Ranked(
                rank=out[-1].rank if out and k == previous else i + 1,
                participant_id=t.participant_id,
                points=t.points,
                first_at=t.first_at,
                entries=t.counted,
                participant_kind="person" if t.participant_kind == "person" else "unit",
                eligibility=t.eligibility,
                misses=t.misses,
            )
        )
        previous = k
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
