"""What every bench here ends with: the run on SQLite (unless ``--no-sqlite``) and on PostgreSQL (``--postgres
URL``), then one machine-readable line per database; a failed check (``ok`` not in a line) exits 1."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

RunDb = Callable[[argparse.Namespace, str, "str | None"], Awaitable[str]]


async def run_each_database(args: argparse.Namespace, run_db: RunDb, ok: str | None) -> None:
    lines = [await run_db(args, "sqlite", None)] if args.sqlite else []
    if args.postgres:
        lines.append(await run_db(args, "postgresql", args.postgres))
    print()
    for line in lines:
        print(line)
    if ok is not None and not all(ok in line for line in lines):
        raise SystemExit(1)
