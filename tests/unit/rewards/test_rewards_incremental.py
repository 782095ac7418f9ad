"""The incremental read model equals a rebuild from the facts (issue 16).

Random contests (submissions received, revised, withdrawn, rejected, reinstated, selected; assignments created,
fulfilled, reopened, missed, extended; 90-day results) under random valid rules are delivered in a random order,
in random batches, with duplicates and a rules change midway. The list the database keeps and ranks — totals
per participant, ranks by ``RANK() OVER`` — must equal the list a fold of every fact gives, row for row, and
``reward.priority.changed`` must have been told exactly for the eligibility the list ends with.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.rewards import domain, models
from services.rewards.usecases import asof, projection, readmodel
from shared.events.envelope import Envelope
from tests.support.rewards import (
    EDITION,
    TENANT,
    Producer,
    Rewards,
    all_facts,
    at,
    edition_published,
    rewards_on_sqlite,
)

PERSONS = [f"p-{i:04d}" for i in range(1, 7)]
UNITS = ["u-a", "u-b", "u-c"]
UNIT_OF = {p: UNITS[i % len(UNITS)] for i, p in enumerate(PERSONS)}


def random_rules(rng: random.Random) -> dict[str, Any]:
    points = {
        "submission.received/experience": rng.choice([0, 1, 2]),
        "submission.received/initiative": rng.choice([1, 2, 3]),
        "initiative.selected": rng.choice([0, 5]),
        "onlineservice.target.reached": rng.choice([0, 3]),
        "assignment.fulfilled/experience_report": rng.choice([0, 1]),
    }
    rules: dict[str, Any] = {
        "points": points,
        "deadline_missed": rng.choice(["flag", {"deduct": 1}, {"deduct": 2}]),
        "tie_breakers": rng.choice(
            [
                ["earliest_fulfilment"],
                ["fewer_missed_deadlines", "earliest_fulfilment"],
                ["fewer_missed_deadlines"],
            ]
        ),
        "eligibility": {
            "chien_si_thi_dua_co_so": ["author_of_selected_initiative"],
            "lao_dong_tien_tien_evidence": rng.choice(
                [["fulfilled_any_part"], ["fulfilled_any_part", "author_of_selected_initiative"]]
            ),
            "tap_the_lao_dong_tien_tien_evidence": ["unit_fulfilled_all_its_parts"],
        },
    }
    if rng.random() < 0.6:
        rules["caps"] = {"per_person_per_part": 1, **({"per_unit_per_part": 2} if rng.random() < 0.5 else {})}
    return rules


def random_contest(rng: random.Random) -> list[Envelope]:
    p = Producer()
    for n in range(rng.randint(4, 9)):
        person = rng.choice(PERSONS)
        kind = rng.choice(["experience_report", "initiative"])
        part = "experience" if kind == "experience_report" else "initiative"
        sid = f"sub-{n}"
        authors = [{"person_id": person, "name": person, "share": 100}]
        if kind == "initiative" and rng.random() < 0.5:
            other = rng.choice([x for x in PERSONS if x != person])
            authors = [{**authors[0], "share": 60}, {"person_id": other, "name": other, "share": 40}]
        when = at(rng.randint(10, 25), rng.randint(7, 20))
        p.emit(
            "submission.received",
            sid,
            {
                "submission_id": sid, "kind": kind, "part": part, "receipt_number": f"R-{n}",
                "received_at": when.isoformat(), "author_id": person, "unit_id": UNIT_OF[person],
                "union_ids": [], "authors": authors, "title": f"T{n}",
            },
            when,
        )  # fmt: skip
        base = {
            "submission_id": sid,
            "kind": kind,
            "part": part,
            "author_id": person,
            "unit_id": UNIT_OF[person],
        }
        for step in range(rng.randint(0, 3)):
            later = when + timedelta(hours=step + 1)
            type_ = rng.choice(
                ["submission.revised", "submission.withdrawn", "submission.rejected", "submission.reinstated"]
                + (["initiative.selected"] * 2 if kind == "initiative" else [])
            )
            extra: dict[str, Any] = {"at": later.isoformat()}
            if type_ == "submission.revised":
                extra["revision"] = step + 2
            elif type_ == "submission.withdrawn":
                extra["reason"] = "Nộp nhầm"
            elif type_ == "submission.rejected":
                extra |= {"reason": "Trùng", "rejected_by": "p-0001"}
            elif type_ == "submission.reinstated":
                extra["reason"] = "Xét lại"
            if type_ == "initiative.selected":
                p.emit(
                    type_,
                    sid,
                    {"submission_id": sid, "part": "selection", "initiative_part": "initiative",
                     "council_id": "c", "unit_id": UNIT_OF[person], "authors": authors, "score": 80.0, "rank": 1,
                     "at": later.isoformat()},
                    later,
                )  # fmt: skip
            else:
                p.emit(type_, sid, {**base, **extra}, later)
    for n in range(rng.randint(3, 8)):
        kind = rng.choice(["person", "unit"])
        who = rng.choice(PERSONS if kind == "person" else UNITS)
        aid = f"a-{n}"
        part, part_kind = (
            ("experience", "experience_report")
            if kind == "person"
            else ("online90", "online_services_campaign")
        )
        deadline = at(26)
        common = {"assignment_id": aid, "part": part, "part_kind": part_kind, "assignee_kind": kind,
                  "assignee_id": who, "unit_id": UNIT_OF.get(who, who)}  # fmt: skip
        p.emit("assignment.created", aid, {**common, "deadline": deadline.isoformat()}, at(1))
        for _ in range(rng.randint(0, 3)):
            choice = rng.choice(["fulfilled", "missed", "extended", "reopened", "target"])
            if choice == "fulfilled":
                when = at(rng.randint(15, 30), 9)
                data = {**common, "fulfilled_at": when.isoformat(), "deadline": deadline.isoformat(),
                        "on_time": when < deadline}  # fmt: skip
                p.emit("assignment.fulfilled", aid, data, when)
            elif choice == "missed":
                p.emit(
                    "deadline.missed",
                    aid,
                    {**common, "deadline": deadline.isoformat()},
                    deadline + timedelta(minutes=5),
                )
            elif choice == "extended":
                new = deadline + timedelta(days=rng.randint(1, 4))
                p.emit(
                    "deadline.extended",
                    aid,
                    {**common, "previous_deadline": deadline.isoformat(), "new_deadline": new.isoformat(),
                     "reason": "Gia hạn", "approved_by": "p-0001", "at": at(26, 14).isoformat()},
                    at(26, 14),
                )  # fmt: skip
                deadline = new
            elif choice == "reopened":
                p.emit(
                    "assignment.reopened", aid, {**common, "reason": "x", "at": at(28).isoformat()}, at(28)
                )
            elif kind == "unit":
                reached = rng.random() < 0.5
                p.emit(
                    "onlineservice.target.reached" if reached else "onlineservice.target.missed",
                    aid,
                    {**common, "at": at(29).isoformat(), "figures": {}, "targets": {},
                     "unmet": [] if reached else ["on_time_share"]},
                    at(29),
                )  # fmt: skip
    return p.facts


def _rows(ranked: list[domain.Ranked]) -> list[tuple[Any, ...]]:
    return [
        (
            r.rank,
            r.participant_kind,
            r.participant_id,
            r.points,
            r.first_at,
            r.misses,
            tuple((e.submission_id, e.event_id, e.rule, e.points) for e in r.entries),
            tuple((e.key, e.reasons) for e in r.eligibility),
            r.sums,  # kept with the standing (totals, participant_versions), or summed from the entries
        )
        for r in ranked
    ]


def _brief(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows as a page names units by default: their sums per rule, not their every entry."""
    return [(*r[:6], (), *r[7:]) for r in rows]


