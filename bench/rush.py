"""Rush benchmark (issue 16): a deadline rush of N officials through HTTP, with reads interleaved.

1. **Peers**, on the idle machine before the system starts: raw nats-py publishing N messages the size of a
   ``submission.received`` (awaiting every ack) then pull-consuming them, and the bare FastAPI POST of
   ``bench/intake.py`` under the same wrk load as the rush.
2. **The whole system** up (nats-server from the wheel, the four services, relay and consumers running) on SQLite
   (default) or PostgreSQL (``--postgres URL``), its directory holding N generated officials over ``--units``
   generated divisions besides the seed's own.
3. **The rush**: wrk (``apt-get install wrk``) with ``--connections`` connections gives every official one POST
   (its Lua script stops once each has an answer), while a reader asks ``--reads-per-s`` times a second, in turn:
   the priority list's first page (``limit=50``), participation, and the priority list ``as_of`` an instant drawn
   at random from the rush so far.
4. **Drain**: until rewards, campaign and notify have each applied every accepted report (their inboxes).
   ``pipeline_vs_raw`` = accepted reports / seconds from the rush's start to the last one applied, against the
   raw nats-py rate (N / (publish time + consume time)).
5. **Quiet**: until every receipt of the rush is handed to SMTP and every fact it caused downstream is applied
   (the time is printed), so that the next step measures the offered rate, not the rush's backlog.
6. **Steady load**: ``--open-loop`` reports more at ``--rate`` reports/s offered (one request every 1/rate s
   whatever the answers): POST → rewards ledger (the inbox row's ``applied_at``) and POST → receipt e-mail
   handed to SMTP (the delivery's ``sent_at``), p50 and p99; and the CPU each process spent, and the SQL
   statements each service sent, per report of it.
7. **Cold reads**: rewards and campaign restarted, the same reads again.
8. **Peak RSS** per service (``VmHWM``, before the restart); **lost** = a 201 without its row, or a report
   without its rewards ledger entry or its sent receipt; **doubled** = a report with two person entries in the
   ledger or two receipts; **participation_off** = how far campaign's participation now (assignments fulfilled)
   is from submissions' count of the reports submitted.

Ends with one machine-readable line per database:

    rush: db=sqlite officials=N accepted=C accepted_per_s=A bare_per_s=B pipeline_vs_raw=X ledger_p99_ms=Y
          email_p99_ms=E read_p99_ms=R failed_reads=F max_rss_mb=Z lost=L doubled=D participation_off=P

    .venv/bin/python bench/rush.py --officials 100000 [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.databases import run_each_database
from bench.intake import bare_peer, bench_system, cpu_seconds, metric_sums, start_system, yielded
from bench.pipeline import applied_times, pct, raw_nats
from shared.clock import Clock
from shared.db import make_engine
from shared.devserver import NatsServer
from tests.support.system import EDITION, TENANT, System, report_body

SECRETARIAT = "p-0004"  # the seed's secretariat: reads the lists
CONSUMERS = ("rewards", "campaign", "notify")  # the services a report reaches

# Every token once: past the last one, wrk's free connections ask a path that answers 404 (not counted) until the last
# POST is answered; then the thread stops and leaves a file behind, and the bench ends wrk with SIGINT (wrk waits
# out its duration after thread:stop(), SIGINT makes it report at once).
LUA = r"""
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local body = io.open(os.getenv("BENCH_BODY")):read("*a")
local i = -1  -- wrk calls request() once per thread before it connects (to check the script) and sends nothing
created, others, answered = 0, 0, 0
request = function()
  i = i + 1
  if i < 1 or i > #tokens then return wrk.format("GET", "/bench-filler") end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[i]}, body)
