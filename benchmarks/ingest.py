"""Ingest: obligations per second through POST /v1/reports (upload to done), against a raw PostgreSQL
COPY of the same rows into a table of the same shape, measured in the same run. Aim: at least 0.3.

    python -m benchmarks.ingest [--persons 200000] [--one-file] [--second-day]

With --one-file the whole population is one file, reported by one institution (external refs carry their
institution's prefix, so they stay unique): 3,000,000 persons make the 5-million-line daily file. That
reporter is the collector, the one role that may report every line (a claim's `collects` included).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import make_url

from benchmarks.harness import fresh_database, load_average, print_result, running_server
from register.services.seed import ensure_institutions, write_files
from register.storage.db import make_engine, make_sessionmaker
from register.storage.migrate import upgrade

COPY_COLUMNS = ("id", "institution_id", "external_ref", "kind", "currency", "original_amount", "balance",
                "credit_limit", "monthly_payment", "interest_rate_bp", "opened_on", "matures_on", "status",
                "overdue_amount", "days_past_due", "original_creditor", "collects_institution_id",
                "collects_external_ref", "handed_to_institution_id", "handed_to_external_ref", "registration_consent",
                "as_of", "version", "created_at", "updated_at")


def _cell(v) -> str:  # noqa: ANN001
    if v is None:
        return "\\N"
    if isinstance(v, dict):
        v = json.dumps(v)
    return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def copy_baseline(url: str, files: dict[str, Path], ids: dict[str, str], *, table: str = "copy_bench",
                  drop: bool = False) -> tuple[int, float]:
    """The same rows, prepared in memory beforehand, COPYed into a table shaped like obligations (`drop`:
    dropped again afterwards)."""
    buf = io.StringIO()
    n = 0
    for key, path in files.items():
        for raw in path.open():
            d = json.loads(raw)
            collects, handed_to = d.get("collects") or {}, d.get("handed_to") or {}
            row = [f"00000000-0000-4000-8000-{n:012d}", ids[key], d["external_ref"], d["kind"], d["currency"],
                   d.get("original_amount"), d["balance"], d.get("credit_limit"), d.get("monthly_payment"),
                   d.get("interest_rate_bp"), d.get("opened_on"), d.get("matures_on"), d["status"],
                   d.get("overdue_amount", 0), d.get("days_past_due", 0), d.get("original_creditor"),
                   collects.get("institution_id"), collects.get("external_ref"), handed_to.get("institution_id"),
                   handed_to.get("external_ref"), d["registration_consent"],
                   d["as_of"], 1, d["as_of"], d["as_of"]]  # fmt: skip
            buf.write("\t".join(_cell(v) for v in row) + "\n")
            n += 1
    data = buf.getvalue().encode()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE TABLE {table} (LIKE obligations INCLUDING ALL)")
        conn.commit()
        t = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN") as cp:
            for i in range(0, len(data), 1 << 20):
                cp.write(data[i : i + (1 << 20)])
        conn.commit()
        elapsed = time.perf_counter() - t
        if drop:
            conn.execute(f"DROP TABLE {table}")
            conn.commit()
        return n, elapsed


def _concatenate(files: dict[str, Path], target: Path) -> Path:
    with target.open("wb") as out:
        for path in files.values():
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    out.write(chunk)
            path.unlink()
    return target


def _next_day(files: dict[str, Path]) -> dict[str, Path]:
    """The same files a day later: every line's as_of one day on, nothing else changed (a quiet day)."""
    out = {}
    for key, path in files.items():
        target = path.with_suffix(".day2.ndjson")
        with path.open() as src, target.open("w") as dst:
            for raw in src:
                d = json.loads(raw)
                t = datetime.fromisoformat(d["as_of"].replace("Z", "+00:00")) + timedelta(days=1)
                d["as_of"] = t.isoformat().replace("+00:00", "Z")
                dst.write(json.dumps(d) + "\n")
        out[key] = target
    return out


