"""Notify's own settings (prefix ``HOITHI_NOTIFY_``): SMTP, templates, retries. Named in the registry."""

from __future__ import annotations

from pathlib import Path

from shared.settings import ServiceSettings


class NotifySettings(ServiceSettings):
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