end
response = function(status, headers, body)
  if status == 404 then return end
  answered = answered + 1
  if status == 201 then created = created + 1 else others = others + 1 end
  if answered == #tokens then io.open(os.getenv("BENCH_DONE"), "w"):close(); wrk.thread:stop() end
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do c = c + t:get("created"); o = o + t:get("others") end
  io.write(string.format("BENCH created=%d others=%d seconds=%.3f errors=%d\n", c, o, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


class Reader:
    """Reads at a fixed rate while the rush runs: (kind, latency in s) of every answer; any non-200 is kept."""

    def __init__(self, system: System, per_s: float) -> None:
        self.system, self.per_s = system, per_s
        self.lat: dict[str, list[float]] = {}
        self.failures: list[str] = []
        self.window: tuple[float, float] | None = None  # the rush in business time (epoch seconds), for as_of

    def _request(self, kind: str) -> tuple[str, dict[str, str]]:
        base = f"/tenants/{TENANT}/editions/{EDITION}"
        if kind == "participation":
            return f"{self.system.url('campaign')}{base}/participation", {}
        params = {"limit": "50"}
        if kind == "priority_list_as_of":
            lo, hi = self.window or (0.0, 0.0)
            at = datetime.fromtimestamp(random.uniform(lo, max(lo, hi)), UTC)
            params["as_of"] = at.isoformat().replace("+00:00", "Z")
        return f"{self.system.url('rewards')}{base}/priority-list", params

    async def one(self, client: httpx.AsyncClient, kind: str) -> None:
        url, params = self._request(kind)
        t0 = time.perf_counter()
        try:
            r = await client.get(url, params=params)
        except httpx.HTTPError as error:
            self.failures.append(f"{kind}: {type(error).__name__}")
            return
        if r.status_code != 200:
            self.failures.append(f"{kind}: {r.status_code} {r.text[:200]}")
            return
        self.lat.setdefault(kind, []).append(time.perf_counter() - t0)

    async def run(self, stop: asyncio.Event | None = None, count: int | None = None) -> None:
        kinds = ("priority_list", "participation", "priority_list_as_of")
        headers = {"Authorization": f"Bearer {self.system.token(SECRETARIAT)}"}
        async with httpx.AsyncClient(timeout=120, headers=headers) as client:
            tasks: list[asyncio.Task[None]] = []
            start, n = time.perf_counter(), 0
            while (stop is None or not stop.is_set()) and (count is None or n < count):
                tasks.append(asyncio.create_task(self.one(client, kinds[n % len(kinds)])))
                n += 1
                await asyncio.sleep(max(0.0, start + n / self.per_s - time.perf_counter()))
            await asyncio.gather(*tasks)

    def summary(self) -> dict[str, float]:
        return {k: pct(v, 99) * 1000 for k, v in sorted(self.lat.items())}

    def medians(self) -> dict[str, float]:
        return {k: pct(v, 50) * 1000 for k, v in sorted(self.lat.items())}

    def failed(self) -> dict[str, int]:
        """Failures by kind of read (the part of each answer before the colon)."""
        return dict(sorted(Counter(f.split(":", 1)[0] for f in self.failures).items()))


def rush_wrk(
    url: str, tokens: Path, body: Path, work: Path, connections: int, timeout: float
) -> dict[str, float]:
    script, done = work / "rush.lua", work / "rush.done"
    script.write_text(LUA)
    done.unlink(missing_ok=True)
    start = time.time()
    proc = subprocess.Popen(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(timeout) + 60}s",
            "--timeout",
            "120s",
            "-s",
            str(script),
            url,
        ],
        env={**os.environ, "BENCH_TOKENS": str(tokens), "BENCH_BODY": str(body), "BENCH_DONE": str(done)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while not done.exists() and proc.poll() is None and time.time() - start < timeout:
        time.sleep(0.05)
    finished = done.exists()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    m = re.search(r"BENCH created=(\d+) others=(\d+) seconds=([\d.]+) errors=(\d+)", out)
    if not finished or not m:
        raise SystemExit(
            f"wrk did not answer every official in {timeout:.0f}s ({proc.returncode}): {out}\n{err}"
        )
    print(f"  wrk: {m[0]}", flush=True)
    seconds = done.stat().st_mtime - start  # to the last answer, not to the SIGINT
    return {"created": int(m[1]), "others": int(m[2]), "seconds": seconds, "errors": int(m[4])}


def epoch(at: datetime | str) -> float:
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


async def scalar_rows(url: str, sql: str, **params: object) -> list[sa.Row[tuple[object, ...]]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.text(sql), params)).all())
    finally:
        await engine.dispose()


