"""The real server as a process on loopback, for tests that kill it or race it: `register serve` with its
settings in the environment, exactly as an operator starts it. Its stderr goes to `<data_dir>/server.log`
(appended across restarts), so a failing test can show what the server said."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parents[1]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(url: str, data_dir: Path, **env: str) -> dict[str, str]:
    """This process's environment without its REGISTER_* settings, plus the test server's."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REGISTER_")}
    return environ | {"REGISTER_DATABASE_URL": url, "REGISTER_DATA_DIR": str(data_dir),
                      "REGISTER_ADMIN_TOKEN": ADMIN_TOKEN, "REGISTER_LOG_LEVEL": "WARNING", **env}


def start(url: str, data_dir: Path, port: int, *, workers: int = 1, **env: str) -> subprocess.Popen:
    """Start `register serve` with `workers` server processes (one: quicker to start) in a process group of
    its own, and wait until /healthz answers and every worker has started (several log at INFO, to say so).
    `env`: more REGISTER_* settings."""
    with socket.socket() as s:  # else /healthz may be answered by a server still holding the port
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    environ = environment(url, data_dir, **{"REGISTER_LOG_LEVEL": "INFO", **env} if workers > 1 else env)
    offset = (data_dir / "server.log").stat().st_size if (data_dir / "server.log").exists() else 0
    with open(data_dir / "server.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "register.cli", "serve", "--port", str(port), "--workers",
                                 str(workers)], env=environ, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
                                start_new_session=True)  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {server_log(data_dir)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200 and (
                    workers == 1 or started(data_dir, offset) >= workers):
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    kill(proc)
    raise RuntimeError(f"server did not start: {server_log(data_dir)}")


def started(data_dir: Path, offset: int) -> int:
    """How many worker processes have said their application started since `offset` in the log (INFO)."""
    with open(data_dir / "server.log", "rb") as log:
        log.seek(offset)
        return log.read().count(b'"Application startup complete."')


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL to the server and its workers (its process group): no shutdown handler runs, nothing is
    flushed that was not already durable."""
    try:
        if os.getpgid(proc.pid) == proc.pid:  # started by `start`: its own group, with its workers
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except ProcessLookupError:  # already gone, and its group with it
        pass
    proc.wait()


def server_log(data_dir: Path, tail: int = 3000) -> str:
    path = data_dir / "server.log"
    return path.read_text(errors="replace")[-tail:] if path.exists() else "(no log)"


def server_errors(data_dir: Path) -> list[str]:
    """The server's log records of a request that failed (a 500's "unhandled error", or an error uvicorn
    logged after the answer), each with its traceback: what a test asserts is empty, or shows when a 500
    came, once the data dir is gone."""
    path = data_dir / "server.log"
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return [line for line in lines if '"level": "error"' in line and (
        '"msg": "unhandled error"' in line or '"msg": "Exception in ASGI application' in line)]


def fresh_database(backend: str, tmp_path: Path) -> str:
    """A new, migrated database: a SQLite file under tmp_path, or a new PostgreSQL database (drop it with
    `tests.conftest.drop_pg_database`)."""
    from register.storage.migrate import upgrade
    from tests.conftest import create_pg_database

    url = f"sqlite:///{tmp_path / 'register.db'}" if backend == "sqlite" else create_pg_database()
    upgrade(url)
    return url
