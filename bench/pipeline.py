"""Pipeline benchmark: experience reports through HTTP to the rewards ledger, against raw nats-py.

Runs alone: starts its own nats-server (from the wheel) and the four services (SQLite by default, the
embedded mode; ``--postgres URL`` for PostgreSQL), pushes N reports from N distinct officials through the HTTP
API with C concurrent clients, and measures

- accepted/s (201s per second of the push),
- the time from each POST until rewards committed the event (the inbox row's ``applied_at``): p50 and p99,
- end-to-end drain rate (N / time until the last one is applied in rewards),

and, in the same run on the same server, the raw rate of nats-py publishing N messages of the same size
(pipelined, awaiting every ack) and pull-consuming them (batch fetch + ack). Prints both and their ratio.

    .venv/bin/python bench/pipeline.py --n 2000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.devserver import NatsServer
from shared.settings import SERVICES
from tests.support.system import EDITION, TENANT, System, report_body, seed_with_officials


async def push(system: System, n: int, concurrency: int) -> tuple[dict[str, float], float, int]:
    sent: dict[str, float] = {}
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    tokens = [system.token(f"p-x{i:05d}") for i in range(n)]
    body = report_body()
    url = f"{system.url('submissions')}/tenants/{TENANT}/editions/{EDITION}/experience-reports"

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.time()
            r = await client.post(url, json=body, headers={"Authorization": f"Bearer {tokens[i]}"})
            if r.status_code == 201:
                sent[r.json()["submission_id"]] = t0
            else:
                failures += 1

    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return sent, time.perf_counter() - start, failures


async def applied_times(rewards_db: str, ids: set[str], timeout: float) -> dict[str, float]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(rewards_db)
    inbox = sa.table("inbox", sa.column("subject"), sa.column("event_type"), sa.column("applied_at"))
    deadline = time.monotonic() + timeout
    got: dict[str, float] = {}
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(inbox.c.subject, inbox.c.applied_at).where(
                        inbox.c.event_type == "submission.received"
                    )
                )
            ).all()
        got = {}
        for subject, at in rows:
            if subject in ids:
                if isinstance(at, str):
                    at = datetime.fromisoformat(at)
                got[subject] = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
        if len(got) >= len(ids):
            break
        await asyncio.sleep(0.2)
    await engine.dispose()
    return got


async def raw_nats(url: str, n: int, size: int) -> tuple[float, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="BENCHRAW", subjects=["benchraw.>"])
    payload = b"x" * size
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        await asyncio.gather(
            *(
                js.publish("benchraw.m", payload, headers={"Nats-Msg-Id": f"m{i}"})
                for i in range(start, min(n, start + 500))
            )
        )
    pub = time.perf_counter() - t0
    sub = await js.pull_subscribe("benchraw.m", durable="benchraw", stream="BENCHRAW")
    got = 0
    t0 = time.perf_counter()
    while got < n:
        msgs = await sub.fetch(batch=200, timeout=5)
        for m in msgs:
            await m.ack()
        got += len(msgs)
    consume = time.perf_counter() - t0
    await js.delete_stream("BENCHRAW")
    await nc.close()
    return n / pub, n / consume


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument(
        "--postgres", help="a PostgreSQL server URL (databases are created on it); default SQLite"
    )
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hoithi-bench-"))
    server = NatsServer(store_dir=work / "nats").start()
    if args.postgres:
        from tests.support.servers import create_database

        dbs = {s: create_database(f"bench{s}", args.postgres) for s in SERVICES}
    else:
        dbs = {s: f"sqlite+aiosqlite:///{work / f'{s}.db'}" for s in SERVICES}
    system = System(
        nats_url=server.url,
        prefix="bench",
        workdir=work,
        database_urls=dbs,
        seed_dir=seed_with_officials(work / "seed", args.n),
    )
    try:
        print(
            f"starting the four services on {'PostgreSQL' if args.postgres else 'SQLite'} in {work} …",
            flush=True,
        )
        system.start()
        sent, push_s, failures = await push(system, args.n, args.concurrency)
        t_last_post = max(sent.values()) if sent else time.time()
        applied = await applied_times(dbs["rewards"], set(sent), timeout=300)
        lat = [applied[s] - sent[s] for s in applied]
        drain = (max(applied.values()) - min(sent.values())) if applied else float("nan")
        pub_rate, consume_rate = await raw_nats(server.url, args.n, len(str(report_body())) + 600)
        raw_rate = 1 / (1 / pub_rate + 1 / consume_rate)
        accepted_rate = len(sent) / push_s
        e2e_rate = len(applied) / drain if applied else 0.0
        print(f"\nhoithi pipeline, n={args.n}, concurrency={args.concurrency}, one process per service")
        print(f"  accepted            {len(sent)} ({failures} refused)  {accepted_rate:8.0f} /s over HTTP")
        print(f"  applied in rewards  {len(applied)}  lost: {len(sent) - len(applied)}")
        if lat:
            print(
                f"  POST → ledger       p50 {statistics.median(lat) * 1000:7.0f} ms   p99 {pct(lat, 99) * 1000:7.0f} ms"
            )
        print(f"  end to end          {e2e_rate:8.0f} /s (first POST → last ledger commit)")
        print(
            f"  after last POST     {(max(applied.values()) - t_last_post) if applied else float('nan'):.2f} s to drain"
        )
        print("peer, same server, same run: raw nats-py")
        print(f"  publish (pipelined, acked) {pub_rate:8.0f} /s   pull-consume + ack {consume_rate:8.0f} /s")
        print(f"  publish then consume       {raw_rate:8.0f} /s")
        print(
            f"ratio  end-to-end / raw = {e2e_rate / raw_rate:.2f}   accepted / raw = {accepted_rate / raw_rate:.2f}"
        )
    finally:
        system.stop()
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
