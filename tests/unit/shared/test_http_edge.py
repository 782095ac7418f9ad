"""The HTTP edge every service shares (shared/guard.py, shared/bounds.py): authentication before the body, body
limits, throttling, security headers, bounded YAML and bounded dates and versions.

The campaign app in-process on a seeded SQLite file, without its messaging (no lifespan): each test is one thing
an attacker or a careless client did against main, and the answer a user should see instead.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import shared.service
from services.campaign import models
from services.campaign.app import SPEC
from services.campaign.usecases.publishing import import_directory, publish_edition
from shared.auth import issue_token
from shared.clock import Clock
from shared.db import make_engine
from shared.documents import load_directory, load_edition
from shared.outbox import Outbox
from shared.settings import ServiceSettings, Settings
from tests.support.attacks import BOMB
from tests.support.system import EDITION, SEED, TENANT, report_body

SECRETARIAT = "p-0004"
T = f"/tenants/{TENANT}"


def _settings(tmp: Path, **over: Any) -> Settings:
    return Settings(
        env="test",
        data_dir=tmp,
        clock_simulated_at=datetime.fromisoformat("2023-10-20T09:00:00+07:00"),
        clock_real_at=datetime.now(UTC),
        **over,
    )


def _campaign_app(tmp: Path, **over: Any) -> tuple[FastAPI, Settings]:
    db = tmp / "campaign.db"
    settings = _settings(tmp, **over)
    if not db.exists():

        async def fill() -> None:
            engine = make_engine(f"sqlite+aiosqlite:///{db}")
            clock = Clock.from_settings(settings)
            async with engine.begin() as conn:
                await conn.run_sync(models.metadata.create_all)
                outbox = Outbox(models.backbone, settings, "campaign", clock)
                d, e = load_directory(SEED / "directory.yaml"), load_edition(SEED / "edition.yaml")
                await import_directory(conn, outbox, d, clock.now())
                await publish_edition(conn, outbox, e, d, clock.now())
            await engine.dispose()

        asyncio.run(fill())
    own = ServiceSettings(name="campaign", database_url=f"sqlite+aiosqlite:///{db}", port=1)
    return shared.service.create_app(SPEC, settings, own), settings


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return _campaign_app(tmp_path)[0]


def _client(app: FastAPI, person: str | None = SECRETARIAT) -> TestClient:
    settings: Settings = app.state.runtime.settings
    headers = {"Authorization": f"Bearer {issue_token(settings, person, TENANT)}"} if person else {}
    return TestClient(app, headers=headers, raise_server_exceptions=False)  # no `with`: no NATS


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return _client(app)


# ---------------------------------------------------------------------------------------------- item 2: bodies


def _asgi_post(app: FastAPI, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> Any:
    """POST ``chunks`` straight through ASGI; returns (status, body, how many chunks the app read)."""
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        if read > len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("10.1.2.3", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), read, dict(start["headers"])


def test_a_large_json_body_without_a_token_is_401_before_a_byte_of_it_is_read(app: FastAPI) -> None:
    chunks = [b"x" * (1024 * 1024)] * 30  # 30 MB the attacker would like us to buffer and parse
    path = f"{T}/editions/{EDITION}/assignments/a-1/extensions"
    status, body, read, headers = _asgi_post(app, path, [(b"content-type", b"application/json")], chunks)
    assert status == 401 and body["detail_vi"] and read == 0
    assert headers[b"content-type"] == b"application/problem+json"


def test_a_body_over_the_routes_limit_is_413_whether_announced_or_streamed(tmp_path: Path) -> None:
    app, settings = _campaign_app(tmp_path, body_limit_json=64 * 1024, body_limit_directory_import=256 * 1024)
    auth = (b"authorization", f"Bearer {issue_token(settings, SECRETARIAT, TENANT)}".encode())
    yaml_type = (b"content-type", b"application/yaml")
    # announced: refused on the header, nothing read
    status, body, read, _ = _asgi_post(
        app, f"{T}/directory/import", [auth, yaml_type, (b"content-length", b"300000")], [b"x" * 300_000]
    )
    assert (status, read) == (413, 0)
    assert body["type"].endswith("/too_large") and "262144" in body["detail"] and body["detail_vi"]
    # streamed without a length: refused as soon as it passes the limit, the rest never read
    status, body, read, _ = _asgi_post(app, f"{T}/directory/import", [auth, yaml_type], [b"x" * 100_000] * 50)
    assert status == 413 and read == 3
    # the same 100 kB is fine for the directory import, too large for an ordinary JSON route
    status, _, _, _ = _asgi_post(
        app, f"{T}/editions", [auth, (b"content-type", b"application/json")], [b"x" * 100_000]
    )
    assert status == 413


# ---------------------------------------------------------------------------------------------- item 6: YAML


def test_a_yaml_alias_bomb_is_refused_quickly_with_the_line(client: TestClient) -> None:
    started = time.monotonic()
    r = client.post(
        f"{T}/directory/import", content=BOMB.encode(), headers={"Content-Type": "application/yaml"}
    )
    assert r.status_code == 422, r.text
    assert time.monotonic() - started < 2.0
    (err,) = r.json()["errors"]
    assert err["line"] == 6 and "tham chiếu" in err["message_vi"]


def test_malformed_yaml_is_422_with_its_line_not_500(client: TestClient) -> None:
    r = client.post(
        f"{T}/directory/import",
        content=b"tenant: soctrang-stnmt\nunits: [\n  - {id: x\n",
        headers={"Content-Type": "application/yaml"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["line"] >= 3


# ---------------------------------------------------------------------------------------------- item 8: smaller


@pytest.mark.parametrize(
    "url",
    [
        f"{T}/units?as_of=0001-01-01",
        f"{T}/directory?as_of=9999-12-31",
        f"{T}/editions/{EDITION}/versions/99999999999999999999",
        f"{T}/editions/{EDITION}/versions/0",
        f"{T}/editions/{EDITION}/participation?as_of=9999-12-31T23:59:59",
        f"{T}/editions/{EDITION}/participation?as_of=0001-01-01",
        f"{T}/editions/{EDITION}/online-services?as_of=9999-12-31T23:59:59%2B07:00",
        f"{T}/editions/{EDITION}/online-services?as_of=0001-01-01T00:00:00",
    ],
)
def test_out_of_range_dates_and_versions_are_422_not_500(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_a_nul_in_a_query_parameter_is_422_naming_it(client: TestClient) -> None:
    r = client.get(f"{T}/directory", params={"as_of": "2023-10-20", "format": "ya\x00ml"})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["format"] and r.json()["detail_vi"]


def test_the_directory_as_of_a_day_before_its_units_existed_is_answered(client: TestClient) -> None:
    r = client.get(f"{T}/directory", params={"as_of": "2000-01-01"})
    assert r.status_code == 200, r.text
    assert r.json()["units"] == []


@pytest.mark.parametrize("deadline", ["9999-12-31", "9999-12-31T23:59:59+07:00"])
def test_an_extension_to_year_1_or_9999_is_422(client: TestClient, deadline: str) -> None:
    a = client.get(f"{T}/editions/{EDITION}/assignments").json()[0]
    r = client.post(
        f"{T}/editions/{EDITION}/assignments/{a['id']}/extensions",
        json={"new_deadline": deadline, "reason": "thử nghiệm"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"].startswith("new_deadline")


def test_an_hr_list_dated_year_1_is_422_by_line_not_500(client: TestClient) -> None:
    merge = (
        "Mã đơn vị;Ký hiệu;Tên đơn vị;Loại;Thay thế;Hiệu lực từ\n"
        "u-tnmb;TN-MB;Phòng Tài nguyên Nước, Biển và Khoáng sản;division;u-tnn-ks, u-tnb-bdkh;01/01/0001\n"
    )
    r = client.post(f"{T}/directory/import", content=merge.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 422, r.text
    (err,) = r.json()["errors"]
    assert (err["line"], err["field"]) == (2, "effective_from")


def test_a_report_of_a_service_used_in_year_1_is_refused_field_by_field() -> None:
    from pydantic import ValidationError

    from services.submissions.domain import ExperienceReportCreate

    body = report_body(("1.004227",))
    body["procedures"][0]["used_on"] = "0001-01-01"
    with pytest.raises(ValidationError) as e:
        ExperienceReportCreate.model_validate(body)
    (err,) = e.value.errors()
    assert err["loc"] == ("procedures", 0, "used_on") and "1900" in err["msg"]


def test_every_response_carries_the_security_headers(client: TestClient, app: FastAPI) -> None:
    for r in (client.get(f"{T}/units"), _client(app, None).get(f"{T}/units"), client.get("/health/live")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["referrer-policy"] == "no-referrer"
    assert client.get(f"{T}/people").headers["cache-control"] == "no-store"


def test_failed_authentications_from_one_address_are_throttled(tmp_path: Path) -> None:
    app, _ = _campaign_app(tmp_path, auth_failures_burst=5, auth_failures_per_minute=6)
    bad = TestClient(app, headers={"Authorization": "Bearer not-a-token"}, raise_server_exceptions=False)
    assert [bad.get(f"{T}/units").status_code for _ in range(5)] == [401] * 5
    r = bad.get(f"{T}/units")
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 10 and r.json()["detail_vi"]
    # the address is held back whatever it sends meanwhile, a guessed valid token included
    assert _client(app).get(f"{T}/units").status_code == 429


def test_writes_are_throttled_per_person(tmp_path: Path) -> None:
    app, _ = _campaign_app(tmp_path, writes_burst=3, writes_per_minute=1)
    c = _client(app)
    codes = [
        c.post(f"{T}/editions", content=b"{}", headers={"Content-Type": "application/json"}).status_code
        for _ in range(4)
    ]
    assert codes[:3] == [422] * 3 and codes[3] == 429
    assert _client(app, "p-0003").get(f"{T}/units").status_code == 200  # others, and reads, unaffected


def test_token_buckets_refill_with_time() -> None:
    from shared.guard import TokenBuckets

    now = [0.0]
    b = TokenBuckets(per_minute=60, burst=2, clock=lambda: now[0])
    assert (b.take("k"), b.take("k")) == (0.0, 0.0)
    assert b.take("k") == pytest.approx(1.0)
    now[0] += 1.0
    assert b.take("k") == 0.0


def test_production_refuses_a_short_jwt_secret() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(env="production", jwt_secret="x")
    Settings(env="production", jwt_secret="x" * 32)


def test_a_token_valid_for_a_hundred_years_is_401(client: TestClient) -> None:
    now = datetime.now(UTC)
    claims = {"sub": SECRETARIAT, "tenant": TENANT, "iss": "hoithi", "aud": "hoithi"}
    settings: Settings = client.app.state.runtime.settings  # type: ignore[attr-defined]
    for extra in (
        {"iat": int(now.timestamp()), "exp": int((now + timedelta(days=36500)).timestamp())},
        {"exp": int((now + timedelta(days=36500)).timestamp())},  # no iat: counted from now
    ):
        token = jwt.encode({**claims, **extra}, settings.jwt_secret, algorithm="HS256")
        r = client.get(f"{T}/units", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and "thời hạn" in r.json()["detail_vi"]
