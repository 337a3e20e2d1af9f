"""Peak memory and time of writing a sweep's results (results.csv, results.parquet,
summary.json) for 10^5, 10^6 and 10^7 (trial, step) rows.

Each size runs in a fresh process: a sweep result of that many rows is made up on the
synthetic NB201 table (random rows, their table rewards; nothing is searched), then
``reporting.write_results`` writes it. Printed: the process's peak resident memory
before and after writing, what writing added, seconds, and the files' sizes. The
results table is built and written WRITE_CHUNK_ROWS rows at a time, so what writing
adds should stay flat as the rows grow, while the arrays of the result itself (rows,
rewards: 8 bytes per row) grow with them.

    python benchmarks/results_memory.py [--rows 100000 1000000 10000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, resource, sys, time
from pathlib import Path
import numpy as np
from catchjax.store import reporting
from catchjax.benchmarks import tasks
from catchjax.runs.results import SweepResult

rows_total, out = int(sys.argv[1]), Path(sys.argv[2])
budget = 100
trials = rows_total // budget
task = tasks.make_task("synthetic-nb201", "cifar10")
rng = np.random.default_rng(0)
rows = rng.integers(0, task.table.n_archs, size=(trials, budget)).astype(np.int32)
rewards = np.asarray(task.arrays.reward)[rows]
result = SweepResult("rea", None, task, 0, rows, rewards, 0.0, 0.0, "none")
result.summary = lambda: {"method": "rea", "rows": rows_total}  # the table is what is measured
_ = result.best_step  # the result's own arrays, before writing
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
reporting.write_results(result, out, parquet=True)
seconds = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
sizes = {p.name: p.stat().st_size for p in out.iterdir() if not p.name.startswith(".")}
print(json.dumps({"rows": rows_total, "peak_mb_before": before, "peak_mb_after": after,
                  "seconds": seconds, "sizes": sizes}))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    args = p.parse_args(argv)
    from catchjax.store.reporting import WRITE_CHUNK_ROWS

    print(f"written {WRITE_CHUNK_ROWS:,} rows at a time; peak RSS of a fresh process")
    print(f"{'rows':>12s} {'peak MB before':>15s} {'peak MB after':>14s} {'added MB':>9s} "
          f"{'seconds':>8s} {'csv MB':>8s} {'parquet MB':>10s}")
    for n in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", CHILD, str(n), f"{tmp}/run"],
                                 capture_output=True, text=True)
            if out.returncode:
                print(f"{n:12,d} failed: {out.stderr.strip()[-300:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            s = r["sizes"]
            print(f"{n:12,d} {r['peak_mb_before']:15.0f} {r['peak_mb_after']:14.0f} "
                  f"{r['peak_mb_after'] - r['peak_mb_before']:9.0f} {r['seconds']:8.1f} "
                  f"{s['results.csv'] / 2**20:8.1f} {s['results.parquet'] / 2**20:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
