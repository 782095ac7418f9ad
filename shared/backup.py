"""``hoithi backup DIR`` / ``hoithi restore DIR``: a whole deployment, consistent piece by piece.

What a backup holds (``manifest.json`` lists every piece with its SHA-256 and its position):

- each service's database: SQLite with ``VACUUM INTO`` (a consistent copy while the service runs), PostgreSQL
  with ``pg_dump -Fc`` (one snapshot); the instant it was taken (``taken_at``, the database's commit time);
- each durable consumer's position **read just before its service's database**: its ack floor (every stream
  sequence up to it is applied and committed, because a consumer acks only after its commit) and what it had
  delivered. Read before, never after, so the database holds at least everything up to the floor;
- every stream — events, dead letters, replays and the attachments object store (a stream too) — message by
  message with subject, headers and bytes, its first and last sequence, **after** the databases, so the stream
  holds every event an outbox in the backup has marked published.

Restore follows this order (and refuses a corrupted or incomplete backup, or a deployment that is not empty,
before writing anything):

1. databases (``pg_restore`` into an empty database; a copy of the SQLite file);
2. streams, re-published in their order (the new sequences are mapped from the old ones), and the object store;
3. each durable consumer re-created at the position matching its database: delivery from its ack floor + 1;
4. the services, when started, replay that tail: the inbox and the deterministic ids absorb what a database
   had already applied, and an outbox row the backup had not yet published is published again (the stream's
   duplicate window or the consumers' inbox drops it).

A service's database may come from an older backup (``--database rewards=DIR``): its consumers start from the
floor recorded with *that* database, so it catches up from the stream.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url

from shared.settings import SERVICES, Settings, get_settings, service_settings
from shared.streams import (
    attachments_bucket,
    consumer_configs,
    declare,
    object_store_configs,
    starting_at,
    stream_configs,
)

FORMAT = 1
MANIFEST = "manifest.json"


class BackupRefused(Exception):
    """A backup that cannot be trusted, or a deployment it must not be restored into: nothing was written."""

    def __init__(self, en: str, vi: str) -> None:
        super().__init__(f"{en}\n{vi}")
        self.en = en
        self.vi = vi


# ------------------------------------------------------------------------------------------------ helpers


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+asyncpg://…``) as libpq reads it (``pg_dump --dbname``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _dialect(url: str) -> str:
    return make_url(url).get_backend_name()


def _sqlite_path(url: str) -> Path:
    return Path(make_url(url).database or "")


def object_stream(settings: Settings) -> str:
    """The stream behind the attachments object store (JetStream names it ``OBJ_<bucket>``)."""
    return f"OBJ_{attachments_bucket(settings)}"


def stream_names(settings: Settings) -> list[str]:
    return [str(sc.name) for sc in stream_configs(settings)] + [object_stream(settings)]


def _durables_of(settings: Settings, service: str) -> list[tuple[str, ConsumerConfig]]:
    return [
        (st, cc) for st, cc in consumer_configs(settings) if (cc.durable_name or "").startswith(f"{service}-")
    ]


@contextmanager
def progress_bars(console: Console | None = None) -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
    ) as p:
        yield p


async def _connect() -> Any:
    # The CLI's one connection helper, so the deployment's NATS credentials apply here too.
    from shared.cli import _nats

    return await _nats()


# ------------------------------------------------------------------------------------------------ backup


async def _consumer_positions(js: JetStreamContext, settings: Settings, service: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stream, cc in _durables_of(settings, service):
        try:
            info = await js.consumer_info(stream, cc.durable_name or "")
        except NotFoundError:
            continue
        out[cc.durable_name or ""] = {
            "stream": stream,
            "ack_floor": info.ack_floor.stream_seq if info.ack_floor else 0,
            "delivered": info.delivered.stream_seq if info.delivered else 0,
            "pending": info.num_pending or 0,
        }
    return out


def _dump_database(url: str, target: Path) -> None:
    if _dialect(url) == "sqlite":
        source = _sqlite_path(url)
        if not source.exists():
            raise BackupRefused(f"no database at {source}", f"không có cơ sở dữ liệu tại {source}")
        con = sqlite3.connect(source, timeout=30)
        try:
            con.execute("VACUUM INTO ?", (str(target),))
        finally:
            con.close()
        return
    res = subprocess.run(
        ["pg_dump", "-Fc", "--no-owner", "-f", str(target), "--dbname", _libpq_url(url)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise BackupRefused(
            f"pg_dump failed: {res.stderr.strip()}", f"pg_dump thất bại: {res.stderr.strip()}"
        )


async def _dump_stream(js: JetStreamContext, name: str, target: Path, progress: Progress) -> dict[str, Any]:
    info = await js.stream_info(name)
    first, last = info.state.first_seq, info.state.last_seq
    count = info.state.messages
    task = progress.add_task(f"stream {name}", total=count or 0)
    written = 0
    with target.open("w", encoding="utf-8") as f:
        for seq in range(max(first, 1), last + 1) if count else ():
            try:
                m = await js.get_msg(name, seq)
            except NotFoundError:  # deleted from the stream
                continue
            line = {
                "seq": m.seq,
                "subject": m.subject,
                "headers": dict(m.headers or {}),
                "data": base64.b64encode(m.data or b"").decode("ascii"),
                "time": m.time.isoformat() if isinstance(m.time, datetime) else m.time,
            }
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
            written += 1
            progress.advance(task)
    return {"first_seq": first, "last_seq": last, "messages": written}


async def take_backup(target: Path, settings: Settings, progress: Progress) -> dict[str, Any]:
    """Write a backup of the whole deployment into ``target`` (must be empty or absent); return the manifest."""
    if target.exists() and any(target.iterdir()):
        raise BackupRefused(
            f"{target} is not empty: a backup goes into a new directory",
            f"{target} không trống: bản sao lưu phải ghi vào một thư mục mới",
        )
    target.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "started_at": _now(),
        "stream_names": {
            "events": settings.stream,
            "deadletters": settings.deadletter_stream,
            "replays": settings.replay_stream,
            "attachments": object_stream(settings),
        },
        "databases": {},
        "streams": {},
    }
    nc = await _connect()
    try:
        js = nc.jetstream()
        task = progress.add_task("databases", total=len(SERVICES))
        for name in SERVICES:
            url = service_settings(name, settings).database_url
            # The consumers' positions first: everything up to a floor is committed in the copy taken next.
            consumers = await _consumer_positions(js, settings, name)
            dialect = _dialect(url)
            file = f"db-{name}.{'sqlite' if dialect == 'sqlite' else 'pgdump'}"
            taken_at = _now()
            await asyncio.to_thread(_dump_database, url, target / file)
            manifest["databases"][name] = {
                "file": file,
                "dialect": dialect,
                "taken_at": taken_at,
                "sha256": sha256_file(target / file),
                "bytes": (target / file).stat().st_size,
                "consumers": consumers,
            }
            progress.advance(task)
        for stream in stream_names(settings):
            file = f"stream-{stream}.jsonl"
            try:
                position = await _dump_stream(js, stream, target / file, progress)
            except NotFoundError:
                raise BackupRefused(
                    f"stream {stream} does not exist (run `hoithi streams` first)",
                    f"luồng {stream} chưa có (hãy chạy `hoithi streams` trước)",
                ) from None
            manifest["streams"][stream] = {
                "file": file,
                **position,
                "sha256": sha256_file(target / file),
                "bytes": (target / file).stat().st_size,
            }
    finally:
        await nc.close()
    manifest["finished_at"] = _now()
    # The manifest last: a backup without one is incomplete, whatever else is in the directory.
    (target / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return manifest


# ------------------------------------------------------------------------------------------------ verify


def read_manifest(source: Path, settings: Settings) -> dict[str, Any]:
    """The manifest of ``source``, every piece present with its checksum; else ``BackupRefused``."""
    path = source / MANIFEST
    if not path.is_file():
        raise BackupRefused(
            f"{source} has no {MANIFEST}: the backup is incomplete (interrupted?) or this is not a backup",
            f"{source} không có {MANIFEST}: bản sao lưu không đầy đủ (bị gián đoạn?) hoặc không phải bản sao lưu",
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BackupRefused(
            f"{path} is not valid JSON: {exc}", f"{path} không phải JSON hợp lệ: {exc}"
        ) from exc
    if manifest.get("format") != FORMAT:
        raise BackupRefused(
            f"backup format {manifest.get('format')!r} is not {FORMAT}",
            f"định dạng bản sao lưu {manifest.get('format')!r} khác {FORMAT}",
        )
    missing = [f"database {n}" for n in SERVICES if n not in manifest.get("databases", {})]
    missing += [f"stream {s}" for s in stream_names(settings) if s not in manifest.get("streams", {})]
    if missing:
        raise BackupRefused(
            f"the backup is incomplete: it has no {', '.join(missing)} (stream names come from the settings: "
            "restore with the same HOITHI_STREAM… as the backup)",
            f"bản sao lưu không đầy đủ: thiếu {', '.join(missing)} (tên luồng lấy từ cấu hình: hãy khôi phục với "
            "cùng HOITHI_STREAM… như khi sao lưu)",
        )
    pieces = [*manifest["databases"].values(), *manifest["streams"].values()]
    for piece in pieces:
        file = source / piece["file"]
        if not file.is_file():
            raise BackupRefused(
                f"the backup is incomplete: {file} is missing",
                f"bản sao lưu không đầy đủ: thiếu tệp {file}",
            )
        if sha256_file(file) != piece["sha256"]:
            raise BackupRefused(
                f"the backup is corrupted: {file} does not match its SHA-256 in {MANIFEST}",
                f"bản sao lưu bị hỏng: tệp {file} không khớp mã SHA-256 ghi trong {MANIFEST}",
            )
    return manifest


# ------------------------------------------------------------------------------------------------ restore


async def _database_is_empty(url: str) -> bool:
    if _dialect(url) == "sqlite":
        path = _sqlite_path(url)
        if not path.exists() or path.stat().st_size == 0:
            return True
        con = sqlite3.connect(path)
        try:
            return con.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] == 0
        finally:
            con.close()
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(_libpq_url(url))
    try:
        n = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return bool(n == 0)
    finally:
        await conn.close()


def _load_database(url: str, dialect: str, file: Path) -> None:
    if _dialect(url) != dialect:
        raise BackupRefused(
            f"the backup of this database is {dialect}, the deployment's is {_dialect(url)}",
            f"bản sao lưu của cơ sở dữ liệu này là {dialect}, còn triển khai dùng {_dialect(url)}",
        )
    if dialect == "sqlite":
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(file, target)
        return
    res = subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", _libpq_url(url), str(file)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"pg_restore failed: {res.stderr.strip()}")


async def _stream_is_empty(js: JetStreamContext, name: str) -> bool:
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        return True
    return not info.state.messages


async def _republish(
    js: JetStreamContext, name: str, file: Path, total: int, progress: Progress
) -> dict[int, int]:
    """Publish the backup's messages of ``name`` in order; the new sequence of every old one."""
    mapping: dict[int, int] = {}
    task = progress.add_task(f"stream {name}", total=total)
    with file.open(encoding="utf-8") as f:
        for line in f:
            m = json.loads(line)
            ack = await js.publish(
                m["subject"], base64.b64decode(m["data"]), stream=name, headers=m["headers"] or None
            )
            mapping[int(m["seq"])] = ack.seq
            progress.advance(task)
    return mapping


