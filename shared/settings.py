"""Settings: one class for what every process shares, one per service for what is its own.

Every value comes from the environment (prefix ``HOITHI_`` for the shared part, ``HOITHI_<SERVICE>_`` for a
service's own), so compose, Kubernetes and ``hoithi up`` configure processes the same way.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The services are named in one place, the registry beside them (``services/registry.py``); shared/ reads it.
REGISTRY_MODULE = "services.registry"


@lru_cache
def registry() -> dict[str, Any]:
    """Every service's registry entry by name (name, port, app, models, migrations, cli, settings)."""
    return {s.name: s for s in importlib.import_module(REGISTRY_MODULE).REGISTRY}


def load(target: str) -> Any:
    """Resolve an import string from the registry: ``package.module`` or ``package.module:attribute``."""
    module, _, attr = target.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attr) if attr else loaded


# Services own a database and consume the stream; front ends (the portal) own no data and only serve people.
SERVICES: tuple[str, ...] = tuple(n for n, s in registry().items() if s.models)
FRONTENDS: tuple[str, ...] = tuple(n for n, s in registry().items() if not s.models)
DEFAULT_PORTS: dict[str, int] = {name: s.port for name, s in registry().items()}
DEV_JWT_SECRET = "hoithi-development-secret-do-not-use-in-production"
CLOCK_FILE_NAME = "clock.json"


