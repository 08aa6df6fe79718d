"""The pages' two static files, served by name from the package (no directory listing, nothing else)."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from register.api.deps import Public
from register.errors import NotFound
from register.web.render import PageRoute

router = APIRouter(prefix="/app/static", route_class=PageRoute, include_in_schema=False)
FILES = {"style.css": "text/css; charset=utf-8", "idle.js": "text/javascript; charset=utf-8"}


@router.get("/{name}")
def static_file(name: Annotated[str, Path(max_length=40)], _: Annotated[None, Depends(Public())]) -> Response:
    if name not in FILES:
        raise NotFound("no such file")
    body = (resources.files("register.web") / "static" / name).read_bytes()
    return Response(body, media_type=FILES[name], headers={"Cache-Control": "public, max-age=3600"})
