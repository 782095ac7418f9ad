"""``GET …/people`` and ``GET …/assignments`` a page at a time (issue 16): the people in force today, in the order a Vietnamese reader looks a
name up (given name, then family and middle names; the Vietnamese alphabet, then tones), searched without accents,
and right after a rolling update in which the previous release wrote rows without the listing's columns; each
reader's assignments, page by page, the same as the whole list they may see.

The campaign app in-process (no messaging), its directory imported through the real path (``import_directory``:
the fact, then campaign's copy), on SQLite and on PostgreSQL. The names live in a unit of their own, so the seed's
people stay out of the expected lists; the expected order is written out by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import shared.service
from services.campaign import models
from services.campaign.app import SPEC
from services.campaign.usecases import editions
from services.campaign.usecases.publishing import import_directory, publish_edition
from shared import paging
from shared.auth import issue_token
from shared.clock import Clock
from shared.db import make_engine
from shared.documents import Directory, Person, Unit, load_directory, load_edition
from shared.outbox import Outbox
from shared.settings import ServiceSettings, Settings
from tests.support.system import EDITION, SEED, TENANT

SECRETARIAT = "p-0004"
OFFICIAL = "p-0002"
T = f"/tenants/{TENANT}/people"
UNIT = "u-test"

# (id, name) in the order the list must give them: given name first, a < ă < â, d < đ, o < ô < ơ, u < ư, a
# shorter name before a longer one that begins alike, tones (none, huyền, hỏi, ngã, sắc, nặng) only between names
# alike in every letter, then the family and middle names, then the id.
ORDERED = [
    ("p-t01", "Nguyễn Văn An"),
    ("p-t02", "Nguyễn Văn An"),
    ("p-t03", "Lê Văn Anh"),
    ("p-t04", "Phạm Thị Ảnh"),
    ("p-t05", "Trần Thị Ánh"),
    ("p-t06", "Hoàng Văn Ân"),
    ("p-t07", "Đỗ Thị Bích"),
    ("p-t08", "Lê Thị Bình"),
    ("p-t09", "Ngô Văn Dũng"),
    ("p-t10", "Trần Văn Đức"),
    ("p-t11", "Bùi Thị Hà"),
    ("p-t12", "Nguyễn Thị Hà"),
    ("p-t13", "Phan Thị Hạnh"),
    ("p-t14", "Lý Thị Hằng"),
    ("p-t15", "Mai Văn Hòa"),
    ("p-t16", "Đinh Thị Hồng"),
    ("p-t17", "Trịnh Văn Hợp"),
    ("p-t18", "Cao Văn Huy"),
    ("p-t19", "Tạ Văn Hưng"),
    ("p-t20", "Lâm Minh"),
    ("p-t21", "Trương Thị Yến"),
]
NOW = datetime.fromisoformat("2023-10-20T09:00:00+07:00")


def _directory() -> Directory:
    seed = load_directory(SEED / "directory.yaml")
    template = seed.people[0]

    def person(pid: str, name: str, **over: Any) -> Person:
        fields = {
            "id": pid,
            "name": name,
            "email": f"{pid}@example.vn",
            "unit": UNIT,
            "roles": [],
            "unions": [],
        }
        return template.model_copy(update={"effective_from": None, "effective_to": None, **fields, **over})

    unit = Unit(id=UNIT, code="TEST", name="Phòng Thử nghiệm", kind="division")
    people = [person(pid, name) for pid, name in reversed(ORDERED)]
    people += [
        # left before today: not listed
        person("p-t30", "Kiều Văn Khải", effective_to=date(2023, 10, 1)),
        # moved into the unit on 01/10/2023: listed once, in it
        person("p-t31", "Võ Thị Lan", unit="u-vp", effective_to=date(2023, 9, 30)),
        person("p-t31", "Võ Thị Lan", effective_from=date(2023, 10, 1)),
        # moves out on 01/12/2023: still listed in it today
        person("p-t32", "Hồ Văn Lộc", effective_to=date(2023, 11, 30)),
        person("p-t32", "Hồ Văn Lộc", unit="u-vp", effective_from=date(2023, 12, 1)),
    ]
    # validated as an imported document is
    return Directory.model_validate(
        {**seed.model_dump(), "units": [*seed.units, unit], "people": [*seed.people, *people]}
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def app(request: pytest.FixtureRequest, tmp_path: Path, test_servers: Any) -> AsyncIterator[Any]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'campaign.db'}"
    else:
        url = test_servers.create_database("directory_listing")
    settings = Settings(
        env="test", data_dir=tmp_path, clock_simulated_at=NOW, clock_real_at=datetime.now(UTC)
    )
    engine = make_engine(url)
    clock = Clock.from_settings(settings)
    async with engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
        outbox = Outbox(models.backbone, settings, "campaign", clock)
        directory = _directory()
        await import_directory(conn, outbox, directory, clock.now())
        await publish_edition(conn, outbox, load_edition(SEED / "edition.yaml"), directory, clock.now())
    await engine.dispose()
    app = shared.service.create_app(
        SPEC, settings, ServiceSettings(name="campaign", database_url=url, port=1)
    )
    yield app
    await app.state.runtime.engine.dispose()


def _client(app: Any, person: str = SECRETARIAT) -> httpx.AsyncClient:
    """HTTP to the app in this test's loop, without its lifespan: no messaging (the listing needs none)."""
    token = issue_token(app.state.runtime.settings, person, TENANT)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://campaign",
        headers={"Authorization": f"Bearer {token}"},
    )


