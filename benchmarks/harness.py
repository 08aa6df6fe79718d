"""Shared benchmark plumbing: a fresh PostgreSQL database, a seeded population, the real server as a
process on loopback, and wrk as the load generator. Results are ratios against a baseline measured in
the same run, because these machines are noisy and shared."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Iterator

import httpx
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("REGISTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ADMIN = "bench-admin-" + uuid.uuid4().hex


def need_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit("wrk is needed: apt-get install -y wrk (Debian's package)")
    return path


@contextmanager
def fresh_database(backend: str = "postgres") -> Iterator[str]:
    if backend == "sqlite":
        d = tempfile.mkdtemp(prefix="register-bench-")
        yield f"sqlite:///{d}/bench.db"
        shutil.rmtree(d, ignore_errors=True)
        return
    name = f"register_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# A benchmark measures capacity, so the per-institution limits on lookups (SPEC section 8: rates, daily quotas,
# lower ones for attested consents) are raised far above what one run can reach; they are still checked on
# every answer, quota rows included.
UNLIMITED = {"REGISTER_EXPOSURE_RATE_PER_SECOND": "0", "REGISTER_ATTESTED_RATE_PER_SECOND": "0",
             "REGISTER_EXPOSURE_DAILY_QUOTA": "1000000000", "REGISTER_ATTESTED_DAILY_QUOTA": "1000000000"}


def server_env(database_url: str, data_dir: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTER_")}
    env |= {"REGISTER_DATABASE_URL": database_url, "REGISTER_DATA_DIR": data_dir, "REGISTER_ADMIN_TOKEN": ADMIN,
            "REGISTER_LOG_LEVEL": "WARNING", **UNLIMITED, **extra}
    return env


@contextmanager
def kept_database(name: str) -> Iterator[tuple[str, str]]:
    """A PostgreSQL database `name` and its data directory (the keys its data is encrypted with), made on
    first use and kept: a million persons take longer to seed than to measure."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    data_dir = Path("/var/tmp", f"register-bench-{name}")
    data_dir.mkdir(exist_ok=True)
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False), str(data_dir)


@contextmanager
def running_server(database_url: str, data_dir: str, *, workers: int | None = None, **extra: str) -> Iterator[Server]:
    """`register serve` as shipped; `workers` None leaves the process count to serve's default."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "register.cli", "serve", "--port", str(port),
         *(["--workers", str(workers)] if workers is not None else [])],
        env=server_env(database_url, data_dir, **extra), cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ["BENCH_SERVER_LOG"], "ab") if os.environ.get("BENCH_SERVER_LOG") else subprocess.DEVNULL,  # noqa: SIM115
    )
    server = Server(f"http://127.0.0.1:{port}", proc)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        server.stop()
        raise RuntimeError("server did not start")
    try:
        yield server
    finally:
        server.stop()


LUA = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
wrk.method = "%(method)s"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Content-Type"] = "application/json"
request = function()
  if #bodies == 0 then return wrk.format(nil) end
  return wrk.format(nil, nil, nil, bodies[math.random(#bodies)])
end
"""


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    non2xx: int


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    assert m, value
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "us" else n * 1000 if unit == "s" else n


def run_wrk(url: str, *, token: str, bodies: list[str] | None = None, method: str = "POST",
            seconds: int = 15, connections: int = 16, threads: int = 2) -> WrkResult:
    wrk = need_wrk()
    with tempfile.TemporaryDirectory() as d:
        body_file = Path(d) / "bodies.ndjson"
        body_file.write_text("\n".join(bodies or []) + ("\n" if bodies else ""))
        script = Path(d) / "script.lua"
        script.write_text(LUA % {"bodies": body_file, "method": method, "token": token})
        out = subprocess.run([wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                              url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    return WrkResult(rps=rps, p50_ms=_ms(lat["50"]), p99_ms=_ms(lat["99"]), requests=reqs, errors=errs, non2xx=non2xx)


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    return f"{os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}"


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages, printed beside each figure: on a shared machine they say how
    quiet it was."""
    return [round(x, 2) for x in os.getloadavg()]


def print_result(name: str, doc: dict) -> None:
    print(json.dumps({"benchmark": name, "machine": machine(), "at": datetime.now(UTC).isoformat(), **doc}, indent=2))