class NotDrained(Exception):
    """The consumers had not applied every accepted report when the drain's time ran out."""


async def drained(dbs: dict[str, str], expected: int, timeout: float) -> float:
    """Epoch second the last of ``expected`` reports was applied by the last of the consumers (else
    :class:`NotDrained`, naming how far each got)."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while True:
        last = 0.0
        for s in CONSUMERS:
            rows = await scalar_rows(
                dbs[s],
                "SELECT count(DISTINCT event_id), max(applied_at) FROM inbox "
                "WHERE event_type = 'submission.received'",
            )
            counts[s] = int(rows[0][0])
            if rows[0][1] is not None:
                last = max(last, epoch(rows[0][1]))
        if all(n >= expected for n in counts.values()):
            return last
        if time.monotonic() > deadline:
            raise NotDrained(f"not drained after {timeout:.0f}s: {counts} of {expected}")
        await asyncio.sleep(0.5)


async def open_loop(system: System, people: list[str], rate: float) -> dict[str, tuple[float, str]]:
    """person -> (epoch second the POST was sent, submission id) of every 201, one request every 1/rate s."""
    url = f"{system.url('submissions')}/tenants/{TENANT}/editions/{EDITION}/experience-reports"
    body = report_body()
    sent: dict[str, tuple[float, str]] = {}
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=200)) as client:

        async def one(person: str) -> None:
            t0 = time.time()
            r = await client.post(url, json=body, headers={"Authorization": f"Bearer {system.token(person)}"})
            if r.status_code == 201:
                sent[person] = (t0, r.json()["submission_id"])

        start, tasks = time.perf_counter(), []
        for i, person in enumerate(people):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(person)))
        await asyncio.gather(*tasks)
    return sent


async def receipts_sent(notify_db: str, people: set[str], offset: float, timeout: float) -> dict[str, float]:
    """person -> epoch second their receipt was handed to SMTP (``sent_at`` is business time: ``offset`` is
    business minus real time)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await scalar_rows(
            notify_db,
            "SELECT recipient, sent_at FROM deliveries WHERE template = 'submission.received' "
            "AND channel = 'email' AND status = 'sent'",
        )
        got = {str(r[0]): epoch(r[1]) - offset for r in rows if r[0] in people}
        if len(got) >= len(people) or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.5)


def statements(system: System) -> dict[str, float]:
    """SQL statements each service has sent so far (``hoithi_db_statements_total``)."""
    return {
        name: metric_sums(system, name, {"hoithi_db_statements_total": "n"})["n"] for name in system.procs
    }


