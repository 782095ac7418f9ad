"""The rewards acceptance fixture: a few dozen facts of the 2023 scenario, as the producers would publish them
(``make_event``), and the list they must give, worked out by hand.

The 2023 rules (deploy/seed/.../edition.yaml): experience report 1, initiative 2, initiative.selected 5,
onlineservice.target.reached 3; a missed deadline is a flag; one achievement per person, part and rule; a tie
goes to the earliest fulfilment. Initiative authors each earn the full points (the rules do not split by share).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from services.rewards import handlers, models
from services.rewards.usecases import projection, standings_job, view
from shared.clock import Clock
from shared.consumer import EventConsumer
from shared.db import make_engine
from shared.documents import load_directory, load_edition
from shared.events.envelope import Envelope, make_event
from shared.lease import Lease
from shared.outbox import Outbox
from shared.settings import Settings
from shared.streams import consumers_of

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2024, 1, 5, 9, 0, tzinfo=VN)  # "now" for names in the directory copy
ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "deploy" / "seed" / "soctrang-stnmt-2023"
TENANT = "soctrang-stnmt"
EDITION = "2023"
D_INTAKE = datetime(2023, 10, 26, tzinfo=VN)  # "chậm nhất ngày 25/10/2023"
D_SELECTION = datetime(2023, 10, 31, tzinfo=VN)
D_ONLINE90 = datetime(2023, 11, 19, tzinfo=VN)  # 21/08/2023 + 90 days


def at(day: int, hour: int = 9, minute: int = 0, second: int = 0, month: int = 10) -> datetime:
    return datetime(2023, month, day, hour, minute, second, tzinfo=VN)


class Producer:
    """Numbers each subject's facts 1, 2, 3… as a producer does."""

    def __init__(self) -> None:
        self.sequences: dict[str, int] = {}
        self.facts: list[Envelope] = []

    def emit(
        self, type_: str, subject: str, data: dict[str, Any], time: datetime, *, edition: str | None = EDITION
    ) -> Envelope:
        seq = self.sequences.get(subject, 0) + 1
        self.sequences[subject] = seq
        source = "submissions" if type_.startswith(("submission.", "initiative.")) else "campaign"
        env = make_event(
            type_,
            data,
            source=source,
            tenant=TENANT,
            subject=subject,
            sequence=seq,
            time=time,
            edition=edition,
        )
        self.facts.append(env)
        return env


def edition_published(version: int = 1, points: dict[str, int] | None = None, **rewards: Any) -> Envelope:
    """The seed edition, as campaign publishes it; ``points``/``rewards`` override its reward rules."""
    doc = load_edition(SEED / "edition.yaml").model_dump(mode="json")
    doc["version"] = version
    if points is not None:
        doc["rewards"]["points"] = points
    doc["rewards"].update(rewards)
    return make_event(
        "edition.published",
        {"version": version, "document": doc},
        source="campaign",
        tenant=TENANT,
        subject=EDITION,
        sequence=version,
        time=at(1, month=8) + timedelta(minutes=version),
        edition=EDITION,
    )


def directory_facts() -> list[Envelope]:
    d = load_directory(SEED / "directory.yaml")
    out = []
    for u in d.units:
        out.append(_dir("directory.unit.changed", u.id, {"unit": u.model_dump(mode="json")}))
    for un in d.unions:
        out.append(_dir("directory.unit.changed", un.id, {"union": un.model_dump(mode="json")}))
    counts: dict[str, int] = {}
    for p in d.people:
        counts[p.id] = counts.get(p.id, 0) + 1
        out.append(
            _dir("directory.person.changed", p.id, {"person": p.model_dump(mode="json")}, counts[p.id])
        )
    return out


def _dir(type_: str, subject: str, data: dict[str, Any], seq: int = 1) -> Envelope:
    return make_event(
        type_, data, source="campaign", tenant=TENANT, subject=subject, sequence=seq, time=at(1, month=8)
    )


