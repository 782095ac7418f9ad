"""Tokens prove who (``sub`` = directory person id) and which tenant; nothing more.

Roles and unit come from the service's own copy of the directory as of the request time, so a person who moves
unit or gains a role needs no new token. HS256 with a configured key in development; RS256 verified against an
identity provider's JWKS in production. Requests go through ``authenticate`` (async): the JWKS is fetched with
``httpx.AsyncClient`` — never a blocking call on the event loop — and cached; ``verify_token`` is the same check
with the key in hand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt

from shared.problems import Problem
from shared.settings import Settings


@dataclass(frozen=True)
class Principal:
    person_id: str
    tenant: str
    claims: dict[str, Any]


def issue_token(settings: Settings, person_id: str, tenant: str, *, ttl_minutes: int | None = None) -> str:
    """A development token (HS256). Production tokens come from the identity provider."""
    if settings.jwt_algorithm != "HS256":
        raise RuntimeError("tokens are issued by the identity provider when HOITHI_JWT_ALGORITHM=RS256")
    ttl = ttl_minutes or settings.jwt_ttl_minutes
    if ttl > settings.jwt_max_lifetime_minutes:
        raise ValueError(
            f"a token for {ttl} minutes would be refused: the maximum is "
            f"{settings.jwt_max_lifetime_minutes} (HOITHI_JWT_MAX_LIFETIME_MINUTES)"
        )
    now = datetime.now(UTC)
    claims = {
        "sub": person_id,
        "tenant": tenant,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=ttl)).timestamp()),
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


log = logging.getLogger("hoithi.auth")


class JwksKeys:
    """An identity provider's signing keys by ``kid``, fetched without blocking the event loop and cached.

    The set is fetched again after ``ttl`` seconds, or sooner when a token names a key not in it (the
    provider rotated its keys) — but not more often than every ``min_refetch`` seconds, so tokens with made-up
    ``kid``s cannot make us hammer the provider. Concurrent requests share one fetch. While the provider is
    unreachable, the keys already known keep working."""

    def __init__(
        self, url: str, *, ttl: float = 300.0, min_refetch: float = 30.0, timeout: float = 5.0
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.min_refetch = min_refetch
        self.timeout = timeout
        self.fetches = 0
        self._keys: dict[str | None, Any] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key_for(self, token: str) -> Any:
        kid = jwt.get_unverified_header(token).get("kid")
        if kid not in self._keys or self._stale():
            async with self._lock:  # one fetch for every request waiting on it
                if self._stale() or (kid not in self._keys and self._may_refetch()):
                    await self._fetch()
        if kid in self._keys:
            return self._keys[kid]
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        raise jwt.InvalidTokenError(f"no signing key {kid!r} at the identity provider")

    def _stale(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at >= self.ttl

    def _may_refetch(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at >= self.min_refetch

    async def _fetch(self) -> None:
        self.fetches += 1
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                r = await client.get(self.url)
                r.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(r.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            if not self._keys:
                raise jwt.PyJWKClientError(f"could not fetch the signing keys: {exc!r}") from exc
            log.warning("could not refresh the signing keys (keeping %d): %r", len(self._keys), exc)
            self._fetched_at = time.monotonic() - self.ttl + self.min_refetch  # try again a little later
            return
        self._keys = {k.key_id: k.key for k in keys}
        self._fetched_at = time.monotonic()


_JWKS: dict[str, JwksKeys] = {}


def jwks_keys(url: str) -> JwksKeys:
    """The one cache of ``url``'s keys in this process."""
    if url not in _JWKS:
        _JWKS[url] = JwksKeys(url)
    return _JWKS[url]


def _unauthenticated(en: str, vi: str) -> Problem:
    p = Problem(401, en, vi, code="unauthenticated")
    p.extra = {}
    return p


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise _unauthenticated("A bearer token is required.", "Cần mã xác thực (Bearer token).")
    return authorization.split(" ", 1)[1].strip()


def _invalid(exc: Exception) -> Problem:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return _unauthenticated("The token has expired.", "Mã xác thực đã hết hạn.")
    return _unauthenticated(f"The token is invalid: {exc}.", "Mã xác thực không hợp lệ.")


async def authenticate(settings: Settings, authorization: str | None) -> Principal:
    """The request's principal: RS256 keys come from the identity provider's JWKS, fetched asynchronously and
    cached (``JwksKeys``); HS256 uses the configured secret."""
    token = _bearer(authorization)
    key: Any = None
    if settings.jwt_algorithm == "RS256":
        assert settings.jwt_jwks_url
        try:
            key = await jwks_keys(settings.jwt_jwks_url).key_for(token)
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
            raise _invalid(exc) from exc
    return verify_token(settings, authorization, key=key)


def verify_token(settings: Settings, authorization: str | None, *, key: Any = None) -> Principal:
    """Check the token with ``key`` in hand (default: the HS256 secret). For RS256 the key comes from
    ``authenticate``, which fetches it without blocking."""
    token = _bearer(authorization)
    if key is None:
        if settings.jwt_algorithm == "RS256":
            raise RuntimeError("RS256 keys are fetched asynchronously: use `await authenticate(...)`")
        key = settings.jwt_secret
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["sub", "exp", "tenant"]},
        )
    except jwt.InvalidTokenError as exc:
        raise _invalid(exc) from exc
    issued = claims.get("iat")
    start = issued if isinstance(issued, int | float) else datetime.now(UTC).timestamp()
    if float(claims["exp"]) - float(start) > settings.jwt_max_lifetime_minutes * 60:
        raise _unauthenticated(
            f"The token is valid for longer than {settings.jwt_max_lifetime_minutes} minutes.",
            f"Mã xác thực có thời hạn dài hơn mức cho phép ({settings.jwt_max_lifetime_minutes} phút).",
        )
    return Principal(person_id=str(claims["sub"]), tenant=str(claims["tenant"]), claims=claims)


def require_tenant(principal: Principal, tenant: str) -> None:
    if principal.tenant != tenant:
        raise Problem(
            403,
            f"This token is for tenant {principal.tenant!r}, not {tenant!r}.",
            f"Mã xác thực thuộc đơn vị {principal.tenant!r}, không phải {tenant!r}.",
            code="wrong_tenant",
        )