def _json(pl: Any) -> str:
    return str(pl.model_dump_json())


def _entry_key(e: domain.LedgerEntry) -> tuple[Any, ...]:
    return (e.submission_id, e.participant_kind, e.participant_id, e.rule)


async def _model(
    rewards: Rewards, rules: domain.Rules | None
) -> tuple[list[domain.Ranked], list[domain.Ranked]]:
    async with rewards.engine.connect() as conn:
        page = await readmodel.load(conn, 0, TENANT, EDITION, rules)
    return page.persons, page.units


# Seed 14: a unit's title is lost, the unit leaves the list, and the title is won again — told each time (its
# count of changes told outlives its place on the list, so the third change's id is new).
@pytest.mark.parametrize("seed", [*range(6), 14])
async def test_the_incremental_list_equals_a_rebuild_from_the_facts(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    first, second = random_rules(rng), random_rules(rng)
    if seed % 2:  # the same prices under new rules: only caps, titles or tie-breakers may move anyone
        second["points"], second["deadline_missed"] = first["points"], first["deadline_missed"]
        first["eligibility"] = {"giay_khen": ["unit_fulfilled_all_its_parts"]}
    v1 = edition_published(1, **first)
    v2 = edition_published(2, **{**second, "rules_version": 2})
    facts = random_contest(rng)
    delivery = facts + rng.sample(facts, k=len(facts) // 3)  # duplicates
    rng.shuffle(delivery)
    cut = rng.randint(len(delivery) // 2, len(delivery))  # most of it priced under the first rules
    rewards = await rewards_on_sqlite(tmp_path / "rewards.db")
    try:
        await rewards.deliver([v1, *delivery[:cut]], batch=rng.randint(1, 9))
        await rewards.deliver(
            [v2, *delivery[cut:]], batch=rng.randint(1, 9)
        )  # new rules midway: a re-pricing
        async with rewards.engine.connect() as conn:
            rules = await projection.current_rules(conn, TENANT, EDITION)
            doc = await models.copies.edition(conn, TENANT, EDITION)
        assert rules is not None and rules.rules_version == 2
        rebuilt = domain.fold_edition(facts, rules, part_titles=projection.part_titles(doc))
        persons, units = domain.priority(rebuilt, rules)
        got_persons, got_units = await _model(rewards, rules)
        assert _rows(got_persons) == _rows(persons)
        assert _rows(got_units) == _rows(units)

        # A page is the same rows, ranked by the database the same way.
        async with rewards.engine.connect() as conn:
            page = await readmodel.load(conn, 0, TENANT, EDITION, rules, offset=1, limit=2)
        assert _rows(page.persons) == _rows(persons)[1:3]
        assert page.persons_total == len(persons) and page.units_total == len(units)
        async with rewards.engine.connect() as conn:
            brief = await readmodel.load(conn, 0, TENANT, EDITION, rules, limit=3, unit_entries=False)
        assert _rows(brief.persons) == _rows(persons)[:3]
        assert _rows(brief.units) == _brief(_rows(units)[:3])
        # Rows written before the sums were kept (an upgraded database): a page sums those units' entries.
        async with rewards.engine.begin() as conn:
            await conn.execute(sa.update(models.totals).values(reason_totals=None))
            upgraded = await readmodel.load(conn, 0, TENANT, EDITION, rules, limit=3, unit_entries=False)
        assert _rows(upgraded.units) == _rows(units)[:3]

        # As of any moment, the stored versions give the list a fold of the facts up to then gives: at each
        # business time, just before it, and at random instants (before the first fact and after the last too).
        times = sorted({domain.business_time(f) for f in facts})
        instants = {t + d for t in times for d in (timedelta(0), -timedelta(microseconds=1))}
        instants |= {times[0] + (times[-1] - times[0]) * rng.random() for _ in range(10)}
        instants |= {times[0] - timedelta(days=1), times[-1] + timedelta(days=1)}
        async with rewards.engine.connect() as conn:
            assert await asof.usable(conn, 0, TENANT, EDITION)
            for t in sorted(instants):
                stored = asof.ranked(await asof.in_force(conn, 0, TENANT, EDITION, t), rules)
                folded = domain.fold_edition(facts, rules, as_of=t, part_titles=projection.part_titles(doc))
                want_persons, want_units = domain.priority(folded, rules)
                assert _rows(stored[1]) == _rows(want_persons), t
                assert _rows(stored[2]) == _rows(want_units), t
                assert sorted(stored[0], key=_entry_key) == sorted(folded.entries, key=_entry_key), t
                # A page, ranked by the database from the participants' timelines.
                for offset, limit in ((0, 100), (1, 2)):
                    page = await projection.page_as_of(
                        conn, 0, TENANT, EDITION, rules, t, offset=offset, limit=limit
                    )
                    assert _rows(page.persons) == _rows(want_persons)[offset : offset + limit], t
                    assert _rows(page.units) == _rows(want_units)[offset : offset + limit], t
                    assert (page.persons_total, page.units_total) == (len(want_persons), len(want_units))
                page = await projection.page_as_of(
                    conn, 0, TENANT, EDITION, rules, t, offset=0, limit=100, unit_entries=False
                )
                assert _rows(page.persons) == _rows(want_persons), t
                assert _rows(page.units) == _brief(_rows(want_units)), t

        # Told: for each participant, the last eligibility told is the one the list ends with.
        last: dict[str, list[str]] = {}
        for e in sorted(await rewards.emitted(), key=lambda e: e["sequence"]):
            assert e["data"]["eligibility"] != last.get(e["subject"], []), "told without a change"
            last[e["subject"]] = e["data"]["eligibility"]
        final = {r.participant_id: sorted(x.key for x in r.eligibility) for r in (*persons, *units)}
        assert {k: v for k, v in last.items() if v} == {k: v for k, v in final.items() if v}
    finally:
        await rewards.engine.dispose()


async def test_an_upgraded_ledger_gets_its_standings_from_the_standings_job(tmp_path: Path) -> None:
    """A database upgraded with ledgers but no read model (the upgrade leaves every subject's ``folded_facts``
    and ``versioned_facts`` NULL), or whose subjects the previous release folded beside this one during a
    rolling update: the standings job folds each such subject once and the list is whole again; a second pass
    has nothing to do. Meanwhile the list as of a moment is folded from the facts, and is the same."""
    rewards = await rewards_on_sqlite(tmp_path / "rewards.db")
    try:
        await rewards.deliver(all_facts())
        async with rewards.engine.connect() as conn:
            rules = await projection.current_rules(conn, TENANT, EDITION)
            subjects = (
                await conn.execute(sa.select(sa.func.count()).select_from(models.submission_states))
            ).scalar()
        before = await _model(rewards, rules)
        assert before[0] and before[1]
        proj = projection.Projection(models.backbone, models.copies, rewards.outbox, rewards.engine)
        assert await proj.fold_unfolded() == 0  # the consumer keeps them folded
        moment = at(24, 12)
        as_of_before = _json(await rewards.listing(moment))
        async with rewards.engine.begin() as conn:  # as the upgrade leaves it
            await conn.execute(sa.delete(models.totals))
            await conn.execute(sa.delete(models.marks))
            await conn.execute(sa.delete(models.subject_versions))
            await conn.execute(
                sa.update(models.submission_states).values(folded_facts=None, versioned_facts=None)
            )
        assert await _model(rewards, rules) == ([], [])
        async with rewards.engine.connect() as conn:
            assert not await asof.usable(conn, 0, TENANT, EDITION)
        assert _json(await rewards.listing(moment)) == as_of_before  # folded from the facts meanwhile
        assert await proj.fold_unfolded(chunk=3) == subjects
        assert [_rows(x) for x in await _model(rewards, rules)] == [_rows(x) for x in before]
        async with rewards.engine.connect() as conn:
            assert await asof.usable(conn, 0, TENANT, EDITION)
        assert _json(await rewards.listing(moment)) == as_of_before  # read from the versions again
        assert await proj.fold_unfolded() == 0
    finally:
        await rewards.engine.dispose()


# What a batch writes otherwise than its facts one by one: what was told and how many times (a batch tells once,
# at its end: compared apart; so does each participant's count of changes told, ``totals.changes``), and the participants' timelines, which hold one version per batch that changed
# them (the answers they give as of any moment are the facts' fold's: the test above).
_BATCHED = {"outbox", "event_sequences", "participant_versions", "timelines", "timeline_subjects"}

# Columns that say when a row was written, not what it says.
_WHEN = {"recorded_at", "updated_at", "applied_at", "started_at", "completed_at", "touched_at", "position"}


async def _tables(rewards: Rewards) -> dict[str, list[tuple[Any, ...]]]:
    """Every rewards table's rows without the columns that say when they were written (the journal in the order
    it was written)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with rewards.engine.connect() as conn:
        for name, t in models.metadata.tables.items():
            if name in _BATCHED:
                continue
            cols = [c for c in t.c if c.name not in _WHEN and (name, c.name) != ("totals", "changes")]
            order = [t.c.position] if name == "ledger_journal" else cols
            rows = (await conn.execute(sa.select(*cols).order_by(*order))).all()
            out[name] = [tuple(r) for r in rows]
    return out


@pytest.mark.parametrize("seed", range(8))
async def test_a_batch_folds_as_its_facts_one_by_one(seed: int, tmp_path: Path) -> None:
    """Facts applied in batches of random size (a subject's facts folded together at the batch's end) leave every
    table — ledger, journal in its order, marks, totals, versions, timelines, states — as the same facts applied
    one per transaction (and a re-pricing one subject per transaction), and the last titles told of each
    participant are the same (a batch tells once, at
    its end, with the ranks then). With new rules inside a batch, its facts before them are folded under the
    rules they came under: what is in force is the same, and so is each entry's journalled sum (the re-pricing
    runs after the batch's commit, so it finds the facts after it already priced, and journals fewer steps)."""
    rng = random.Random(1000 + seed)
    v1 = edition_published(1, **random_rules(rng))
    v2 = edition_published(2, **{**random_rules(rng), "rules_version": 2})
    facts = random_contest(rng)
    delivery = facts + rng.sample(facts, k=len(facts) // 3)  # duplicates
    rng.shuffle(delivery)
    cut = rng.randint(1, len(delivery))
    size = rng.randint(2, 9)
    cases = {  # deliveries, each in batches; exact: the journal too, row for row
        "facts": ([[v1, *delivery]], True),
        "rules between batches": ([[v1, *delivery[:cut]], [v2], delivery[cut:]], True),
        "rules inside a batch": ([[v1, *delivery[:cut], v2, *delivery[cut:]]], False),
    }
    for case, (deliveries, exact) in cases.items():
        one = await rewards_on_sqlite(tmp_path / f"one-{case}.db")
        many = await rewards_on_sqlite(tmp_path / f"many-{case}.db")
        try:
            for stream in deliveries:
                with pytest.MonkeyPatch.context() as mp:
                    mp.setattr(projection, "REFOLD_CHUNK", 1)  # and a re-pricing one subject at a time
                    await one.deliver(stream, batch=1)
                await many.deliver(stream, batch=len(stream) if seed % 2 else size)
            want, got = await _tables(one), await _tables(many)
            assert want["ledger_journal"], "the contest journals nothing: the test would prove nothing"
            if not exact:
                want["ledger_journal"], got["ledger_journal"] = _sums(want), _sums(got)
            for name in want:
                assert got[name] == want[name], (case, name)
            assert await _last_told(many) == await _last_told(one), case
        finally:
            await one.engine.dispose()
            await many.engine.dispose()


def _sums(tables: dict[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    """The journal's sum per entry (generation, tenant, edition, subject, participant, rule, earning fact)."""
    sums: dict[tuple[Any, ...], float] = {}
    for r in tables["ledger_journal"]:
        sums[r[:8]] = sums.get(r[:8], 0.0) + r[10]
    return sorted((*k, v) for k, v in sums.items() if v)


async def _last_told(rewards: Rewards) -> dict[str, list[str]]:
    """The titles last told of each participant told any (one told a title and then its loss within a batch's
    facts is not told at all by that batch)."""
    last: dict[str, list[str]] = {}
    for e in sorted(await rewards.emitted(), key=lambda e: e["sequence"]):
        last[e["subject"]] = e["data"]["eligibility"]
    return {k: v for k, v in last.items() if v}
