"""A whole contest's history as the producers publish it, and the same history arriving in any order.

``contests()`` draws, over the 2023 seed (two submission parts and the council's selection part, ≥ 5 assignees
per part), the submissions of ``tests.support.assignments.scenarios`` — withdraw-and-resubmit chains of ≥ 3,
revisions, rejections and reinstatements, selections — and adds council score sheets, extensions granted by
the secretariat, and what the deadline clock decides. Every fact is a catalogue envelope from its catalogue
producer (``CATALOGUE[type].producer``): submissions publishes the submissions' facts, the score sheets and
``intake.closed``; campaign publishes ``assignment.*``, ``deadline.extended`` and ``deadline.missed``.

``campaign_run`` is campaign's consumer and clock reduced to their pure parts (``shared.lifecycle``,
``services.campaign.domain.fulfilment`` and ``missed_at``): it applies submissions' facts in a given order,
grants the extensions at given points, emits ``assignment.fulfilled`` / ``.reopened`` only on a real change
(numbered per assignment as campaign's outbox numbers them) and, once every fact is in, decides the deadlines
in force. ``Contest.published()`` is that run in publication order; ``Contest.arrived()`` the run in the drawn
arrival order (duplicates included), whose output the other services then receive shuffled again.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from services.campaign import domain as campaign_domain
from shared import lifecycle
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import Envelope, deterministic_id, make_event
from tests.support.assignments import (
    COUNCIL,
    DEADLINE,
    EDITION,
    PERSONS,
    SELECTION_DEADLINE,
    TENANT,
    UNITS,
    Key,
    Scenario,
    State,
    counterexample,
    scenarios,
)

SEED = Path(__file__).resolve().parents[2] / "deploy" / "seed" / "soctrang-stnmt-2023"
PUBLISHED_AT = datetime.fromisoformat("2023-10-01T09:00:00+07:00")
GRANTED_AT = datetime.fromisoformat("2023-10-25T08:00:00+07:00")
SECRETARIAT = "p-0004"
MEMBERS = ("p-0001", "p-0007", "p-0013", "p-0018", "p-0021")  # the seed's initiative council
PART_KIND = {"initiative": "initiative", "experience": "experience_report", "selection": "selection"}


def assignment_id(key: Key) -> str:
    return deterministic_id("test-assignment", TENANT, EDITION, *key)


def _assignee(key: Key) -> dict[str, Any]:
    part, who = key
    if part == "selection":
        return {"assignee_kind": "council", "assignee_id": who, "unit_id": None}
    if part == "initiative":
        return {"assignee_kind": "unit", "assignee_id": who, "unit_id": who}
    return {"assignee_kind": "person", "assignee_id": who, "unit_id": dict(PERSONS)[who]}


def event(
    type_: str, data: dict[str, Any], *, subject: str, sequence: int, at: datetime, eid: str
) -> Envelope:
    """A catalogue fact from its catalogue producer, as it travels (JSON and back)."""
    env = make_event(
        type_,
        data,
        source=CATALOGUE[type_].producer,
        tenant=TENANT,
        subject=subject,
        sequence=sequence,
        time=at,
        edition=EDITION,
        event_id=eid,
    )
    return Envelope.from_json(env.to_json())


@dataclass(frozen=True)
class Contest:
    scenario: Scenario  # the submissions and their facts (publication order), arrival order, extensions
    scores: tuple[Envelope, ...]  # initiative.scored, published after their initiative's last change
    shuffle: int  # seed of the order the other services receive campaign's output in
    redelivered: tuple[int, ...]  # indices (mod length) of facts the other services receive twice

    def deadline(self, key: Key) -> datetime:
        return self.scenario.deadline(key)

    def closures(self) -> list[Envelope]:
        """``intake.closed`` as submissions publishes it: each deadline's on-time count, extensions included."""
        s = self.scenario
        closures: list[tuple[str, datetime, str | None, int]] = []
        for part in ("initiative", "experience"):
            closures.append(
                (part, DEADLINE, None, sum(x.part == part and x.received_at < DEADLINE for x in s.subs))
            )
        selected = [at for x in s.subs for op, at in x.ops if op == "select" and at < SELECTION_DEADLINE]
        closures.append(("selection", SELECTION_DEADLINE, None, len(selected)))
        for (part, who), new, _ in s.extensions:
            n = sum(x.part == part and x.assignee == who and x.received_at < new for x in s.subs)
            closures.append((part, new, who, n))
        seq: dict[str, int] = defaultdict(int)
        out = []
        for part, at, who, count in sorted(closures, key=lambda c: (c[1], c[0], c[2] or "")):
            seq[part] += 1
            out.append(
                event(
                    "intake.closed",
                    {"part": part, "deadline": at, "assignee_id": who, "accepted_on_time": count},
                    subject=part,
                    sequence=seq[part],
                    at=at,
                    eid=deterministic_id("test-closure", part, at.isoformat(), who or ""),
                )
            )
        return out

    def published(self) -> CampaignRun:
        """Every fact in publication order: submissions' facts by business time, extensions granted at
        ``GRANTED_AT``, campaign's output right after its cause, the clock once all is in."""
        s = self.scenario
        grants = [sum(f.time < GRANTED_AT for f in s.facts) for _ in s.extensions]
        return campaign_run(s, list(s.facts), grants, self.scores, self.closures())

    def arrived(self) -> CampaignRun:
        """Campaign receives submissions' facts in the drawn arrival order (duplicates included) and the
        secretariat grants each extension after the drawn number of arrivals."""
        s = self.scenario
        return campaign_run(s, s.arrived(), [n for _, _, n in s.extensions], self.scores, self.closures())

    def received_by_others(self, run: CampaignRun) -> list[Envelope]:
        """What rewards and notify receive from ``run``: everything, shuffled, some facts twice."""
        facts = list(run.stream)
        rnd = random.Random(self.shuffle)
        rnd.shuffle(facts)
        facts += [facts[i % len(facts)] for i in self.redelivered]
        return facts


