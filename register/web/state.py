"""What the pages need beyond the API's AppState: the development identity provider (dev only) and the
OpenID Connect client (when configured). Made on first use; tests put their own in `app.state.web`."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import Request

from register.config import Environment, Settings
from register.crypto.dev_idp import DevIdentityProvider
from register.web.oidc import OidcClient


@dataclass
class WebState:
    dev_idp: DevIdentityProvider | None
    oidc: OidcClient | None

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.Client | None = None) -> WebState:
        dev = (DevIdentityProvider.load_or_create(settings.ensure_data_dir())
               if settings.env is Environment.dev else None)
        oidc = OidcClient(settings, http or httpx.Client(timeout=10.0)) if settings.oidc_enabled else None
        return cls(dev_idp=dev, oidc=oidc)


def web_state(request: Request) -> WebState:
    app_state = request.app.state
    if getattr(app_state, "web", None) is None:
        app_state.web = WebState.from_settings(app_state.register.settings)
    return app_state.web
