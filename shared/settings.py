"""Settings: one class for what every process shares, one per service for what is its own.

Every value comes from the environment (prefix ``HOITHI_`` for the shared part, ``HOITHI_<SERVICE>_`` for a
service's own), so compose, Kubernetes and ``hoithi up`` configure processes the same way.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES: tuple[str, ...] = ("campaign", "submissions", "rewards", "notify")
DEFAULT_PORTS: dict[str, int] = {"campaign": 8101, "submissions": 8102, "rewards": 8103, "notify": 8104}
DEV_JWT_SECRET = "hoithi-development-secret-do-not-use-in-production"


class Settings(BaseSettings):
    """What every hoithi process shares: broker, streams, clock, auth, logging."""

    model_config = SettingsConfigDict(env_prefix="HOITHI_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".hoithi")

    # NATS JetStream: subjects are <event_prefix>.<tenant>.<type>; every name is a setting so parallel
    # runs on one server never collide.
    nats_url: str = "nats://127.0.0.1:14222"
    event_prefix: str = "hoithi"
    deadletter_prefix: str = "hoithi-deadletter"
    replay_prefix: str = "hoithi-replay"
    stream: str = "HOITHI"
    deadletter_stream: str = "HOITHI_DEADLETTER"
    replay_stream: str = "HOITHI_REPLAY"
    duplicate_window: float = Field(default=120.0, gt=0, description="seconds")
    stream_max_age_days: int = 3 * 366
    stream_replicas: int = 1

    # Consumers: high max_deliver so a realistic outage never exhausts deliveries.
    max_deliver: int = 20
    ack_wait: float = 30.0
    # Periodic jobs run once per deployment under a lease (shared/lease.py): a holder that stops renewing is
    # taken over this many seconds after its last renewal.
    lease_ttl: float = Field(default=15.0, gt=0, description="seconds")
    consumer_batch: int = 200
    consumer_fetch_timeout: float = 1.0
    nak_base_delay: float = 0.5
    nak_max_delay: float = 60.0

    # Outbox relay
    relay_batch: int = 500
    relay_idle_poll: float = 0.2

    # Clock: real, or simulated from (simulated_at at real_at) advancing at `rate`.
    clock_simulated_at: datetime | None = None
    clock_real_at: datetime | None = None
    clock_rate: float = 1.0
    clock_file: Path | None = None  # a shared anchor file: see shared/clock.py

    # Auth
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: str = DEV_JWT_SECRET
    jwt_jwks_url: str | None = None
    jwt_issuer: str = "hoithi"
    jwt_audience: str = "hoithi"
    jwt_ttl_minutes: int = 12 * 60

    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env == "production":
            if self.jwt_algorithm == "HS256" and self.jwt_secret == DEV_JWT_SECRET:
                raise ValueError("HOITHI_JWT_SECRET must be set outside development (the default is public)")
            if self.jwt_algorithm == "RS256" and not self.jwt_jwks_url:
                raise ValueError("HOITHI_JWT_JWKS_URL is required with RS256")
        return self

    def event_subject(self, tenant: str, type_: str) -> str:
        return f"{self.event_prefix}.{tenant}.{type_}"

    def deadletter_subject(self, tenant: str, service: str) -> str:
        return f"{self.deadletter_prefix}.{tenant}.{service}"

    def replay_subject(self, service: str) -> str:
        return f"{self.replay_prefix}.{service}"


class ServiceSettings(BaseSettings):
    """One service's own settings; read with ``service_settings(name)`` (prefix ``HOITHI_<NAME>_``)."""

    model_config = SettingsConfigDict(extra="ignore")

    name: str = ""
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    # notify's SMTP (other services ignore them)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "Hội thi CCHC <no-reply@hoithi.local>"
    smtp_tls: bool = False  # implicit TLS (SMTPS, usually port 465); smtp_starttls for STARTTLS
    templates_dir: Path | None = None  # an operator's template overrides: <language>/<template>.j2
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 3600.0
    max_attempts: int = 8


def service_settings(name: str, shared: Settings | None = None) -> ServiceSettings:
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    shared = shared or get_settings()

    class _Scoped(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix=f"HOITHI_{name.upper()}_", extra="ignore")

    s = _Scoped()
    s.name = name
    if not s.database_url:
        s.database_url = f"sqlite+aiosqlite:///{(shared.data_dir / f'{name}.db').as_posix()}"
    if not s.port:
        s.port = DEFAULT_PORTS[name]
    return s


@lru_cache
def get_settings() -> Settings:
    return Settings()