@dataclass
class CampaignRun:
    """Campaign's pure consumer and clock over one order of arrival."""

    stream: list[Envelope] = field(
        default_factory=list
    )  # every fact, in the order it was received or emitted
    states: dict[Key, State] = field(default_factory=dict)
    emitted: dict[Key, list[State]] = field(default_factory=dict)
    misses: set[Key] = field(default_factory=set)


def campaign_run(
    s: Scenario,
    order: Sequence[Envelope],
    grants: Sequence[int],
    scores: Iterable[Envelope],
    closures: Iterable[Envelope],
) -> CampaignRun:
    run = CampaignRun()
    keys = s.assignments()
    seq: dict[Key, int] = defaultdict(int)
    deadline = {k: (SELECTION_DEADLINE if k[0] == "selection" else DEADLINE) for k in keys}
    extended: dict[Key, datetime] = {}
    kept: dict[str, dict[str, Envelope]] = defaultdict(dict)  # campaign's inbox: facts per submission
    state: dict[Key, campaign_domain.Fulfilment | None] = dict.fromkeys(keys)
    run.emitted = {k: [] for k in keys}

    def emit(key: Key, type_: str, data: dict[str, Any], at: datetime, eid: str | None = None) -> None:
        seq[key] += 1
        aid = assignment_id(key)
        run.stream.append(
            event(
                type_,
                {"assignment_id": aid, "part": key[0], **_assignee(key), **data},
                subject=aid,
                sequence=seq[key],
                at=at,
                eid=eid or deterministic_id("test-campaign", aid, str(seq[key])),
            )
        )

    for key in keys:
        emit(
            key,
            "assignment.created",
            {"part_kind": PART_KIND[key[0]], "deadline": deadline[key]},
            PUBLISHED_AT,
        )

    def lives(key: Key) -> list[lifecycle.Lifecycle]:
        out = [lifecycle.fold(fs.values()) for fs in kept.values()]
        if key[0] == "selection":
            return [life for life in out if life.selected_event_id]
        return [life for life in out if life.part == key[0] and life.assignee_id == key[1]]

    def settle(key: Key, cause: Envelope) -> None:
        now = campaign_domain.fulfilment(lives(key), deadline[key], selection=key[0] == "selection")
        was = state[key]
        if now == was:
            return
        state[key] = now
        part_kind = {"part_kind": PART_KIND[key[0]]}
        if now is not None:
            run.emitted[key].append(State("fulfilled", now.submission_id, now.at, now.on_time))
            data = {"submission_id": now.submission_id, "fulfilled_at": now.at, "deadline": deadline[key]}
            emit(key, "assignment.fulfilled", {**part_kind, **data, "on_time": now.on_time}, now.at)
        else:
            assert was is not None
            run.emitted[key].append(State("open"))
            undone = lifecycle.fold(kept[was.submission_id].values())
            reason = "rejected" if undone.rejected and not undone.withdrawn else "withdrawn"
            data = {"reason": reason, "submission_id": was.submission_id, "at": cause.time}
            emit(key, "assignment.reopened", {**part_kind, **data}, cause.time)

    def grant(n: int) -> None:
        (key, new, _) = s.extensions[n]
        previous = deadline[key]
        deadline[key] = extended[key] = new
        data = {"previous_deadline": previous, "new_deadline": new, "reason": "Đi công tác"}
        emit(key, "deadline.extended", {**data, "approved_by": SECRETARIAT}, GRANTED_AT)
        settle(key, run.stream[-1])

    due = sorted(range(len(grants)), key=lambda i: grants[i])
    for i, fact in enumerate(order):
        while due and grants[due[0]] <= i:
            grant(due.pop(0))
        run.stream.append(fact)
        if fact.id in kept[fact.subject]:
            continue  # a duplicate: the inbox has it
        kept[fact.subject][fact.id] = fact
        life = lifecycle.fold(kept[fact.subject].values())
        targets = []
        if life.part and life.assignee_id and (life.part, life.assignee_id) in state:
            targets.append((life.part, life.assignee_id))
        if life.selected_event_id:
            targets.append(("selection", COUNCIL))
        for key in targets:
            settle(key, fact)
    while due:
        grant(due.pop(0))
    run.stream += list(scores) + list(closures)

    # The clock, once every fact is in: each deadline in force decided once, with the assignments' states.
    clocked = [
        campaign_domain.ClockAssignment(
            assignment_id(k),
            k[1],
            _assignee(k)["unit_id"],
            SELECTION_DEADLINE if k[0] == "selection" else DEADLINE,
            extended.get(k),
            state[k] is not None and state[k].on_time,  # type: ignore[union-attr]
        )
        for k in keys
    ]
    by_id = {assignment_id(k): k for k in keys}
    for at in sorted({c.deadline_in_force for c in clocked}):
        for c in campaign_domain.missed_at(clocked, at):
            key = by_id[c.id]
            run.misses.add(key)
            eid = deterministic_id("test-miss", c.id, at.isoformat())
            emit(key, "deadline.missed", {"part_kind": PART_KIND[key[0]], "deadline": at}, at, eid)
    run.states = {
        k: State("open") if f is None else State("fulfilled", f.submission_id, f.at, f.on_time)
        for k, f in state.items()
    }
    return run


