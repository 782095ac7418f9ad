"""Facts about the 2023 seed's assignees' submissions in any order, for the order-independence properties.

A Hypothesis strategy draws, over two submission parts (initiative: the unit is the assignee; experience
report: the author is) and the council's selection part, ≥ 5 assignees each with a chain of submissions —
withdraw-and-resubmit chains of ≥ 3, revisions, rejections and reinstatements, selections — plus extensions,
duplicates and an arrival order. ``expected`` is the oracle, worked out from what was drawn (not from the
facts): which submissions stand, hence what each assignment is, now or as of any instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import strategies as st

from shared.events.envelope import Envelope, deterministic_id, make_event

TENANT = "soctrang-stnmt"
EDITION = "2023"
DEADLINE = datetime.fromisoformat("2023-10-26T00:00:00+07:00")  # initiative and experience (exclusive end)
SELECTION_DEADLINE = datetime.fromisoformat("2023-10-31T00:00:00+07:00")
COUNCIL = "initiative-council"
# Assignees of the seed: units of the initiative part, officials of the experience part (with their unit).
UNITS = ("u-tnn-ks", "u-tnb-bdkh", "u-ccqldd", "u-ccbvmt", "u-vpdkdd")
PERSONS = (
    ("p-0007", "u-tnn-ks"),
    ("p-0010", "u-tnb-bdkh"),
    ("p-0012", "u-ccqldd"),
    ("p-0015", "u-ccbvmt"),
    ("p-0019", "u-vpdkdd"),
)
UNIT_AUTHOR = {"u-tnn-ks": "p-0007", "u-tnb-bdkh": "p-0010", "u-ccqldd": "p-0012", "u-ccbvmt": "p-0015"}
UNIT_AUTHOR["u-vpdkdd"] = "p-0018"

Key = tuple[str, str]  # (part, assignee id) of an assignment


@dataclass(frozen=True)
class Sub:
    """One drawn submission and what happens to it, in order: (op, business time)."""

    sid: str
    kind: str  # initiative | experience_report
    part: str
    assignee: str
    author: str
    unit: str
    received_at: datetime
    ops: tuple[tuple[str, datetime], ...]  # revise | withdraw | reject | reinstate | select


@dataclass(frozen=True)
class State:
    """An assignment as an official would see it."""

    status: str  # open | fulfilled
    submission_id: str | None = None
    fulfilled_at: datetime | None = None
    on_time: bool | None = None


OPEN = State("open")


@dataclass(frozen=True)
class Scenario:
    subs: tuple[Sub, ...]
    facts: tuple[Envelope, ...]  # in publication order
    delivery: tuple[int, ...]  # indices into ``facts`` in arrival order, duplicates included
    extensions: tuple[tuple[Key, datetime, int], ...]  # (assignment, new deadline, granted after N arrivals)
    batch: int = 5

    def arrived(self) -> list[Envelope]:
        return [self.facts[i] for i in self.delivery]

    def deadline(self, key: Key) -> datetime:
        """The deadline in force once every extension is granted."""
        if key[0] == "selection":
            return SELECTION_DEADLINE
        return max([d for k, d, _ in self.extensions if k == key], default=DEADLINE)

    def assignments(self) -> list[Key]:
        return (
            [("initiative", u) for u in UNITS]
            + [("experience", p) for p, _ in PERSONS]
            + [("selection", COUNCIL)]
        )

    def instants(self) -> list[datetime]:
        return sorted({t for s in self.subs for t in (s.received_at, *(at for _, at in s.ops))})


def standing(sub: Sub, as_of: datetime | None = None) -> tuple[bool, bool]:
    """(live, selected) of one drawn submission, as of ``as_of`` by business time."""
    if as_of is not None and sub.received_at > as_of:
        received = False
    else:
        received = True
    withdrawn = rejected = selected = False
    for op, at in sub.ops:
        if as_of is not None and at > as_of:
            break
        if op == "withdraw":
            withdrawn = True
        elif op == "reject":
            rejected = True
        elif op == "reinstate":
            rejected = False
        elif op == "select":
            selected = True
    live = received and not withdrawn and not rejected
    return live, selected and not withdrawn and not rejected


def expected(s: Scenario, as_of: datetime | None = None) -> dict[Key, State]:
    """What each assignment must be, worked out from the drawn submissions (deadlines in force: all granted)."""
    out: dict[Key, State] = {}
    for key in s.assignments():
        part, assignee = key
        found: list[tuple[datetime, str]] = []
        for sub in s.subs:
            live, selected = standing(sub, as_of)
            if part == "selection":
                if selected:
                    found.append((next(at for op, at in sub.ops if op == "select"), sub.sid))
            elif sub.part == part and sub.assignee == assignee and live:
                found.append((sub.received_at, sub.sid))
        if not found:
            out[key] = OPEN
            continue
        at, sid = min(found)
        out[key] = State("fulfilled", sid, at, at < s.deadline(key))
    return out


def live_on_time(s: Scenario, key: Key) -> bool:
    """The assignee has a live submission received before the deadline in force (a miss would be false)."""
    state = expected(s)[key]
    return state.status == "fulfilled" and bool(state.on_time)


# ------------------------------------------------------------------------------------------------ the facts


def facts_of(subs: Sequence[Sub]) -> tuple[Envelope, ...]:
    out: list[tuple[datetime, str, int, Envelope]] = []
    for sub in subs:
        common = {"submission_id": sub.sid, "kind": sub.kind, "part": sub.part}
        who = {"author_id": sub.author, "unit_id": sub.unit}

        def event(type_: str, data: dict[str, object], seq: int, at: datetime, sub: Sub = sub) -> Envelope:
            return make_event(
                type_,
                data,
                source="submissions",
                tenant=TENANT,
                subject=sub.sid,
                sequence=seq,
                time=at,
                edition=EDITION,
                event_id=deterministic_id("test-fact", sub.sid, str(seq)),
            )

        received = event(
            "submission.received",
            {
                **common,
                **who,
                "receipt_number": f"R-{sub.sid}",
                "received_at": sub.received_at,
                "authors": [{"person_id": sub.author, "name": "Tác giả", "share": 100}],
                "title": "Sáng kiến" if sub.kind == "initiative" else None,
                "procedures": [] if sub.kind == "initiative" else ["1.004227", "1.000494", "1.011442"],
            },
            1,
            sub.received_at,
        )
        out.append((sub.received_at, sub.sid, 1, received))
        revision = 1
        for n, (op, at) in enumerate(sub.ops, start=2):
            change = {**common, **who, "at": at}
            if op == "revise":
                revision += 1
                env = event("submission.revised", {**change, "revision": revision}, n, at)
            elif op == "withdraw":
                env = event("submission.withdrawn", {**change, "reason": "Nộp lại bản khác"}, n, at)
            elif op == "reject":
                env = event("submission.rejected", {**change, "reason": "Không đủ điều kiện"}, n, at)
            elif op == "reinstate":
                env = event("submission.reinstated", {**change, "reason": "Xem xét lại"}, n, at)
            else:
                env = event(
                    "initiative.selected",
                    {
                        "submission_id": sub.sid,
                        "part": "selection",
                        "initiative_part": sub.part,
                        "council_id": COUNCIL,
                        "unit_id": sub.unit,
                        "at": at,
                    },
                    n,
                    at,
                )
            out.append((at, sub.sid, n, env))
    return tuple(e for *_, e in sorted(out, key=lambda x: (x[0], x[1], x[2])))


@st.composite
def _sub(draw: st.DrawFn, sid: str, kind: str, assignee: str, author: str, unit: str, withdraw: bool) -> Sub:
    received = DEADLINE + timedelta(minutes=draw(st.integers(-4 * 24 * 60, 2 * 24 * 60)))
    at = received
    ops: list[tuple[str, datetime]] = []
    rejected = selected = False
    for _ in range(draw(st.integers(0, 4))):
        choices = ["revise", "withdraw", "reinstate" if rejected else "reject"]
        if kind == "initiative" and not selected:
            choices.append("select")
        op = draw(st.sampled_from(choices))
        at += timedelta(minutes=draw(st.integers(1, 36 * 60)))
        ops.append((op, at))
        rejected = {"reject": True, "reinstate": False}.get(op, rejected)
        selected = selected or op == "select"
        if op == "withdraw":
            break  # a withdrawal is final
    if withdraw and not any(op == "withdraw" for op, _ in ops):
        ops.append(("withdraw", at + timedelta(minutes=draw(st.integers(1, 24 * 60)))))
    part = "initiative" if kind == "initiative" else "experience"
    return Sub(sid, kind, part, assignee, author, unit, received, tuple(ops))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    subs: list[Sub] = []
    who = [("initiative", u, UNIT_AUTHOR[u], u) for u in UNITS]
    who += [("experience_report", p, p, unit) for p, unit in PERSONS]
    for i, (kind, assignee, author, unit) in enumerate(who):
        # the first assignee of each part always withdraws and resubmits at least twice (a chain of ≥ 3)
        chain = draw(st.integers(3, 4)) if i % len(UNITS) == 0 else draw(st.integers(0, 3))
        for n in range(chain):
            resubmitted = i % len(UNITS) == 0 and n < chain - 1
            subs.append(draw(_sub(f"s-{assignee}-{n + 1}", kind, assignee, author, unit, resubmitted)))
    facts = facts_of(subs)
    order = list(range(len(facts)))
    order += draw(st.lists(st.sampled_from(order), max_size=8))  # duplicates: redelivered, replayed
    delivery = tuple(draw(st.permutations(order)))
    extensions: list[tuple[Key, datetime, int]] = []
    for key in [("initiative", u) for u in UNITS] + [("experience", p) for p, _ in PERSONS]:
        if draw(st.booleans()):
            new = DEADLINE + timedelta(days=draw(st.integers(1, 3)))
            extensions.append((key, new, draw(st.integers(0, len(delivery)))))
    return Scenario(tuple(subs), facts, delivery, tuple(extensions), draw(st.integers(1, 8)))


def counterexample() -> Scenario:
    """Issue 12's order: S1 received, S1 withdrawn, S2 received, published in that order; arriving as S1
    received, S2 received, S1 withdrawn (a relay retry, a redelivery or two replicas), both on time."""
    person, unit = PERSONS[0]
    s1 = Sub(
        f"s-{person}-1",
        "experience_report",
        "experience",
        person,
        person,
        unit,
        datetime.fromisoformat("2023-10-24T09:00:00+07:00"),
        (("withdraw", datetime.fromisoformat("2023-10-24T10:00:00+07:00")),),
    )
    s2 = Sub(
        f"s-{person}-2",
        "experience_report",
        "experience",
        person,
        person,
        unit,
        datetime.fromisoformat("2023-10-24T11:00:00+07:00"),
        (),
    )
    facts = facts_of([s1, s2])
    assert [f.type for f in facts] == ["submission.received", "submission.withdrawn", "submission.received"]
    return Scenario((s1, s2), facts, (0, 2, 1), (), 1)
