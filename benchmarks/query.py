"""Exposure answers per second, p50 and p99, with wrk over a synthetic population, on `register serve` as
shipped, against two baselines measured in the same run:

- the database's own rate for the minimum work of an answer (`pgbench`, one indexed read and one durable
  event insert per transaction, the same number of clients): `ratio_to_database`, must ≥ 0.15, aim ≥ 0.3;
- a trivial endpoint (`/livez`) of the same server under the same load: `ratio_to_livez`.

Latency is measured apart with 4 connections (a busy lender): p99 must ≤ 25 ms, aim ≤ 10 ms (16 closed-loop
connections at the throughput aim cannot also have a low p99). The load average is printed beside each figure.

    python -m benchmarks.query [--persons 100000] [--backend postgres|sqlite] [--workers N] [--keep NAME]

`--keep NAME` seeds a PostgreSQL database NAME (and its keys, in /var/tmp/register-bench-NAME) once and
measures it on later runs too: seeding a million persons takes longer than the measurement, and a quiet
window on a shared machine is short. `--seed-only` stops after seeding.
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from benchmarks import pgbench
from benchmarks.harness import fresh_database, kept_database, load_average, print_result, run_wrk, running_server
from benchmarks.population_seed import load


def measure(url: str, data_dir: str, *, persons: int, seconds: int, connections: int, workers: int | None,
            backend: str, seed_only: bool = False) -> dict:
    t = time.perf_counter()
    kept = Path(data_dir, "population.json")
    if kept.exists():
        pop = json.loads(kept.read_text())
    else:
        pop = load(url, data_dir, persons=persons)
        kept.write_text(json.dumps(pop))
    loaded = time.perf_counter() - t
    if seed_only:
        return {"backend": backend, "persons": persons, "load_seconds": round(loaded, 1), "seed_only": True}
    extra = {"REGISTER_LOG_INTEGRATOR": "true"}
    figures: dict = {}
    if backend == "postgres":  # the database alone first, with no server competing for the cores
        figures["database"] = {**pgbench.run(url, seconds=seconds, clients=connections), "load": load_average()}
    with running_server(url, data_dir, workers=workers, **extra) as srv:
        run_wrk(srv.url + "/v1/exposure", token=pop["token"], bodies=pop["bodies"], seconds=3,
                connections=connections)  # warm-up: caches, prepared statements
        trivial = run_wrk(srv.url + "/livez", token=pop["token"], method="GET", seconds=seconds,
                          connections=connections)
        figures["trivial"] = {**vars(trivial), "load": load_average()}
        exposure = run_wrk(srv.url + "/v1/exposure", token=pop["token"], bodies=pop["bodies"], seconds=seconds,
                           connections=connections)
        figures["exposure"] = {**vars(exposure), "load": load_average()}
        busy = run_wrk(srv.url + "/v1/exposure", token=pop["token"], bodies=pop["bodies"], seconds=seconds,
                       connections=4, threads=2)
        figures["exposure_4_connections"] = {**vars(busy), "load": load_average()}
        # Growth is about the query's own cost, so also measure it unloaded: one connection, no queueing.
        single = run_wrk(srv.url + "/v1/exposure", token=pop["token"], bodies=pop["bodies"], seconds=8,
                         connections=1, threads=1)
        figures["exposure_one_connection"] = {**vars(single), "load": load_average()}
    # socket timeouts (errors) are latency, reported; wrong answers are not
    assert exposure.non2xx == 0 and busy.non2xx == 0, (exposure, busy)
    size = {}
    if backend == "postgres":
        engine = create_engine(url)
        with engine.connect() as c:
            obligations = c.execute(text("select count(*) from obligations")).scalar()
            db_bytes = c.execute(text("select pg_database_size(current_database())")).scalar()
        engine.dispose()
        size = {"obligations": obligations, "database_bytes": db_bytes,
                "bytes_per_million_obligations": round(db_bytes / obligations * 1e6) if obligations else None}
        figures["ratio_to_database"] = round(exposure.rps / figures["database"]["tps"], 3)
    return {"backend": backend, "persons": persons, "workers": workers or "default", "connections": connections,
            "seconds": seconds, "load_seconds": round(loaded, 1), "seed_lines": pop["seed_lines"],
            "seed_lines_per_second": round(pop["seed_lines"] / pop["seed_seconds"]), **figures,
            "ratio_to_livez": round(exposure.rps / trivial.rps, 3), **size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=None, help="server processes (default: register serve's own)")
    ap.add_argument("--keep", metavar="NAME", help="seed PostgreSQL database NAME once and reuse it")
    ap.add_argument("--seed-only", action="store_true", help="with --keep: seed, do not measure")
    args = ap.parse_args()
    run = functools.partial(measure, persons=args.persons, seconds=args.seconds, connections=args.connections,
                            workers=args.workers, backend=args.backend, seed_only=args.seed_only)
    if args.keep:
        with kept_database(args.keep) as (url, data_dir):
            print_result("query", run(url, data_dir))
        return
    with fresh_database(args.backend) as url, tempfile.TemporaryDirectory() as data_dir:
        print_result("query", run(url, data_dir))


if __name__ == "__main__":
    main()
