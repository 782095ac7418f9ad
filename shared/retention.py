"""``hoithi retention archive TENANT EDITION DIR``: archive a closed edition, then prune it.

Per edition, what a service keeps in its own database is every row of its tables that carry both ``tenant`` and
``edition`` (receipts, submissions, score sheets, assignments, misses, the ledger, deliveries…). Once the
operator confirms that the audit period has ended (``--audit-period-ended``: the legal basis is theirs to
check, see README "Retention"), the command:

1. refuses while anything depends on the edition: it is not closed (a service that consumes
   ``edition.closed`` has not applied it yet), or a table a service names in its models module's
   ``RETENTION_OPEN`` still has open rows (notify: deliveries pending, held or paused);
2. exports those rows, one JSON Lines file per service and table, with ``SHA256SUMS`` (readable by
   ``sha256sum -c``) and ``manifest.json`` (counts, instants, the operator's confirmation), and checks the
   written files against their checksums;
3. only then deletes them, one transaction per service.

What it leaves (see README): rows without an edition column (the directory's copy, the inbox, the outbox,
attachments' bytes), and the events in the stream, which ``max_age`` removes.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer

from shared.backup import sha256_file
from shared.db import make_engine
from shared.settings import SERVICES, Settings, get_settings, load, registry, service_settings
from shared.streams import consumers_of

SUMS = "SHA256SUMS"


class RetentionRefused(Exception):
    def __init__(self, en: str, vi: str) -> None:
        super().__init__(f"{en}\n{vi}")
        self.en = en
        self.vi = vi


def _edition_tables(service: str) -> list[sa.Table]:
    metadata: sa.MetaData = load(registry()[service].models).metadata
    return [t for t in metadata.sorted_tables if {"tenant", "edition"} <= set(t.c.keys())]


def _open_rows(service: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    return dict(getattr(load(registry()[service].models), "RETENTION_OPEN", {}))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


async def _blockers(settings: Settings, tenant: str, edition: str) -> list[tuple[str, str]]:
    """(English, Vietnamese) of every reason the edition cannot be pruned yet."""
    reasons: list[tuple[str, str]] = []
    for name in SERVICES:
        engine = make_engine(service_settings(name, settings).database_url)
        try:
            async with engine.connect() as conn:
                consumes_closed = any("edition.closed" in c.types for c in consumers_of(name))
                if consumes_closed:
                    inbox = sa.table(
                        "inbox", sa.column("event_type"), sa.column("tenant"), sa.column("subject")
                    )
                    closed = await conn.scalar(
                        sa.select(sa.func.count()).where(
                            inbox.c.event_type == "edition.closed",
                            inbox.c.tenant == tenant,
                            inbox.c.subject == f"{tenant}/{edition}",
                        )
                    )
                    if not closed:
                        reasons.append(
                            (
                                f"{name} has not seen edition {edition} closed (edition.closed)",
                                f"dịch vụ {name} chưa ghi nhận kỳ {edition} đã kết thúc (edition.closed)",
                            )
                        )
                for table, (column, states) in _open_rows(name).items():
                    t = sa.table(table, sa.column("tenant"), sa.column("edition"), sa.column(column))
                    n = await conn.scalar(
                        sa.select(sa.func.count()).where(
                            t.c.tenant == tenant, t.c.edition == edition, t.c[column].in_(states)
                        )
                    )
                    if n:
                        reasons.append(
                            (
                                f"{name}: {n} {table} still {' / '.join(states)}",
                                f"dịch vụ {name}: còn {n} bản ghi {table} ở trạng thái {' / '.join(states)}",
                            )
                        )
        finally:
            await engine.dispose()
    return reasons


async def archive_and_prune(settings: Settings, tenant: str, edition: str, target: Path) -> dict[str, Any]:
    if target.exists() and any(target.iterdir()):
        raise RetentionRefused(
            f"{target} is not empty: an archive goes into a new directory",
            f"{target} không trống: bản lưu trữ phải ghi vào một thư mục mới",
        )
    reasons = await _blockers(settings, tenant, edition)
    if reasons:
        raise RetentionRefused(
            f"edition {tenant}/{edition} cannot be pruned yet: " + "; ".join(en for en, _ in reasons),
            f"chưa thể xoá dữ liệu kỳ {tenant}/{edition}: " + "; ".join(vi for _, vi in reasons),
        )
    target.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    files: list[Path] = []
    # 1. export every service's rows of the edition
    for name in SERVICES:
        engine = make_engine(service_settings(name, settings).database_url)
        counts[name] = {}
        try:
            async with engine.connect() as conn:
                for t in _edition_tables(name):
                    rows = (
                        await conn.execute(sa.select(t).where(t.c.tenant == tenant, t.c.edition == edition))
                    ).mappings()
                    path = target / name / f"{t.name}.jsonl"
                    path.parent.mkdir(exist_ok=True)
                    n = 0
                    with path.open("w", encoding="utf-8") as f:
                        for r in rows:
                            f.write(
                                json.dumps({k: _plain(v) for k, v in r.items()}, ensure_ascii=False) + "\n"
                            )
                            n += 1
                    counts[name][t.name] = n
                    files.append(path)
        finally:
            await engine.dispose()
    sums = {p.relative_to(target).as_posix(): sha256_file(p) for p in files}
    manifest = {
        "tenant": tenant,
        "edition": edition,
        "archived_at": datetime.now(UTC).isoformat(),
        "audit_period_ended_confirmed_by_operator": True,
        "rows": counts,
    }
    (target / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    sums["manifest.json"] = sha256_file(target / "manifest.json")
    (target / SUMS).write_text("".join(f"{h}  {p}\n" for p, h in sorted(sums.items())), encoding="utf-8")
    # 2. the archive reads back as written, before anything is deleted
    for rel, digest in sums.items():
        if sha256_file(target / rel) != digest:
            raise RetentionRefused(
                f"{target / rel} does not read back as written: nothing was pruned",
                f"tệp {target / rel} đọc lại không khớp: chưa xoá gì",
            )
    # 3. prune, one transaction per service
    for name in SERVICES:
        engine = make_engine(service_settings(name, settings).database_url)
        try:
            async with engine.begin() as conn:
                for t in _edition_tables(name):
                    await conn.execute(sa.delete(t).where(t.c.tenant == tenant, t.c.edition == edition))
        finally:
            await engine.dispose()
    return manifest


retention_app = typer.Typer(help="Retention: archive a closed edition, then prune it.", no_args_is_help=True)


@retention_app.command("archive")
def archive_command(
    tenant: Annotated[str, typer.Argument(help="tenant id, e.g. soctrang-stnmt")],
    edition: Annotated[str, typer.Argument(help="edition id, e.g. 2023")],
    directory: Annotated[Path, typer.Argument(help="a new directory for the archive")],
    audit_period_ended: Annotated[
        bool,
        typer.Option(
            "--audit-period-ended",
            help="you confirm the edition's audit period has ended and its records may leave the system",
        ),
    ] = False,
) -> None:
    """Export a closed edition's rows from every service (JSON Lines + SHA256SUMS), then delete them."""
    if not audit_period_ended:
        typer.echo(
            "refused: confirm with --audit-period-ended that the edition's audit period has ended (README: "
            "Retention)\ntừ chối: hãy xác nhận bằng --audit-period-ended rằng thời hạn lưu trữ phục vụ thanh tra, "
            "kiểm toán của kỳ Hội thi đã hết",
            err=True,
        )
        raise typer.Exit(2)
    try:
        manifest = asyncio.run(archive_and_prune(get_settings(), tenant, edition, directory))
    except RetentionRefused as exc:
        typer.echo(exc.en, err=True)
        typer.echo(exc.vi, err=True)
        raise typer.Exit(2) from None
    for name, tables in manifest["rows"].items():
        for table, n in tables.items():
            if n:
                typer.echo(f"{name:<12} {table:<24} {n:>6} rows archived and pruned")
    typer.echo(f"archive in {directory} (check it with: cd {directory} && sha256sum -c {SUMS})")
