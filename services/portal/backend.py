"""The services' public HTTP APIs, called with the signed-in person's own token (the portal has no rights of
its own: what a page shows is what that person may read)."""

from __future__ import annotations

from typing import Any

import httpx

from services.portal.settings import PortalSettings
from shared.settings import DEFAULT_PORTS

BACKENDS = ("campaign", "submissions", "rewards", "notify")


class ServiceProblem(Exception):
    """A service said no (RFC 9457): ``detail_vi``/``detail`` for the page, ``fields`` for the form."""

    def __init__(self, status: int, body: dict[str, Any], retry_after: str | None = None) -> None:
        super().__init__(body.get("detail") or str(status))
        self.status = status
        self.body = body
        self.retry_after = retry_after  # a busy service's Retry-After (seconds), passed on to the browser

    def detail(self, lang: str) -> str:
        en, vi = self.body.get("detail") or "", self.body.get("detail_vi") or self.body.get("detail") or ""
        return en if lang == "en" and en else vi

    def fields(self, lang: str) -> dict[str, str]:
        """Field path (``procedures[0].used_on``) → message in ``lang``; several for one field are joined."""
        out: dict[str, str] = {}
        for err in self.body.get("errors") or []:
            name = str(err.get("field", ""))
            msg = err.get("message") if lang == "en" else (err.get("message_vi") or err.get("message"))
            out[name] = f"{out[name]} {msg}" if name in out else str(msg)
        return out


class Unavailable(Exception):
    """A service did not answer (down, or timed out)."""


class Backend:
    def __init__(self, settings: PortalSettings) -> None:
        self.urls = {
            name: (getattr(settings, f"{name}_url") or f"http://127.0.0.1:{DEFAULT_PORTS[name]}").rstrip("/")
            for name in BACKENDS
        }
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0))

    async def close(self) -> None:
        await self.client.aclose()

    async def request(
        self, service: str, method: str, path: str, token: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        try:
            r = await self.client.request(method, self.urls[service] + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{service}: {exc!r}") from exc
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {}
            if not isinstance(body, dict):
                body = {}
            if r.status_code >= 500 and not body.get("detail_vi"):
                raise Unavailable(f"{service}: {r.status_code}")
            raise ServiceProblem(r.status_code, body, r.headers.get("Retry-After"))
        return r

    async def get(self, service: str, path: str, token: str, **kwargs: Any) -> Any:
        return (await self.request(service, "GET", path, token, **kwargs)).json()

    async def send(self, service: str, method: str, path: str, token: str, **kwargs: Any) -> Any:
        r = await self.request(service, method, path, token, **kwargs)
        return r.json() if r.content else None