def since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per service, what a counter grew by (rounded to 0.1)."""
    return {s: round(after[s] - before.get(s, 0.0), 1) for s in sorted(after)}


def peak_rss_mb(system: System) -> dict[str, float]:
    out = {}
    for s, p in system.procs.items():
        status = Path(f"/proc/{p.pid}/status").read_text()
        m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        out[s] = int(m[1]) / 1024 if m else float("nan")
    return out


async def counted(url: str, sql: str) -> Counter[str]:
    """How many rows ``sql`` gives for each value of its first column."""
    return Counter(str(r[0]) for r in await scalar_rows(url, sql))


async def lost_and_doubled(dbs: dict[str, str], created: int) -> tuple[int, int, str]:
    subs = await scalar_rows(
        dbs["submissions"],
        "SELECT id, author_id FROM submissions WHERE kind = 'experience_report' AND status = 'submitted'",
    )
    ledger = await counted(
        dbs["rewards"],
        "SELECT submission_id FROM ledger WHERE participant_kind = 'person' "
        "AND generation = (SELECT max(generation) FROM ledger)",
    )
    receipts = await counted(
        dbs["notify"],
        "SELECT recipient FROM deliveries WHERE template = 'submission.received' AND channel = 'email' "
        "AND status = 'sent'",
    )
    no_row = max(0, created - len(subs))
    no_entry = sum(1 for sid, _ in subs if ledger[str(sid)] == 0)
    no_receipt = sum(1 for _, who in subs if receipts[str(who)] == 0)
    doubled = sum(1 for sid, _ in subs if ledger[str(sid)] > 1) + sum(1 for n in receipts.values() if n > 1)
    detail = f"201s without a row {no_row}, without a ledger entry {no_entry}, without a receipt {no_receipt}"
    return no_row + no_entry + no_receipt, doubled, detail


async def participation_against_reports(system: System, dbs: dict[str, str], label: str) -> int:
    """How far campaign's participation (now, as the secretariat reads it) is from submissions' own count of the
    reports submitted: each fulfils its author's assignment, once. 0 when they agree."""
    subs = await scalar_rows(
        dbs["submissions"],
        "SELECT count(*) FROM submissions WHERE kind = 'experience_report' AND status = 'submitted'",
    )
    headers = {"Authorization": f"Bearer {system.token(SECRETARIAT)}"}
    async with httpx.AsyncClient(timeout=120, headers=headers) as client:
        r = await client.get(f"{system.url('campaign')}/tenants/{TENANT}/editions/{EDITION}/participation")
        r.raise_for_status()
    parts, reports = r.json()["parts"], int(str(subs[0][0]))
    fulfilled = sum(p["fulfilled"] + p["fulfilled_late"] for p in parts)
    print(f"[{label}] participation now: {fulfilled} assignments fulfilled, {reports} reports", flush=True)
    return abs(fulfilled - reports)


