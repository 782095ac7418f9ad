"""Production sign-in: OpenID Connect (authorization code flow with PKCE) against the agency's identity
provider, with authlib. The provider's access token is an RS256 JWT the services verify against its JWKS
(``HOITHI_JWT_ALGORITHM=RS256``, ``HOITHI_JWT_JWKS_URL``); it names the person (``sub``) and the tenant
(``tenant`` claim), exactly as a development token does, and the portal passes it on unchanged."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from services.portal.backend import ServiceProblem

CLIENT = "agency"


def oauth_client(request: Request) -> Any:
    """The registered authlib client (made once per application)."""
    from authlib.integrations.starlette_client import OAuth

    state = request.app.state
    if getattr(state, "oauth", None) is None:
        own = state.settings
        oauth = OAuth()
        oauth.register(
            CLIENT,
            server_metadata_url=own.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_id=own.oidc_client_id,
            client_secret=own.oidc_client_secret or None,
            client_kwargs={"scope": own.oidc_scope, "code_challenge_method": "S256"},
        )
        state.oauth = oauth
    return state.oauth.create_client(CLIENT)


def redirect_uri(request: Request) -> str:
    public = request.app.state.settings.public_url
    return (public.rstrip("/") + "/auth/callback") if public else str(request.url_for("oidc_callback"))


async def start(request: Request) -> Response:
    if not (request.app.state.settings.oidc_issuer and request.app.state.settings.oidc_client_id):
        raise ServiceProblem(
            404,
            {
                "detail": "OpenID Connect is not configured.",
                "detail_vi": "Chưa cấu hình đăng nhập OpenID Connect.",
            },
        )
    return await oauth_client(request).authorize_redirect(request, redirect_uri(request))  # type: ignore[no-any-return]


def claims_of(token: dict[str, Any]) -> tuple[str, str, str]:
    """(access token, person id, tenant) from the provider's token answer (``userinfo`` is the verified ID
    token's claims); a person or tenant missing is a refusal, never a guess."""
    info = token.get("userinfo") or {}
    access = token.get("access_token")
    person, tenant = info.get("sub"), info.get("tenant")
    if not access or not person or not tenant:
        raise ServiceProblem(
            403,
            {
                "detail": "The identity provider's answer names no person or tenant.",
                "detail_vi": "Nhà cung cấp định danh không cho biết người dùng hoặc cơ quan.",
            },
        )
    return str(access), str(person), str(tenant)


async def finish(request: Request) -> tuple[str, str, str]:
    from authlib.integrations.base_client.errors import OAuthError

    try:
        token = await oauth_client(request).authorize_access_token(request)
    except OAuthError as exc:
        raise ServiceProblem(
            403,
            {
                "detail": f"Sign-in failed: {exc.error}.",
                "detail_vi": "Đăng nhập không thành công, vui lòng thử lại.",
            },
        ) from exc
    return claims_of(token)
