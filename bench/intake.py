"""Intake benchmark (issue 15): hoithi's experience-report intake against a bare FastAPI POST, with wrk.

Fair by construction: both run in one uvicorn worker started the same way (``uvicorn.run`` with
``log_config=None, access_log=False``), and wrk (a C load generator: ``apt-get install wrk``) drives both with
the same connections, threads, duration and body.

1. **Bare peer**: a FastAPI app that validates the same experience-report body with the same Pydantic model,
   no database, no auth, and answers 201.
2. **hoithi**: the whole system up (nats-server from the wheel, the four services, relay and consumers
   running), on SQLite (default) or PostgreSQL (``--postgres URL``); a generated directory of ``--officials``
   officials, one token each; wrk's Lua script gives each request the next official's token, so every 201 is a
   distinct official's first report (a 409 for an official used twice does not count: only 201s count).
3. **Open loop** at ``--rate`` reports/s offered (httpx, one request every 1/rate s whatever the answers), to
   read POST p99 at that rate.
4. **Checks**: every 201 is a row, the receipt numbers are 1..N without a gap, and every receipt is an event on
   the stream (``lost`` = 201s without their event). Prints ``PRAGMA synchronous`` as the services' engine
   sets it (must be FULL = 2) or PostgreSQL's ``synchronous_commit`` (must be on).

Ends with one machine-readable line per database:

    intake: db=sqlite bare_per_s=A hoithi_per_s=B ratio=R p99_ms=P gapless=yes lost=0

    .venv/bin/python bench/intake.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import nats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.databases import run_each_database
from shared.devserver import NatsServer, free_port
from shared.mailsink import MailSink
from shared.settings import SERVICES
from tests.support.system import EDITION, TENANT, System, report_body, seed_with_officials

LUA = r"""
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local body = io.open(os.getenv("BENCH_BODY")):read("*a")
local i = 0
created, others, s409, s503, s5xx, s4xx, last4xx = 0, 0, 0, 0, 0, 0, 0
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  local t = tokens[((i - 1) % #tokens) + 1]
  return wrk.format(nil, nil, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. t})
end
response = function(status, headers, body)
  if status == 201 then created = created + 1 else others = others + 1 end
  if status == 409 then s409 = s409 + 1 elseif status == 503 then s503 = s503 + 1
  elseif status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1; last4xx = status end
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function(summary, latency, requests)
  local c, o, a, b, e, f, l = 0, 0, 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created"); o = o + t:get("others")
    a = a + t:get("s409"); b = b + t:get("s503"); e = e + t:get("s5xx"); f = f + t:get("s4xx")
    if t:get("last4xx") ~= 0 then l = t:get("last4xx") end
  end
  io.write(string.format(
    "BENCH created=%d others=%d seconds=%.3f p99_ms=%.1f s409=%d s503=%d s5xx=%d s4xx=%d last4xx=%d errors=%d\n",
    c, o, summary.duration / 1e6, latency:percentile(99) / 1000, a, b, e, f, l,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""

BARE = """
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from services.submissions.domain import ExperienceReportCreate

def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/tenants/{tenant}/editions/{edition}/experience-reports", status_code=201)
    async def submit(tenant: str, edition: str, report: ExperienceReportCreate) -> JSONResponse:
        return JSONResponse({"ok": True, "procedures": len(report.procedures)}, status_code=201)

    return app
"""

SERVE = """
import sys, uvicorn
sys.path[:0] = [{root!r}, {work!r}]
uvicorn.run("bare_peer:create_app", factory=True, host="127.0.0.1", port={port}, log_config=None, access_log=False)
"""


def wrk(url: str, tokens: Path, body: Path, work: Path, args: argparse.Namespace) -> dict[str, float]:
    script = work / "intake.lua"
    script.write_text(LUA)
    res = subprocess.run(
        ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s", "-s", str(script), url],
        env={**os.environ, "BENCH_TOKENS": str(tokens), "BENCH_BODY": str(body)},
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise SystemExit(f"wrk failed ({res.returncode}): {res.stdout}\n{res.stderr}")
    out = res.stdout
    m = re.search(r"BENCH created=(\d+) others=(\d+) seconds=([\d.]+) p99_ms=([\d.]+) (.*)", out)
    assert m, out
    print(f"  wrk: {m[0]}", flush=True)
    created, others, seconds, p99 = int(m[1]), int(m[2]), float(m[3]), float(m[4])
    return {
        "created": created,
        "others": others,
        "per_s": created / seconds,
        "p99_ms": p99,
        "seconds": seconds,
    }


def metric_sums(system: System, service: str, names: dict[str, str]) -> dict[str, float]:
    """Sums of the metrics ``names`` (Prometheus name -> key) in ``service``'s ``/metrics``, over their labels."""
    text = httpx.get(f"{system.url(service)}/metrics", timeout=60).text
    out = dict.fromkeys(names.values(), 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in names:
            out[names[name]] += float(line.rsplit(" ", 1)[1])
    return out


def group_commits(system: System) -> dict[str, float]:
    """The intake writer's group-commit figures so far, from submissions' ``/metrics``: batches, requests, seconds
    in batch transactions, retries."""
    return metric_sums(
        system,
        "submissions",
        {
            "hoithi_group_commit_batch_size_count": "count",
            "hoithi_group_commit_batch_size_sum": "size",
            "hoithi_group_commit_seconds_sum": "seconds",
            "hoithi_group_commit_retries_total": "retries",
        },
    )


def buckets(system: System, name: str, where: str) -> dict[float, float]:
    """A histogram of submissions' ``/metrics`` so far (series containing ``where``): upper bound (s) -> count at
    or under it."""
    text = httpx.get(f"{system.url('submissions')}/metrics", timeout=60).text
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{") and where in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(le)] = out.get(float(le), 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def server_buckets(system: System) -> dict[float, float]:
    """Submissions' own latency histogram of the intake route so far."""
    return buckets(system, "hoithi_http_request_duration_seconds", "experience-reports")


def batch_buckets(system: System) -> dict[float, float]:
    """The intake writer's batch transactions so far (BEGIN to COMMIT, the write lock's wait included)."""
    return buckets(system, "hoithi_group_commit_seconds", "intake-writer")


def server_quantile(before: dict[float, float], after: dict[float, float], q: float) -> str:
    """The histogram bucket holding quantile ``q`` of the requests between two scrapes, as "<= N ms"."""
    counts = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = counts[-1][1] if counts else 0.0
    for le, n in counts:
        if total and n >= q * total:
            return f"<= {le * 1000:.0f} ms" if le != float("inf") else "> 10 s"
    return "n/a"


def slowest_bucket(before: dict[float, float], after: dict[float, float]) -> str:
    """The histogram bucket of the slowest observation between two scrapes, as "<= N ms"."""
    return server_quantile(before, after, 1.0)


def yielded(system: System) -> dict[str, float]:
    """Seconds each service's consumers have waited so far because intake signalled a rush (shared/pacing.py)."""
    return {
        name: metric_sums(system, name, {"hoithi_consumer_yielded_seconds_total": "s"})["s"]
        for name in system.procs
    }


def cpu_seconds(system: System, server: NatsServer) -> dict[str, float]:
    """User + system CPU seconds each service process and nats-server has used so far (Linux ``/proc``): on one
    machine the services share the cores, so a consumer's work downstream is time intake does not get."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = {name: p.pid for name, p in system.procs.items()}
    if server.pid is not None:
        pids["nats-server"] = server.pid
    out = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


def profile_start(system: System, args: argparse.Namespace, work: Path) -> subprocess.Popen[bytes] | None:
    """py-spy (``pip install py-spy``) sampling one service's process (``--profile-service``) for the wrk run."""
    if not args.profile:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    pid = system.procs[args.profile_service].pid
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "-d",
            str(args.seconds + 1),
            "-o",
            args.profile,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def profile_report(spy: subprocess.Popen[bytes] | None, args: argparse.Namespace, top: int = 25) -> None:
    """Where the profiled process spent its samples: own time per function, and time under the main parts
    (inclusive)."""
    if spy is None:
        return
    spy.wait(args.seconds + 30)
    own: dict[str, int] = {}
    total = 0
    inclusive: dict[str, int] = {}
    marks = {
        "json body + validation": "fastapi/routing.py:serialize_response|request_body_to_args|_validate",
        "auth (jwt)": "shared/auth.py",
        "group commit writer": "shared/group_commit.py:_commit",
        "sqlalchemy execute": "sqlalchemy/",
        "aiosqlite thread": "aiosqlite/core.py:run",
        "outbox relay": "shared/outbox.py",
        "consumers": "shared/consumer.py",
        "uvicorn (HTTP)": "uvicorn/protocols",
        "event loop idle (select)": "selectors.py:select",
    }
    for line in Path(args.profile).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = stack.split(";")
        leaf = frames[-1].split(" (")[0] + " " + frames[-1].rsplit("/", 1)[-1].rstrip(")")
        own[leaf] = own.get(leaf, 0) + count
        for name, pattern in marks.items():
            if any(any(p in f for p in pattern.split("|")) for f in frames):
                inclusive[name] = inclusive.get(name, 0) + count
    print(f"  profile: {total} samples of the {args.profile_service} process (all threads)")
    for name, n in sorted(inclusive.items(), key=lambda kv: -kv[1]):
        print(f"    {100 * n / max(total, 1):5.1f}%  under {name}")
    for leaf, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {100 * n / max(total, 1):5.1f}%  own  {leaf}")


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def bare_peer(work: Path, tokens: Path, body: Path, args: argparse.Namespace) -> dict[str, float]:
    (work / "bare_peer.py").write_text(BARE)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE.format(root=str(ROOT), work=str(work), port=port)], cwd=ROOT
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/docs")
        return wrk(
            f"http://127.0.0.1:{port}/tenants/{TENANT}/editions/{EDITION}/experience-reports",
            tokens,
            body,
            work,
            args,
        )
    finally:
        proc.terminate()
        proc.wait(10)


async def open_loop(system: System, people: list[str], rate: float) -> list[tuple[float, float]]:
    """(sent at, latency) in seconds of one request every 1/rate s, whatever the answers (201s only)."""
    url = f"{system.url('submissions')}/tenants/{TENANT}/editions/{EDITION}/experience-reports"
    body = report_body()
    tokens = [system.token(p) for p in people]
    lat: list[tuple[float, float]] = []
    # Many small clients: one httpx client with hundreds of connections spends its time in httpcore's pool
    # bookkeeping (quadratic in requests × connections), which would show up as the server's latency.
    # keepalive_expiry under uvicorn's 5 s keep-alive: the client drops an idle connection before the server
    # does, so no request is sent on a connection the server is closing (httpx.ReadError).
    clients = [
        httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=20, keepalive_expiry=2))
        for _ in range(25)
    ]

    async def one(client: httpx.AsyncClient, token: str) -> None:
        t0 = time.perf_counter()
        r = await client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
        if r.status_code == 201:
            lat.append((t0 - start, time.perf_counter() - t0))

    try:
        start = time.perf_counter()
        tasks = []
        for i, token in enumerate(tokens):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(clients[i % len(clients)], token)))
        await asyncio.gather(*tasks)
    finally:
        for c in clients:
            await c.aclose()
    return lat


async def durability(url: str) -> str:
    from shared.db import make_engine

    engine = make_engine(url)  # the services' own engine: its connect hook sets the pragmas
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                v = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
                return f"PRAGMA synchronous={v} ({'FULL' if v == 2 else 'NOT FULL'})"
            v = (await conn.exec_driver_sql("SHOW synchronous_commit")).scalar()
            return f"synchronous_commit={v}"
    finally:
        await engine.dispose()


async def receipts_in_db(url: str) -> list[int]:
    from shared.db import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.exec_driver_sql("SELECT receipt_number FROM submissions")).scalars().all()
    finally:
        await engine.dispose()
    return sorted(int(r.rsplit("-", 1)[1]) for r in rows)


