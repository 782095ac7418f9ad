"""Replay benchmark (issue 16): ``hoithi rewards rebuild`` re-reading the stream into a fresh generation, against
raw nats-py consuming the same messages from the same server in the same run.

Runs alone: its own nats-server (from the wheel), its own rewards database (a SQLite file in a temp folder, the
embedded default; ``--postgres URL`` adds a run on a fresh PostgreSQL database created on that server), the
stream and consumers declared by ``hoithi streams``, the schema by ``hoithi migrate rewards``. Then

1. **Setup (not measured)**: N facts of the rewards facts consumer's types are published (pipelined, awaiting
   every ack, with their ``Nats-Msg-Id`` as the relay sends them): ``edition.published`` (the 2023 seed's, its
   reward rules), the seed directory, generated units (about 50 officials each), then for each generated
   official an experience report (``submission.received``); one in 10 officials also gets a directory fact
   (rewards' copy of the directory only names people on the list), one in 20 revises the report, one in 25
   withdraws it, one in 40 submits an initiative with a colleague (two authors) and one in 80 has it selected by
   the council (``initiative.selected``). All envelopes come from ``make_event`` (validated by the catalogue).
2. **Raw peer**: a nats-py pull consumer on the same stream with the rebuild's own consumer configuration (the
   rewards facts filter subjects, ``DeliverPolicy.ALL``, no acks) fetching batches of the rebuild's size, doing
   nothing with them: events/s. Run before and after the rebuild; the faster run is the peer.
3. **Rebuild**: ``services.rewards.usecases.rebuild.rebuild`` with a runtime built as ``hoithi rewards
   rebuild`` builds it (``build_runtime(SPEC)`` from ``HOITHI_*`` settings naming this run's NATS, stream and
   database), in this process: events/s over the whole call (read, apply, swap), the read phase and the swap
   apart, the SQL statements it sent (per event) and the CPU this process used meanwhile, the peak RSS of the
   process during it (``/proc/self/clear_refs`` resets the high-water mark first), and the rebuild's own
   progress lines (a summary).
4. **Checks** (SQL on rewards' tables): every event read and applied, none skipped; the new generation is the
   active one, its inbox holds every non-directory fact once; its ledger holds exactly the entries the facts
   earn (2 per standing report: the author and the unit; 3 per initiative and 3 more per selection: two authors
   and the unit) and its journal one credit per entry earned plus one reversal per entry withdrawn.
   ``lost`` = expected ledger rows missing, ``extra`` = rows beyond them.

Ends with one machine-readable line per database:

    replay: db=sqlite events=N raw_per_s=A rebuild_per_s=B vs_raw=X rss_mb=R lost=0 extra=0

    .venv/bin/python bench/replay.py --events 1000000 [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python bench/replay.py --smoke   # CI: 2,000 events, exits 1 unless lost=0 extra=0
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import sqlalchemy as sa
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.databases import run_each_database
from services.rewards import models
from services.rewards.usecases import projection
from services.rewards.usecases.rebuild import Result, rebuild
from shared.devserver import NatsServer
from shared.events.envelope import Envelope, make_event
from shared.settings import Settings, get_settings
from shared.streams import consumers_of
from tests.support.rewards import EDITION, PROCEDURES, TENANT, at, directory_facts, edition_published

OFFICIALS_PER_UNIT = 50
DIRECTORY_TYPES = ("directory.unit.changed", "directory.person.changed")


# --------------------------------------------------------------------------------------------- the facts


@dataclass
class Expected:
    """What the published facts must give in the rebuilt generation, counted as they are made."""

    events: int = 0
    directory: int = 0
    ledger: int = 0  # entries in force
    credits: int = 0  # journal credits
    reversals: int = 0  # journal reversals
    mix: dict[str, int] = field(default_factory=dict)

    def add(self, env: Envelope, *, ledger: int = 0, credits: int = 0, reversals: int = 0) -> Envelope:
        self.events += 1
        self.directory += env.type in DIRECTORY_TYPES
        self.ledger += ledger
        self.credits += credits
        self.reversals += reversals
        self.mix[env.type] = self.mix.get(env.type, 0) + 1
        return env


def units_for(n: int) -> int:
    return max(10, n // OFFICIALS_PER_UNIT)


def facts(n: int, expected: Expected) -> Iterator[Envelope]:
    """N facts in the order producers would publish them; ``expected`` counts what they earn."""
    seq: dict[str, int] = {}
    n_units = units_for(n)

    def emit(type_: str, subject: str, data: dict[str, Any], when: datetime) -> Envelope:
        seq[subject] = seq.get(subject, 0) + 1
        directory = type_ in DIRECTORY_TYPES
        return make_event(
            type_,
            data,
            source="campaign" if directory else "submissions",
            tenant=TENANT,
            subject=subject,
            sequence=seq[subject],
            time=when,
            edition=None if directory else EDITION,
        )

    def unit(k: int) -> Envelope:
        parents = ("u-vp", "u-tnn-ks", "u-ccqldd", "u-ccbvmt", "u-vpdkdd")
        doc = {"id": f"u-b{k:05d}", "code": f"B{k:05d}", "name": f"Tổ công tác số {k:05d}", "kind": "division",
               "parent": parents[k % len(parents)], "effective_from": "2003-01-01"}  # fmt: skip
        return emit("directory.unit.changed", doc["id"], {"unit": doc}, at(1, month=8))

    def official(i: int) -> Iterator[tuple[Envelope, int, int, int]]:
        """One official's facts: (fact, ledger entries it adds or removes, journal credits, reversals)."""
        person, unit_id = f"p-b{i:07d}", f"u-b{i % n_units:05d}"
        when = at(2) + timedelta(seconds=i)
        if i % 10 == 0:
            doc = {"id": person, "name": f"Cán bộ Thử nghiệm {i:07d}", "email": f"cb{i:07d}@example.vn",
                   "title": "Chuyên viên", "unit": unit_id, "roles": ["official"], "unions": ["cdcs"]}  # fmt: skip
            yield emit("directory.person.changed", person, {"person": doc}, at(1, month=8)), 0, 0, 0
        sid = f"sub-e-{i:07d}"
        base = {"submission_id": sid, "kind": "experience_report", "part": "experience", "author_id": person,
                "unit_id": unit_id}  # fmt: skip
        received = {**base, "receipt_number": f"2023-TN-{i + 1:07d}", "received_at": when.isoformat(),
                    "union_ids": ["cdcs"], "authors": [{"person_id": person, "name": person, "share": 100}],
                    "procedures": PROCEDURES}  # fmt: skip
        yield emit("submission.received", sid, received, when), 2, 2, 0  # the author and the unit
        if i % 20 == 7:
            later = when + timedelta(hours=1)
            revised = {**base, "at": later.isoformat(), "revision": 2}
            yield emit("submission.revised", sid, revised, later), 0, 0, 0
        if i % 25 == 3:
            later = when + timedelta(hours=2)
            withdrawn = {**base, "at": later.isoformat(), "reason": "Nộp nhầm"}
            yield emit("submission.withdrawn", sid, withdrawn, later), -2, 0, 2
        if i % 40 == 11:
            iid, colleague = f"sub-i-{i:07d}", f"p-b{i - 1:07d}"
            authors = [{"person_id": person, "name": person, "share": 60},
                       {"person_id": colleague, "name": colleague, "share": 40}]  # fmt: skip
            initiative = {"submission_id": iid, "kind": "initiative", "part": "initiative",
                          "receipt_number": f"2023-SK-{i + 1:07d}", "received_at": when.isoformat(),
                          "author_id": person, "unit_id": unit_id, "authors": authors,
                          "title": f"Sáng kiến số {i:07d}"}  # fmt: skip
            yield emit("submission.received", iid, initiative, when), 3, 3, 0  # two authors and the unit
            if i % 80 == 11:
                chosen = at(30, 14) + timedelta(seconds=i)
                selected = {"submission_id": iid, "part": "selection", "initiative_part": "initiative",
                            "council_id": "initiative-council", "unit_id": unit_id, "authors": authors,
                            "score": 80.0, "at": chosen.isoformat()}  # fmt: skip
                yield emit("initiative.selected", iid, selected, chosen), 3, 3, 0

    def stream() -> Iterator[tuple[Envelope, int, int, int]]:
        yield edition_published(), 0, 0, 0
        for env in directory_facts():
            yield env, 0, 0, 0
        for k in range(n_units):
            yield unit(k), 0, 0, 0
        i = 0
        while True:
            yield from official(i)
            i += 1

    for k, (env, ledger, credits, reversals) in enumerate(stream()):
        if k >= n:
            return
        yield expected.add(env, ledger=ledger, credits=credits, reversals=reversals)