UNIT_OF = {
    "p-0002": "u-vpdkdd-cn1",
    "p-0004": "u-vp",
    "p-0006": "u-vp",
    "p-0007": "u-tnn-ks",
    "p-0008": "u-tnn-ks",
    "p-0011": "u-tnb-bdkh",
    "p-0016": "u-ccbvmt",
    "p-0019": "u-vpdkdd",
    "p-0022": "u-ttcntt",
    "p-0025": "u-vpdkdd-cn1",
}
PROCEDURES = ["1.004227", "1.000494", "1.001234", "2.000123", "1.011442"]


def scenario() -> list[Envelope]:
    """The 2023 scenario's facts, each once, in the order they happened (see ``expected``)."""
    p = Producer()
    n = 0

    def report(person: str, when: datetime, sid: str | None = None) -> str:
        nonlocal n
        n += 1
        sid = sid or f"sub-exp-{person}"
        p.emit(
            "submission.received",
            sid,
            {
                "submission_id": sid, "kind": "experience_report", "part": "experience",
                "receipt_number": f"2023-TN-{n:06d}", "received_at": when.isoformat(), "author_id": person,
                "unit_id": UNIT_OF[person], "union_ids": ["cdcs"],
                "authors": [{"person_id": person, "name": person, "share": 100}], "procedures": PROCEDURES,
            },
            when,
        )  # fmt: skip
        return sid

    def change(type_: str, sid: str, person: str, kind: str, when: datetime, **extra: Any) -> None:
        part = "experience" if kind == "experience_report" else "initiative"
        data = {
            "submission_id": sid,
            "kind": kind,
            "part": part,
            "author_id": person,
            "unit_id": UNIT_OF[person],
        }
        p.emit(type_, sid, {**data, "at": when.isoformat(), **extra}, when)

    def assignment(aid: str, kind: str, who: str, part: str, part_kind: str, deadline: datetime) -> None:
        unit = UNIT_OF.get(who, who)
        p.emit(
            "assignment.created",
            aid,
            {"assignment_id": aid, "part": part, "part_kind": part_kind, "assignee_kind": kind,
             "assignee_id": who, "unit_id": unit, "deadline": deadline.isoformat()},
            at(21, 8, month=8),
        )  # fmt: skip

    def fulfil(aid: str, kind: str, who: str, part: str, part_kind: str, when: datetime, deadline: datetime,
               sid: str | None = None) -> None:  # fmt: skip
        p.emit(
            "assignment.fulfilled",
            aid,
            {"assignment_id": aid, "part": part, "part_kind": part_kind, "assignee_kind": kind,
             "assignee_id": who, "unit_id": UNIT_OF.get(who, who), "submission_id": sid,
             "fulfilled_at": when.isoformat(), "deadline": deadline.isoformat(), "on_time": when < deadline},
            when,
        )  # fmt: skip

    def missed(
        aid: str, kind: str, who: str, part: str, part_kind: str, deadline: datetime, published: datetime
    ) -> None:
        p.emit(
            "deadline.missed",
            aid,
            {"assignment_id": aid, "part": part, "part_kind": part_kind, "assignee_kind": kind,
             "assignee_id": who, "unit_id": UNIT_OF.get(who, who), "deadline": deadline.isoformat()},
            published,  # the envelope's time: when the clock caught up; the miss counts at its deadline
        )  # fmt: skip

    exp = ("experience", "experience_report")
    for person in UNIT_OF:
        assignment(f"a-exp-{person}", "person", person, *exp, D_INTAKE)
    for unit in ("u-tnn-ks", "u-vpdkdd", "u-ccbvmt"):
        assignment(f"a-ini-{unit}", "unit", unit, "initiative", "initiative", D_INTAKE)
        assignment(f"a-o90-{unit}", "unit", unit, "online90", "online_services_campaign", D_ONLINE90)

    # Experience reports.
    r1 = report("p-0002", at(20, 10))
    fulfil("a-exp-p-0002", "person", "p-0002", *exp, at(20, 10), D_INTAKE, r1)
    r2 = report("p-0004", at(21, 9))
    fulfil("a-exp-p-0004", "person", "p-0004", *exp, at(21, 9), D_INTAKE, r2)
    change("submission.revised", r2, "p-0004", "experience_report", at(22, 8), revision=2)
    r3 = report("p-0006", at(21, 10))
    fulfil("a-exp-p-0006", "person", "p-0006", *exp, at(21, 10), D_INTAKE, r3)
    r4 = report("p-0008", at(22, 8))
    change("submission.withdrawn", r3, "p-0006", "experience_report", at(23, 8), reason="Nộp nhầm")
    p.emit(
        "assignment.reopened",
        "a-exp-p-0006",
        {"assignment_id": "a-exp-p-0006", "part": "experience", "part_kind": "experience_report",
         "assignee_kind": "person", "assignee_id": "p-0006", "unit_id": "u-vp", "reason": "submission.withdrawn",
         "submission_id": r3, "at": at(23, 8).isoformat()},
        at(23, 8),
    )  # fmt: skip
    change("submission.rejected", r4, "p-0008", "experience_report", at(24, 8),
           reason="Trùng thủ tục với báo cáo khác", rejected_by="p-0004")  # fmt: skip
    r5 = report("p-0011", at(24, 15))
    fulfil("a-exp-p-0011", "person", "p-0011", *exp, at(24, 15), D_INTAKE, r5)
    r6 = report("p-0016", at(25, 23, 59, 59))
    fulfil("a-exp-p-0016", "person", "p-0016", *exp, at(25, 23, 59, 59), D_INTAKE, r6)

    # Initiatives: TNN-KS (two co-authors) and VPĐKĐĐ; CCBVMT none.
    i1 = "sub-ini-u-tnn-ks"
    authors1 = [
        {"person_id": "p-0007", "name": "Trương Văn Đức", "share": 60},
        {"person_id": "p-0008", "name": "Lý Thị Mỹ Linh", "share": 40},
    ]
    p.emit(
        "submission.received",
        i1,
        {"submission_id": i1, "kind": "initiative", "part": "initiative", "receipt_number": "2023-SK-000001",
         "received_at": at(23, 9).isoformat(), "author_id": "p-0007", "unit_id": "u-tnn-ks",
         "authors": authors1, "title": "Số hoá hồ sơ cấp phép tài nguyên nước"},
        at(23, 9),
    )  # fmt: skip
    fulfil("a-ini-u-tnn-ks", "unit", "u-tnn-ks", "initiative", "initiative", at(23, 9), D_INTAKE, i1)
    i2 = "sub-ini-u-vpdkdd"
    p.emit(
        "submission.received",
        i2,
        {"submission_id": i2, "kind": "initiative", "part": "initiative", "receipt_number": "2023-SK-000002",
         "received_at": at(24, 10).isoformat(), "author_id": "p-0019", "unit_id": "u-vpdkdd",
         "authors": [{"person_id": "p-0019", "name": "Đoàn Thị Cẩm Tú", "share": 100}],
         "title": "Một cửa liên thông đăng ký biến động đất đai"},
        at(24, 10),
    )  # fmt: skip
    fulfil("a-ini-u-vpdkdd", "unit", "u-vpdkdd", "initiative", "initiative", at(24, 10), D_INTAKE, i2)

    # Misses at the intake deadline, decided after intake.closed (the envelope is later than the deadline).
    caught_up = at(26, 0, 5)
    missed("a-exp-p-0019", "person", "p-0019", *exp, D_INTAKE, caught_up)
    missed("a-exp-p-0022", "person", "p-0022", *exp, D_INTAKE, at(27, 10))  # caught up a day late
    missed("a-exp-p-0025", "person", "p-0025", *exp, D_INTAKE, caught_up)
    missed("a-ini-u-ccbvmt", "unit", "u-ccbvmt", "initiative", "initiative", D_INTAKE, caught_up)
    # p-0019: an extension, missed again: the assignment costs once.
    extended = D_INTAKE + timedelta(days=2)
    p.emit(
        "deadline.extended",
        "a-exp-p-0019",
        {"assignment_id": "a-exp-p-0019", "part": "experience", "assignee_kind": "person", "assignee_id": "p-0019",
         "previous_deadline": D_INTAKE.isoformat(), "new_deadline": extended.isoformat(),
         "reason": "Nghỉ ốm có xác nhận", "approved_by": "p-0001", "at": at(26, 14).isoformat()},
        at(26, 14),
    )  # fmt: skip
    missed("a-exp-p-0019", "person", "p-0019", *exp, extended, extended + timedelta(minutes=5))
    # p-0025: an extension, then on time for it: the miss is void.
    extended25 = D_INTAKE + timedelta(days=5)
    p.emit(
        "deadline.extended",
        "a-exp-p-0025",
        {"assignment_id": "a-exp-p-0025", "part": "experience", "assignee_kind": "person", "assignee_id": "p-0025",
         "previous_deadline": D_INTAKE.isoformat(), "new_deadline": extended25.isoformat(),
         "reason": "Đi công tác", "approved_by": "p-0001", "at": at(27, 9).isoformat()},
        at(27, 9),
    )  # fmt: skip
    r7 = report("p-0025", at(28, 9))
    fulfil("a-exp-p-0025", "person", "p-0025", *exp, at(28, 9), extended25, r7)

    # The council selects TNN-KS's initiative.
    p.emit(
        "initiative.selected",
        i1,
        {"submission_id": i1, "part": "selection", "initiative_part": "initiative",
         "council_id": "initiative-council", "unit_id": "u-tnn-ks", "authors": authors1, "score": 86.5, "rank": 1,
         "at": at(30, 14).isoformat()},
        at(30, 14),
    )  # fmt: skip

    # The 90-day campaign ends.
    end = D_ONLINE90
    for unit, reached in (("u-tnn-ks", True), ("u-vpdkdd", True), ("u-ccbvmt", False)):
        figures = {"full_process_share_of_eligible": 0.85 if reached else 0.6, "online_dossier_share": 0.55,
                   "on_time_share": 0.97}  # fmt: skip
        p.emit(
            "onlineservice.target.reached" if reached else "onlineservice.target.missed",
            f"a-o90-{unit}",
            {"assignment_id": f"a-o90-{unit}", "part": "online90", "unit_id": unit, "at": end.isoformat(),
             "figures": figures, "targets": {"full_process_share_of_eligible": 0.8, "online_dossier_share": 0.5,
                                             "on_time_share": 0.95},
             "unmet": [] if reached else ["full_process_share_of_eligible"]},
            end,
        )  # fmt: skip
        if reached:
            fulfil(f"a-o90-{unit}", "unit", unit, "online90", "online_services_campaign", end - timedelta(seconds=1),
                   end)  # fmt: skip
    return p.facts


