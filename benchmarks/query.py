"""Exposure queries per second, p50 and p99, with wrk over a synthetic population, against a trivial
endpoint (/livez) of the same server under the same load. Aim: at least 0.5 of the trivial rate, p99
under 25 ms.

    python -m benchmarks.query [--persons 1000000] [--backend postgres|sqlite] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from sqlalchemy import create_engine, text

from benchmarks.harness import fresh_database, print_result, run_wrk, running_server
from benchmarks.population_seed import load


def measure(url: str, data_dir: str, *, persons: int, seconds: int, connections: int, workers: int,
            backend: str) -> dict:
    t = time.perf_counter()
    pop = load(url, data_dir, persons=persons)
    loaded = time.perf_counter() - t
    # The bodies carry attested consents, whose own limits (20/s, 2,000 a day) would turn the run into 429s.
    extra = {"REGISTER_LOG_INTEGRATOR": "true", "REGISTER_ATTESTED_RATE_PER_SECOND": "0",
             "REGISTER_ATTESTED_DAILY_QUOTA": "0"}
    with running_server(url, data_dir, workers=workers, **extra) as srv:
        run_wrk(srv.url + "/v1/exposure", token=pop["token"], bodies=pop["bodies"], seconds=3,
                connections=connections)  # warm-up: caches, prepared statements
        trivial = run_wrk(srv.url + "/livez", token=pop["token"], method="GET", seconds=seconds,
                          connections=connections)
        exposure = run_wrk(srv.url + "/v1/exposure", token=pop["token"], bodies=pop["bodies"], seconds=seconds,
                           connections=connections)
        # Growth is about the query's own cost, so also measure it unloaded: one connection, no queueing.
        single = run_wrk(srv.url + "/v1/exposure", token=pop["token"], bodies=pop["bodies"], seconds=8,
                         connections=1, threads=1)
    assert exposure.non2xx == 0, exposure  # socket timeouts (errors) are latency, reported; wrong answers are not
    size = {}
    if backend == "postgres":
        engine = create_engine(url)
        with engine.connect() as c:
            obligations = c.execute(text("select count(*) from obligations")).scalar()
            db_bytes = c.execute(text("select pg_database_size(current_database())")).scalar()
        engine.dispose()
        size = {"obligations": obligations, "database_bytes": db_bytes,
                "bytes_per_million_obligations": round(db_bytes / obligations * 1e6) if obligations else None}
    return {"backend": backend, "persons": persons, "workers": workers, "connections": connections,
            "seconds": seconds, "load_seconds": round(loaded, 1), "seed_lines": pop["seed_lines"],
            "seed_lines_per_second": round(pop["seed_lines"] / pop["seed_seconds"]),
            "trivial": vars(trivial), "exposure": vars(exposure), "exposure_one_connection": vars(single),
            "ratio": round(exposure.rps / trivial.rps, 3), **size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    with fresh_database(args.backend) as url, tempfile.TemporaryDirectory() as data_dir:
        print_result("query", measure(url, data_dir, persons=args.persons, seconds=args.seconds,
                                      connections=args.connections, workers=args.workers, backend=args.backend))


if __name__ == "__main__":
    main()
