"""The HTTP edge every service shares: authentication before the body, body limits, throttling, headers.

``HttpGuard`` is a pure ASGI middleware in front of every route, so an anonymous client can never make a
service read (let alone parse) a body:

- a route that needs a caller (its dependencies include ``current_caller``) is refused with 401 before a byte
  of its body is read when the bearer token does not verify; the verified principal is handed to the route;
- failed authentications are throttled per client address, and writes per person (token buckets): 429 with
  ``Retry-After``;
- every request body has a limit (``Content-Length`` over it → 413 at once; a streamed body over it → 413 as
  soon as it passes, nothing more read). The limit is the route's kind (``@body_limit("directory_import")``),
  each a setting; JSON bodies by default;
- every response carries ``X-Content-Type-Options: nosniff``, a Content-Security-Policy with
  ``frame-ancestors 'none'`` and ``Referrer-Policy: no-referrer``; authenticated answers ``Cache-Control:
  no-store`` (they hold personal data).
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qsl

from fastapi import Query
from fastapi.routing import APIRoute

from shared.auth import Principal, authenticate
from shared.bounds import BusinessDate, Instant
from shared.errors import Problem, field_error
from shared.problems import PROBLEM_JSON, problem_body
from shared.settings import Settings

BodyKind = Literal["json", "directory_import", "upload"]
F = TypeVar("F", bound=Callable[..., Any])

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def body_limit(kind: BodyKind) -> Callable[[F], F]:
    """Mark a route's body limit (default ``json``); the sizes are settings (``HOITHI_BODY_LIMIT_<KIND>``)."""

    def mark(endpoint: F) -> F:
        endpoint.__dict__["hoithi_body_limit"] = kind
        return endpoint

    return mark


def limit_of(settings: Settings, kind: str) -> int:
    return int(getattr(settings, f"body_limit_{kind}"))


# ---------------------------------------------------------------------------------------------- throttling


class TokenBuckets:
    """One token bucket per key (``burst`` tokens, refilled at ``per_minute``), the least recently used keys
    forgotten beyond ``max_keys`` so an address sweep cannot grow memory without bound."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 50_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[Any, tuple[float, float]] = OrderedDict()

    def _level(self, key: Any) -> float:
        now = self.clock()
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def wait(self, key: Any) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        level = self._level(key)
        if level >= 1.0:
            return 0.0
        return (1.0 - level) / self.rate if self.rate > 0 else 3600.0

    def take(self, key: Any) -> float:
        """Spend one token; returns 0 if there was one, else the seconds until there is (nothing spent)."""
        level = self._level(key)
        if level < 1.0:
            self._buckets[key] = (level, self.clock())
            self._buckets.move_to_end(key)
            return self.wait(key)
        self._buckets[key] = (level - 1.0, self.clock())
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return 0.0


# ---------------------------------------------------------------------------------------------- the middleware


class Refused(Exception):
    """Raised from ``receive`` to stop the app reading a body it must not read; the guard answers instead."""


def _needs_caller(route: APIRoute) -> bool:
    from shared.service import current_caller  # service.py imports this module

    todo = list(route.dependant.dependencies)
    while todo:
        d = todo.pop()
        if d.call is current_caller or getattr(d.call, "hoithi_needs_caller", False):
            return True
        todo.extend(d.dependencies)
    return False


class Throttles:
    """The token buckets of one process: failed authentications per client address, writes per person."""

    def __init__(self, settings: Settings) -> None:
        self.auth_failures = TokenBuckets(settings.auth_failures_per_minute, settings.auth_failures_burst)
        self.writes = TokenBuckets(settings.writes_per_minute, settings.writes_burst)

    def write(self, method: str, tenant: str, person_id: str) -> None:
        """Spend one of the person's writes (POST/PUT/PATCH/DELETE); raises 429 when none is left."""
        if method in _BODY_METHODS:
            wait = self.writes.take((tenant, person_id))
            if wait > 0:
                raise too_many(wait)


