"""Exposure answers per second, p50 and p99, with wrk over a synthetic population, on `register serve` as
shipped, against two baselines measured in the same run:

- the database's own rate for the minimum work of an answer (`pgbench`, one indexed read and one durable
  event insert per transaction, the same number of clients): `ratio_to_database`, must ≥ 0.15, aim ≥ 0.3;
- a trivial endpoint (`/livez`) of the same server under the same load: `ratio_to_livez`.

Latency is measured apart with 4 connections (a busy lender): p99 must ≤ 25 ms, aim ≤ 10 ms (16 closed-loop
connections at the throughput aim cannot also have a low p99). The load average is printed beside each figure.

    python -m benchmarks.query [--persons 100000] [--backend postgres|sqlite] [--workers N] [--keep NAME]
                               [--cpu-rounds N]

`server_cpu_ms_per_answer` is the server processes' CPU time (user + system, from /proc) over the
16-connection run divided by its answers: on a shared machine a far steadier A/B measure than answers/s.
`--cpu-rounds N` measures only that, N times. `--in-process N` measures the app alone (`create_app` in the
benchmark's process, driven through ASGI: no uvicorn, sockets or wrk): `app_cpu_ms_per_answer`.

`--keep NAME` seeds a PostgreSQL database NAME (and its keys, in /var/tmp/register-bench-NAME) once and
measures it on later runs too: seeding a million persons takes longer than the measurement, and a quiet
window on a shared machine is short. `--seed-only` stops after seeding.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from benchmarks import pgbench
from benchmarks.harness import (
    WrkResult, fresh_database, kept_database, load_average, print_result, run_wrk, running_server, server_env,
)
from benchmarks.population_seed import load


def _descendants(pid: int) -> list[int]:
    """`pid` and every process under it (the supervisor, its workers, their helpers)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path("/proc", entry, "stat").read_text()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(parents.get(p, []))
    return found


