"""Tokens: HS256 in development, RS256 against an identity provider's JWKS; tenant scope."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import authenticate, issue_token, require_tenant, verify_token
from shared.problems import Problem
from shared.settings import Settings


def test_a_development_token_names_the_person_and_tenant() -> None:
    s = Settings(env="test")
    p = verify_token(s, f"Bearer {issue_token(s, 'p-0002', 'soctrang-stnmt')}")
    assert (p.person_id, p.tenant) == ("p-0002", "soctrang-stnmt")


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer not-a-jwt"])
def test_missing_or_malformed_tokens_are_401_in_both_languages(header: str | None) -> None:
    with pytest.raises(Problem) as e:
        verify_token(Settings(env="test"), header)
    assert e.value.status == 401 and e.value.detail_vi


def test_a_token_signed_with_another_key_or_expired_is_refused() -> None:
    s = Settings(env="test")
    forged = jwt.encode(
        {"sub": "p-1", "tenant": "t", "iss": "hoithi", "aud": "hoithi", "exp": 9999999999}, "x" * 40
    )
    with pytest.raises(Problem):
        verify_token(s, f"Bearer {forged}")
    with pytest.raises(Problem) as e:
        verify_token(s, f"Bearer {issue_token(s, 'p-1', 't', ttl_minutes=-1)}")
    assert "hết hạn" in e.value.detail_vi


def test_another_tenants_token_is_403() -> None:
    s = Settings(env="test")
    p = verify_token(s, f"Bearer {issue_token(s, 'p-1', 'other')}")
    with pytest.raises(Problem) as e:
        require_tenant(p, "soctrang-stnmt")
    assert e.value.status == 403


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Settings(env="production")


@dataclass
class IdentityProvider:
    url: str
    key: rsa.RSAPrivateKey
    gets: list[float] = field(default_factory=list)  # when each JWKS request arrived
    delay: float = 0.0  # a slow provider answers after this long


@pytest.fixture
def jwks() -> Iterator[IdentityProvider]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()
    idp: IdentityProvider

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            idp.gets.append(time.monotonic())
            time.sleep(idp.delay)  # the provider's own slowness (its thread, not the test's event loop)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    idp = IdentityProvider(f"http://127.0.0.1:{srv.server_port}/jwks.json", key)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield idp
    srv.shutdown()


def _rs256(key: rsa.RSAPrivateKey, kid: str = "k1") -> str:
    claims = {
        "sub": "p-0002",
        "tenant": "soctrang-stnmt",
        "iss": "hoithi",
        "aud": "hoithi",
        "exp": datetime.now(UTC) + timedelta(minutes=5),
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


async def test_rs256_tokens_are_verified_against_the_identity_providers_jwks_fetched_once(
    jwks: IdentityProvider,
) -> None:
    s = Settings(env="production", jwt_algorithm="RS256", jwt_jwks_url=jwks.url)
    for _ in range(3):
        assert (await authenticate(s, f"Bearer {_rs256(jwks.key)}")).person_id == "p-0002"
    assert len(jwks.gets) == 1  # cached
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Problem) as e:
        await authenticate(s, f"Bearer {_rs256(other)}")
    assert e.value.status == 401
    with pytest.raises(Problem) as e:  # a key the provider does not have: 401, and no fetch storm
        for _ in range(5):
            await authenticate(s, f"Bearer {_rs256(other, kid='made-up')}")
    assert e.value.status == 401 and len(jwks.gets) == 1


async def test_a_slow_identity_provider_does_not_stall_other_requests(jwks: IdentityProvider) -> None:
    """The key fetch is awaited, not run on the event loop: while the provider takes 0.5 s to answer, the
    service's other coroutines (requests, consumers, the relay) keep running."""
    jwks.delay = 0.5
    s = Settings(env="production", jwt_algorithm="RS256", jwt_jwks_url=jwks.url)
    ticks = 0
    stop = asyncio.Event()

    async def other_work() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    worker = asyncio.create_task(other_work())
    try:
        principals = await asyncio.gather(
            *(authenticate(s, f"Bearer {_rs256(jwks.key)}") for _ in range(4))  # four requests at once
        )
    finally:
        stop.set()
        await worker
    assert {p.person_id for p in principals} == {"p-0002"}
    assert ticks >= 20, f"the event loop was blocked: only {ticks} ticks during a 0.5 s fetch"
    assert len(jwks.gets) == 1  # the concurrent requests shared one fetch


def test_verify_token_never_fetches_rs256_keys_on_the_event_loop(jwks: IdentityProvider) -> None:
    s = Settings(env="production", jwt_algorithm="RS256", jwt_jwks_url=jwks.url)
    with pytest.raises(RuntimeError, match="authenticate"):
        verify_token(s, f"Bearer {_rs256(jwks.key)}")
    assert jwks.gets == []
