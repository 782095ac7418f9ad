"""The portal's rules that need no running system: the demo sign-in is refused in production, every POST needs
the session's CSRF token, cookies and headers are as secure as the deployment allows, OpenID Connect starts a
code flow with PKCE and refuses an answer that names no person, and dates, deadlines and numbers are written the
Vietnamese way."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from services.portal import i18n, oidc
from services.portal.app import SESSION_COOKIE, create_app
from services.portal.backend import Backend, ServiceProblem
from services.portal.settings import PortalSettings
from shared.clock import VN
from shared.settings import Settings

SECRET = "s" * 40


def client(env: str = "development", **own: Any) -> TestClient:
    shared = Settings(env=env, jwt_secret=SECRET)  # type: ignore[arg-type]
    settings = PortalSettings(session_secret=SECRET, live_updates=False, **own)
    return TestClient(create_app(settings, shared), base_url="https://testserver", follow_redirects=False)


def session_of(c: TestClient) -> dict[str, Any]:
    """The signed session cookie's content (signed, not encrypted: readable, never forgeable)."""
    raw = c.cookies[SESSION_COOKIE].split(".")[0]
    return json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))  # type: ignore[no-any-return]


def test_the_demo_sign_in_is_refused_in_production() -> None:
    with client("production", demo_login=True) as c:
        page = c.get("/")
        assert page.status_code == 200
        assert "Đăng nhập thử" not in page.text and 'action="/login/demo"' not in page.text
        csrf = session_of(c)["csrf"]
        r = c.post("/login/demo", data={"csrf": csrf, "tenant": "t", "edition": "e", "person": "p-1"})
        assert r.status_code == 403
        assert "Đăng nhập thử không được phép trong môi trường production." in r.text
        assert "user" not in session_of(c)


def test_the_demo_sign_in_is_offered_in_development_and_checks_its_fields() -> None:
    with client() as c:
        page = c.get("/")
        assert 'action="/login/demo"' in page.text and '<html lang="vi">' in page.text
        r = c.post(
            "/login/demo", data={"csrf": session_of(c)["csrf"], "tenant": "", "edition": "", "person": ""}
        )
        assert r.status_code == 422
        assert r.text.count("Bắt buộc nhập.") == 3 and 'aria-invalid="true"' in r.text


def test_production_needs_its_own_session_secret() -> None:
    shared = Settings(env="production", jwt_secret=SECRET)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="HOITHI_PORTAL_SESSION_SECRET"):
        create_app(PortalSettings(live_updates=False), shared)


@pytest.mark.parametrize("sent", [None, "forged"])
def test_a_post_without_the_sessions_csrf_token_is_refused(sent: str | None) -> None:
    with client() as c:
        c.get("/")
        data = {"tenant": "t", "edition": "e", "person": "p"} | ({"csrf": sent} if sent else {})
        r = c.post("/login/demo", data=data)
        assert r.status_code == 403
        assert "Biểu mẫu đã hết hạn hoặc không hợp lệ" in r.text


def test_session_cookies_are_httponly_samesite_and_secure_unless_plain_http_development() -> None:
    with client() as c:
        cookie = c.get("/").headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    for env, public in (("production", ""), ("development", "https://portal.example.vn")):
        with client(env, public_url=public) as c:
            cookie = c.get("/").headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=lax" in cookie and "; secure" in cookie