async def publish(url: str, settings: Settings, n: int) -> tuple[Expected, float]:
    """Publish N facts (pipelined, every ack awaited); returns what they must give and the publish rate."""
    expected = Expected()
    nc = await nats.connect(url)
    js = nc.jetstream()
    chunk: list[Envelope] = []
    t0 = time.perf_counter()

    async def flush() -> None:
        await asyncio.gather(
            *(
                js.publish(
                    settings.event_subject(e.tenant, e.type),
                    e.to_json(),
                    stream=settings.stream,
                    headers={"Nats-Msg-Id": e.id},
                )
                for e in chunk
            )
        )
        chunk.clear()

    for env in facts(n, expected):
        chunk.append(env)
        if len(chunk) == 500:
            await flush()
    await flush()
    rate = n / (time.perf_counter() - t0)
    await nc.close()
    return expected, rate


# ------------------------------------------------------------------------------------------ measurements


async def raw_consume(url: str, settings: Settings, n: int, batch: int) -> float:
    """nats-py alone: the rebuild's consumer configuration, batches of its size, nothing done with them."""
    spec = next(c for c in consumers_of("rewards") if c.purpose == projection.FACTS)
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        t0 = time.perf_counter()
        sub = await js.pull_subscribe(
            "",
            stream=settings.stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.ALL,
                filter_subjects=spec.filter_subjects(settings),
                inactive_threshold=120,
            ),
        )
        got = 0
        while got < n:
            try:
                msgs = await sub.fetch(batch, timeout=2)
            except (nats.errors.TimeoutError, TimeoutError):
                break
            got += len(msgs)
        elapsed = time.perf_counter() - t0
        await sub.unsubscribe()
    finally:
        await nc.close()
    if got != n:
        raise SystemExit(f"raw consume read {got} of {n} events")
    return n / elapsed


def reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark (Linux ``clear_refs`` 5), so the next reading is this phase's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@dataclass
class Rebuilt:
    seconds: float
    read_seconds: float
    rss_mb: float
    rss_reset: bool
    result: Result
    lines: list[tuple[float, str]]
    statements: int  # SQL statements the rebuild sent to the database
    cpu_seconds: float  # this process's user + system CPU during the rebuild (every thread: aiosqlite's too)


async def run_rebuild(batch: int) -> Rebuilt:
    """``hoithi rewards rebuild --batch BATCH`` as its command builds it (services/rewards/cli.py), in process."""
    from services.rewards.app import SPEC
    from shared.service import build_runtime

    get_settings.cache_clear()  # the settings come from this run's HOITHI_* environment
    lines: list[tuple[float, str]] = []
    rt = build_runtime(SPEC)
    statements = 0

    def counted(*_: object) -> None:
        nonlocal statements
        statements += 1

    sa.event.listen(rt.engine.sync_engine, "before_cursor_execute", counted)
    reset = reset_peak_rss()
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    try:
        result = await rebuild(rt, batch=batch, echo=lambda line: lines.append((time.perf_counter(), line)))
    finally:
        await rt.engine.dispose()
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    reads = [t for t, line in lines if "events read" in line]
    read_seconds = (reads[-1] - t0) if reads else seconds
    return Rebuilt(
        seconds, read_seconds, peak_rss_mb(), reset, result, [(t - t0, s) for t, s in lines], statements, cpu
    )


