"""What the pages need beyond the API's AppState: the development identity provider (dev only) and the
OpenID Connect client (when configured). Made on first use; tests put their own in `app.state.web`."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import Request

from register.config import Environment, Settings
from register.crypto.dev_idp import DevIdentityProvider
from register.web.oidc import OidcClient, OidcConfig


def staff_oidc_config(settings: Settings) -> OidcConfig:
    """The desk's relying party at the regulator staff's provider (REGISTER_STAFF_OIDC_*)."""
    assert settings.staff_oidc_issuer and settings.staff_oidc_client_id and settings.staff_oidc_redirect_url
    secret = settings.staff_oidc_client_secret
    return OidcConfig(issuer=settings.staff_oidc_issuer, client_id=settings.staff_oidc_client_id,
                      redirect_url=settings.staff_oidc_redirect_url, scopes=settings.staff_oidc_scopes,
                      client_secret=secret.get_secret_value() if secret else None,
                      max_seconds=settings.id_token_max_seconds)


@dataclass
class WebState:
    dev_idp: DevIdentityProvider | None
    oidc: OidcClient | None
    staff_oidc: OidcClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.Client | None = None) -> WebState:
        dev = (DevIdentityProvider.load_or_create(settings.ensure_data_dir())
               if settings.env is Environment.dev else None)
        http = http or httpx.Client(timeout=10.0)
        oidc = OidcClient(settings, http) if settings.oidc_enabled else None
        staff = OidcClient(settings, http, staff_oidc_config(settings)) if settings.staff_oidc_issuer else None
        return cls(dev_idp=dev, oidc=oidc, staff_oidc=staff)


def web_state(request: Request) -> WebState:
    app_state = request.app.state
    if getattr(app_state, "web", None) is None:
        app_state.web = WebState.from_settings(app_state.register.settings)
    return app_state.web
