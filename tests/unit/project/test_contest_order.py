"""Order doesn't matter, across the folds (issue 12): a contest's history applied in any order, with
duplicates, ends where publication order ends — in campaign (assignment states, participation, the clock's
misses), in rewards (the priority list) and in notify (who is told what) — and nobody is told something the
final state contradicts.

Pure: campaign's consumer and clock reduced to their folds (``tests.support.contest.campaign_run``), rewards'
``fold_edition`` + ``priority`` under the 2023 rules with a miss deducting a point, notify's decision function
``compose.plan``. The same property on the real handlers over SQLite is in
``tests/integration/test_contest_order_handlers.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from hypothesis import HealthCheck, example, given, settings

from services.campaign import domain as campaign_domain
from services.notify import domain as notify_domain
from services.notify.domain import compose
from services.rewards import domain as rewards_domain
from shared import lifecycle
from shared.documents import load_directory, load_edition
from shared.events.envelope import Envelope
from tests.support.assignments import OPEN, Key, expected, live_on_time
from tests.support.contest import (
    SEED,
    Contest,
    assignment_id,
    contests,
    counterexample_contest,
)

EDITION_DOC = load_edition(SEED / "edition.yaml")
_rewards = EDITION_DOC.model_dump(mode="json")["rewards"]
RULES = rewards_domain.Rules.from_document({**_rewards, "deadline_missed": {"deduct": 1}})
_directory = load_directory(SEED / "directory.yaml")
WHO = notify_domain.People(
    tuple(_directory.people_as_of(date(2023, 10, 20))),
    {u.id: u for u in _directory.units_as_of(date(2023, 10, 20))},
    {u.id: u for u in _directory.unions},
)
NOW = datetime.fromisoformat("2023-11-05T09:00:00+07:00")
# the templates the issue names: receipts, misses, selections and extensions
WATCHED = ("submission.received", "deadline.missed", "initiative.selected", "deadline.extended")


def priority_list(facts: Iterable[Envelope]) -> list[tuple[Any, ...]]:
    """rewards' list as an official reads it (event ids aside: campaign's ids are its outbox's own)."""
    standing = rewards_domain.fold_edition(facts, RULES)
    persons, units = rewards_domain.priority(standing, RULES)
    return [
        (
            r.participant_kind,
            r.participant_id,
            r.rank,
            r.points,
            r.first_at,
            r.misses,
            sorted(e.key for e in r.eligibility),
            sorted((e.rule, e.points, e.time, e.part, e.submission_id, e.reason_vi) for e in r.entries),
        )
        for r in (*persons, *units)
    ]


def participation(facts: Iterable[Envelope]) -> dict[str, tuple[bool, bool | None, bool]]:
    """Per assignment, what rewards folds of it: (fulfilled, on time, a standing miss)."""
    standing = rewards_domain.fold_edition(facts, RULES)
    return {
        aid: (
            a.fulfilment is not None,
            a.fulfilment.on_time if a.fulfilment is not None else None,
            a.standing_miss is not None,
        )
        for aid, a in standing.assignments.items()
    }


def told(facts: Iterable[Envelope]) -> set[tuple[str, str, str]]:
    """(recipient, template, cause subject) of every message notify's decision function plans, each fact once
    (notify's inbox)."""
    out: set[tuple[str, str, str]] = set()
    for env in {f.id: f for f in facts}.values():
        if not notify_domain.triggers_of(env.type):
            continue
        data = env.parsed().model_dump(mode="json")  # type: ignore[attr-defined]
        for m in compose.plan(
            env.type, data, edition=EDITION_DOC, edition_name="2023", who=WHO, event_time=env.time, now=NOW
        ):
            out.add((m.person.id, m.template, env.subject))
    return out


def as_of_history(c: Contest, facts: Iterable[Envelope]) -> dict[Key, list[campaign_domain.FulfilmentChange]]:
    """Participation "as of" any moment: each assignment's derived history by business time."""
    by_submission: dict[str, list[Envelope]] = {}
    for f in facts:
        if f.type in lifecycle.LIFECYCLE_TYPES:
            by_submission.setdefault(f.subject, []).append(f)
    lives = {sid: lifecycle.fold(fs) for sid, fs in by_submission.items()}
    out = {}
    for key in c.scenario.assignments():
        part = key[0]
        mine = {
            sid: fs
            for sid, fs in by_submission.items()
            if (
                lives[sid].selected_event_id
                if part == "selection"
                else (lives[sid].part, lives[sid].assignee_id) == key
            )
        }
        out[key] = campaign_domain.fulfilment_history(mine, c.deadline(key), selection=part == "selection")
    return out


def check(c: Contest) -> None:
    published, arrived = c.published(), c.arrived()
    want = expected(c.scenario)

    # campaign: the same final states (and the hand-worked ones), the same clock decisions, no false miss
    assert arrived.states == published.states == want
    false_misses = sorted(k for k in arrived.misses if live_on_time(c.scenario, k))
    assert false_misses == [], f"deadline.missed for assignees with a live on-time submission: {false_misses}"
    assert arrived.misses == published.misses
    for key, states in arrived.emitted.items():  # the last change campaign told is what the assignment is
        assert (states[-1] if states else OPEN) == want[key], key
    assert as_of_history(c, arrived.stream) == as_of_history(c, published.stream)

    # rewards: the same participation and priority list from what it received, in any order, some twice
    received = c.received_by_others(arrived)
    assert participation(received) == participation(published.stream)
    assert priority_list(received) == priority_list(published.stream)

    # notify: the same (recipient, template) for receipts, misses, selections and extensions; none contradicts
    # the final state
    got, should = told(received), told(published.stream)
    assert {(p, t) for p, t, _ in got if t in WATCHED} == {(p, t) for p, t, _ in should if t in WATCHED}
    assert got == should
    by_id = {assignment_id(k): k for k in want}
    for person, template, subject in got:
        if template == "deadline.missed":
            key = by_id[subject]
            assert not (want[key].status == "fulfilled" and want[key].on_time), (person, key, want[key])


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(contests())
@example(counterexample_contest())
def test_a_contest_in_any_order_ends_as_in_publication_order(c: Contest) -> None:
    check(c)


def test_the_counterexample_is_no_miss_in_any_service() -> None:
    """Issue 12, defect 1, end to end through the folds: S1.received, S2.received, S1.withdrawn leaves the
    official's assignment fulfilled by S2, the clock misses nobody, rewards deducts nothing and notify tells
    nobody they missed."""
    c = counterexample_contest()
    run = c.arrived()
    key = ("experience", "p-0007")
    assert run.states[key].status == "fulfilled" and run.states[key].submission_id == "s-p-0007-2"
    assert key not in run.misses
    assert participation(c.received_by_others(run))[assignment_id(key)] == (True, True, False)
    misses = {(p, subject) for p, t, subject in told(c.received_by_others(run)) if t == "deadline.missed"}
    assert ("p-0007", assignment_id(key)) not in misses
