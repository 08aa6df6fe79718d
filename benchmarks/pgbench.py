"""The database's own ceiling for an exposure answer: `pgbench` running the minimum work of one answer
(one indexed read of a person and one durable insert of an access event per transaction) against the same
database, same clients, same minutes as the register's run. The register's answers/s divided by this rate
says how close the register comes to what its database can do on this machine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

SCRIPT = """\\set n random(1, :persons)
BEGIN;
SELECT id, country, blind_index, national_id_enc FROM bench_persons WHERE n = :n;
INSERT INTO bench_events (id, occurred_at, actor_type, actor_id, actor_role, action, subject, purpose, outcome)
  VALUES (gen_random_uuid()::text, now(), 'institution', 'bench', 'lender', 'exposure.query',
          '\\x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'credit_application', 'granted');
COMMIT;
"""


def need_pgbench() -> str:
    path = shutil.which("pgbench")
    if path is None:
        sys.exit("pgbench is needed: apt-get install -y postgresql-client (Debian's package)")
    return path


def prepare(url: str) -> int:
    """Tables for the baseline, in the benchmark's own database: the seeded persons numbered for pgbench's
    random key (one index), and an empty table shaped like `access_events` with all its indexes."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text("DROP TABLE IF EXISTS bench_persons, bench_events"))
        c.execute(text("CREATE TABLE bench_persons AS SELECT row_number() OVER () AS n, * FROM persons"))
        c.execute(text("CREATE UNIQUE INDEX ON bench_persons (n)"))
        c.execute(text("CREATE TABLE bench_events (LIKE access_events INCLUDING DEFAULTS INCLUDING INDEXES)"))
        c.execute(text("ANALYZE bench_persons"))
        persons = c.execute(text("SELECT count(*) FROM bench_persons")).scalar_one()
    engine.dispose()
    return persons


def run(url: str, *, seconds: int, clients: int, threads: int = 2) -> dict:
    """Transactions per second (pgbench's figure without connection time) and latency average."""
    persons = prepare(url)
    u = make_url(url)
    args = [need_pgbench(), "-n", "-c", str(clients), "-j", str(threads), "-T", str(seconds), "-D", f"persons={persons}",
            "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "answer.sql"
        script.write_text(SCRIPT)
        out = subprocess.run([*args, "-f", str(script), u.database], capture_output=True, text=True, check=True).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text("DROP TABLE IF EXISTS bench_persons, bench_events"))
    engine.dispose()
    return {"tps": tps, "latency_avg_ms": float(latency.group(1)) if latency else None, "clients": clients,
            "seconds": seconds}
