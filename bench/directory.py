"""Directory reads at national scale (issue 16): ``GET …/people`` over a directory of N people.

Campaign's app in-process (HTTP through ``httpx.ASGITransport``: authentication, the query's validation, privacy
and JSON included; no messaging), its copy holding N generated people with Vietnamese names over ``--units``
units, each row with the listing columns the write path gives it (``shared.copies.listing_values``). Each read is
asked ``--repeat`` times as the secretariat, after one warm-up:

- the first page and a page 50 pages deep (following the ``Link`` header);
- a search matching many (a common family name), one matching a few (a generated person's full name), one
  matching nobody, and a person id;
- one unit's people, and 200 people by id (what a portal page asks);
- ``GET …/assignments`` (one experience report due per generated official, a third of them in): its first page
  of 100 and the 51st, and the dashboard's page of 50 open assignments of people.

The peer is the same app answering the whole directory unpaged, in id order, as ``GET …/people`` did before the
listing (every row parsed, as ``Copies.people_in`` does), and the whole list of assignments unpaged, each timed
once.

Ends with one machine-readable line per database:

    directory: db=sqlite people=N p99_ms=P worst=KIND whole_list_ms=W assignments_unpaged_ms=A

    .venv/bin/python bench/directory.py --people 100000 [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import shared.service
from bench.pipeline import pct
from services.campaign import models
from services.campaign.app import SPEC
from shared.auth import issue_token
from shared.copies import FAR_PAST, listing_values
from shared.db import make_engine
from shared.documents import Person, load_directory
from shared.settings import ServiceSettings, Settings
from tests.support.system import EDITION, SEED, TENANT

SECRETARIAT = "p-0004"
NOW = datetime.fromisoformat("2023-10-20T09:00:00+07:00")
FAMILY = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
]
MIDDLE = ["Văn", "Thị", "Minh", "Hữu", "Đức", "Thanh", "Ngọc", "Quốc", "Thu", "Hoài", "Bảo", "Gia"]
GIVEN = [
    "An",
    "Anh",
    "Ánh",
    "Bình",
    "Châu",
    "Dũng",
    "Đức",
    "Hà",
    "Hạnh",
    "Hằng",
    "Hòa",
    "Hồng",
    "Huy",
    "Hưng",
]
GIVEN += ["Khánh", "Lan", "Linh", "Lộc", "Minh", "Nam", "Ngọc", "Phúc", "Quân", "Sơn", "Tâm", "Thảo", "Trang"]


async def fill(url: str, people: int, units: int) -> str:
    """The seed's directory, then ``people`` generated people (names drawn with a fixed seed) over ``units``
    generated units, written as campaign's copy holds them. Returns the name of the one in the middle."""
    seed = load_directory(SEED / "directory.yaml")
    template = seed.people[0]
    engine = make_engine(url)
    rng = random.Random(16)
    async with engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
        u = models.copies.units
        unit_rows = [
            {
                "tenant": TENANT,
                "unit_id": f"u-g{j:04d}",
                "effective_from": FAR_PAST,
                "code": f"G{j:04d}",
                "name": f"Phòng {j:04d}",
                "doc": seed.units[1]
                .model_copy(update={"id": f"u-g{j:04d}", "code": f"G{j:04d}"})
                .model_dump_json(),
                "sequence": 1,
            }
            for j in range(units)
        ]
        unit_rows += [
            {
                "tenant": TENANT,
                "unit_id": unit.id,
                "effective_from": unit.effective_from or FAR_PAST,
                "code": unit.code,
                "name": unit.name,
                "doc": unit.model_dump_json(),
                "sequence": 1,
            }
            for unit in seed.units
        ]
        await conn.execute(u.insert(), unit_rows)
        unions = [
            {"tenant": TENANT, "union_id": x.id, "doc": x.model_dump_json(), "sequence": 1}
            for x in seed.unions
        ]
        await conn.execute(models.copies.unions.insert(), unions)
        batch: list[dict[str, Any]] = []
        persons = [*seed.people]
        for i in range(people):
            name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
            fields = {"id": f"p-g{i:06d}", "name": name, "email": f"p-g{i:06d}@example.vn"}
            fields |= {
                "unit": f"u-g{i % units:04d}",
                "roles": ["official"],
                "unions": [],
                "effective_from": None,
            }
            persons.append(Person.model_validate({**template.model_dump(), **fields}))
        for p in persons:
            batch.append(
                {
                    "tenant": TENANT,
                    "person_id": p.id,
                    "effective_from": p.effective_from or FAR_PAST,
                    "unit_id": p.unit,
                    "email": p.email,
                    "doc": p.model_dump_json(),
                    "sequence": 1,
                    **listing_values(p, 1),
                }
            )
            if len(batch) == 5000:
                await conn.execute(models.copies.people.insert(), batch)
                batch = []
        if batch:
            await conn.execute(models.copies.people.insert(), batch)
        # one experience report due per generated official, a third of them in (the dashboard lists the rest)
        deadline = datetime(2023, 10, 31, 16, 59, 59, tzinfo=UTC)
        rows = [
            {
                "id": f"a-{i:06d}",
                "tenant": TENANT,
                "edition": EDITION,
                "part": "experience",
                "part_kind": "experience_report",
                "assignee_kind": "person",
                "assignee_id": f"p-g{i:06d}",
                "unit_id": f"u-g{i % units:04d}",
                "deadline": deadline,
                "status": "fulfilled" if i % 3 == 0 else "open",
                "created_at": deadline,
            }
            for i in range(people)
        ]
        for i in range(0, len(rows), 5000):
            await conn.execute(models.assignments.insert(), rows[i : i + 5000])
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("ANALYZE"))
    await engine.dispose()
    return persons[len(seed.people) + people // 2].name


async def whole_list(app: Any) -> float:
    """The peer: every person in force, parsed and shown, in id order (the read before pages), in ms."""
    from shared.privacy import Viewer, person_view

    rt = app.state.runtime
    t0 = time.perf_counter()
    async with rt.engine.connect() as conn:
        found = await models.copies.people_in(conn, TENANT, rt.now())
    viewer = Viewer(SECRETARIAT, frozenset({"secretariat"}))
    _ = [person_view(viewer, p.model_dump(mode="json")) for p in found]
    return (time.perf_counter() - t0) * 1000


async def run_db(label: str, url: str, args: argparse.Namespace) -> str:
    print(f"[{label}] filling a directory of {args.people} people over {args.units} units …", flush=True)
    t0 = time.perf_counter()
    middle = await fill(url, args.people, args.units)
    print(f"[{label}] filled in {time.perf_counter() - t0:.0f}s", flush=True)
    settings = Settings(env="test", data_dir=Path(tempfile.mkdtemp()), clock_simulated_at=NOW)
    settings = settings.model_copy(update={"clock_real_at": datetime.now(UTC)})
    app = shared.service.create_app(
        SPEC, settings, ServiceSettings(name="campaign", database_url=url, port=1)
    )
    token = issue_token(settings, SECRETARIAT, TENANT)
    path = f"/tenants/{TENANT}/people"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://campaign",
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    ) as client:
        target = path
        for _ in range(50):  # the address of the 51st page
            r = await client.get(target)
            target = r.headers["link"].split(">")[0].removeprefix("<")
        assignments = f"/tenants/{TENANT}/editions/{EDITION}/assignments"
        deep = assignments + "?limit=100"
        for _ in range(50):  # the address of the 51st page of assignments
            r = await client.get(deep)
            deep = r.headers["link"].split(">")[0].removeprefix("<")
        rng = random.Random(7)
        ids = [("id", f"p-g{rng.randrange(args.people):06d}") for _ in range(200)]
        reads: dict[str, tuple[str, Any]] = {
            "first_page": (path, None),
            "page_51": (target, None),
            "search_many": (path, {"q": "nguyen"}),
            "search_few": (path, {"q": middle}),  # a full name: a few people bear it
            "search_none": (path, {"q": "zzzz"}),
            "search_id": (path, {"q": f"p-g{args.people // 2:06d}"}),
            "unit": (path, {"unit": f"u-g{args.units // 2:04d}"}),
            "ids_200": (path, [*ids, ("limit", "200")]),
            "assignments_page": (assignments, {"limit": "100"}),
            "assignments_deep": (deep, None),
            "pending_page": (assignments, {"status": "open", "assignee_kind": "person", "limit": "50"}),
        }
        p99: dict[str, float] = {}
        for kind, (where, params) in reads.items():
            times = []
            for n in range(args.repeat + 1):
                t0 = time.perf_counter()
                r = await client.get(where, params=params)
                elapsed = time.perf_counter() - t0
                assert r.status_code == 200, r.text
                if n:  # the first is the warm-up
                    times.append(elapsed)
            p99[kind] = pct(times, 99) * 1000
            print(
                f"[{label}] {kind:<16} p50 {pct(times, 50) * 1000:7.1f} ms  p99 {p99[kind]:7.1f} ms  "
                f"({len(r.json())} rows)",
                flush=True,
            )
        whole = await whole_list(app)
        print(f"[{label}] peer: the whole directory unpaged, parsed, in id order: {whole:.0f} ms", flush=True)
        t0 = time.perf_counter()
        r = await client.get(assignments)
        every = (time.perf_counter() - t0) * 1000
        print(
            f"[{label}] the whole list of assignments, unpaged: {every:.0f} ms ({len(r.json())} rows)",
            flush=True,
        )
    await app.state.runtime.engine.dispose()
    worst = max(p99, key=lambda k: p99[k])
    return (
        f"directory: db={label} people={args.people} p99_ms={p99[worst]:.0f} worst={worst} "
        f"whole_list_ms={whole:.0f} assignments_unpaged_ms={every:.0f}"
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--units", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=50, help="times each read is asked (after one warm-up)")
    ap.add_argument("--postgres", help="also on PostgreSQL: a server URL (a database is created on it)")
    ap.add_argument("--no-sqlite", dest="sqlite", action="store_false")
    ap.add_argument("--smoke", action="store_true", help="a short run (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.people, args.units, args.repeat = 6000, 20, 3
    lines = []
    if args.sqlite:
        work = Path(tempfile.mkdtemp(prefix="hoithi-bench-directory-"))
        lines.append(await run_db("sqlite", f"sqlite+aiosqlite:///{work / 'campaign.db'}", args))
    if args.postgres:
        from tests.support.servers import create_database, drop_database

        url = create_database("benchdirectory", args.postgres)
        try:
            lines.append(await run_db("postgresql", url, args))
        finally:
            drop_database(url)
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