def server_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU time so far of each of the server's processes (`/proc/<pid>/stat`): far less
    sensitive to other work on a shared machine than answers per second."""
    seconds = {}
    for p in _descendants(pid):
        try:
            fields = Path("/proc", str(p), "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[p] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return seconds


def cpu_per_answer(srv, pop: dict, *, seconds: int, connections: int) -> dict:  # noqa: ANN001
    """Exposure under wrk with the server's CPU time per answer, in milliseconds, and each process's
    share of it (one worker doing most of the work caps the rate at one core)."""
    before = server_cpu_seconds(srv.proc.pid)
    result = run_wrk(srv.url + "/v1/exposure", token=pop["token"], bodies=pop["bodies"], seconds=seconds,
                     connections=connections)
    after = server_cpu_seconds(srv.proc.pid)
    used = {p: after[p] - before.get(p, 0.0) for p in after}
    total = sum(used.values())
    return {**vars(result), "server_cpu_ms_per_answer": round(total * 1000 / max(result.requests, 1), 3),
            "server_cpu_shares": sorted((round(u / total, 2) for u in used.values() if u > 0.01 * total),
                                        reverse=True) if total else [],
            "load": load_average()}


def in_process(url: str, data_dir: str, pop: dict, *, requests: int, concurrency: int = 8) -> dict:
    """The app's CPU time per exposure answer with no server, network or load generator: `create_app` in
    this process, driven through ASGI by `concurrency` tasks (the worker threads it uses are this
    process's too). The least load-sensitive A/B measure of the app's own work; `server_cpu_ms_per_answer`
    adds uvicorn, the sockets and the log integrator."""
    import asyncio
    import random

    from register.config import Settings
    from register.main import create_app

    os.environ.update(server_env(url, data_dir, REGISTER_LOG_INTEGRATOR="false", REGISTER_REPORT_WORKER="false",
                                 REGISTER_RETENTION_JOB="false"))
    app = create_app(Settings())
    bodies, token, statuses = [b.encode() for b in pop["bodies"]], pop["token"].encode(), {}

    async def one(body: bytes) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/exposure", "raw_path": b"/v1/exposure", "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2), "state": {},
                 "headers": [(b"host", b"bench"), (b"authorization", b"Bearer " + token),
                             (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict:
            if messages:
                return messages.pop()
            await asyncio.sleep(3600)  # a client that waits for its answer
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    async def run() -> tuple[float, float]:
        limit = asyncio.Semaphore(concurrency)

        async def limited(body: bytes) -> None:
            async with limit:
                await one(body)

        async with app.router.lifespan_context(app):
            await asyncio.gather(*(limited(b) for b in bodies[:200]))  # warm-up: caches, prepared statements
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(limited(random.choice(bodies)) for _ in range(requests)))
            return time.perf_counter() - wall, time.process_time() - cpu

    try:
        wall, cpu = asyncio.run(run())
    finally:
        app.state.register.engine.dispose()
    return {"requests": requests, "concurrency": concurrency, "statuses": statuses,
            "app_cpu_ms_per_answer": round(cpu * 1000 / requests, 3),
            "wall_ms_per_answer": round(wall * 1000 / requests, 3),
            "load": load_average()}


def vacuum(url: str) -> None:
    """What autovacuum would have done since the last run: a kept database is measured again and again,
    and each run leaves dead rows (the quota shards' updates, the log queue's deletes) that a production
    server's autovacuum clears but this machine's PostgreSQL, run with `autovacuum = off`, never does
    (quota_usage grew to 5 MB for 16 live rows, and every answer's quota update walked them)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def measure(url: str, data_dir: str, *, persons: int, seconds: int, connections: int, workers: int | None,
            backend: str, seed_only: bool = False, cpu_rounds: int = 0, in_process_requests: int = 0) -> dict:
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
    if in_process_requests:
        return {"backend": backend, "persons": persons,
                "in_process": in_process(url, data_dir, pop, requests=in_process_requests)}
    extra = {"REGISTER_LOG_INTEGRATOR": "true"}
    figures: dict = {}
    if backend == "postgres":
        vacuum(url)
    if cpu_rounds:  # an A/B measure: only the server's CPU per answer, round after round
        with running_server(url, data_dir, workers=workers, **extra) as srv:
            run_wrk(srv.url + "/v1/exposure", token=pop["token"], bodies=pop["bodies"], seconds=3,
                    connections=connections)
            rounds = [cpu_per_answer(srv, pop, seconds=seconds, connections=connections) for _ in range(cpu_rounds)]
        return {"backend": backend, "persons": persons, "workers": workers or "default", "connections": connections,
                "seconds": seconds, "rounds": rounds,
                "server_cpu_ms_per_answer": sorted(r["server_cpu_ms_per_answer"] for r in rounds)}
    if backend == "postgres":  # the database alone first, with no server competing for the cores
        figures["database"] = {**pgbench.run(url, seconds=seconds, clients=connections), "load": load_average()}
    with running_server(url, data_dir, workers=workers, **extra) as srv:
        run_wrk(srv.url + "/v1/exposure", token=pop["token"], bodies=pop["bodies"], seconds=3,
                connections=connections)  # warm-up: caches, prepared statements
        trivial = run_wrk(srv.url + "/livez", token=pop["token"], method="GET", seconds=seconds,
                          connections=connections)
        figures["trivial"] = {**vars(trivial), "load": load_average()}
        figures["exposure"] = cpu_per_answer(srv, pop, seconds=seconds, connections=connections)
        exposure = WrkResult(**{k: figures["exposure"][k] for k in vars(trivial)})
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
    ap.add_argument("--cpu-rounds", type=int, default=0, metavar="N",
                    help="only measure exposure N times with the server's CPU time per answer (an A/B measure)")
    ap.add_argument("--in-process", type=int, default=0, metavar="N",
                    help="only measure the app's CPU time per answer over N answers in this process (no server)")
    ap.add_argument("--seed-only", action="store_true", help="with --keep: seed, do not measure")
    args = ap.parse_args()
    run = functools.partial(measure, persons=args.persons, seconds=args.seconds, connections=args.connections,
                            workers=args.workers, backend=args.backend, seed_only=args.seed_only,
                            cpu_rounds=args.cpu_rounds, in_process_requests=args.in_process)
    if args.keep:
        with kept_database(args.keep) as (url, data_dir):
            print_result("query", run(url, data_dir))
        return
    with fresh_database(args.backend) as url, tempfile.TemporaryDirectory() as data_dir:
        print_result("query", run(url, data_dir))


if __name__ == "__main__":
    main()
