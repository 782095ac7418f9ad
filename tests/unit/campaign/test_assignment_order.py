"""An assignment's state is a function of the set of its assignee's submissions, whatever order their facts
arrive in: the pure folds (``shared.lifecycle`` and campaign's ``fulfilment``) give, for facts in any order with
duplicates, the states of publication order — and those an official would work out by hand."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from hypothesis import HealthCheck, example, given, settings

from services.campaign import domain
from shared import lifecycle
from shared.events.envelope import Envelope
from tests.support.assignments import OPEN, Key, Scenario, State, counterexample, expected, scenarios


def _state(f: domain.Fulfilment | None) -> State:
    return OPEN if f is None else State("fulfilled", f.submission_id, f.at, f.on_time)


def derive(s: Scenario, facts: Sequence[Envelope]) -> dict[Key, list[domain.FulfilmentChange]]:
    """Each assignment's history, from the pure folds alone."""
    by_submission: dict[str, list[Envelope]] = defaultdict(list)
    for f in facts:
        by_submission[f.subject].append(f)
    lives = {sid: lifecycle.fold(fs) for sid, fs in by_submission.items()}
    out: dict[Key, list[domain.FulfilmentChange]] = {}
    for key in s.assignments():
        part, assignee = key
        if part == "selection":
            mine = {sid: fs for sid, fs in by_submission.items() if lives[sid].selected_event_id}
        else:
            mine = {
                sid: fs
                for sid, fs in by_submission.items()
                if lives[sid].part == part and lives[sid].assignee_id == assignee
            }
        out[key] = domain.fulfilment_history(mine, s.deadline(key), selection=part == "selection")
        current = domain.fulfilment(
            (lives[sid] for sid in mine), s.deadline(key), selection=part == "selection"
        )
        assert _state(current) == _state(out[key][-1].fulfilment if out[key] else None)
    return out


def as_of(history: list[domain.FulfilmentChange], at: datetime) -> State:
    last = None
    for change in history:
        if change.at <= at:
            last = change.fulfilment
    return _state(last)


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
@example(counterexample())
def test_assignment_states_do_not_depend_on_the_order_facts_arrive_in(s: Scenario) -> None:
    published = derive(s, s.facts)
    arrived = derive(s, s.arrived())
    final = {k: _state(h[-1].fulfilment if h else None) for k, h in arrived.items()}
    assert final == {k: _state(h[-1].fulfilment if h else None) for k, h in published.items()}
    assert final == expected(s)
    # The history participation reads "as of" a moment is the same too, and right at every instant.
    assert arrived == published
    for at in s.instants():
        assert {k: as_of(h, at) for k, h in arrived.items()} == expected(s, as_of=at)


def test_the_counterexample_leaves_the_assignment_fulfilled_by_the_resubmission() -> None:
    s = counterexample()
    state = expected(s)[("experience", "p-0007")]
    assert state.status == "fulfilled" and state.submission_id == "s-p-0007-2" and state.on_time
    assert derive(s, s.arrived())[("experience", "p-0007")][-1].fulfilment == domain.Fulfilment(
        "s-p-0007-2", s.subs[1].received_at, True
    )


def test_a_withdrawal_kept_before_its_receipt_still_leaves_the_submission_withdrawn() -> None:
    s = counterexample()
    withdrawn = s.facts[1]
    life = lifecycle.fold([withdrawn, s.facts[0], withdrawn])
    assert life.state == "withdrawn" and life.assignee_id == "p-0007"
    assert lifecycle.fold([withdrawn]).state == "withdrawn"
    assert lifecycle.fold([s.facts[2]]).state == "live"
