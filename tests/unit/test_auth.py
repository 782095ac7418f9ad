"""Tokens: HS256 in development, RS256 against an identity provider's JWKS; tenant scope."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import issue_token, require_tenant, verify_token
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


@pytest.fixture
def jwks() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}/jwks.json", key
    srv.shutdown()


def test_rs256_tokens_are_verified_against_the_identity_providers_jwks(
    jwks: tuple[str, rsa.RSAPrivateKey],
) -> None:
    url, key = jwks
    s = Settings(env="production", jwt_algorithm="RS256", jwt_jwks_url=url)
    claims = {
        "sub": "p-0002",
        "tenant": "soctrang-stnmt",
        "iss": "hoithi",
        "aud": "hoithi",
        "exp": datetime.now(UTC) + timedelta(minutes=5),
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    assert verify_token(s, f"Bearer {token}").person_id == "p-0002"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Problem):
        verify_token(s, f"Bearer {jwt.encode(claims, other, algorithm='RS256', headers={'kid': 'k1'})}")
