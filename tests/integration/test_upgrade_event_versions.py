"""Event schema versions roll out consumers first (README "Upgrading without downtime").

- With v1 and v2 of ``directory.person.changed`` both on the stream (v1 from before the upgrade, v2 from the new
  producer), notify — a consumer that accepts v2 — applies both: each person gets their receipt at the address
  their own version of the fact carried, and nothing is dead-lettered.
- The catalogue check: no type is emitted at a version the previous release's consumers do not accept
  (their committed schemas, read from git at ``PREVIOUS_RELEASE``), except the listed exceptions with their reason.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
import pytest

from shared.documents import load_directory, load_edition
from shared.events.catalogue import CATALOGUE, VERSIONS
from shared.events.envelope import Envelope
from shared.upgrades import EMITTED_AHEAD_OF_CONSUMERS, PREVIOUS_RELEASE, emitted_before_accepted
from tests.support.notify import Facts, mails, run, running_notify
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


def test_no_producer_emits_a_version_the_previous_consumers_do_not_accept() -> None:
    accepted = _previously_accepted()
    emitted = {t: spec.version for t, spec in CATALOGUE.items()}
    ahead = {(t, v) for (t, v) in EMITTED_AHEAD_OF_CONSUMERS}
    problems = emitted_before_accepted({t: v for t, v in emitted.items() if (t, v) not in ahead}, accepted)
    assert problems == [], "emit the older version until a release whose consumers accept the new one"
    # every exception names what this release does emit and really is ahead (no stale entry)
    assert all(emitted.get(t) == v for t, v in ahead)
    assert all(emitted_before_accepted({t: v}, accepted) for t, v in ahead)
    # and this release's consumers accept every version they may still find on the stream
    assert all((t, v) in VERSIONS for t, v in accepted if t in CATALOGUE)


def test_the_check_refuses_a_version_emitted_before_consumers_accept_it() -> None:
    accepted = {("a.changed", 1), ("b.changed", 1), ("b.changed", 2)}
    assert emitted_before_accepted({"a.changed": 2, "b.changed": 2, "new.type": 1}, accepted) == [
        "a.changed v2: the previous release accepts only v1"
    ]
