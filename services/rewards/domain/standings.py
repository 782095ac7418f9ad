"""A participant's standing, assembled from per-subject pieces: pure, no framework, database or broker.

The incremental read model keeps, per subject (a submission or an assignment), the ledger entries it earns and
the *marks* it leaves on participants (evidence for titles, a standing miss); a participant's standing (points
that count, first rewarding time, misses, eligibility) is then folded from that participant's entries and marks
alone. ``domain.fold_edition`` goes through the very same functions, so the incremental path and a fold of
every fact agree by construction (and ``tests/unit/rewards/test_rewards_incremental.py`` checks it on random facts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.reward_rules import (
    AUTHOR_OF_SELECTED,
    EARLIEST_FULFILMENT,
    FEWER_MISSED,
    FULFILLED_ANY,
    TITLES,
    UNIT_FULFILLED_ALL,
)

if TYPE_CHECKING:
    from services.rewards.domain import Assignment, Eligibility, LedgerEntry, Rules, Submission

MISSED_MARK = "missed"
UNIT_ASSIGNMENT = (
    "unit_assignment"  # one per assignment of a unit: ``ok`` when fulfilled with no standing miss
)


@dataclass(frozen=True)
class Mark:
    """What one subject says of one participant beyond points: evidence for a title, or a standing miss."""

    subject: str
    participant_kind: str
    participant_id: str
    mark: str  # author_of_selected | fulfilled_any | unit_assignment | missed
    seq: int  # its place among the subject's marks
    ok: bool = True
    label: str = ""  # the name shown in reasons: « title » of an initiative, «part» of an assignment

    @property
    def participant(self) -> tuple[str, str]:
        return (self.participant_kind, self.participant_id)


def submission_marks(s: Submission) -> list[Mark]:
    """A selected initiative marks each of its named authors (``author_of_selected``)."""
    if not s.selected:
        return []
    name = f" «{s.title}»" if s.title else ""
    out: list[Mark] = []
    for author in s.selection_authors or s.authors:
        if author.person_id:
            out.append(
                Mark(s.submission_id, "person", author.person_id, AUTHOR_OF_SELECTED, len(out), True, name)
            )
    return out


def assignment_marks(a: Assignment, titles: Mapping[str, str]) -> list[Mark]:
    """A person's fulfilled assignment (``fulfilled_any``), a unit's assignment (``unit_assignment``, ok when
    fulfilled with no standing miss), and a standing miss of either."""
    out: list[Mark] = []
    label = f"«{titles.get(a.part or '', a.part)}»"
    if a.assignee_kind == "person" and a.assignee_id and a.fulfilment is not None:
        out.append(Mark(a.assignment_id, "person", a.assignee_id, FULFILLED_ANY, len(out), True, label))
    if a.assignee_kind == "unit" and a.assignee_id:
        ok = a.fulfilment is not None and a.standing_miss is None
        out.append(Mark(a.assignment_id, "unit", a.assignee_id, UNIT_ASSIGNMENT, len(out), ok, label))
    if a.standing_miss is not None and a.assignee_kind in ("person", "unit") and a.assignee_id:
        out.append(Mark(a.assignment_id, a.assignee_kind, a.assignee_id, MISSED_MARK, len(out)))
    return out


def _held(marks: Sequence[Mark]) -> dict[str, list[tuple[str, str]]]:
    """One participant's marks (in subject order) → the reasons each condition holds for it."""
    held: dict[str, list[tuple[str, str]]] = defaultdict(list)
    units: list[Mark] = []
    for m in marks:
        if m.mark == AUTHOR_OF_SELECTED:
            held[AUTHOR_OF_SELECTED].append(
                (
                    f"Tác giả sáng kiến{m.label} được Hội đồng xét chọn",
                    f"Author of the initiative{m.label} selected by the council",
                )
            )
        elif m.mark == FULFILLED_ANY:
            held[FULFILLED_ANY].append((f"Hoàn thành phần thi {m.label}", f"Fulfilled the part {m.label}"))
        elif m.mark == UNIT_ASSIGNMENT:
            units.append(m)
    if units and all(m.ok for m in units):
        parts = ", ".join(m.label for m in units)
        held[UNIT_FULFILLED_ALL].append(
            (
                f"Đơn vị hoàn thành tất cả phần thi được giao: {parts}",
                f"The unit fulfilled every part assigned to it: {parts}",
            )
        )
    return held


def ordered_marks(marks: Iterable[Mark]) -> list[Mark]:
    return sorted(marks, key=lambda m: (m.subject, m.seq))


def eligibility_of(rules: Rules | None, marks: Sequence[Mark]) -> tuple[Eligibility, ...]:
    """One participant's titles under ``rules``, from its marks (any order), each with its reasons."""
    from services.rewards.domain import Eligibility

    if rules is None or not rules.eligibility or not marks:
        return ()
    held = _held(ordered_marks(marks))
    out = []
    for key in sorted(rules.eligibility):
        vi, en = TITLES.get(key, (key, key))
        reasons: list[tuple[str, str]] = []
        for c in rules.eligibility[key]:
            reasons += held.get(c, [])
        if reasons:
            out.append(Eligibility(key, vi, en, tuple(reasons)))
    return tuple(out)


def by_participant(marks: Iterable[Mark]) -> dict[tuple[str, str], list[Mark]]:
    out: dict[tuple[str, str], list[Mark]] = defaultdict(list)
    for m in marks:
        out[m.participant].append(m)
    return out


def misses_of(marks: Iterable[Mark]) -> int:
    return sum(1 for m in marks if m.mark == MISSED_MARK)


@dataclass(frozen=True)
class Total:
    """A participant's standing without its rank: what the database keeps per participant and ranks by."""

    participant_kind: str
    participant_id: str
    points: float
    first_at: datetime
    misses: int
    counted: tuple[LedgerEntry, ...]
    eligibility: tuple[Eligibility, ...]

    @property
    def listed(self) -> bool:
        """On the list: an entry that counts, a title, or a miss."""
        return bool(self.counted or self.eligibility or self.misses)

    @property
    def eligibility_keys(self) -> list[str]:
        return sorted(e.key for e in self.eligibility)


def total(
    kind: str, pid: str, entries: Iterable[LedgerEntry], marks: Sequence[Mark], rules: Rules | None
) -> Total:
    """One participant's standing from its own entries (the cap applies per participant, part and rule) and marks."""
    from services.rewards.domain import FAR_FUTURE, _round, counted

    cap = rules.cap("person" if kind == "person" else "unit") if rules is not None else None
    es = tuple(counted(entries, per_part_cap=cap))
    return Total(
        participant_kind=kind,
        participant_id=pid,
        points=_round(sum(e.points for e in es)),
        first_at=min((e.time for e in es if e.points > 0), default=FAR_FUTURE),
        misses=misses_of(marks),
        counted=es,
        eligibility=eligibility_of(rules, marks),
    )


def sort_key(t: Any, tie_breakers: Sequence[str]) -> tuple[Any, ...]:
    """Points descending, then the tie-breakers in order (earliest first rewarding entry; fewer misses)."""
    tb: list[Any] = []
    for name in tie_breakers:
        if name == EARLIEST_FULFILMENT:
            tb.append(t.first_at)
        elif name == FEWER_MISSED:
            tb.append(t.misses)
    return (-t.points, *tb)