async def check(database_url: str, result: Result) -> dict[str, int]:
    """Counts in rewards' tables for the rebuilt generation."""
    gen = result.generation
    engine = create_async_engine(database_url)
    g, lg, j, inbox = models.generations, models.ledger, models.ledger_journal, models.backbone.inbox

    async def count(conn: AsyncConnection, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
        q = sa.select(sa.func.count()).select_from(table).where(*where)
        return int((await conn.execute(q)).scalar_one())

    try:
        async with engine.connect() as conn:
            active = (await conn.execute(sa.select(g.c.id).where(g.c.status == "active"))).scalars().all()
            return {
                "active_is_new": int(list(active) == [gen]),
                "inbox": await count(conn, inbox, inbox.c.purpose == f"rebuild-{gen}"),
                "ledger": await count(conn, lg, lg.c.generation == gen),
                "credits": await count(conn, j, j.c.generation == gen, j.c.action == "credit"),
                "reversals": await count(conn, j, j.c.generation == gen, j.c.action == "reversal"),
                "persons": await count(
                    conn,
                    models.totals,
                    models.totals.c.generation == gen,
                    models.totals.c.participant_kind == "person",
                ),
                "outbox": await count(conn, models.backbone.outbox),
            }
    finally:
        await engine.dispose()


# ------------------------------------------------------------------------------------------------ a run


def hoithi(env: dict[str, str], *args: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise SystemExit(f"hoithi {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")


async def run_db(args: argparse.Namespace, label: str, postgres: str | None) -> str:
    work = Path(tempfile.mkdtemp(prefix=f"hoithi-bench-replay-{label}-"))
    server = NatsServer(store_dir=work / "nats").start()
    if postgres:
        from tests.support.servers import create_database

        database_url = create_database("benchreplay", postgres)
    else:
        database_url = f"sqlite+aiosqlite:///{work / 'rewards.db'}"
    prefix = f"br{label}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOITHI_")}
    env.update(
        {
            "HOITHI_ENV": "test",
            "HOITHI_DATA_DIR": str(work / "data"),
            "HOITHI_NATS_URL": server.url,
            "HOITHI_EVENT_PREFIX": prefix,
            "HOITHI_DEADLETTER_PREFIX": f"{prefix}-dl",
            "HOITHI_REPLAY_PREFIX": f"{prefix}-replay",
            "HOITHI_STREAM": prefix.upper(),
            "HOITHI_DEADLETTER_STREAM": f"{prefix.upper()}_DL",
            "HOITHI_REPLAY_STREAM": f"{prefix.upper()}_REPLAY",
            "HOITHI_LOG_JSON": "false",
            "HOITHI_REWARDS_DATABASE_URL": database_url,
        }
    )
    saved = dict(os.environ)
    try:
        print(
            f"[{label}] nats-server {server.url}, rewards database {'PostgreSQL' if postgres else 'SQLite'} in {work}",
            flush=True,
        )
        hoithi(env, "migrate", "rewards")
        hoithi(env, "streams")
        os.environ.clear()
        os.environ.update(env)
        get_settings.cache_clear()
        settings = get_settings()
        expected, pub_rate = await publish(server.url, settings, args.events)
        mix = ", ".join(f"{t} {c}" for t, c in sorted(expected.mix.items(), key=lambda kv: -kv[1]))
        print(f"[{label}] published {expected.events} events at {pub_rate:.0f}/s (setup): {mix}", flush=True)
        raw1 = await raw_consume(server.url, settings, args.events, args.batch)
        print(f"[{label}] raw nats-py consume: {raw1:.0f} events/s", flush=True)
        done = await run_rebuild(args.batch)
        raw2 = await raw_consume(server.url, settings, args.events, args.batch)
        print(f"[{label}] raw nats-py consume again: {raw2:.0f} events/s", flush=True)
        raw = max(raw1, raw2)
        res = done.result
        progress = [line for _, line in done.lines if "events read" in line]
        shown = sorted({0, len(progress) // 4, len(progress) // 2, 3 * len(progress) // 4, len(progress) - 1})
        print(
            f"[{label}] the rebuild's own output ({len(done.lines)} lines; {len(progress)} progress lines, some shown):"
        )
        for t, line in done.lines:
            if "events read" not in line or progress.index(line) in shown:
                print(f"    {t:8.1f} s  {line}")
        rate = args.events / done.seconds
        read_rate = args.events / done.read_seconds if done.read_seconds else float("nan")
        print(
            f"[{label}] rebuild: {done.seconds:.1f} s = {rate:.0f} events/s (read and apply {done.read_seconds:.1f} s = "
            f"{read_rate:.0f}/s, swap {done.seconds - done.read_seconds:.1f} s, {res.changes} participants told); "
            f"peak RSS {done.rss_mb:.0f} MB{'' if done.rss_reset else ' (process lifetime: no clear_refs)'}; "
            f"{done.statements} SQL statements, {done.statements / args.events:.1f} per event; this process used "
            f"{done.cpu_seconds:.1f} s of CPU ({done.cpu_seconds / done.seconds:.0%} of one core) on {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        got = await check(database_url, res)
        facts_expected = expected.events - expected.directory
        ok = (
            res.read == expected.events
            and res.applied == expected.events
            and res.skipped == 0
            and got["active_is_new"] == 1
            and got["inbox"] == facts_expected
            and got["credits"] == expected.credits
            and got["reversals"] == expected.reversals
        )
        lost = max(0, expected.ledger - got["ledger"])
        extra = max(0, got["ledger"] - expected.ledger)
        print(
            f"[{label}] checks: read {res.read}, applied {res.applied}, skipped {res.skipped} of {expected.events}; "
            f"generation {res.generation} active {'yes' if got['active_is_new'] else 'NO'}; "
            f"inbox {got['inbox']} (expected {facts_expected}); ledger {got['ledger']} (expected {expected.ledger}); "
            f"journal credits {got['credits']} (expected {expected.credits}), reversals {got['reversals']} "
            f"(expected {expected.reversals}); {got['persons']} persons on the list; {got['outbox']} facts in the "
            f"outbox -> {'ok' if ok and not lost and not extra else 'FAILED'}",
            flush=True,
        )
        return (
            f"replay: db={label} events={args.events} raw_per_s={raw:.0f} rebuild_per_s={rate:.0f} "
            f"vs_raw={rate / raw:.4f} rss_mb={done.rss_mb:.0f} read_per_s={read_rate:.0f} "
            f"checks={'ok' if ok else 'failed'} lost={lost} extra={extra}"
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if postgres:
                from tests.support.servers import drop_database

                drop_database(database_url, postgres)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="facts on the stream (default 1,000,000)")
    ap.add_argument(
        "--batch", type=int, default=500, help="events per fetch and transaction (rebuild's default)"
    )
    ap.add_argument("--postgres", help="also on PostgreSQL: a server URL (a database is created on it)")
    ap.add_argument("--no-sqlite", dest="sqlite", action="store_false", help="only PostgreSQL (--postgres)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (and the PostgreSQL database)")
    ap.add_argument(
        "--smoke", action="store_true", help="2,000 events (CI): exits 1 unless every check passes"
    )
    args = ap.parse_args()
    if args.smoke:
        args.events = 2000
    await run_each_database(args, run_db, " checks=ok lost=0 extra=0")


if __name__ == "__main__":
    asyncio.run(main())
