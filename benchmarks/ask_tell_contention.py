"""Throughput of one ask/tell search driven by many worker processes at once.

Each worker opens its own handle on one search folder and repeats ``ask(1)`` then
``tell`` of that proposal, as a cluster's training jobs would (with a zero-second
"training"), so every operation contends for the folder's lock
(:mod:`catchjax.store.locking`). Workers first import, compile and make `--warmup` pairs,
then wait for a common start; the timed part is ``--pairs`` pairs per worker. Prints asks
+ tells per second for each worker count and writes them as JSON.

    python benchmarks/ask_tell_contention.py --out benchmarks/results/ask_tell_contention_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _pair(search, reward) -> None:
    """One ask(1) and the tell of its proposal. A method that waits for pending rewards
    (CATCH at the end of an epoch) proposes nothing meanwhile: ask again shortly."""
    while not (proposals := search.ask(1)):
        time.sleep(0.002)
    p = proposals[0]
    search.tell([p["id"]], [reward(p)])


def worker(state_dir: str, pairs: int, warmup: int, go: str, done: str) -> None:
    from catchjax.asktell.search import AskTell

    search = AskTell.load(state_dir)
    for _ in range(warmup):  # compile ask and tell (each phase of the method) untimed
        _pair(search, lambda p: 0.5)
    Path(done + ".ready").write_text("")
    while not os.path.exists(go):
        if not os.path.exists(state_dir):  # the benchmark gave up (another worker failed)
            sys.exit(1)
        time.sleep(0.005)
    t0 = time.perf_counter()
    for _ in range(pairs):
        _pair(search, lambda p: p["id"] / 1000)
    Path(done).write_text(json.dumps({"seconds": time.perf_counter() - t0}))


def run(n_workers: int, pairs: int, method: str, space: str, warmup: int = 1) -> dict:
    from catchjax.asktell.search import AskTell

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "search"
        AskTell.start(method, space, budget=n_workers * (pairs + warmup), seed=0,
                      state_dir=state)
        go = Path(tmp) / "go"
        done = [Path(tmp) / f"done{i}" for i in range(n_workers)]
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(state),
                                   str(pairs), str(warmup), str(go), str(d)]) for d in done]
        while not all(Path(str(d) + ".ready").exists() for d in done):
            if any(p.poll() not in (None, 0) for p in procs):
                for p in procs:
                    p.kill()
                raise SystemExit("a worker failed")
            time.sleep(0.05)
        t0 = time.perf_counter()
        go.write_text("")
        for p in procs:
            p.wait()
        wall = time.perf_counter() - t0
        final = AskTell.load(state)
        told = sum(r["reward"] is not None for r in final.log)
        assert told == n_workers * (pairs + warmup), "a told result is missing"
    ops = 2 * n_workers * pairs
    return {"workers": n_workers, "pairs_per_worker": pairs, "operations": ops,
            "wall_seconds": round(wall, 3), "operations_per_second": round(ops / wall, 1),
            "seconds_per_operation": round(wall / ops, 5)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4,16")
    parser.add_argument("--pairs", type=int, default=25, help="ask+tell pairs per worker")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed pairs per worker first (a method whose asks change after "
                             "its random start, e.g. catch-sfs, needs that many: --warmup 12)")
    parser.add_argument("--method", default="random")
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    rows = [run(int(n), args.pairs, args.method, args.space, args.warmup)
            for n in args.workers.split(",")]
    print(f"ask/tell under contention: {args.method} on {args.space}, one folder, "
          f"{os.cpu_count()} CPU cores")
    print(f"{'workers':>8s} {'ops':>6s} {'wall s':>8s} {'ops/s':>8s} {'ms/op':>7s}")
    for r in rows:
        print(f"{r['workers']:8d} {r['operations']:6d} {r['wall_seconds']:8.2f} "
              f"{r['operations_per_second']:8.1f} {1000 * r['seconds_per_operation']:7.1f}")
    if args.out:
        import catchjax

        doc = {"benchmark": "ask_tell_contention", "method": args.method, "space": args.space,
               "warmup_pairs_per_worker": args.warmup,
               "machine": f"{platform.processor() or platform.machine()}, "
                          f"{os.cpu_count()} cores", "catchjax": catchjax.__version__,
               "rows": rows}
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
