"""A high-availability PostgreSQL for the register on one machine: etcd and three PostgreSQL under Patroni
(Debian's `etcd-server` and `patroni` packages), synchronous replication on and strict (SPEC.md, "Many
machines"). For development and tests; on real hosts the same topology is the compose profile `ha`.

Ports from `base_port` P: etcd's clients P, its peers P+1; member i (0, 1, 2) PostgreSQL P+10+i and its
Patroni REST API P+20+i. Everything lives under DIR: `etcd/`, `pgN/` (data, patroni.yml, patroni.log) and
`ha.json` (the ports and process ids, for `down` and for tests that kill members).

PostgreSQL refuses to run as root: run as root, etcd, Patroni and PostgreSQL are started as `postgres`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PATRONI = shutil.which("patroni") or "/usr/bin/patroni"
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
PG_BIN = "/usr/lib/postgresql/15/bin"
MEMBERS = 3
DATABASE = "register"
SCOPE = "register"
# Patroni's timing (docs: "Dynamic Configuration Settings"). A leader that stops renewing its key loses it
# after `ttl`; the others notice within `loop_wait`. ttl 10 s, loop_wait 2 s: a lost leader is replaced in
# about 10-14 s. retry_timeout must stay below ttl so a leader that cannot reach etcd demotes itself first.
TTL, LOOP_WAIT, RETRY_TIMEOUT = 10, 2, 4


@dataclass(frozen=True)
class Member:
    name: str
    pg_port: int
    api_port: int

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


@dataclass(frozen=True)
class Layout:
    dir: Path
    base_port: int

    @property
    def etcd_port(self) -> int:
        return self.base_port

    @property
    def members(self) -> list[Member]:
        return [Member(f"pg{i + 1}", self.base_port + 10 + i, self.base_port + 20 + i) for i in range(MEMBERS)]

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def database_url(self, *, session: str = "read-write", connect_timeout: int = 3) -> str:
        """The multi-host URL: libpq tries each host and keeps the first whose session is `session`
        (`read-write`: the primary; `prefer-standby`: a replica when there is one)."""
        hosts = "&".join(f"host=127.0.0.1:{m.pg_port}" for m in self.members)
        return (f"postgresql+psycopg://postgres@/{DATABASE}?{hosts}"
                f"&target_session_attrs={session}&connect_timeout={connect_timeout}")


class HAError(RuntimeError):
    pass


def _as_postgres() -> list[str]:
    """The prefix that drops root to `postgres` (nothing when not root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for p in [path, *path.rglob("*")]:
            os.chown(p, user.pw_uid, user.pw_gid)


def _spawn(argv: list[str], log: Path) -> int:
    with open(log, "ab") as out:
        env = {**os.environ, "HOME": str(log.parent)}
        env.pop("PGPASSFILE", None)
        proc = subprocess.Popen([*_as_postgres(), *argv], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    return proc.pid


def patroni_config(layout: Layout, member: Member) -> dict[str, Any]:
    home = layout.dir / member.name
    return {
        "scope": SCOPE,
        "name": member.name,
        "log": {"level": "INFO"},
        "restapi": {"listen": f"127.0.0.1:{member.api_port}", "connect_address": f"127.0.0.1:{member.api_port}"},
        "etcd3": {"hosts": [f"127.0.0.1:{layout.etcd_port}"]},
        "bootstrap": {
            "dcs": {
                "ttl": TTL, "loop_wait": LOOP_WAIT, "retry_timeout": RETRY_TIMEOUT,
                "maximum_lag_on_failover": 1048576,
                # A commit returns only once a synchronous standby has it (RPO 0); strict: with no standby
                # left, writes wait rather than go on unprotected.
                "synchronous_mode": True, "synchronous_mode_strict": True,
                "postgresql": {
                    "use_pg_rewind": True, "use_slots": True,
                    "parameters": {"wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
                                   "max_wal_senders": 10, "max_replication_slots": 10, "wal_keep_size": "256MB",
                                   "max_connections": 200, "synchronous_commit": "on"},
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            "pg_hba": ["local all all trust", "host replication all 127.0.0.1/32 trust",
                       "host all all 127.0.0.1/32 trust"],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{member.pg_port}",
            "connect_address": f"127.0.0.1:{member.pg_port}",
            "data_dir": str(home / "data"),
            "bin_dir": PG_BIN,
            "pgpass": str(home / "pgpass"),
            "authentication": {
                "superuser": {"username": "postgres"},
                "replication": {"username": "postgres"},
                "rewind": {"username": "postgres"},
            },
            "parameters": {"unix_socket_directories": str(home)},
            "pg_hba": ["local all all trust", "host replication all 127.0.0.1/32 trust",
                       "host all all 127.0.0.1/32 trust"],
        },
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }


def _state_file(root: Path) -> Path:
    return root / "ha.json"


def load(root: Path) -> tuple[Layout, dict[str, int]]:
    try:
        state = json.loads(_state_file(root).read_text())
    except FileNotFoundError:
        raise HAError(f"no HA topology in {root} (start one with `register ha up --dir {root}`)") from None
    return Layout(root, state["base_port"]), state["pids"]


def _save(layout: Layout, pids: dict[str, int]) -> None:
    _state_file(layout.dir).write_text(json.dumps({"base_port": layout.base_port, "pids": pids}))


def start_member(root: Path, name: str) -> int:
    """(Re)start one member's Patroni; a member that was lost rejoins (pg_rewind when it has diverged)."""
    layout, pids = load(root)
    home = layout.dir / name
    pids[name] = _spawn([PATRONI, str(home / "patroni.yml")], home / "patroni.log")
    _save(layout, pids)
    return pids[name]


def postmaster_pid(root: Path, name: str) -> int | None:
    try:
        return int((root / name / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None


def kill_member(root: Path, name: str, *, postmaster_only: bool = False) -> None:
    """SIGKILL a member's Patroni and its PostgreSQL (the postmaster and every process it started)
    together: its machine, as far as the others can tell, is gone. `postmaster_only`: the postmaster alone
    dies, and Patroni restarts PostgreSQL in place."""
    _layout, pids = load(root)
    postmaster = postmaster_pid(root, name)
    targets = [postmaster] if postmaster_only else [pids.get(name), postmaster, *_children_of(postmaster)]
    for pid in targets:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _children_of(pid: int | None) -> list[int]:
    """The processes whose parent is `pid` (found before it dies: then they are re-parented)."""
    found = []
    for proc in Path("/proc").iterdir() if pid else ():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(proc.name))
    return found


def cluster(layout: Layout) -> list[dict[str, Any]]:
    """Patroni's view of the members (REST `GET /cluster`), from the first member that answers."""
    for m in layout.members:
        try:
            with urllib.request.urlopen(f"{m.api}/cluster", timeout=2) as r:  # noqa: S310 (our own loopback URL)
                return list(json.loads(r.read())["members"])
        except (OSError, ValueError, KeyError):
            continue
    return []


def roles(layout: Layout) -> dict[str, str]:
    """name -> "leader" | "sync_standby" | "replica" for members that are running/streaming."""
    out = {}
    for m in cluster(layout):
        if m.get("state") in ("running", "streaming"):
            out[m["name"]] = m.get("role", "replica")
    return out


def wait_ready(layout: Layout, *, timeout: float = 120.0, members: int = 2) -> dict[str, str]:
    """Until a leader and a synchronous standby are running (and at least `members` members in all)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        seen = roles(layout)
        values = list(seen.values())
        if "leader" in values and "sync_standby" in values and len(values) >= members:
            return seen
        time.sleep(0.5)
    raise HAError(f"no leader with a synchronous standby after {timeout:.0f} s (members: {seen}); "
                  f"see {layout.dir}/pg*/patroni.log")


def _wait_etcd(layout: Layout, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{layout.etcd_port}/health", timeout=2) as r:  # noqa: S310
                if json.loads(r.read()).get("health") == "true":
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.3)
    raise HAError(f"etcd did not become healthy; see {layout.dir}/etcd/etcd.log")


def _create_database(layout: Layout, leader: str) -> None:
    member = layout.member(leader)
    psql = [*_as_postgres(), f"{PG_BIN}/psql", "-h", "127.0.0.1", "-p", str(member.pg_port), "-U", "postgres",
            "-d", "postgres", "-tAc"]
    found = subprocess.run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
                           capture_output=True, text=True, check=True, cwd="/")
    if found.stdout.strip() != "1":
        subprocess.run([*psql, f"CREATE DATABASE {DATABASE}"], capture_output=True, check=True, cwd="/")


def up(root: Path, *, base_port: int = 15400, timeout: float = 120.0) -> dict[str, Any]:
    """Start etcd and three Patroni members under `root`; return the contract's JSON object once a leader
    and a synchronous standby are ready."""
    root = root.resolve()
    if _state_file(root).exists():
        raise HAError(f"{root} already holds an HA topology; `register ha down --dir {root}` first")
    layout = Layout(root, base_port)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    (root / "etcd").mkdir(exist_ok=True)
    for m in layout.members:
        (root / m.name).mkdir(exist_ok=True)
        (root / m.name / "patroni.yml").write_text(json.dumps(patroni_config(layout, m), indent=2))
    _own(root)
    pids: dict[str, int] = {}
    etcd = [ETCD, "--name", "etcd0", "--data-dir", str(root / "etcd" / "data"),
            "--listen-client-urls", f"http://127.0.0.1:{layout.etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{layout.etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{layout.etcd_port + 1}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{layout.etcd_port + 1}",
            "--initial-cluster", f"etcd0=http://127.0.0.1:{layout.etcd_port + 1}",
            "--initial-cluster-state", "new", "--initial-cluster-token", f"register-{base_port}"]
    pids["etcd"] = _spawn(etcd, root / "etcd" / "etcd.log")
    _save(layout, pids)
    _wait_etcd(layout)
    for m in layout.members:
        start_member(root, m.name)
    ready = wait_ready(layout, timeout=timeout, members=MEMBERS)
    leader = next(name for name, role in ready.items() if role == "leader")
    _create_database(layout, leader)
    return describe(layout)


def describe(layout: Layout) -> dict[str, Any]:
    current = roles(layout)
    return {"database_url": layout.database_url(),
            "members": [{"name": m.name, "role": current.get(m.name, "stopped"), "pg_port": m.pg_port,
                         "api": m.api} for m in layout.members]}


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child, now reaped
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def down(root: Path, *, timeout: float = 30.0) -> None:
    """Stop every member and etcd (SIGTERM, then SIGKILL after `timeout`) and remove `root`."""
    root = root.resolve()
    layout, pids = load(root)
    members = [pids[m.name] for m in layout.members if m.name in pids]
    postmasters = [pid for m in layout.members if (pid := postmaster_pid(root, m.name))]
    for group in (members + postmasters, [pids["etcd"]] if "etcd" in pids else []):
        for pid in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(_alive(p) for p in group) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)