class CpuMeter:
    """CPU seconds spent by the server (its processes, the preparing ones included) and by PostgreSQL's backends
    of one database, from /proc: on a machine shared with other work, CPU per line moves far less with the
    load than lines per second do. Sampled while the ingest runs (a backend's time is lost once it exits)."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, server_pid: int, database: str) -> None:
        self.server_pid, self.database = server_pid, database
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self.baseline = True  # what a process had spent before the ingest is not counted
        self.sample()
        self.baseline = False

    def sample(self) -> None:
        stats: dict[int, list[str]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        stats[int(entry)] = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
        for key in [k for k in self.last if k[0] == "server" and k[1] not in stats]:
            # Gone, and reaped by its parent in the tree (the fork server reaps the preparing processes), whose
            # children's time now holds all of this one's: kept, it was counted twice (BENCHMARKS.md, ninth round).
            del self.first[key], self.last[key]
        tree = {self.server_pid}
        grew = True
        while grew:  # the server's descendants (its workers, the fork server, the preparing processes)
            more = {pid for pid, st in stats.items() if int(st[1]) in tree} - tree
            grew, tree = bool(more), tree | more
        for pid, st in stats.items():
            if pid in tree:
                key = ("server", pid)  # its own time, and that of the children it has reaped
                value = sum(int(x) for x in st[11:15]) / self.TICK
            else:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read()
                except OSError:
                    continue
                if not cmd.startswith(b"postgres: ") or f" {self.database} ".encode() not in cmd:
                    continue
                key, value = ("postgres", pid), sum(int(x) for x in st[11:13]) / self.TICK
            self.first.setdefault(key, value if self.baseline else 0.0)
            self.last[key] = value

    def seconds(self) -> dict[str, float]:
        out = {"server": 0.0, "postgres": 0.0}
        for key, value in self.last.items():
            out[key[0]] += value - self.first[key]
        return out


def _ingest(srv_url: str, files: dict[str, Path], insts: dict, lines: int,
            meter: CpuMeter | None = None) -> tuple[float, float, dict]:  # fmt: skip
    """Upload every file, wait until all are processed: (seconds to accept, seconds to done, report docs).
    One client throughout: `httpx.get` makes a client (and an SSL context) per call, 21 ms of this process's CPU
    each, which polling nine reports a second turned into 15 us a line taken from the cores under test."""
    with httpx.Client(timeout=600) as http:
        return _ingest_with(http, srv_url, files, insts, lines, meter)


def _ingest_with(http: httpx.Client, srv_url: str, files: dict[str, Path], insts: dict, lines: int,
                 meter: CpuMeter | None) -> tuple[float, float, dict]:  # fmt: skip
    t0, wall0 = time.perf_counter(), datetime.now(UTC)
    ids = []
    for key, path in files.items():
        with path.open("rb") as fh:
            r = http.post(srv_url + "/v1/reports", content=fh,
                          headers={"Authorization": f"Bearer {insts[key]['token']}",
                                   "Content-Type": "application/x-ndjson"})
        r.raise_for_status()
        ids.append((key, r.json()["id"]))
    accepted_at = time.perf_counter() - t0
    docs = {}
    while True:
        docs = {rid: http.get(f"{srv_url}/v1/reports/{rid}",
                              headers={"Authorization": f"Bearer {insts[k]['token']}"}).json()
                for k, rid in ids}
        if meter is not None:
            meter.sample()
        if all(d["status"] in ("done", "failed") for d in docs.values()):
            break
        if int(time.perf_counter() - t0) % 30 == 0:
            done = sum(d.get("lines_read", 0) for d in docs.values())
            print(f"  {time.perf_counter() - t0:7.0f} s: {done:,} of {lines:,} lines, load {load_average()}",
                  file=sys.stderr)
        time.sleep(1)
    # Done when the last report says it finished (the server's clock is this machine's): the poll above, once a
    # second, would add up to a second more to a run of about twenty.
    finished = [datetime.fromisoformat(d["finished_at"]) for d in docs.values() if d.get("finished_at")]
    done = (max(finished) - wall0).total_seconds() if len(finished) == len(docs) else time.perf_counter() - t0
    return accepted_at, done, docs


def _timeline(docs: dict) -> list[list]:
    """Each report's [lines, seconds from the first start to its start, to its end]: how the reports overlapped
    (a lone report at the end leaves a core idle)."""
    t = {rid: (datetime.fromisoformat(d["started_at"]), datetime.fromisoformat(d["finished_at"]))
         for rid, d in docs.items() if d.get("started_at") and d.get("finished_at")}
    if not t:
        return []
    t0 = min(a for a, _ in t.values())
    return sorted([docs[rid]["lines_read"], round((a - t0).total_seconds(), 2), round((b - t0).total_seconds(), 2)]
                  for rid, (a, b) in t.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--persons", type=int, default=200_000)
    ap.add_argument("--one-file", action="store_true", help="one file for the whole population, one reporter")
    ap.add_argument("--second-day", action="store_true",
                    help="then the same file(s) with every as_of a day later: each line a refresh (no version)")
    args = ap.parse_args()
    with fresh_database("postgres") as url, tempfile.TemporaryDirectory() as data_dir:
        upgrade(url)
        engine = make_engine(url, pool_size=2)
        sessions = make_sessionmaker(engine)
        insts = ensure_institutions(sessions)
        files = write_files(Path(data_dir) / "files", persons=args.persons, seed=1, country="SE", fmt="ndjson",
                            sessions=sessions)
        engine.dispose()
        if args.one_file:
            files = {"inkasso": _concatenate(files, Path(data_dir) / "files" / "all.ndjson")}
        lines = sum(1 for p in files.values() for _ in p.open())
        size = sum(p.stat().st_size for p in files.values())
        inst_ids = {k: v["id"] for k, v in insts.items()}
        # The baseline before the ingest too: on a shared machine one COPY swings with the load (33,000-119,000
        # rows/s in one session), so the ratio is taken against the mean of one just before and one just after.
        _, copy_before = copy_baseline(url, files, inst_ids, table="copy_bench_before", drop=True)
        with running_server(url, data_dir, REGISTER_LOG_INTEGRATOR="true") as srv:
            load_before = load_average()
            meter, client0 = CpuMeter(srv.proc.pid, make_url(url).database or ""), time.process_time()
            accepted_at, elapsed, docs = _ingest(srv.url, files, insts, lines, meter)
            cpu = {**meter.seconds(), "client": time.process_time() - client0}
            load_after = load_average()
            day2 = {}
            if args.second_day:
                later = _next_day(files)
                load2 = load_average()
                up2, elapsed2, docs2 = _ingest(srv.url, later, insts, lines)
                day2 = {"second_day_upload_seconds": round(up2, 2), "second_day_upload_to_done_seconds": round(elapsed2, 2),
                        "second_day_lines_per_second": round(lines / elapsed2),
                        "second_day_unchanged": sum(d["unchanged"] for d in docs2.values()),
                        "second_day_accepted": sum(d["accepted"] for d in docs2.values()),
                        "second_day_load_average": [load2, load_average()]}
                for p in later.values():
                    p.unlink()
        accepted = sum(d["accepted"] for d in docs.values())
        rejected = sum(d["rejected"] for d in docs.values())
        copy_rows, copy_seconds = copy_baseline(url, files, inst_ids)
        ingest_rate, copy_rate = lines / elapsed, copy_rows / copy_seconds
        copy_mean = (copy_rows / copy_before + copy_rate) / 2
        print_result("ingest", {
            "persons": args.persons, "lines": lines, "bytes": size, "accepted": accepted, "rejected": rejected,
            "upload_seconds": round(accepted_at, 2), "upload_to_done_seconds": round(elapsed, 2),
            "ingest_lines_per_second": round(ingest_rate), "copy_rows": copy_rows,
            "copy_seconds": round(copy_seconds, 3), "copy_rows_per_second": round(copy_rate),
            "ratio": round(ingest_rate / copy_rate, 4),  # against the COPY after the ingest, as before
            "copy_before_rows_per_second": round(copy_rows / copy_before),
            "ratio_to_mean_copy": round(ingest_rate / copy_mean, 4),
            "cpu_us_per_line": {k: round(v / lines * 1e6, 1) for k, v in cpu.items()},
            "load_average_before": load_before, "load_average_after": load_after, **day2,
            "reports": _timeline(docs),
        })


if __name__ == "__main__":
    main()