class HttpGuard:
    """See the module's docstring. The route is known once the router has chosen it (``scope["route"]``),
    which is before the app first calls ``receive``: that first call is where the token and the size are
    checked, so a refused body is never read."""

    def __init__(self, app: Any, settings: Settings, throttles: Throttles) -> None:
        self.app = app
        self.settings = settings
        self.throttles = throttles
        self._routes: dict[int, tuple[bool, str]] = {}

    def _route(self, route: Any) -> tuple[bool, str]:
        """(needs a caller, body kind) of the route that answers."""
        if not isinstance(route, APIRoute):
            return False, "json"
        known = self._routes.get(id(route))
        if known is None:
            kind = getattr(route.endpoint, "hoithi_body_limit", "json")
            known = self._routes[id(route)] = (_needs_caller(route), kind)
        return known

    async def _verify(self, authorization: str | None) -> Principal:
        return await authenticate(self.settings, authorization)  # RS256 keys are fetched without blocking

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        client = (scope.get("client") or ("?", 0))[0]
        refusal: Problem | None = None
        status = 0

        async def send_guarded(message: Any) -> None:
            nonlocal status
            if refusal is not None:
                return  # the app's own answer to the interrupted read (a 400) is replaced by the guard's
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _secure_headers(
                    list(message.get("headers", [])), authorization is not None
                )
            await send(message)

        if nul := _nul_in(scope):
            await _answer(send_guarded, scope, nul)
            return
        if not scope["path"].startswith("/health/"):
            wait = self.throttles.auth_failures.wait(client)
            if wait > 0:
                await _answer(send_guarded, scope, too_many(wait))
                return

        first = True
        received = 0
        limit = self.settings.body_limit_json

        async def receive_guarded() -> Any:
            nonlocal first, received, limit, refusal
            if first:
                first = False
                needs_caller, kind = self._route(scope.get("route"))
                limit = limit_of(self.settings, kind)
                if needs_caller:
                    try:
                        scope.setdefault("state", {})["principal"] = await self._verify(authorization)
                    except Problem as exc:
                        refusal = exc
                        raise Refused from None
                length = headers.get(b"content-length")
                if length is not None and (not length.isdigit() or int(length) > limit):
                    refusal = too_large(limit)
                    raise Refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refusal = too_large(limit)
                    raise Refused
            return message

        try:
            await self.app(scope, receive_guarded, send_guarded)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None:
            answer, refusal = refusal, None
            status = answer.status
            extra = {"www-authenticate": "Bearer"} if answer.status == 401 else None
            await _answer(send_guarded, scope, answer, extra)
        if status == 401:
            self.throttles.auth_failures.take(client)


def _nul_in(scope: Any) -> Problem | None:
    """A NUL in the path or a query parameter: no name or id has one, and PostgreSQL refuses it in text (a
    500 deep inside); refused at the edge with the parameter named."""
    fields = []
    if "\x00" in scope["path"]:
        fields.append("path")
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" in query or "\x00" in query:
        fields += [k or "query" for k, v in parse_qsl(query, keep_blank_values=True) if "\x00" in k + v]
    if not fields:
        return None
    return Problem(
        422,
        "A NUL character is not allowed in: " + ", ".join(fields),
        "Không được có ký tự NUL trong: " + ", ".join(fields),
        code="validation",
        errors=[
            field_error(f, "A NUL character is not allowed.", "Không được có ký tự NUL.", "nul_character")
            for f in fields
        ],
    )


def _secure_headers(headers: list[tuple[bytes, bytes]], authenticated: bool) -> list[tuple[bytes, bytes]]:
    names = {k.lower() for k, _ in headers}
    ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
    # HTML pages (the API docs) load their own scripts; everything else is data and loads nothing.
    csp = (
        b"frame-ancestors 'none'"
        if ctype.startswith(b"text/html")
        else b"default-src 'none'; frame-ancestors 'none'"
    )
    out = [(k, v) for k, v in headers if not (authenticated and k.lower() == b"cache-control")]
    out += [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]
    if b"content-security-policy" not in names:
        out.append((b"content-security-policy", csp))
    if authenticated:
        out.append((b"cache-control", b"no-store"))
    return out


def too_large(limit: int) -> Problem:
    return Problem(
        413,
        f"The request body is over the limit of {limit} bytes for this route.",
        f"Nội dung gửi lên vượt giới hạn {limit} byte của chức năng này.",
        code="too_large",
    )


def too_many(wait: float) -> Problem:
    seconds = max(1, math.ceil(wait))
    return Problem(
        429,
        f"Too many requests; try again in {seconds} s.",
        f"Quá nhiều yêu cầu; vui lòng thử lại sau {seconds} giây.",
        code="too_many_requests",
        extra={"retry_after": seconds},
    )


async def _answer(send: Any, scope: Any, exc: Problem, headers: dict[str, str] | None = None) -> None:
    body = problem_body(
        exc.status,
        exc.detail,
        exc.detail_vi,
        code=exc.code,
        instance=scope.get("path", ""),
        errors=exc.errors,
    )
    body.update(exc.extra)
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    out = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(raw)).encode())]
    if exc.status == 429:
        out.append((b"retry-after", str(exc.extra["retry_after"]).encode()))
    out += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": out})
    await send({"type": "http.response.body", "body": raw})


# ---------------------------------------------------------------------------------------------- bounded inputs

AsOfDate = Annotated[BusinessDate | None, Query(description="a date, YYYY-MM-DD (default: today)")]
AsOfInstant = Annotated[
    Instant | None,
    Query(description="business time, an instant (no offset = Vietnam time); default: now"),
]