def _scores(s: Scenario, draw: st.DrawFn) -> tuple[Envelope, ...]:
    out = []
    for sub in s.subs:
        if sub.kind != "initiative":
            continue
        members = draw(st.lists(st.sampled_from(MEMBERS), unique=True, max_size=3))
        last = max([sub.received_at, *(at for _, at in sub.ops)])
        for n, member in enumerate(members, start=1):
            total = draw(st.integers(40, 100))
            seq = len(sub.ops) + 1 + n  # the submission's own counter at submissions, after its last change
            out.append(
                event(
                    "initiative.scored",
                    {
                        "submission_id": sub.sid,
                        "part": "selection",
                        "council_id": COUNCIL,
                        "member_id": member,
                        "scores": {"novelty": float(total)},
                        "total": float(total),
                        "at": last + timedelta(minutes=n),
                    },
                    subject=sub.sid,
                    sequence=seq,
                    at=last + timedelta(minutes=n),
                    eid=deterministic_id("test-score", sub.sid, member),
                )
            )
    return tuple(out)


@st.composite
def contests(draw: st.DrawFn) -> Contest:
    s = draw(scenarios())
    scores = _scores(s, draw)
    shuffle = draw(st.integers(0, 2**32 - 1))
    redelivered = tuple(draw(st.lists(st.integers(0, 10_000), max_size=10)))
    return Contest(s, scores, shuffle, redelivered)


def counterexample_contest() -> Contest:
    """Issue 12, defect 1: S1.received, S2.received, S1.withdrawn (published S1.received, S1.withdrawn,
    S2.received), all before the deadline, for one official."""
    return Contest(counterexample(), (), 0, (0, 1))


ASSIGNMENT_KEYS: tuple[Key, ...] = (
    *(("initiative", u) for u in UNITS),
    *(("experience", p) for p, _ in PERSONS),
    ("selection", COUNCIL),
)
