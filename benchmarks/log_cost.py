"""What the verifiable log costs: exposure queries per second with the tree integrator running, against
the same server with integration paused, on PostgreSQL. Aim: a ratio of at least 0.9.

    python -m benchmarks.log_cost [--persons 5000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import tempfile

from benchmarks.harness import fresh_database, print_result, run_wrk, running_server
from benchmarks.seed_small import seed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--persons", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    with fresh_database("postgres") as url, tempfile.TemporaryDirectory() as data_dir:
        token, bodies = seed(url, data_dir, args.persons)
        results = {}
        # Alternate, twice each, so a noisy neighbour does not favour one side.
        for round_ in range(2):
            for mode, flag in (("paused", "false"), ("on", "true")):
                with running_server(url, data_dir, REGISTER_LOG_INTEGRATOR=flag) as srv:
                    run_wrk(srv.url + "/v1/exposure", token=token, bodies=bodies, seconds=3,
                            connections=args.connections)  # warm-up
                    r = run_wrk(srv.url + "/v1/exposure", token=token, bodies=bodies, seconds=args.seconds,
                                connections=args.connections)
                    assert r.non2xx == 0 and r.errors == 0, r
                    results.setdefault(mode, []).append(r)
        on = max(r.rps for r in results["on"])
        paused = max(r.rps for r in results["paused"])
        print_result("log_cost", {
            "persons": args.persons, "seconds": args.seconds, "connections": args.connections,
            "rps_log_on": on, "rps_log_paused": paused, "ratio": round(on / paused, 3),
            "p99_ms_log_on": min(r.p99_ms for r in results["on"]),
            "p99_ms_log_paused": min(r.p99_ms for r in results["paused"]),
            "runs": {m: [vars(r) for r in rs] for m, rs in results.items()},
        })


if __name__ == "__main__":
    main()
