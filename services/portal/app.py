"""The portal's FastAPI application: server-rendered pages (Jinja2) over the services' HTTP APIs.

It owns no contest data and no database. Sessions are signed cookies (HttpOnly, SameSite=Lax, Secure unless
the portal is served over plain http in development); every POST form carries a CSRF token; every answer carries
the security headers of ``shared/guard.py`` with a stricter Content-Security-Policy (scripts and styles from
this origin only).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from services.portal.backend import Backend
from services.portal.settings import PortalSettings
from shared.clock import Clock
from shared.guard import _secure_headers
from shared.settings import Settings, get_settings, service_settings

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "hoithi_portal"
CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    b"form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """``shared/guard.py``'s headers on every answer (no-store: pages hold personal data), with our CSP."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"
                ]
                headers.append((b"content-security-policy", CSP))
                message["headers"] = _secure_headers(headers, authenticated=True)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def session_secret(own: PortalSettings, shared: Settings) -> str:
    if own.session_secret:
        return own.session_secret
    if shared.env == "production":
        raise RuntimeError(
            "HOITHI_PORTAL_SESSION_SECRET must be set in production (at least 32 random bytes)"
        )
    return hmac.new(shared.jwt_secret.encode(), b"hoithi-portal-session", hashlib.sha256).hexdigest()


def secure_cookies(own: PortalSettings, shared: Settings) -> bool:
    """Secure cookies except for a plain-http development portal."""
    return shared.env == "production" or own.public_url.startswith("https://")


def create_app(own: PortalSettings | None = None, shared: Settings | None = None) -> FastAPI:
    from services.portal import live, views

    shared = shared or get_settings()
    own = own or service_settings("portal", shared)  # type: ignore[assignment]
    assert isinstance(own, PortalSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backend = Backend(own)
        app.state.live = live.LiveFeed(shared, enabled=own.live_updates)
        await app.state.live.start()
        try:
            yield
        finally:
            await app.state.live.stop()
            await app.state.backend.close()

    app = FastAPI(title="hoithi portal", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = own
    app.state.shared = shared
    app.state.clock = Clock.from_settings(shared)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(own, shared),
        session_cookie=SESSION_COOKIE,
        max_age=own.session_minutes * 60,
        same_site="lax",
        https_only=secure_cookies(own, shared),
    )
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(views.router)
    views.install_errors(app)
    return app