def start_position(floor: int, mapping: dict[int, int]) -> int | None:
    """The new stream sequence to deliver from for a consumer whose old ack floor was ``floor``: the first
    message after it, in the restored stream; None when nothing is left after it (deliver new messages)."""
    after = [new for old, new in mapping.items() if old > floor]
    return min(after) if after else None


async def restore_backup(
    source: Path,
    settings: Settings,
    progress: Progress,
    *,
    databases_from: dict[str, Path] | None = None,
) -> list[str]:
    """Restore ``source`` into an empty deployment (see the module's docstring for the order)."""
    manifest = read_manifest(source, settings)
    pieces: dict[str, tuple[Path, dict[str, Any]]] = {n: (source, manifest["databases"][n]) for n in SERVICES}
    for name, other in (databases_from or {}).items():
        if name not in SERVICES:
            raise BackupRefused(f"unknown service {name!r}", f"không có dịch vụ {name!r}")
        pieces[name] = (other, read_manifest(other, settings)["databases"][name])

    nc = await _connect()
    done: list[str] = []
    try:
        js = nc.jetstream()
        # Refuse before writing anything: restore goes into an empty deployment, never on top of one.
        busy = [
            f"database of {n}"
            for n in SERVICES
            if not await _database_is_empty(service_settings(n, settings).database_url)
        ]
        busy += [f"stream {s}" for s in stream_names(settings) if not await _stream_is_empty(js, s)]
        if busy:
            raise BackupRefused(
                f"the deployment is not empty ({', '.join(busy)}): restore goes into a fresh deployment "
                "(new databases, an empty NATS store)",
                f"triển khai không trống ({', '.join(busy)}): chỉ khôi phục vào một triển khai mới "
                "(cơ sở dữ liệu mới, kho NATS trống)",
            )

        # 1. databases
        task = progress.add_task("databases", total=len(SERVICES))
        for name in SERVICES:
            where, piece = pieces[name]
            url = service_settings(name, settings).database_url
            await asyncio.to_thread(_load_database, url, piece["dialect"], where / piece["file"])
            done.append(f"database {name}: restored as of {piece['taken_at']}")
            progress.advance(task)

        # 2. streams (and the object store, whose stream the object-store API creates)
        for sc in stream_configs(settings):
            try:
                await js.stream_info(str(sc.name))
            except NotFoundError:
                await js.add_stream(sc)
        for _owner, oc in object_store_configs(settings):
            try:
                await js.object_store(oc.bucket or "")
            except Exception:  # noqa: BLE001 - BucketNotFoundError or NotFoundError, by server version
                await js.create_object_store(oc.bucket or "", config=oc)
        mappings: dict[str, dict[int, int]] = {}
        for stream in stream_names(settings):
            piece = manifest["streams"][stream]
            mappings[stream] = await _republish(
                js, stream, source / piece["file"], piece["messages"], progress
            )
            done.append(
                f"stream {stream}: {piece['messages']} messages (#{piece['first_seq']}–#{piece['last_seq']})"
            )

        # 3. each durable consumer at the position of its own database
        for name in SERVICES:
            positions = pieces[name][1]["consumers"]
            for stream, cc in _durables_of(settings, name):
                durable = cc.durable_name or ""
                try:
                    await js.delete_consumer(stream, durable)  # one `hoithi streams` made on the empty stream
                except NotFoundError:
                    pass
                recorded = positions.get(durable)
                if recorded is None:
                    config, position = cc, "from the stream's start (no position recorded)"
                else:
                    start = start_position(int(recorded["ack_floor"]), mappings.get(stream, {}))
                    if start is None:
                        config = dataclasses.replace(cc, deliver_policy=DeliverPolicy.NEW)
                        position = f"after #{recorded['ack_floor']}: nothing left to replay"
                    else:
                        config = starting_at(cc, sequence=start)
                        position = f"from #{start} (ack floor #{recorded['ack_floor']} + 1)"
                await js.add_consumer(stream, config)
                done.append(f"consumer {stream}/{durable}: {position}")
        # 4. whatever else `hoithi streams` declares, checked against the declarations
        await declare(js, settings)
    finally:
        await nc.close()
    return done


