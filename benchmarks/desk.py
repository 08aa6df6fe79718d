"""What the regulator's desk costs lenders: exposure queries per second while a regulator polls the desk's
API (`GET /v1/regulator/signals`, all kinds over 30 days, and `GET /v1/regulator/institutions/{id}/
activity` of the busiest lender, turn about, one request every `--poll` seconds), against the same
server with nobody at the desk, on PostgreSQL. Rounds alternate (as benchmarks.log_cost: this machine's
noise is near 10 %), and the best of each side is compared. Aim: a ratio of at least 0.9.

    python -m benchmarks.desk [--persons 5000] [--seconds 15] [--rounds 3] [--poll 1.0]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time

import httpx

from benchmarks.harness import ADMIN, fresh_database, load_average, print_result, run_wrk, running_server
from benchmarks.seed_small import seed


class Desk(threading.Thread):
    """A regulator at the desk: signals and one institution's activity, turn about, every `poll` seconds."""

    def __init__(self, url: str, token: str, institution_id: str, poll: float) -> None:
        super().__init__(daemon=True)
        self.url, self.poll, self.stop_ = url, poll, threading.Event()
        self.paths = ["/v1/regulator/signals", f"/v1/regulator/institutions/{institution_id}/activity"]
        self.headers = {"Authorization": f"Bearer {token}"}
        self.reads: list[tuple[str, int, float]] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=120) as c:
            i = 0
            while not self.stop_.is_set():
                path = self.paths[i % 2]
                t = time.perf_counter()
                r = c.get(path)
                self.reads.append((path.split("/")[-1], r.status_code, time.perf_counter() - t))
                i += 1
                self.stop_.wait(self.poll)


def regulator_and_lender(url: str) -> tuple[str, str]:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = httpx.post(url + "/v1/institutions", json={"name": "Bench Regulator", "role": "regulator"}, headers=admin)
    r.raise_for_status()
    lenders = httpx.get(url + "/v1/institutions", headers=admin).json()["items"]
    return r.json()["token"], next(i["id"] for i in lenders if i["name"] == "Bench Bank")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--persons", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between the desk's requests")
    args = ap.parse_args()
    with fresh_database("postgres") as url, tempfile.TemporaryDirectory() as data_dir:
        token, bodies = seed(url, data_dir, args.persons)
        results: dict[str, list] = {}
        desk_reads: list[tuple[str, int, float]] = []
        regulator = None
        for _ in range(args.rounds):
            for mode in ("without", "with"):
                with running_server(url, data_dir) as srv:
                    if regulator is None:
                        regulator = regulator_and_lender(srv.url)
                    run_wrk(srv.url + "/v1/exposure", token=token, bodies=bodies, seconds=3,
                            connections=args.connections)  # warm-up
                    desk = Desk(srv.url, regulator[0], regulator[1], args.poll) if mode == "with" else None
                    if desk is not None:
                        desk.start()
                    load = load_average()
                    r = run_wrk(srv.url + "/v1/exposure", token=token, bodies=bodies, seconds=args.seconds,
                                connections=args.connections)
                    if desk is not None:
                        desk.stop_.set()
                        desk.join()
                        desk_reads += desk.reads
                    # Socket errors (wrk's 2 s timeout) and non-2xx (503 when the server sheds load) are kept in
                    # the runs: on an overloaded shared machine they happen on either side.
                    results.setdefault(mode, []).append({**vars(r), "load_before": load, "load_after": load_average()})
        best = {m: max(x["rps"] for x in rs) for m, rs in results.items()}
        by_kind = {k: [s for kind, _, s in desk_reads if kind == k] for k in ("signals", "activity")}
        print_result("desk", {
            "persons": args.persons, "seconds": args.seconds, "connections": args.connections, "poll_s": args.poll,
            "rps_without_desk": best["without"], "rps_with_desk": best["with"],
            "ratio": round(best["with"] / best["without"], 3),
            "desk_reads": {k: {"n": len(v), "max_ms": round(max(v) * 1000, 1) if v else None,
                               "median_ms": round(sorted(v)[len(v) // 2] * 1000, 1) if v else None}
                           for k, v in by_kind.items()},
            "desk_errors": sum(1 for _, status, _ in desk_reads if status != 200),
            "runs": results, "load": load_average(),
        })


if __name__ == "__main__":
    main()
