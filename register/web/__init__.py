"""The person's pages under /app/: server-rendered, working without JavaScript, calling the API's services.
Also the regulator's desk under /regulator/ (staff_sign_in.py, desk.py), and the site around them (site.py):
the landing page at /, the favicon and the API's documentation.

`router` is the one thing the application includes. SPEC.md, "Pages and the person's session", says how
sessions, sign-in, CSRF and the Content-Security-Policy work.
"""

from __future__ import annotations

from fastapi import APIRouter

from register.web import assets, desk, disputes, notifications, pages, sign_in, site, staff_sign_in

router = APIRouter()
for _module in (sign_in, pages, disputes, notifications, assets, staff_sign_in, desk, site):
    router.include_router(_module.router)

__all__ = ["router"]