async def events_on_stream(system: System, expected: int, timeout: float = 120) -> int:
    """Distinct ``submission.received`` on the stream, waiting up to ``timeout`` for the relay to catch up."""
    nc = await nats.connect(system.nats_url)
    try:
        js = nc.jetstream()
        subject = f"{system.prefix}.{TENANT}.submission.received"
        deadline = time.monotonic() + timeout
        while True:
            info = await js.stream_info(system.stream, subjects_filter=subject)
            n = (info.state.subjects or {}).get(subject, 0)
            if n >= expected or time.monotonic() > deadline:
                return int(n)
            await asyncio.sleep(0.5)
    finally:
        await nc.close()


async def settle(system: System, url: str, label: str) -> None:
    """Until the previous run's receipts are all on the stream and every consumer has applied them: an open
    loop started right after wrk would measure the system digesting wrk's burst (the relay publishing it, the
    other services' consumers applying it, on the same two CPUs), not intake at the offered rate."""
    t0 = time.perf_counter()
    await events_on_stream(system, len(await receipts_in_db(url)), timeout=600)
    await asyncio.to_thread(system.wait_caught_up, 900)
    print(
        f"[{label}] settled in {time.perf_counter() - t0:.1f}s (relayed and applied downstream)", flush=True
    )


def bench_system(
    work: Path, nats_url: str, bench: str, label: str, postgres: str | None, officials: int, units: int = 0
) -> tuple[dict[str, str], System]:
    """A whole system for a bench run (not started): a fresh database per service (SQLite files in ``work``, or
    databases created on the ``postgres`` server) and the seed with ``officials`` generated officials over
    ``units`` generated divisions."""
    if postgres:
        from tests.support.servers import create_database

        dbs = {s: create_database(f"bench{bench}{s}", postgres) for s in SERVICES}
    else:
        dbs = {s: f"sqlite+aiosqlite:///{work / f'{s}.db'}" for s in SERVICES}
    system = System(
        nats_url=nats_url,
        prefix=f"b{bench[0]}{label}",
        workdir=work,
        database_urls=dbs,
        seed_dir=seed_with_officials(work / "seed", officials, units),
    )
    return dbs, system


