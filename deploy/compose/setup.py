"""The one-shot setup step of deploy/compose.yaml: wait for NATS (/healthz) and PostgreSQL, then declare the
streams and consumers, migrate every service's database, load the seed and start the demo clock (once)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DEADLINE = time.monotonic() + float(os.environ.get("SETUP_WAIT", "120"))


def wait(what: str, check) -> None:  # type: ignore[no-untyped-def]
    while True:
        try:
            if check():
                print(f"setup: {what} answers", flush=True)
                return
        except OSError:
            pass
        if time.monotonic() > DEADLINE:
            sys.exit(f"setup: {what} did not answer in time")
        time.sleep(0.5)


def nats_healthy() -> bool:
    url = os.environ.get("NATS_MONITOR_URL", "http://nats:8222") + "/healthz?js-enabled-only=true"
    with urllib.request.urlopen(url, timeout=2) as answer:
        return bool(answer.status == 200)


def postgres_open() -> bool:
    host, port = os.environ.get("POSTGRES_HOST", "postgres"), int(os.environ.get("POSTGRES_PORT", "5432"))
    with socket.create_connection((host, port), timeout=2):
        return True


def hoithi(*args: str) -> None:
    print("setup: hoithi", " ".join(args), flush=True)
    subprocess.run(["hoithi", *args], check=True)


wait("NATS /healthz", nats_healthy)
wait("PostgreSQL", postgres_open)
hoithi("streams")
for _ in range(30):  # the port opens before the database accepts logins
    if subprocess.run(["hoithi", "migrate"], check=False).returncode == 0:
        break
    time.sleep(1)
else:
    sys.exit("setup: migrate failed")
hoithi("seed", os.environ.get("SEED_DIR", "deploy/seed/soctrang-stnmt-2023"))
clock = os.environ.get("HOITHI_CLOCK_FILE")
if clock and not Path(clock).exists():  # a restart continues where the demo was
    hoithi("clock", "set", os.environ.get("DEMO_CLOCK_START", "2023-10-20T09:00:00+07:00"))
print("setup: done", flush=True)