def default_data_dir() -> Path:
    """Where a deployment keeps its data when ``HOITHI_DATA_DIR`` is not given: ``.hoithi`` at the root of the
    checkout this code runs from (where ``make run`` keeps the demo), else ``~/.hoithi`` — never a folder that
    depends on the directory a command happens to be run from."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file():
        return root / ".hoithi"
    return Path.home() / ".hoithi"


class Settings(BaseSettings):
    """What every hoithi process shares: broker, streams, clock, auth, logging."""

    model_config = SettingsConfigDict(env_prefix="HOITHI_", extra="ignore")

    env: Literal["development", "test", "production"] = Field(
        default="development",
        description="`production` refuses the default JWT secret, one shorter than 32 bytes, and any simulated clock",
    )
    # The deployment's home: databases (SQLite), the demo clock (clock.json), mail, NATS store. Every command
    # reads it, so `hoithi clock show`, `hoithi seed` … agree with `hoithi up` from any working directory.
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="the deployment's home: SQLite files, the demo clock `clock.json`, mail, NATS store; "
        "default `.hoithi` at the checkout's root (else `~/.hoithi`), whatever directory a command runs from",
    )

    # NATS JetStream: subjects are <event_prefix>.<tenant>.<type>; every name is a setting so parallel
    # runs on one server never collide.
    nats_url: str = Field(default="nats://127.0.0.1:14222", description="the NATS server (JetStream)")
    # credentials (see shared/nats_auth.py): a creds file, or a user and password; else those `hoithi up` keeps
    nats_creds: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("HOITHI_NATS_CREDS", "NATS_CREDS"),
        description="a NATS creds file (`NATS_CREDS` is read too)",
    )
    nats_user: str | None = Field(default=None, description="NATS user (with `HOITHI_NATS_PASSWORD`)")
    nats_password: str | None = Field(default=None, description="NATS password")
    nats_password_file: Path | None = Field(
        default=None,
        description="a file holding the NATS password (instead of `HOITHI_NATS_PASSWORD`; compose, Kubernetes)",
    )
    nats_ca: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed the NATS server's certificate: connect over TLS and verify "
        "it (also what a `tls://` URL uses; without it, the system's trusted CAs)",
    )
    nats_tls_hostname: str | None = Field(
        default=None,
        description="the name the NATS server's certificate must carry (default: the URL's host)",
    )
    event_prefix: str = Field(default="hoithi", description="facts' subjects: `<prefix>.<tenant>.<type>`")
    deadletter_prefix: str = Field(
        default="hoithi-deadletter", description="dead letters' subjects: `<prefix>.<tenant>.<service>`"
    )
    replay_prefix: str = Field(default="hoithi-replay", description="replays' subjects: `<prefix>.<service>`")
    stream: str = Field(default="HOITHI", description="the stream of facts")
    deadletter_stream: str = Field(default="HOITHI_DEADLETTER", description="the dead-letter stream")
    replay_stream: str = Field(default="HOITHI_REPLAY", description="the stream of replays")
    duplicate_window: float = Field(
        default=120.0, gt=0, description="seconds the server drops a fact published twice (`Nats-Msg-Id`)"
    )
    stream_max_age_days: int = Field(default=3 * 366, description="days the stream keeps a fact")
    stream_replicas: int = Field(default=1, description="stream replicas in a NATS cluster")

    # Consumers: high max_deliver so a realistic outage never exhausts deliveries.
    max_deliver: int = Field(default=20, description="deliveries of one fact before it is dead-lettered")
    ack_wait: float = Field(
        default=30.0, description="seconds a delivery waits for its ack before redelivery"
    )
    # Periodic jobs run once per deployment under a lease (shared/lease.py).
    lease_ttl: float = Field(
        default=15.0, gt=0, description="seconds after its last renewal a periodic job's lease is taken over"
    )
    consumer_batch: int = Field(default=200, description="facts fetched at once by a consumer")
    consumer_fetch_timeout: float = Field(default=1.0, description="seconds one fetch waits for facts")
    yield_to_intake: bool = Field(
        default=True,
        description="while intake signals a rush, consumers wait after each batch (shared/pacing.py): off where "
        "the services do not share a machine's cores",
    )
    yield_factor: float = Field(
        default=3.0,
        ge=0,
        le=20,
        description="while intake is busy, a consumer waits this many times its batch's own time after it "
        "(3: at most a quarter of its speed)",
    )
    nak_base_delay: float = Field(default=0.5, description="seconds before the first redelivery after a nak")
    nak_max_delay: float = Field(default=60.0, description="longest redelivery delay (seconds; it doubles)")

    # Outbox relay
    relay_batch: int = Field(default=500, description="outbox rows the relay publishes at once")
    relay_idle_poll: float = Field(
        default=0.2, description="seconds the relay waits when the outbox is empty"
    )

    # Clock: real, or simulated from (simulated_at at real_at) advancing at `rate`.
    clock_simulated_at: datetime | None = Field(
        default=None, description="a fixed simulated anchor: this instant …"
    )
    clock_real_at: datetime | None = Field(default=None, description="… at this real instant …")
    clock_rate: float = Field(default=1.0, description="… advancing at this rate")
    clock_file: Path | None = Field(
        default=None,
        description="a shared anchor file; default `<HOITHI_DATA_DIR>/clock.json` when it exists; none of the "
        "clock settings means the real clock; every service and command, `hoithi seed` included, follows it",
    )

    # Auth
    jwt_algorithm: Literal["HS256", "RS256"] = Field(
        default="HS256",
        description="`HS256` with `HOITHI_JWT_SECRET`, or `RS256` with an identity provider's "
        "`HOITHI_JWT_JWKS_URL`",
    )
    jwt_secret: str = Field(
        default=DEV_JWT_SECRET, description="the HS256 secret (the default is public: development only)"
    )
    jwt_jwks_url: str | None = Field(default=None, description="the identity provider's JWKS (RS256)")
    jwt_issuer: str = Field(default="hoithi", description="the tokens' `iss`")
    jwt_audience: str = Field(default="hoithi", description="the tokens' `aud`")
    jwt_ttl_minutes: int = Field(default=12 * 60, description="lifetime of a token `hoithi token` issues")

    # a token whose exp - iat is longer is refused (401), whoever signed it
    jwt_max_lifetime_minutes: int = Field(
        default=12 * 60, gt=0, description="longest token lifetime accepted (`exp - iat`): longer is a 401"
    )

    # The HTTP edge (shared/guard.py): request body limits per kind of route, in bytes. An attachment's own
    # limit is the edition's (``attachments.max_bytes``); ``body_limit_upload`` is the ceiling above it.
    body_limit_json: int = Field(default=1024 * 1024, gt=0, description="bytes of a JSON body")
    body_limit_directory_import: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="bytes of a directory import (a national directory is large)",
    )
    body_limit_upload: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="bytes of an upload (the ceiling above the edition's own limit)",
    )
    # Token buckets: failed authentications per client address, writes (POST/PUT/PATCH/DELETE) per person.
    auth_failures_burst: int = Field(
        default=30, gt=0, description="failed authentications allowed at once, per address"
    )
    auth_failures_per_minute: float = Field(default=60.0, gt=0, description="… and per minute after that")
    writes_burst: int = Field(default=200, gt=0, description="writes allowed at once, per person")
    writes_per_minute: float = Field(default=120.0, gt=0, description="… and per minute after that")

    log_level: str = Field(default="INFO", description="logging level")
    log_json: bool = Field(default=True, description="one JSON object per log line")
    log_format: Literal["json", "console"] | None = Field(
        default=None, description="`json` or `console`; unset: `HOITHI_LOG_JSON` decides; production: JSON"
    )

    # Observability: how often consumer lag and stream sizes are read from NATS for /metrics (seconds)
    metrics_refresh: float = Field(
        default=5.0, gt=0, description="seconds between reads of consumer lag and stream sizes for /metrics"
    )

    @property
    def logs_as_json(self) -> bool:
        if self.env == "production" or self.log_format == "json":
            return True
        return self.log_json if self.log_format is None else False

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.jwt_ttl_minutes > self.jwt_max_lifetime_minutes:
            raise ValueError(
                "HOITHI_JWT_TTL_MINUTES is over HOITHI_JWT_MAX_LIFETIME_MINUTES: such tokens are refused"
            )
        if self.env == "production":
            if self.jwt_algorithm == "HS256" and self.jwt_secret == DEV_JWT_SECRET:
                raise ValueError("HOITHI_JWT_SECRET must be set outside development (the default is public)")
            if self.jwt_algorithm == "HS256" and len(self.jwt_secret.encode("utf-8")) < 32:
                raise ValueError(
                    "HOITHI_JWT_SECRET must be at least 32 bytes in production (HS256 key strength)"
                )
            if self.jwt_algorithm == "RS256" and not self.jwt_jwks_url:
                raise ValueError("HOITHI_JWT_JWKS_URL is required with RS256")
        return self

    @model_validator(mode="after")
    def _refuse_simulated_clock_in_production(self) -> Settings:
        """Production runs on the real clock (kept right by NTP): a simulated one would stamp receipts and
        decide deadlines at a made-up time."""
        if self.env != "production":
            return self
        for setting, value in (
            ("HOITHI_CLOCK_FILE", self.clock_file),
            ("HOITHI_CLOCK_SIMULATED_AT", self.clock_simulated_at),
            ("HOITHI_CLOCK_REAL_AT", self.clock_real_at),
        ):
            if value is not None:
                raise ValueError(
                    f"{setting}: HOITHI_ENV=production refuses a simulated clock (unset {setting}; keep the "
                    "machine's clock right with NTP)"
                )
        if self.clock_rate != 1.0:
            raise ValueError("HOITHI_CLOCK_RATE: HOITHI_ENV=production refuses a simulated clock rate")
        local = self.data_dir / CLOCK_FILE_NAME
        if local.exists():
            raise ValueError(
                f"HOITHI_DATA_DIR: HOITHI_ENV=production refuses the simulated clock in {local} (a demo's; "
                "remove it or use another data directory)"
            )
        return self

    @property
    def deployment_clock_file(self) -> Path | None:
        """The simulated-clock anchor every process and command of this deployment follows: ``clock_file`` if
        set, else ``<data_dir>/clock.json`` when ``hoithi up`` (or ``hoithi clock set``) made one; None on
        the real clock."""
        if self.clock_file is not None:
            return self.clock_file
        local = self.data_dir / CLOCK_FILE_NAME
        return local if local.exists() else None

    def event_subject(self, tenant: str, type_: str) -> str:
        return f"{self.event_prefix}.{tenant}.{type_}"

    def deadletter_subject(self, tenant: str, service: str) -> str:
        return f"{self.deadletter_prefix}.{tenant}.{service}"

    def replay_subject(self, service: str) -> str:
        return f"{self.replay_prefix}.{service}"

    @property
    def pressure_subject(self) -> str:
        """Core NATS (no stream stores it): intake's "busy" signal (``shared.pacing``)."""
        return f"{self.event_prefix}-pressure.intake"


