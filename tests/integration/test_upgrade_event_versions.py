"""Event schema versions roll out consumers first (README "Upgrading without downtime").

- With v1 and v2 of ``directory.person.changed`` both on the stream (v1 from before the upgrade, v2 from the new
  producer), notify — a consumer that accepts v2 — applies both: each person gets their receipt at the address
  their own version of the fact carried, and nothing is dead-lettered.
- The producer negotiates: with a durable of the previous release on the stream (no accepted versions in its
  metadata) campaign emits person facts at v1, and at v2 once that durable is gone (or, kept, once
  ``hoithi streams --delete-superseded`` has raised its metadata); with NATS away, v1.
- The catalogue check states the rule — a producer emits vN only when every consumer of that type accepts vN:
  a type emitted at a version the previous release's consumers do not accept (their committed schemas, read
  from git at ``PREVIOUS_RELEASE``) is negotiated, with an older version they accept to fall back to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa

from services.campaign import models as campaign_models
from services.campaign.usecases.publishing import import_directory
from shared import migrate
from shared.clock import Clock
from shared.db import make_engine
from shared.documents import load_directory, load_edition
from shared.events.catalogue import CATALOGUE, VERSIONS
from shared.events.envelope import Envelope
from shared.events.versions import NEGOTIATED, EmitVersions
from shared.outbox import Outbox
from shared.settings import Settings
from shared.streams import consumer_configs, declare, raise_accepts
from shared.upgrades import PREVIOUS_RELEASE, emitted_before_accepted, unsafe_emissions
from tests.support.notify import Facts, mails, run, running_notify
from tests.support.servers import nats_client_options
from tests.support.system import ROOT, SEED, System
from tests.support.wait import eventually_sync

BY_V1, BY_V2 = "p-0002", "p-0008"


def vn(text: str) -> datetime:
    return datetime.fromisoformat(text + "+07:00")


@pytest.fixture
def system(test_servers: Any, unique_prefix: str, tmp_path: Path) -> Iterator[System]:
    with running_notify(test_servers, unique_prefix, tmp_path, vn("2023-10-18T09:00:00")) as sys_:
        yield sys_


def _v1(facts: Facts, person: Any, at: datetime) -> Envelope:
    """The person fact as the previous producer wrote it: dataschemaversion 1, the whole directory record."""
    env = facts.event("directory.person.changed", {"person": person}, subject=person.id, at=at, edition=None)
    v1 = env.model_copy(update={"dataschemaversion": 1, "data": {"person": person.model_dump(mode="json")}})
    facts.sent[-1] = v1
    return v1


def _received(facts: Facts, author: str, unit: str, n: int, at: datetime) -> Envelope:
    return facts.event(
        "submission.received",
        {
            "submission_id": f"s-ver-{n}",
            "kind": "experience_report",
            "part": "experience",
            "receipt_number": f"2023-TN-00009{n}",
            "received_at": at,
            "author_id": author,
            "unit_id": unit,
            "authors": [{"person_id": author, "name": "Tác giả", "share": 100}],
            "procedures": ["1.004227"],
        },
        subject=f"s-ver-{n}",
        at=at,
    )


def test_a_consumer_that_accepts_v2_applies_v1_and_v2_from_one_stream(system: System) -> None:
    directory = load_directory(SEED / "directory.yaml")
    people = {p.id: p for p in directory.people}
    # Each version carries an address of its own, so a receipt there proves that version's fact was applied.
    a = people[BY_V1].model_copy(update={"email": "nguoi.v1@example.vn"})
    b = people[BY_V2].model_copy(update={"email": "nguoi.v2@example.vn"})
    others = directory.model_copy(
        update={"people": [p for p in directory.people if p.id not in (BY_V1, BY_V2)]}
    )
    facts = Facts(system)
    at = vn("2023-10-18T09:00:00")
    run(facts.directory(others, at))
    v1 = _v1(facts, a, at)
    v2 = facts.event("directory.person.changed", {"person": b}, subject=b.id, at=at, edition=None)
    assert (v1.dataschemaversion, v2.dataschemaversion) == (1, CATALOGUE["directory.person.changed"].version)
    assert v2.dataschemaversion == 2 and "date_of_birth" in v1.data["person"]
    run(facts.publish(v1, v2))
    run(facts.edition(load_edition(SEED / "edition.yaml"), at))
    later = vn("2023-10-18T10:00:00")
    run(facts.publish(_received(facts, a.id, a.unit, 1, later), _received(facts, b.id, b.unit, 2, later)))

    eventually_sync(lambda: mails(system, a.email, "submission.received"), timeout=30, message="v1 person")
    eventually_sync(lambda: mails(system, b.email, "submission.received"), timeout=30, message="v2 person")
    on_stream = {
        e["dataschemaversion"]
        for _, e in system.events()
        if e.get("type") == "directory.person.changed" and e.get("subject") in (BY_V1, BY_V2)
    }
    assert on_stream == {1, 2}
    assert run(_messages(system, f"{system.stream}_DL")) == 0  # nothing dead-lettered


async def _messages(system: System, stream: str) -> int:
    nc = await nats.connect(system.nats_url)
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    finally:
        await nc.close()


def _previously_accepted() -> set[tuple[str, int]]:
    """(type, version) of every schema committed in the previous release: what its consumers accept."""
    res = subprocess.run(
        ["git", "ls-tree", "--name-only", PREVIOUS_RELEASE, "shared/events/schemas/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if res.returncode != 0:
        pytest.fail(f"the previous release {PREVIOUS_RELEASE} is not in this clone: {res.stderr}")
    found = set()
    for name in res.stdout.split():
        m = re.fullmatch(r"shared/events/schemas/(?P<type>.+)\.v(?P<version>\d+)\.json", name)
        if m:
            found.add((m["type"], int(m["version"])))
    assert found, "no committed schemas in the previous release"
    return found


def test_a_producer_emits_a_version_only_when_every_consumer_of_its_type_accepts_it() -> None:
    accepted = _previously_accepted()
    emitted = {t: spec.version for t, spec in CATALOGUE.items()}
    assert unsafe_emissions(emitted, accepted, set(NEGOTIATED)) == [], (
        "a type emitted at a version the previous release's consumers do not accept must be negotiated "
        "(shared/events/versions.py), or keep the older version until a release whose consumers accept it"
    )
    # no idle entry: each negotiated type has a choice, and this release's consumers accept every version they
    # may still find on the stream
    assert all(len([v for (t, v) in VERSIONS if t == n]) > 1 for n in NEGOTIATED)
    assert all((t, v) in VERSIONS for t, v in accepted if t in CATALOGUE)


def test_the_check_refuses_a_version_emitted_before_consumers_accept_it() -> None:
    accepted = {("a.changed", 1), ("b.changed", 1), ("b.changed", 2), ("c.changed", 3)}
    emitted = {"a.changed": 2, "b.changed": 2, "new.type": 1}
    assert emitted_before_accepted(emitted, accepted) == [
        "a.changed v2: the previous release accepts only v1"
    ]
    assert unsafe_emissions(emitted, accepted, set()) == [
        "a.changed v2: the previous release accepts only v1, and its producer does not negotiate"
    ]
    assert unsafe_emissions(emitted, accepted, {"a.changed"}) == []
    assert unsafe_emissions({"c.changed": 2}, accepted, {"c.changed"}) == [
        "c.changed v2: the previous release accepts only v3, and no older version it may fall back to is accepted"
    ]


# -- the producer's negotiation, on a real NATS and campaign's real outbox ------------------------------------


def _settings(test_servers: Any, prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        nats_url=test_servers.nats_url,
        data_dir=tmp_path / "data",
        event_prefix=prefix,
        deadletter_prefix=f"{prefix}-dl",
        replay_prefix=f"{prefix}-replay",
        stream=prefix.upper(),
        deadletter_stream=f"{prefix.upper()}_DL",
        replay_stream=f"{prefix.upper()}_REPLAY",
    )


async def _publish_person(
    url: str, settings: Settings, versions: EmitVersions, person: Any
) -> dict[str, Any]:
    """Import a directory of one changed person into campaign's database; the person fact it put in its outbox."""
    directory = load_directory(SEED / "directory.yaml")
    directory = directory.model_copy(update={"people": [person]})
    engine = make_engine(url)
    outbox = Outbox(campaign_models.backbone, settings, "campaign", Clock.from_settings(settings))
    t = campaign_models.backbone.outbox
    try:
        async with engine.begin() as conn:
            await import_directory(conn, outbox, directory, vn("2023-10-18T09:00:00"), versions)
            payload = (
                await conn.execute(
                    sa.select(t.c.payload)
                    .where(t.c.event_type == "directory.person.changed")
                    .order_by(t.c.position.desc())
                    .limit(1)
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    fact: dict[str, Any] = json.loads(payload)
    assert fact["subject"] == person.id
    return fact


def test_the_producer_emits_v1_while_a_previous_durable_reads_the_type_and_v2_once_it_is_gone(
    test_servers: Any, unique_prefix: str, tmp_path: Path
) -> None:
    settings = _settings(test_servers, unique_prefix, tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'campaign.db'}"
    migrate.upgrade("campaign", url)
    person = next(p for p in load_directory(SEED / "directory.yaml").people if p.id == BY_V1)
    versions = EmitVersions(settings, "admin", ttl=0)  # asks NATS each time (the service caches 30 s)

    def changed(n: int) -> Any:
        return person.model_copy(update={"email": f"nguoi.{n}@example.vn"})

    async def go() -> None:
        nc = await nats.connect(test_servers.nats_url, **nats_client_options(test_servers.nats_url))
        js = nc.jetstream()
        try:
            await declare(js, settings)  # this release's durables, each with the versions its code accepts
            declared = {cc.durable_name: cc for _, cc in consumer_configs(settings)}
            # the previous release's notify durable, as its `hoithi streams` made it: no metadata
            old = dataclasses.replace(
                declared["notify-facts-v3"],
                durable_name="notify-facts-v2",
                name="notify-facts-v2",
                metadata=None,
            )
            await js.add_consumer(settings.stream, old)

            fact = await _publish_person(url, settings, versions, changed(1))
            assert fact["dataschemaversion"] == 1 and "date_of_birth" in fact["data"]["person"]

            await js.delete_consumer(settings.stream, "notify-facts-v2")  # the update is done
            fact = await _publish_person(url, settings, versions, changed(2))
            assert fact["dataschemaversion"] == 2 and "date_of_birth" not in fact["data"]["person"]

            # a durable this release keeps from the previous one (same name, no metadata) holds v1 back too…
            kept = declared["rewards-facts-v1"]
            await js.delete_consumer(settings.stream, "rewards-facts-v1")
            await js.add_consumer(settings.stream, dataclasses.replace(kept, metadata=None))
            assert any("accepts fewer event versions" in line for line in await declare(js, settings))
            fact = await _publish_person(url, settings, versions, changed(3))
            assert fact["dataschemaversion"] == 1
            # …until `hoithi streams --delete-superseded` raises its metadata, keeping its position
            assert await raise_accepts(js, settings) == [
                f"consumer {settings.stream}/rewards-facts-v1: accepts this code's event versions now"
            ]
            fact = await _publish_person(url, settings, versions, changed(4))
            assert fact["dataschemaversion"] == 2
        finally:
            for stream in (settings.stream, settings.deadletter_stream, settings.replay_stream):
                with contextlib.suppress(Exception):
                    await js.delete_stream(stream)
            await nc.close()

    run(go())

    # NATS away: the lowest version, never one a consumer might not read
    away = settings.model_copy(update={"nats_url": "nats://127.0.0.1:9"})
    assert run(EmitVersions(away, "campaign", ttl=0).version("directory.person.changed")) == 1