def start_system(system: System, timeout: float = 900) -> None:
    """``System.start`` with time (``timeout`` for the seed and again for the consumers) for the consumers to
    apply a directory of thousands of officials."""
    (system.workdir / "logs").mkdir(parents=True, exist_ok=True)
    if not system.clock_file.exists():
        system.set_clock("2023-10-20T09:00:00+07:00")
    system.mail = MailSink(system.workdir / "mail").start()
    for s in system.services:
        system.ports[s] = free_port()
    system.hoithi("migrate")
    system.hoithi("seed", str(system.seed_dir), timeout=timeout)
    system.hoithi("streams")
    for s in system.services:
        system.start_service(s)
    for s in system.services:
        system.wait_ready(s)
    system.wait_caught_up(timeout=timeout)


async def run_db(args: argparse.Namespace, label: str, postgres: str | None) -> str:
    work = Path(tempfile.mkdtemp(prefix=f"hoithi-bench-intake-{label}-"))
    server = NatsServer(store_dir=work / "nats").start()
    dbs, system = bench_system(
        work, server.url, "intake", label, postgres, args.officials + args.open_loop * len(args.rates)
    )
    try:
        print(f"[{label}] starting the whole system in {work} …", flush=True)
        start_system(system)
        print(f"[{label}] {await durability(dbs['submissions'])}", flush=True)
        body = work / "body.json"
        body.write_text(json.dumps(report_body(), ensure_ascii=False))
        tokens = work / "tokens.txt"
        tokens.write_text("\n".join(system.token(f"p-x{i:05d}") for i in range(args.officials)) + "\n")
        bare = bare_peer(work, tokens, body, args)
        print(f"[{label}] bare FastAPI: {bare['per_s']:.0f} 201/s, p99 {bare['p99_ms']:.0f} ms", flush=True)
        url = f"{system.url('submissions')}/tenants/{TENANT}/editions/{EDITION}/experience-reports"
        spy = profile_start(system, args, work)
        before, commits0, yielded0 = cpu_seconds(system, server), group_commits(system), yielded(system)
        ours = wrk(url, tokens, body, work, args)
        used = {k: v - before.get(k, 0.0) for k, v in cpu_seconds(system, server).items()}
        commits = {k: v - commits0.get(k, 0.0) for k, v in group_commits(system).items()}
        waited = {k: v - yielded0.get(k, 0.0) for k, v in yielded(system).items()}
        if commits.get("count"):
            print(
                f"[{label}] intake writer during the wrk run: {commits['count']:.0f} batches, "
                f"{commits['size'] / commits['count']:.1f} requests per batch, "
                f"{1000 * commits['seconds'] / commits['count']:.1f} ms per batch transaction "
                f"({commits['seconds'] / ours['seconds']:.0%} of the run), {commits['retries']:.0f} retried",
                flush=True,
            )
        profile_report(spy, args)
        print(
            f"[{label}] consumers yielding to intake during the wrk run (seconds waited, all consumers): "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(waited.items(), key=lambda kv: -kv[1])),
            flush=True,
        )
        print(
            f"[{label}] CPU during the wrk run ({ours['seconds']:.1f} s, {os.cpu_count()} cores): "
            + ", ".join(
                f"{k} {v / ours['seconds']:.0%}" for k, v in sorted(used.items(), key=lambda kv: -kv[1])
            ),
            flush=True,
        )
        print(
            f"[{label}] hoithi: {ours['per_s']:.0f} 201/s ({ours['created']} created, {ours['others']} other "
            f"answers), wrk p99 {ours['p99_ms']:.0f} ms",
            flush=True,
        )
        created = ours["created"]
        p99s: dict[float, float] = {}
        first = args.officials
        for rate in args.rates:
            extra = [f"p-x{i:05d}" for i in range(first, first + args.open_loop)]
            first += args.open_loop
            if args.settle:
                await settle(system, dbs["submissions"], label)
            served_before, commits_before = server_buckets(system), group_commits(system)
            batches_before = batch_buckets(system)
            sent = await open_loop(system, extra, rate)
            served, commits, batches = server_buckets(system), group_commits(system), batch_buckets(system)
            lat = sorted(took for _, took in sent)

            def pct(q: float, lat: list[float] = lat) -> float:
                return lat[min(len(lat) - 1, round(q * (len(lat) - 1)))] * 1000 if lat else float("nan")

            p99s[rate] = pct(0.99)
            print(
                f"[{label}] open loop {rate:.0f}/s offered: {len(lat)} 201s of {len(extra)}, "
                f"POST p50 {pct(0.5):.0f} ms, p90 {pct(0.9):.0f} ms, p99 {p99s[rate]:.0f} ms",
                flush=True,
            )
            n_batches = commits["count"] - commits_before["count"]
            print(
                f"[{label}]   measured by intake itself: p50 {server_quantile(served_before, served, 0.5)}, "
                f"p99 {server_quantile(served_before, served, 0.99)}; {n_batches:.0f} batches, "
                f"{(commits['seconds'] - commits_before['seconds']) / max(1, n_batches) * 1000:.1f} ms per batch "
                f"transaction (p99 {server_quantile(batches_before, batches, 0.99)}, slowest "
                f"{slowest_bucket(batches_before, batches)})",
                flush=True,
            )
            slowest = sorted(sent, key=lambda st: -st[1])[:5]
            print(
                f"[{label}]   slowest: "
                + ", ".join(f"{t * 1000:.0f} ms sent at +{at:.1f} s" for at, t in slowest),
                flush=True,
            )
            created += len(lat)
        p99 = p99s[args.rates[0]]
        numbers = await receipts_in_db(dbs["submissions"])
        # A request wrk sent as it stopped may be recorded without its 201 being counted: rows >= 201s.
        gapless = numbers == list(range(1, len(numbers) + 1))
        events = await events_on_stream(system, len(numbers))
        lost = max(0, created - len(numbers)) + max(0, len(numbers) - events)
        print(f"[{label}] rows {len(numbers)}, events {events}, 201s counted {created}", flush=True)
        ratio = ours["per_s"] / bare["per_s"] if bare["per_s"] else float("nan")
        return (
            f"intake: db={label} bare_per_s={bare['per_s']:.0f} hoithi_per_s={ours['per_s']:.0f} "
            f"ratio={ratio:.2f} p99_ms={p99:.0f} gapless={'yes' if gapless else 'no'} lost={lost}"
            + "".join(f" p99_ms_at_{r:.0f}={v:.0f}" for r, v in p99s.items())
        )
    finally:
        system.stop()
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if postgres:  # the databases it created on a shared server go with it
                from tests.support.servers import drop_database

                for url in dbs.values():
                    drop_database(url, postgres)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--postgres", help="also on PostgreSQL: a server URL (databases are created on it)")
    ap.add_argument("--officials", type=int, default=4000, help="distinct officials for wrk (one 201 each)")
    ap.add_argument("--open-loop", type=int, default=1000, help="requests of the open-loop run")
    ap.add_argument(
        "--rates",
        default="100,500",
        help="offered reports/s of the open-loop runs, comma-separated (p99_ms is the first one's)",
    )
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument(
        "--no-settle",
        dest="settle",
        action="store_false",
        help="start each open-loop run at once, while the system still digests the previous run's burst",
    )
    ap.add_argument("--no-sqlite", dest="sqlite", action="store_false", help="only PostgreSQL (--postgres)")
    ap.add_argument(
        "--smoke",
        type=int,
        metavar="SECONDS",
        help="a short run (CI): wrk for SECONDS, few officials; exits 1 unless gapless=yes and lost=0",
    )
    ap.add_argument(
        "--profile",
        metavar="FILE",
        help="sample a service's process with py-spy during the hoithi wrk run (collapsed stacks to FILE)",
    )
    ap.add_argument(
        "--profile-service",
        default="submissions",
        choices=("submissions", "rewards", "notify", "campaign"),
        help="the process --profile samples",
    )
    args = ap.parse_args()
    args.rates = [float(r) for r in str(args.rates).split(",") if r.strip()]
    if args.smoke:
        args.seconds = args.smoke
        args.officials = min(args.officials, 150 * args.smoke)
        args.open_loop = min(args.open_loop, 50)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    await run_each_database(args, run_db, " gapless=yes lost=0" if args.smoke else None)


if __name__ == "__main__":
    asyncio.run(main())
