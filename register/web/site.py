"""The site around the API, served by the register itself so that nothing needs the internet: the landing
page at `/`, the favicon, and the API's documentation, Swagger UI at `/docs` and ReDoc at `/redoc`.

FastAPI's own documentation pages load their scripts from a CDN and are blank offline; these pages load
the same scripts from the pinned `fastapi-offline` package, under `/docs/assets/`, and no inline script,
so their Content-Security-Policy allows nothing from another host.
"""

from __future__ import annotations

from functools import cache
from html import escape
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import HTMLResponse, Response

from register.api.deps import Public
from register.errors import NotFound
from register.web.render import CSP, PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PublicDep = Annotated[None, Depends(Public())]

JS, CSS = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
VENDOR = "fastapi_offline"  # Swagger UI 5 and ReDoc 2, as their projects publish them
ASSETS: dict[str, tuple[str, str]] = {  # name -> (package, media type); the file is <package>/static/<name>
    "swagger-ui-bundle.js": (VENDOR, JS),
    "swagger-ui.css": (VENDOR, CSS),
    "redoc.standalone.js": (VENDOR, JS),
    "swagger-init.js": ("register.web", JS),
    "docs.css": ("register.web", CSS),
}
# The pages' policy (register/web/render.py), plus what each viewer needs, and nothing from another host.
# Swagger UI draws its icons from data: URIs. ReDoc's styled-components write <style> elements at run time,
# its search index runs in a blob: worker, and the policy is what keeps its attribution logo from loading
# from the vendor's CDN (ReDoc then leaves the logo out).
SWAGGER_CSP = CSP.replace("img-src 'self'", "img-src 'self' data:")
REDOC_CSP = SWAGGER_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'") + "; worker-src blob:"


@cache
def _read(package: str, name: str) -> bytes:
    return (resources.files(package) / "static" / name).read_bytes()


def _get(path: str):  # GET and HEAD, as FastAPI's own documentation pages answered (`curl -I`)
    return router.api_route(path, methods=["GET", "HEAD"])


@_get("/")
def landing(_: PublicDep) -> Response:
    """A newcomer's first stop: where a person's pages and the API's documentation are."""
    return HTMLResponse(_read("register.web", "landing.html"))


@_get("/favicon.ico")
def favicon(_: PublicDep) -> Response:
    return Response(_read("register.web", "favicon.ico"), media_type="image/x-icon",
                    headers={"Cache-Control": "public, max-age=86400"})


def _docs_page(request: Request, viewer: str, *, styles: tuple[str, ...], body: str, csp: str) -> Response:
    links = "".join(f'<link rel="stylesheet" href="/docs/assets/{name}">\n' for name in styles)
    html = ('<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(request.app.title)}: the API ({viewer})</title>\n"
            f'<link rel="icon" href="/favicon.ico">\n{links}</head>\n{body}\n</html>\n')  # fmt: skip
    return HTMLResponse(html, headers={"Content-Security-Policy": csp})


@_get("/docs")
def swagger_ui(request: Request, _: PublicDep) -> Response:
    """The API to read and to try (Swagger UI)."""
    return _docs_page(request, "Swagger UI", styles=("swagger-ui.css", "docs.css"), csp=SWAGGER_CSP, body=(
        f'<body data-openapi="{escape(request.app.openapi_url or "")}">\n<div id="swagger-ui"></div>\n'
        '<script src="/docs/assets/swagger-ui-bundle.js"></script>\n'
        '<script src="/docs/assets/swagger-init.js"></script>\n</body>'))


@_get("/redoc")
def redoc(request: Request, _: PublicDep) -> Response:
    """The API to read (ReDoc)."""
    return _docs_page(request, "ReDoc", styles=("docs.css",), csp=REDOC_CSP, body=(
        f'<body>\n<redoc spec-url="{escape(request.app.openapi_url or "")}"></redoc>\n'
        '<script src="/docs/assets/redoc.standalone.js"></script>\n</body>'))


@_get("/docs/assets/{name}")
def docs_asset(name: Annotated[str, Path(max_length=40)], _: PublicDep) -> Response:
    """The viewers' scripts and styles, by name (no directory listing, nothing else)."""
    if name not in ASSETS:
        raise NotFound("no such file")
    package, media_type = ASSETS[name]
    return Response(_read(package, name), media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})
