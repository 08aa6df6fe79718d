"""Growth: exposure latency as one register grows (100k, then 1M, then 5M persons in the same
PostgreSQL database), and the database size per million obligations. Flat latency is the aim.

    python -m benchmarks.growth [--steps 100000,1000000,5000000] [--out growth.ndjson]

Each step adds persons through `register seed`'s path (another seed, refs kept apart by a prefix), ends
with its ANALYZE, gives the benchmark lender consents for a sample of the new persons, then measures:
one client on one connection (p50/p99: the query's own cost, no queueing) and wrk with 16 connections
against /livez of the same server in the same minute (the ratio). Each step's result is printed and
appended to --out as it completes, so a long run leaves its finished steps behind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time

import httpx
from sqlalchemy import text

from benchmarks.harness import fresh_database, print_result, run_wrk, running_server
from benchmarks.population_seed import consented_bodies
from register.config import Settings
from register.crypto.fields import FieldCipher
from register.crypto.keys import load_keys
from register.domain.permission import Principal, Role
from register.services.seed import seed_population
from register.storage.db import make_engine, make_sessionmaker
from register.storage.migrate import upgrade

SAMPLE = 1000  # consented persons added per step


def _one_connection(url: str, token: str, bodies: list[str], n: int = 2000) -> dict:
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
        for b in bodies[:300]:  # warm-up: connections, prepared statements
            c.post("/v1/exposure", content=b).raise_for_status()
        lat = []
        for _ in range(n):
            body = rng.choice(bodies)
            t = time.perf_counter()
            c.post("/v1/exposure", content=body).raise_for_status()
            lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return {"p50_ms": round(lat[n // 2], 2), "p99_ms": round(lat[int(n * 0.99)], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", default="100000,1000000,5000000", help="cumulative person counts")
    ap.add_argument("--out", default="growth.ndjson")
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    with fresh_database("postgres") as url, tempfile.TemporaryDirectory() as data_dir:
        upgrade(url)
        cipher = FieldCipher(load_keys(Settings(database_url=url, data_dir=data_dir)))
        engine = make_engine(url, pool_size=2)
        sessions = make_sessionmaker(engine)
        token, bodies, total = "", [], 0
        for i, target in enumerate(steps):
            seed, prefix = i + 1, (f"G{i + 1}." if i else "")
            t = time.perf_counter()
            result = seed_population(sessions, cipher, persons=target - total, seed=seed, ref_prefix=prefix)
            load_seconds = time.perf_counter() - t
            total = target
            lender = result.tokens["nordbank"]
            token = token or lender["token"]
            principal = Principal(role=Role.lender, name=lender["name"], institution_id=lender["id"])
            bodies += consented_bodies(sessions, cipher, principal, persons=target - (steps[i - 1] if i else 0),
                                       sample=SAMPLE, seed=seed, ref_prefix=prefix)
            with engine.connect() as c:
                obligations = c.execute(text("SELECT count(*) FROM obligations")).scalar_one()
                size = c.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            with running_server(url, data_dir, REGISTER_LOG_INTEGRATOR="true") as srv:
                single = _one_connection(srv.url, token, bodies)
                trivial = run_wrk(srv.url + "/livez", token=token, method="GET", seconds=args.seconds)
                loaded = run_wrk(srv.url + "/v1/exposure", token=token, bodies=bodies, seconds=args.seconds)
            doc = {
                "load_average_1m": round(os.getloadavg()[0], 2),  # the machine is shared: say how busy it was
                "persons": target, "obligations": obligations, "lines_loaded": result.lines,
                "load_seconds": round(load_seconds), "load_lines_per_second": round(result.lines / load_seconds),
                "database_bytes": size, "bytes_per_million_obligations": round(size / obligations * 1e6),
                "one_connection": single,
                "wrk16": {"exposure_rps": loaded.rps, "p50_ms": loaded.p50_ms, "p99_ms": loaded.p99_ms,
                          "non2xx": loaded.non2xx, "livez_rps": trivial.rps,
                          "ratio": round(loaded.rps / trivial.rps, 4)},
            }
            print_result("growth", doc)
            with open(args.out, "a") as fh:
                fh.write(json.dumps(doc) + "\n")
        engine.dispose()


if __name__ == "__main__":
    main()
