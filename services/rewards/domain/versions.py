"""A subject's standing through business time, stored so that "as of any moment" is read, not folded. Pure.

The list as of a moment folds only the facts whose business time is at or before it (``fold_edition``), so what
one subject (a submission or an assignment) contributes is a step function of the moment: it can change only at
the business time of one of its own facts. Its *versions* are those steps: from each distinct business time to
the next, the ledger entries and marks the fold of its facts up to then gives (equal neighbours merged, empty
steps left out). The list as of ``t`` is then the versions in force at ``t`` (``valid_from <= t < valid_to``),
totalled per participant and ranked (``ranked``) exactly as the fold ranks them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.rewards.domain import standings
from services.rewards.domain.facts import FAR_FUTURE, Fact, business_time
from services.rewards.domain.ledger import LedgerEntry
from services.rewards.domain.ranking import Ranked, fold_edition, place
from services.rewards.domain.rules import Rules
from shared.reward_rules import EARLIEST_FULFILMENT


@dataclass(frozen=True)
class Version:
    """What one subject contributes to the list from ``valid_from`` (included) to ``valid_to`` (excluded)."""

    subject: str
    valid_from: datetime
    valid_to: datetime  # FAR_FUTURE: in force since, and still
    entries: tuple[LedgerEntry, ...]
    marks: tuple[standings.Mark, ...]


def subject_versions(
    subject: str, facts: Sequence[Fact], rules: Rules | None, *, part_titles: Mapping[str, str] | None = None
) -> list[Version]:
    """The versions of one subject from its kept facts (any arrival order, duplicates allowed), under ``rules``."""
    steps: list[tuple[datetime, tuple[LedgerEntry, ...], tuple[standings.Mark, ...]]] = []
    for t in sorted({business_time(f) for f in facts}):
        st = fold_edition(facts, rules, as_of=t, part_titles=part_titles)
        entries = tuple(e for e in st.entries if e.submission_id == subject)
        marks = tuple(m for m in st.marks if m.subject == subject)
        if not steps or steps[-1][1:] != (entries, marks):
            steps.append((t, entries, marks))
    return [
        Version(subject, t, steps[i + 1][0] if i + 1 < len(steps) else FAR_FUTURE, entries, marks)
        for i, (t, entries, marks) in enumerate(steps)
        if entries or marks
    ]


def ranked(
    entries: Iterable[LedgerEntry], marks: Iterable[standings.Mark], rules: Rules | None
) -> tuple[list[Ranked], list[Ranked]]:
    """(persons, units) ranked from the entries and marks in force, as ``priority(fold_edition(...))`` ranks
    the same facts: each participant totalled from its own (``standings.total``), then placed."""
    es: dict[tuple[str, str], list[LedgerEntry]] = defaultdict(list)
    ms: dict[tuple[str, str], list[standings.Mark]] = defaultdict(list)
    for e in entries:
        es[(e.participant_kind, e.participant_id)].append(e)
    for m in marks:
        ms[m.participant].append(m)
    totals = [standings.total(k, pid, es[(k, pid)], ms[(k, pid)], rules) for k, pid in {*es, *ms}]
    tbs = rules.tie_breakers if rules is not None else (EARLIEST_FULFILMENT,)
    return (
        place([t for t in totals if t.participant_kind == "person"], tbs),
        place([t for t in totals if t.participant_kind == "unit"], tbs),
    )
