"""Every file the pages read at run time ships in the wheel: pyproject's package-data names it (a
non-editable install has nothing else)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "register" / "web"


def test_package_data_covers_every_file_the_pages_read():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["register.web"]
    files = [p.relative_to(WEB).as_posix() for p in WEB.rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert {"help.json", "static/idle.js", "templates/base.html"} <= set(files)
    missing = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
