"""Two (or more) processes of every service on one database and the same durable consumers, and the client's side
of a deployment with replicas: requests spread round-robin, and a request whose replica died or answered 503 is
sent again to the next replica with the same ``Idempotency-Key`` (what a load balancer and a client retrying do).

Replica 1 of a service is the ``System``'s own process (key ``campaign``); replica ``i`` > 1 is ``campaign-i``,
on a port of its own that it keeps across restarts. Both kinds live in ``system.procs`` / ``system.ports``, so
``System.stop_service``, ``wait_ready``, ``url`` and ``stop`` work for every replica alike.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from shared.devserver import free_port

from .system import EDITION, ROOT, TENANT, System, report_body

__all__ = ["Answer", "post_reports", "replica_keys", "service_of", "start_replica"]


def replica_keys(service: str, replicas: int) -> list[str]:
    return [service] + [f"{service}-{i}" for i in range(2, replicas + 1)]


def service_of(key: str) -> str:
    return key.rsplit("-", 1)[0] if key[-1:].isdigit() and "-" in key else key


def start_replica(system: System, key: str, **env: str) -> None:
    """Start (or restart) the replica ``key`` of its service, with extra environment ``env``."""
    service = service_of(key)
    if key == service:
        system.start_service(service, **env)
        return
    port = system.ports.setdefault(key, free_port())
    log = open(system.workdir / "logs" / f"{key}.log", "ab")  # noqa: SIM115 - owned by the process
    system.procs[key] = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "serve", service],
        cwd=ROOT,
        env=system.env(service, **{f"HOITHI_{service.upper()}_PORT": str(port)}, **env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@dataclass
class Answer:
    """The outcome of one person's report: the final status, its body, when it was sent and answered, and how many
    replicas it took (1 = the first one answered)."""

    status: int
    body: dict[str, Any] | str
    sent: float
    answered: float
    tries: int


async def post_reports(
    urls: Callable[[], Sequence[str]],
    people: Sequence[str],
    token: Callable[[str], str],
    *,
    concurrency: int = 16,
    retry_for: float = 120.0,
    on_answer: Callable[[int], Awaitable[None]] | None = None,
) -> dict[str, Answer]:
    """POST one experience report per person, spread round-robin over the submissions replicas ``urls()`` (read
    on every try: a test may restart a replica meanwhile). A refused connection, a dropped one or a 502/503 goes
    to the next replica with the same Idempotency-Key, for at most ``retry_for`` seconds; any other answer is
    final. ``on_answer(number of 201s so far)`` is awaited after each answer (a fault trigger)."""
    path = f"/tenants/{TENANT}/editions/{EDITION}/experience-reports"
    body = report_body()
    gate = asyncio.Semaphore(concurrency)
    results: dict[str, Answer] = {}
    accepted = 0
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(n: int, person: str) -> None:
            nonlocal accepted
            headers = {"Authorization": f"Bearer {token(person)}", "Idempotency-Key": f"replicas-{person}"}
            async with gate:
                sent = time.monotonic()
                tries = 0
                while True:  # bounded by retry_for
                    targets = urls()
                    url = targets[(n + tries) % len(targets)]
                    tries += 1
                    try:
                        r = await client.post(url + path, json=body, headers=headers)
                        status = r.status_code
                        payload: dict[str, Any] | str = r.json() if status == 201 else r.text
                    except httpx.TransportError as exc:
                        status, payload = -1, repr(exc)
                    if status not in (-1, 502, 503) or time.monotonic() - sent > retry_for:
                        break
                    await asyncio.sleep(min(0.05 * tries, 1.0))  # a client's retry backoff
                results[person] = Answer(status, payload, sent, time.monotonic(), tries)
                if status == 201:
                    accepted += 1
            if on_answer is not None:
                await on_answer(accepted)

        await asyncio.gather(*(one(n, p) for n, p in enumerate(people)))
    return results