def all_facts() -> list[Envelope]:
    """Edition, directory, then the scenario."""
    return [edition_published(), *directory_facts(), *scenario()]


# ----------------------------------------------------------------------------------- worked out by hand
# (person, rank, points, eligibility keys, missed deadlines)
CSTDCS = "chien_si_thi_dua_co_so"
LDTT = "lao_dong_tien_tien_evidence"
TTLDTT = "tap_the_lao_dong_tien_tien_evidence"

EXPECTED_PERSONS = [
    # p-0007 and p-0008: initiative receipt 2 + selection 5, both first at 23/10 09:00: a shared first place.
    ("p-0007", 1, 7, [CSTDCS], 0),
    ("p-0008", 1, 7, [CSTDCS], 0),  # their own report was ruled ineligible: it counts nothing
    ("p-0019", 3, 2, [], 1),  # initiative 2; missed twice (after an extension) on one assignment: one miss
    ("p-0002", 4, 1, [LDTT], 0),  # 20/10 10:00
    ("p-0004", 5, 1, [LDTT], 0),  # 21/10 09:00, revised on 22/10: still one achievement
    ("p-0011", 6, 1, [LDTT], 0),  # 24/10 15:00
    ("p-0016", 7, 1, [LDTT], 0),  # 25/10 23:59:59: on time
    ("p-0025", 8, 1, [LDTT], 0),  # missed, extended, on time for the extension: the miss is void
    ("p-0022", 9, 0, [], 1),  # a miss (a flag: no deduction)
]
# p-0006 withdrew: not on the list.
EXPECTED_UNITS = [
    ("u-tnn-ks", 1, 10, [TTLDTT], 0),  # initiative 2 + selected 5 + 90-day target 3 (rejected report: 0)
    ("u-vpdkdd", 2, 5, [TTLDTT], 0),  # initiative 2 + 90-day target 3
    ("u-vpdkdd-cn1", 3, 2, [], 0),  # two reports (units are not capped per part)
    ("u-vp", 4, 1, [], 0),  # 21/10 09:00 (the withdrawn report: nothing)
    ("u-tnb-bdkh", 5, 1, [], 0),  # 24/10 15:00
    ("u-ccbvmt", 6, 1, [], 1),  # 25/10 23:59:59; no initiative (missed); 90-day target missed (0 points)
]
EXPECTED_ROLLUP = {"u-vpdkdd": 7}  # its own 5 + its branch's 2


