"""A PostgreSQL of the test's own, which the test may stop and start: initdb and pg_ctl from the installed
PostgreSQL 15, run as `postgres` when the tests run as root (PostgreSQL refuses root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from register.ha import PG_BIN, _as_postgres, _own

TOOLS = ("patroni", "etcd", "haproxy")


def need(*programs: str) -> None:
    """Skip (fail on CI, where .ci/run installs them) when a program is missing."""
    missing = [p for p in programs if shutil.which(p) is None and not Path(f"/usr/sbin/{p}").exists()]
    if not Path(PG_BIN, "initdb").exists():
        missing.append(f"{PG_BIN}/initdb")
    if missing:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"not installed: {', '.join(missing)}")


def scratch() -> Path:
    """A directory the `postgres` user may use (pytest's tmp_path is root's, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="register-ha-"))
    path.chmod(0o755)
    _own(path)
    return path


@dataclass
class OwnPostgres:
    home: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/register"

    def ctl(self, *args: str) -> None:
        subprocess.run([*_as_postgres(), f"{PG_BIN}/pg_ctl", "-D", str(self.home / "data"), "-w", "-t", "60",
                        "-l", str(self.home / "postgres.log"), *args], check=True, capture_output=True, cwd="/")

    def start(self) -> None:
        self.ctl("-o", f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "stop")


@contextmanager
def own_postgres(port: int) -> Iterator[OwnPostgres]:
    need()
    home = scratch()
    pg = OwnPostgres(home, port)
    try:
        subprocess.run([*_as_postgres(), f"{PG_BIN}/initdb", "-D", str(home / "data"), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"], check=True, capture_output=True, cwd="/")
        pg.start()
        subprocess.run([*_as_postgres(), f"{PG_BIN}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "register"], check=True, capture_output=True, cwd="/")
        yield pg
    finally:
        subprocess.run([*_as_postgres(), f"{PG_BIN}/pg_ctl", "-D", str(home / "data"), "-m", "immediate", "stop"],
                       capture_output=True, cwd="/")
        shutil.rmtree(home, ignore_errors=True)
