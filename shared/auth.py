"""Tokens prove who (``sub`` = directory person id) and which tenant; nothing more.

Roles and unit come from the service's own copy of the directory as of the request time, so a person who moves
unit or gains a role needs no new token. HS256 with a configured key in development; RS256 verified against an
identity provider's JWKS in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

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


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True)


def _unauthenticated(en: str, vi: str) -> Problem:
    p = Problem(401, en, vi, code="unauthenticated")
    p.extra = {}
    return p


def verify_token(settings: Settings, authorization: str | None) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise _unauthenticated("A bearer token is required.", "Cần mã xác thực (Bearer token).")
    token = authorization.split(" ", 1)[1].strip()
    try:
        if settings.jwt_algorithm == "RS256":
            assert settings.jwt_jwks_url
            key: Any = _jwks_client(settings.jwt_jwks_url).get_signing_key_from_jwt(token).key
        else:
            key = settings.jwt_secret
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["sub", "exp", "tenant"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthenticated("The token has expired.", "Mã xác thực đã hết hạn.") from exc
    except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
        raise _unauthenticated(f"The token is invalid: {exc}.", "Mã xác thực không hợp lệ.") from exc
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