def as_rows(items: list[Any]) -> list[tuple[str, int, float, list[str], int]]:
    """(id, rank, points, eligibility keys, misses) of a JSON list's persons or units."""
    out = []
    for r in items:
        pid = r.get("person_id") or r.get("unit_id")
        out.append(
            (pid, r["rank"], r["points"], sorted(e["key"] for e in r["eligibility"]), r["missed_deadlines"])
        )
    return out


# ----------------------------------------------------------------------------- rewards on SQLite, no broker


@dataclass
class Msg:
    data: bytes
    subject: str
    headers: dict[str, str] | None = None

    @property
    def metadata(self) -> Any:
        return SimpleNamespace(num_delivered=1, stream="HOITHI", sequence=SimpleNamespace(stream=1))

    async def ack(self) -> None:
        pass

    async def nak(self, delay: float | None = None) -> None:
        raise AssertionError(f"a fact was refused: {self.data[:200]!r}")

    async def in_progress(self) -> None:
        pass


@dataclass
class Rewards:
    consumer: EventConsumer
    engine: Any
    outbox: Outbox
    lease: Lease  # this runner's side of the standings job's lease

    async def deliver(self, facts: Sequence[Envelope], batch: int = 7) -> None:
        msgs = [Msg(f.to_json(), f"hoithi.{f.tenant}.{f.type}", {"Nats-Msg-Id": f.id}) for f in facts]
        for i in range(0, len(msgs), batch):
            await self.consumer.process(msgs[i : i + batch])

    async def listing(self, as_of: datetime | None = None, **filters: Any) -> view.PriorityList:
        """The list as the API builds it."""
        async with self.engine.connect() as conn:
            pl = await projection.load_list(
                conn, models.backbone, models.copies, TENANT, EDITION, as_of=as_of, now=NOW, **filters
            )
        assert pl is not None
        return pl

    async def emitted(self, type_: str = "reward.priority.changed") -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(models.backbone.outbox.c.payload).where(
                        models.backbone.outbox.c.event_type == type_
                    )
                )
            ).scalars()
            return [json.loads(r) for r in rows]


async def rewards_on_sqlite(path: Path) -> Rewards:
    """rewards' consumer (inbox + handlers, one transaction per batch) on a fresh SQLite file."""
    return await rewards_on(f"sqlite+aiosqlite:///{path}")


async def rewards_on(url: str, *, create: bool = True, lease_ttl: float = 15.0) -> Rewards:
    """rewards' consumer and standings job on the database at ``url`` (its tables made when ``create``): call it
    twice on one database for two replicas."""
    engine = make_engine(url)
    if create:
        async with engine.begin() as conn:
            await conn.run_sync(models.metadata.create_all)
    settings = Settings(env="test")
    outbox = Outbox(models.backbone, settings, "rewards", Clock())
    proj = projection.Projection(models.backbone, models.copies, outbox, engine)
    spec = next(c for c in consumers_of("rewards") if c.purpose == "facts")
    consumer = EventConsumer(
        spec=spec,
        engine=engine,
        backbone=models.backbone,
        outbox=outbox,
        settings=settings,
        handlers=dict.fromkeys(handlers.fact_types(), proj.handle),
    )
    lease = Lease(models.backbone.leases, standings_job.STANDINGS_LEASE, ttl=lease_ttl)
    return Rewards(consumer, engine, outbox, lease)