async def _pages(c: httpx.AsyncClient, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every page, following the Link header: (people, pages)."""
    r = await c.get(T, params=params)
    people, pages = [], 0
    while True:
        assert r.status_code == 200, r.text
        people += r.json()
        pages += 1
        if "link" not in r.headers:
            return people, pages
        target = r.headers["link"].split(">")[0].removeprefix("<")
        assert r.headers["link"].endswith('; rel="next"')
        r = await c.get(target)


def _ids(people: list[dict[str, Any]]) -> list[str]:
    return [p["id"] for p in people]


async def test_pages_give_everyone_in_force_once_in_vietnamese_order(app: Any) -> None:
    c = _client(app)
    people, pages = await _pages(c, unit=UNIT, limit=4)
    # Lan (moved in) and Lộc (moving out) between Hưng and Minh
    assert _ids(people) == [pid for pid, _ in ORDERED[:19]] + ["p-t31", "p-t32", "p-t20", "p-t21"]
    assert pages == 6  # 23 people, 4 a page
    assert {p["unit"] for p in people} == {UNIT}
    # the whole directory, 100 a page by default: the seed's people and these, each once
    everyone, _ = await _pages(c)
    seed = {p.id for p in load_directory(SEED / "directory.yaml").people}
    assert sorted(_ids(everyone)) == sorted(seed | {pid for pid, _ in ORDERED} | {"p-t31", "p-t32"})


async def test_search_ignores_accents_vowel_marks_and_case_and_matches_the_start_of_words(app: Any) -> None:
    c = _client(app)

    async def found(q: str) -> list[str]:
        r = await c.get(T, params={"q": q, "unit": UNIT})
        assert r.status_code == 200, r.text
        return _ids(r.json())

    assert await found("an") == ["p-t01", "p-t02", "p-t03", "p-t04", "p-t05", "p-t06"]
    assert await found("nguyen") == ["p-t01", "p-t02", "p-t12"]
    assert await found("NGUYỄN hà") == ["p-t12"]
    assert await found("ha") == ["p-t11", "p-t12", "p-t13", "p-t14"]
    assert await found("duc") == await found("Đức") == ["p-t10"]
    assert await found("hung") == ["p-t19"]
    assert await found("van an") == ["p-t01", "p-t02", "p-t03", "p-t06"]  # Văn An, Văn Anh, Văn Ân
    assert await found("p-t20") == ["p-t20"]  # an id, exactly
    assert await found("uyen") == []  # the start of a word, not any part of it
    assert await found("%_%") == [] and await found("'") == []  # no letter to look for: nobody, not everyone


async def test_people_by_id(app: Any) -> None:
    c = _client(app, OFFICIAL)
    r = await c.get(T, params=[("id", "p-t21"), ("id", "p-t03"), ("id", "p-t30"), ("id", "p-nobody")])
    assert r.status_code == 200, r.text
    assert _ids(r.json()) == ["p-t03", "p-t21"]  # in list order; who left, or never was, is absent
    assert r.json()[0]["email"] is None  # an official does not see a colleague's e-mail (shared.privacy)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "not-a-cursor"}, "after"),
        ({"after": "AAA"}, "after"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"q": "x" * 101}, "q"),
        ({"unit": "Phòng"}, "unit"),
        ([("id", f"p-{i}") for i in range(201)], "id"),
    ],
)
async def test_a_bad_query_is_a_422_naming_the_field_in_both_languages(
    app: Any, params: Any, field: str
) -> None:
    c = _client(app)
    r = await c.get(T, params=params)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == [field], errors
    assert errors[0]["message_vi"] and errors[0]["message_vi"] != errors[0]["message"]


async def test_rows_the_previous_release_wrote_are_listed_under_their_names(app: Any) -> None:
    """The release before the listing's columns writes copy rows without them during a rolling update: a new
    person (no key) and a renamed one (its old key would list the new name in the old place)."""
    runtime = app.state.runtime
    p = models.copies.people
    template = load_directory(SEED / "directory.yaml").people[0]
    newcomer = template.model_copy(
        update={"id": "p-t40", "name": "Châu Văn Bảo", "email": "p-t40@example.vn", "unit": UNIT, "roles": []}
    )

    async def previous_release_writes() -> None:
        async with runtime.engine.begin() as conn:
            await conn.execute(
                sa.insert(p).values(
                    tenant=TENANT,
                    person_id="p-t40",
                    effective_from=date(1900, 1, 1),
                    unit_id=UNIT,
                    email="p-t40@example.vn",
                    doc=newcomer.model_dump_json(),
                    sequence=1,
                )
            )
            row = (await conn.execute(sa.select(p.c.doc, p.c.sequence).where(p.c.person_id == "p-t21"))).one()
            renamed = Person.model_validate_json(row.doc).model_copy(update={"name": "Trương Thị Ánh"})
            await conn.execute(
                sa.update(p)
                .where(p.c.person_id == "p-t21")
                .values(doc=renamed.model_dump_json(), sequence=row.sequence + 1)
            )

    await previous_release_writes()
    c = _client(app)
    people, _ = await _pages(c, unit=UNIT, limit=50)
    assert _ids(people)[:8] == ["p-t01", "p-t02", "p-t03", "p-t04", "p-t05", "p-t21", "p-t06", "p-t40"]
    assert people[5]["name"] == "Trương Thị Ánh"
    r = await c.get(T, params={"q": "bao", "unit": UNIT})
    assert _ids(r.json()) == ["p-t40"]


ASSIGNMENTS = f"/tenants/{TENANT}/editions/{EDITION}/assignments"


@pytest.mark.parametrize(
    "reader",
    [
        SECRETARIAT,
        "p-0007",
        "p-0022",
        OFFICIAL,
    ],  # the secretariat, a unit head, a union secretary, an official
)
@pytest.mark.parametrize(
    "in_sql", [1000, 1]
)  # a union's members named in SQL, or checked here a chunk at a time
async def test_assignments_page_by_page_are_the_whole_list_each_reader_may_see(
    app: Any, reader: str, in_sql: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(editions, "IN_SQL", in_sql)
    c = _client(app, reader)
    whole = await c.get(ASSIGNMENTS)
    assert whole.status_code == 200, whole.text
    assert "link" not in whole.headers
    rows, pages = [], 0
    r = await c.get(ASSIGNMENTS, params={"limit": 3})
    while True:
        assert r.status_code == 200, r.text
        assert 0 < len(r.json()) <= 3
        rows += r.json()
        pages += 1
        if "link" not in r.headers:
            break
        r = await c.get(r.headers["link"].split(">")[0].removeprefix("<"))
    assert rows == whole.json()
    assert pages == -(-len(rows) // 3)
    keys = [(a["part"], a["assignee_id"]) for a in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    if reader == "p-0022":  # the Chi đoàn's secretary: its members' assignments, all of them
        members = {p.id for p in _directory().people if "cd" in p.unions}
        everything = (await _client(app).get(ASSIGNMENTS)).json()
        assert rows == [a for a in everything if a["assignee_id"] in members] and len(rows) > 3
    if reader == OFFICIAL:
        assert {a["assignee_id"] for a in rows} <= {OFFICIAL, "u-vp"}


async def test_a_page_of_open_assignments_and_a_bad_cursor(app: Any) -> None:
    c = _client(app)
    r = await c.get(ASSIGNMENTS, params={"status": "open", "part": "experience", "limit": 5})
    assert r.status_code == 200 and len(r.json()) == 5 and r.headers["link"].endswith('; rel="next"')
    assert {a["status"] for a in r.json()} == {"open"}
    units = await c.get(ASSIGNMENTS, params={"assignee_kind": "unit"})
    assert units.json() and {a["assignee_kind"] for a in units.json()} == {"unit"}
    assert (await c.get(ASSIGNMENTS, params={"assignee_kind": "team"})).status_code == 422
    for after in ("not-a-cursor", paging.encode("only-one")):
        bad = await c.get(ASSIGNMENTS, params={"limit": 5, "after": after})
        assert bad.status_code == 422, bad.text
        assert [e["field"] for e in bad.json()["errors"]] == ["after"]
        assert bad.json()["errors"][0]["message_vi"].startswith("Không phải con trỏ")