# ------------------------------------------------------------------------------------------------ commands


def _fail(exc: BackupRefused) -> None:
    typer.echo(exc.en, err=True)
    typer.echo(exc.vi, err=True)
    raise typer.Exit(2)


def backup_command(
    directory: Annotated[Path, typer.Argument(help="a new (or empty) directory for the backup")],
) -> None:
    """Back up every service's database, the streams and the attachments, with a manifest (positions,
    SHA-256 of every piece). Runs while the services run."""
    try:
        with progress_bars() as p:
            manifest = asyncio.run(take_backup(directory, get_settings(), p))
    except BackupRefused as exc:
        _fail(exc)
        return
    for name, piece in manifest["databases"].items():
        floors = ", ".join(f"{d} #{c['ack_floor']}" for d, c in piece["consumers"].items())
        typer.echo(f"database {name:<12} {piece['bytes']:>10} bytes  as of {piece['taken_at']}  ({floors})")
    for name, piece in manifest["streams"].items():
        typer.echo(
            f"stream   {name:<24} {piece['messages']:>6} messages #{piece['first_seq']}–#{piece['last_seq']}"
        )
    typer.echo(f"backup written to {directory} ({MANIFEST})")


def restore_command(
    directory: Annotated[Path, typer.Argument(help="a directory written by `hoithi backup`")],
    database: Annotated[
        list[str] | None,
        typer.Option(
            "--database",
            help="SERVICE=DIR: take that service's database (and its consumers' positions) from another, "
            "older backup; it catches up from the stream",
        ),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="only verify the backup's checksums")] = False,
) -> None:
    """Restore a backup into a fresh deployment: databases, streams, then each consumer at its database's
    position; start the services afterwards and they replay the tail."""
    settings = get_settings()
    databases_from: dict[str, Path] = {}
    for item in database or []:
        name, sep, path = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--database {item!r}: expected SERVICE=DIR")
        databases_from[name] = Path(path)
    try:
        if check:
            read_manifest(directory, settings)
            for other in databases_from.values():
                read_manifest(other, settings)
            typer.echo(f"{directory}: every piece is present and matches its checksum")
            return
        with progress_bars() as p:
            done = asyncio.run(restore_backup(directory, settings, p, databases_from=databases_from))
    except BackupRefused as exc:
        _fail(exc)
        return
    for line in done:
        typer.echo(line)
    typer.echo("restored: start the services (`hoithi serve …`); they replay the stream from each position")


__all__ = [
    "BackupRefused",
    "backup_command",
    "read_manifest",
    "restore_backup",
    "restore_command",
    "start_position",
    "take_backup",
]
