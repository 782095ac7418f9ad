"""The portal's own settings (prefix ``HOITHI_PORTAL_``): where the services are, sessions, sign-in."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class PortalSettings(ServiceSettings):
    campaign_url: str = Field(default="", description="campaign's base URL (default: 127.0.0.1 and its port)")
    submissions_url: str = Field(
        default="", description="submissions' base URL (default: 127.0.0.1 and its port)"
    )
    rewards_url: str = Field(default="", description="rewards' base URL (default: 127.0.0.1 and its port)")
    notify_url: str = Field(default="", description="notify's base URL (default: 127.0.0.1 and its port)")
    tenant: str = Field(default="", description="the tenant the sign-in page offers (empty: typed in)")
    edition: str = Field(default="", description="the edition shown (empty: typed in at sign-in)")
    session_secret: str = Field(
        default="",
        description="key signing session cookies (empty: derived from the JWT secret; set in production)",
    )
    session_minutes: int = Field(default=480, description="a session's lifetime")
    public_url: str = Field(default="", description="the address people open (https in production)")
    demo_login: bool = Field(
        default=True,
        description="offer the demo sign-in (pick a person); always refused when HOITHI_ENV=production",
    )
    oidc_issuer: str = Field(default="", description="OpenID Connect issuer (production sign-in)")
    oidc_client_id: str = Field(default="", description="OpenID Connect client id")
    oidc_client_secret: str = Field(default="", description="OpenID Connect client secret")
    oidc_scope: str = Field(default="openid profile email", description="scopes asked for")
    live_updates: bool = Field(default=True, description="read the stream for live dashboard updates (SSE)")
    page_size: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="rows a long list shows at a time (the dashboard's not-submitted list, the reports to rule on)",
    )