def test_every_page_carries_the_security_headers() -> None:
    with client() as c:
        h = c.get("/").headers
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "no-referrer" and h["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert "script-src 'self'" in h["content-security-policy"]


def test_the_language_switch_keeps_the_page_and_refuses_to_leave_the_site() -> None:
    with client() as c:
        r = c.get("/lang/en", params={"next": "/reports/new"})
        assert r.status_code == 303 and r.headers["location"] == "/reports/new"
        assert '<html lang="en">' in c.get("/").text and "Sign in" in c.get("/").text
        assert c.get("/lang/vi", params={"next": "//evil.example"}).headers["location"] == "/"


def test_pages_of_a_signed_in_person_redirect_to_sign_in_first() -> None:
    with client() as c:
        r = c.get("/reports/new")
        assert r.status_code == 303 and r.headers["location"].startswith("/?next=")


# ---------------------------------------------------------------------------------------- OpenID Connect


def oidc_client() -> TestClient:
    c = client(
        "production",
        oidc_issuer="https://id.example.vn",
        oidc_client_id="hoithi-portal",
        public_url="https://portal.example.vn",
    )
    # the provider's discovery document, as if fetched: the unit test talks to no provider
    metadata = {
        "issuer": "https://id.example.vn",
        "authorization_endpoint": "https://id.example.vn/authorize",
        "token_endpoint": "https://id.example.vn/token",
        "jwks_uri": "https://id.example.vn/jwks",
        "_loaded_at": time.time(),
    }

    class Req:
        app = c.app

    oidc.oauth_client(Req()).server_metadata.update(metadata)  # type: ignore[arg-type]
    return c


def test_oidc_sign_in_starts_an_authorization_code_flow_with_pkce() -> None:
    with oidc_client() as c:
        page = c.get("/")
        assert 'href="/login/oidc"' in page.text
        r = c.get("/login/oidc")
        assert r.status_code == 302
        target = urlsplit(r.headers["location"])
        q = parse_qs(target.query)
        assert f"{target.scheme}://{target.netloc}{target.path}" == "https://id.example.vn/authorize"
        assert q["response_type"] == ["code"] and q["client_id"] == ["hoithi-portal"]
        assert q["redirect_uri"] == ["https://portal.example.vn/auth/callback"]
        assert q["code_challenge_method"] == ["S256"] and q["code_challenge"][0]
        assert q["state"][0] and "openid" in q["scope"][0]


def test_an_oidc_callback_with_a_state_it_did_not_issue_is_refused() -> None:
    with oidc_client() as c:
        c.get("/login/oidc")
        r = c.get("/auth/callback", params={"code": "x", "state": "not-the-one"})
        assert r.status_code == 403 and "Đăng nhập không thành công" in r.text


def test_an_identity_providers_answer_must_name_the_person_and_the_tenant() -> None:
    good = {"access_token": "a.b.c", "userinfo": {"sub": "p-1", "tenant": "t-1"}}
    assert oidc.claims_of(good) == ("a.b.c", "p-1", "t-1")
    for missing in ("sub", "tenant"):
        info = {k: v for k, v in good["userinfo"].items() if k != missing}  # type: ignore[union-attr]
        with pytest.raises(ServiceProblem) as refused:
            oidc.claims_of({**good, "userinfo": info})
        assert refused.value.status == 403


# ------------------------------------------------------------------------------------------------ writing


def test_a_deadline_is_written_as_its_last_day_and_the_time_left_in_words() -> None:
    end = "2023-10-26T00:00:00+07:00"  # an exclusive end
    assert i18n.deadline_label(end, "vi") == "hết ngày 25/10/2023"
    assert i18n.deadline_label(end, "en") == "until the end of 25/10/2023"
    assert i18n.time_left(end, datetime(2023, 10, 20, 9, 0, tzinfo=VN), "vi") == "5 ngày 15 giờ"
    assert i18n.time_left(end, datetime(2023, 10, 25, 23, 59, tzinfo=VN), "vi") == "1 phút"
    assert i18n.time_left(end, datetime(2023, 10, 26, 0, 0, tzinfo=VN), "vi") == "Đã quá hạn"


def test_numbers_and_dates_the_vietnamese_way() -> None:
    assert i18n.fmt_number(1234567.5, "vi", 1) == "1.234.567,5"
    assert i18n.fmt_number(1234567.5, "en", 1) == "1,234,567.5"
    assert i18n.fmt_date("2023-10-02") == "02/10/2023"
    assert i18n.fmt_datetime("2023-10-20T02:00:00+00:00") == "09:00 20/10/2023"
    assert i18n.parse_date_vn("2/10/2023") == datetime(2023, 10, 2).date()
    assert i18n.parse_date_vn("31/02/2023") is None


def test_a_procedures_online_level_is_named_in_vietnamese_first() -> None:
    assert [i18n.level_name(x, "vi") for x in ("full_process", "partial", "not_offered")] == [
        "Toàn trình",
        "Một phần",
        "Chưa cung cấp trực tuyến",
    ]
    assert i18n.level_name("partial", "en") == "Partial"


def test_the_portal_is_a_front_end_of_the_registry_on_8100_and_owns_no_database() -> None:
    """``hoithi up`` and ``hoithi serve`` start every registry entry; migrate, backup, retention and status keep
    to the services that own a database."""
    from shared.settings import FRONTENDS, SERVICES, service_settings

    assert FRONTENDS == ("portal",) and "portal" not in SERVICES
    own = service_settings("portal", Settings(env="test"))  # type: ignore[arg-type]
    assert isinstance(own, PortalSettings) and own.port == 8100


def test_a_services_field_path_is_shown_at_its_line_of_the_uploaded_document() -> None:
    """Campaign names fields of the parsed edition (``parts.0.initiative.deadline``); the person fixes lines."""
    doc = (
        b"tenant: t\n"
        b"edition: '2023'\n"
        b"parts:\n"
        b"  - id: initiative\n"
        b"    kind: initiative\n"
        b"    deadline: 2023-13-45\n"
        b"  - id: experience\n"
        b"    deadline: 2023-10-25\n"
    )
    assert i18n.line_of(doc, "parts.0.initiative.deadline") == 6  # the union's tag is no key: skipped
    assert i18n.line_of(doc, "parts[1].deadline") == 8
    assert i18n.line_of(doc, "edition") == 2
    assert i18n.line_of(doc, "councils.x") is None
    assert i18n.line_of(b"a: [unclosed", "a") is None


def test_a_busy_services_retry_after_reaches_the_browser() -> None:
    """A service computing a heavy report for others answers 503 with Retry-After (``shared/heavy.py``): the
    portal's page says so in Vietnamese with the same Retry-After, which the dashboard's live refresh waits."""
    busy = {
        "detail": "This report is being computed for other readers.",
        "detail_vi": "Báo cáo này đang được tính.",
    }

    async def ask() -> ServiceProblem:
        backend = Backend(PortalSettings(session_secret=SECRET))
        backend.client = httpx.AsyncClient(
            transport=httpx.MockTransport(
                lambda _: httpx.Response(503, json=busy, headers={"Retry-After": "7"})
            )
        )
        try:
            await backend.get("rewards", "/tenants/t/editions/e/priority-list", "token")
        except ServiceProblem as problem:
            return problem
        finally:
            await backend.close()
        raise AssertionError("a 503 was taken for an answer")

    problem = asyncio.run(ask())
    assert (problem.status, problem.retry_after) == (503, "7")
    c = client()

    @c.app.get("/busy")  # type: ignore[attr-defined, untyped-decorator]
    async def _busy() -> None:
        raise problem

    r = c.get("/busy")
    assert (r.status_code, r.headers.get("retry-after")) == (503, "7")
    assert "Báo cáo này đang được tính." in r.text