async def run_db(args: argparse.Namespace, label: str, postgres: str | None) -> str:
    work = Path(tempfile.mkdtemp(prefix=f"hoithi-bench-rush-{label}-"))
    server = NatsServer(store_dir=work / "nats").start()
    body = work / "body.json"
    body.write_text(json.dumps(report_body(), ensure_ascii=False))
    size = len(json.dumps({"data": report_body(), "id": "x" * 36, "type": "submission.received"}))
    raw_pub, raw_consume = await raw_nats(server.url, args.officials, size)
    raw = 1 / (1 / raw_pub + 1 / raw_consume)
    print(f"[{label}] raw nats-py: publish {raw_pub:.0f}/s, consume {raw_consume:.0f}/s, both {raw:.0f}/s")
    dbs, system = bench_system(
        work, server.url, "rush", label, postgres, args.officials + args.open_loop, args.units
    )
    system.extra_env.update(dict(kv.split("=", 1) for kv in args.service_env))
    try:
        people = [f"p-x{i:05d}" for i in range(args.officials)]
        tokens = work / "tokens.txt"
        tokens.write_text("\n".join(system.token(p) for p in people) + "\n")
        peer = argparse.Namespace(threads=1, connections=args.connections, seconds=args.bare_seconds)
        bare = bare_peer(work, tokens, body, peer)
        print(f"[{label}] bare FastAPI: {bare['per_s']:.0f} 201/s", flush=True)
        t0 = time.perf_counter()
        print(f"[{label}] starting the whole system with {args.officials} officials in {work} …", flush=True)
        start_system(system, timeout=max(900.0, args.officials / 20))
        print(f"[{label}] up and caught up with the directory in {time.perf_counter() - t0:.0f}s", flush=True)

        reader = Reader(system, args.reads_per_s)
        stop = asyncio.Event()
        reads = asyncio.create_task(reader.run(stop))
        url = f"{system.url('submissions')}/tenants/{TENANT}/editions/{EDITION}/experience-reports"
        clock = Clock(clock_file=system.clock_file)  # the services' business time: as_of is drawn from it
        rush_start, business_start = time.time(), clock.now().timestamp()
        reader.window = (business_start, business_start)

        async def widen() -> None:
            while not stop.is_set():
                reader.window = (business_start, clock.now().timestamp())
                await asyncio.sleep(1)

        widening = asyncio.create_task(widen())
        yield_before = yielded(system)
        ours = await asyncio.to_thread(
            rush_wrk, url, tokens, body, work, args.connections, max(120.0, args.officials / 10)
        )
        accepted = ours["created"]
        print(
            f"[{label}] rush: {accepted} 201s ({ours['others']} other answers, {ours['errors']} socket errors) "
            f"in {ours['seconds']:.1f}s = {accepted / ours['seconds']:.0f}/s",
            flush=True,
        )
        rush_yield = since(yield_before, yielded(system))
        try:
            last_applied = await drained(dbs, accepted, timeout=max(600.0, args.officials / 10))
        except NotDrained as undrained:
            # What was measured is still worth printing: the reads until now, then the reason the run stops.
            stop.set()
            await asyncio.gather(reads, widening)
            print(
                f"[{label}] reads until the drain's limit, p99 ms: {reader.summary()}, p50 ms: "
                f"{reader.medians()} ({len(reader.failures)} failed: {reader.failed()})",
                flush=True,
            )
            raise SystemExit(str(undrained)) from undrained
        stop.set()
        await asyncio.gather(reads, widening)
        drain = last_applied - rush_start
        pipeline = accepted / drain
        print(
            f"[{label}] drained: the last report applied by all of {', '.join(CONSUMERS)} {drain:.1f}s after the "
            f"rush began ({pipeline:.0f} reports/s end to end, {pipeline / raw:.2f}× raw nats-py)",
            flush=True,
        )
        print(f"[{label}] consumers yielded to intake during the rush, s: {rush_yield}", flush=True)
        warm = reader.summary()
        print(
            f"[{label}] reads during the rush, p99 ms: {warm}, p50 ms: {reader.medians()} "
            f"({len(reader.failures)} failed: {reader.failed()})",
            flush=True,
        )
        for f in reader.failures[:5]:
            print(f"    {f}")

        # The steady load is measured on a quiet system: every receipt of the rush handed to SMTP and every fact
        # the rush caused downstream (assignments fulfilled, priority changes) applied — else it measures the
        # rush's backlog, not the latency at the offered rate.
        offset = clock.now().timestamp() - time.time()
        rush_mailed = await receipts_sent(
            dbs["notify"], set(people), offset, timeout=max(600.0, args.officials / 5)
        )
        await asyncio.to_thread(system.wait_caught_up, max(600.0, args.officials / 5))
        settled = time.time() - rush_start
        print(
            f"[{label}] quiet: the rush's {len(rush_mailed)} receipts handed to SMTP and everything it caused "
            f"applied {settled:.1f}s after it began",
            flush=True,
        )

        extra = [f"p-x{i:05d}" for i in range(args.officials, args.officials + args.open_loop)]
        cpu_before, yield_before = cpu_seconds(system, server), yielded(system)
        statements_before = statements(system)
        sent = await open_loop(system, extra, args.rate)
        applied = await applied_times(dbs["rewards"], {sid for _, sid in sent.values()}, timeout=600)
        offset = clock.now().timestamp() - time.time()
        mailed = await receipts_sent(dbs["notify"], set(sent), offset, timeout=600)
        await asyncio.to_thread(system.wait_caught_up, 600)  # the facts its reports caused downstream too
        cpu_after, steady_yield = cpu_seconds(system, server), since(yield_before, yielded(system))
        per_report_sql = {
            s: n / max(1, len(sent)) for s, n in since(statements_before, statements(system)).items()
        }
        per_report = {
            s: (cpu_after[s] - cpu_before.get(s, 0.0)) * 1000 / max(1, len(sent)) for s in sorted(cpu_after)
        }
        to_ledger = [applied[sid] - t for t, sid in sent.values() if sid in applied]
        to_mail = [mailed[p] - t for p, (t, _) in sent.items() if p in mailed]
        ledger_p99 = pct(to_ledger, 99) * 1000 if to_ledger else float("nan")
        email_p99 = pct(to_mail, 99) * 1000 if to_mail else float("nan")
        print(
            f"[{label}] {args.rate:.0f}/s offered, {len(sent)} 201s of {len(extra)}: POST → ledger p50 "
            f"{pct(to_ledger, 50) * 1000:.0f} ms, p99 {ledger_p99:.0f} ms; POST → receipt handed to SMTP p50 "
            f"{pct(to_mail, 50) * 1000:.0f} ms, p99 {email_p99:.0f} ms",
            flush=True,
        )
        print(
            f"[{label}] CPU per report of the steady load (to its last receipt sent and last fact applied), ms: "
            + ", ".join(f"{s} {v:.1f}" for s, v in per_report.items())
            + f"; all {sum(per_report.values()):.1f}; consumers yielded to intake, s: {steady_yield}",
            flush=True,
        )
        print(
            f"[{label}] SQL statements per report of the steady load: "
            + ", ".join(f"{s} {v:.1f}" for s, v in per_report_sql.items())
            + f"; all {sum(per_report_sql.values()):.1f}",
            flush=True,
        )

        rss = peak_rss_mb(system)
        print(
            f"[{label}] peak RSS, MB: " + ", ".join(f"{s} {v:.0f}" for s, v in sorted(rss.items())),
            flush=True,
        )
        for s in ("rewards", "campaign"):
            system.stop_service(s)
            system.start_service(s)
        for s in ("rewards", "campaign"):
            system.wait_ready(s, timeout=300)
        cold = Reader(system, args.reads_per_s)
        cold.window = (business_start, business_start + ours["seconds"])
        await cold.run(count=args.cold_reads)
        print(f"[{label}] reads after a restart (cold), p99 ms: {cold.summary()}", flush=True)

        lost, doubled, detail = await lost_and_doubled(dbs, accepted + len(sent))
        print(f"[{label}] lost {lost} ({detail}), doubled {doubled}", flush=True)
        participation_off = await participation_against_reports(system, dbs, label)
        failed_reads = len(reader.failures) + len(cold.failures)
        read_p99 = max([*warm.values(), *cold.summary().values()], default=float("nan"))
        return (
            f"rush: db={label} officials={args.officials} accepted={accepted} accepted_per_s={accepted / ours['seconds']:.0f} "
            f"bare_per_s={bare['per_s']:.0f} pipeline_vs_raw={pipeline / raw:.3f} ledger_p99_ms={ledger_p99:.0f} "
            f"email_p99_ms={email_p99:.0f} read_p99_ms={read_p99:.0f} failed_reads={failed_reads} "
            f"max_rss_mb={max(rss.values()):.0f} lost={lost} doubled={doubled} participation_off={participation_off}"
        )
    finally:
        system.stop()
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if postgres:
                from tests.support.servers import drop_database

                for url in dbs.values():
                    drop_database(url, postgres)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--postgres", help="also on PostgreSQL: a server URL (databases are created on it)")
    ap.add_argument("--no-sqlite", dest="sqlite", action="store_false", help="only PostgreSQL (--postgres)")
    ap.add_argument("--officials", type=int, default=100_000, help="officials in the rush, one report each")
    ap.add_argument(
        "--units", type=int, default=500, help="generated divisions the officials are spread over"
    )
    ap.add_argument("--connections", type=int, default=64, help="wrk's connections during the rush")
    ap.add_argument("--bare-seconds", type=int, default=5, help="wrk's run against the bare peer")
    ap.add_argument("--reads-per-s", type=float, default=10.0)
    ap.add_argument("--cold-reads", type=int, default=60, help="reads after the restart")
    ap.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="HOITHI_X=V",
        help="a setting for every service (repeatable), e.g. HOITHI_YIELD_TO_INTAKE=false",
    )
    ap.add_argument("--rate", type=float, default=100.0, help="offered reports/s of the steady-load run")
    ap.add_argument("--open-loop", type=int, default=1000, help="reports of the steady-load run")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--smoke", action="store_true", help="a short run (CI): exits 1 unless lost=0 doubled=0")
    args = ap.parse_args()
    if args.smoke:
        args.officials, args.units, args.open_loop, args.rate = 200, 20, 40, 20.0
        args.bare_seconds, args.cold_reads, args.reads_per_s = 2, 9, 5.0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    await run_each_database(args, run_db, " lost=0 doubled=0" if args.smoke else None)


if __name__ == "__main__":
    asyncio.run(main())
