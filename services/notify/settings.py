"""Notify's own settings (prefix ``HOITHI_NOTIFY_``): SMTP, templates, retries. Named in the registry."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    smtp_host: str | None = Field(default=None, description="the SMTP server (none: email waits, pending)")
    smtp_port: int = Field(default=25, description="its port")
    smtp_username: str | None = Field(default=None, description="SMTP credentials")
    smtp_password: str | None = Field(default=None, description="SMTP credentials")
    smtp_starttls: bool = Field(default=False, description="upgrade with STARTTLS")
    mail_from: str = Field(default="Hội thi CCHC <no-reply@hoithi.local>", description="the From header")
    smtp_tls: bool = Field(default=False, description="implicit TLS (SMTPS, usually port 465)")
    templates_dir: Path | None = Field(
        default=None, description="the operator's template overrides: <language>/<template>.j2"
    )
    retry_base_seconds: float = Field(default=5.0, description="first retry delay, doubling")
    retry_max_seconds: float = Field(default=3600.0, description="cap of the retry delay")
    max_attempts: int = Field(default=8, description="attempts before a delivery is given up (failed)")
    webhook_allowed_hosts: str = Field(
        default="",
        description="webhook hosts/addresses/networks that may be internal and plain http, comma-separated "
        "(development and tests only; empty in production)",
    )