class ServiceSettings(BaseSettings):
    """One service's own settings; read with ``service_settings(name)`` (prefix ``HOITHI_<NAME>_``). A service
    with more of its own subclasses this and names the subclass in the registry (``settings``)."""

    model_config = SettingsConfigDict(extra="ignore")

    name: str = ""
    database_url: str = Field(default="", description="its own database (SQLite file or PostgreSQL)")
    host: str = Field(default="127.0.0.1", description="HTTP address to listen on")
    port: int = Field(default=0, description="HTTP port (default: the registry's)")


def service_settings(name: str, shared: Settings | None = None) -> ServiceSettings:
    if name not in registry():
        raise ValueError(f"unknown service {name!r}; one of {', '.join(registry())}")
    shared = shared or get_settings()

    entry = registry()[name]
    base: type[ServiceSettings] = load(entry.settings) if entry.settings else ServiceSettings
    scoped = type(
        f"{base.__name__}For{name.title()}",
        (base,),
        {"model_config": SettingsConfigDict(env_prefix=f"HOITHI_{name.upper()}_", extra="ignore")},
    )
    s = scoped()
    s.name = name
    if not s.database_url:
        s.database_url = f"sqlite+aiosqlite:///{(shared.data_dir / f'{name}.db').as_posix()}"
    if not s.port:
        s.port = DEFAULT_PORTS[name]
    return s


@lru_cache
def get_settings() -> Settings:
    return Settings()
