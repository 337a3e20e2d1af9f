"""The performance suite: every method's sweep throughput, compile time and memory
against the number of trials, and the ratio to a sequential reference, in one process.

For each method and each trial count N (default 1, 10, 100, 500, 5,000): a sweep of N
trials x --budget steps as one compiled call — compile seconds (first call), run seconds
(best of --repeats later calls, other seeds), trials/s — and what XLA allocates for it
(arguments + outputs + temporaries + code, from the compiled executable's memory
analysis; on GPUs also the device's peak bytes in use). Sequential reference, timed once
per method: the NumPy implementation of the same algorithm one trial at a time for the
baselines (catchjax/methods/baselines/reference.py); for CATCH, the compiled single-trial
function called in a Python loop (no NumPy CATCH exists). Writes ``run_all.json`` and
``scaling.png`` into --out and prints a table.

    python benchmarks/run_all.py --out runs/perf                       # CPU: CATCH to 500
    python benchmarks/run_all.py --out runs/perf --catch-max-trials 5000   # a GPU
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import jax
import numpy as np

from catchjax import make_task, run_trial, sweep
from catchjax.methods.baselines import reference
from catchjax.runs.results import versions
from catchjax.runs.sweeps import compiled_memory

CATCH_SETTINGS = dict(candidates=100, hidden=64, updates_per_epoch=4)  # SPEC §7 shape


def sequential_seconds_per_trial(method, task, budget, n):
    """Seconds per trial of the sequential reference (see module docstring)."""
    if method in reference.ALGORITHMS:
        t0 = time.perf_counter()
        reference.run(method, task, trials=n, budget=budget, seed=0)
        return (time.perf_counter() - t0) / n, "numpy, one trial at a time"
    settings = CATCH_SETTINGS if method.startswith("catch") else {}
    jax.block_until_ready(run_trial(method, task, seed=0, trial=0, budget=budget, **settings))
    t0 = time.perf_counter()
    for i in range(n):
        jax.block_until_ready(run_trial(method, task, seed=0, trial=i + 1, budget=budget,
                                        **settings))
    return (time.perf_counter() - t0) / n, "compiled single trial in a Python loop"


def device_peak() -> int | None:
    stats = jax.devices()[0].memory_stats()
    return None if not stats else int(stats.get("peak_bytes_in_use", 0)) or None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default="synthetic-nb201")
    p.add_argument("--task", default="cifar10")
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--methods", default="random,rea,reinforce,catch-sfs")
    p.add_argument("--trials", default="1,10,100,500,5000")
    p.add_argument("--catch-max-trials", type=int, default=500,
                   help="largest trial count for CATCH methods (~10 trials/s on 2 CPU cores)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ref-trials", type=int, default=20,
                   help="trials of each sequential reference (CATCH: 5 of them at most)")
    p.add_argument("--out", default="runs/perf")
    args = p.parse_args(argv)

    task = make_task(args.benchmark, args.task)
    counts = [int(x) for x in args.trials.split(",") if x.strip()]
    device = f"{jax.devices()[0].device_kind} x{jax.device_count()}"
    print(f"{args.benchmark}/{args.task}, budget {args.budget}, device {device}")
    print(f"{'method':10s} {'trials':>7s} {'compile s':>9s} {'run s':>9s} {'trials/s':>10s} "
          f"{'XLA MB':>8s} {'vs seq':>9s}")
    rows, refs = [], {}
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        settings = CATCH_SETTINGS if method.startswith("catch") else {}
        n_ref = min(args.ref_trials, 5) if method.startswith("catch") else args.ref_trials
        per_trial, how = sequential_seconds_per_trial(method, task, args.budget, n_ref)
        refs[method] = {"seconds_per_trial": per_trial, "reference": how, "trials": n_ref}
        for n in counts:
            if method.startswith("catch") and n > args.catch_max_trials:
                continue
            first = sweep(method, task, trials=n, budget=args.budget, seed=0, **settings)
            runs = [sweep(method, task, trials=n, budget=args.budget, seed=r + 1,
                          **settings).wall_seconds for r in range(args.repeats)]
            best = min(runs)
            mem = compiled_memory(method, task, n, args.budget, **settings)
            row = {"method": method, "trials": n, "budget": args.budget,
                   "compile_seconds": first.compile_seconds,
                   "compile_source": first.compile_source, "run_seconds": best,
                   "runs": runs, "trials_per_second": n / best,
                   "speedup_vs_sequential": per_trial * n / best,
                   "xla_bytes": mem, "device_peak_bytes": device_peak()}
            rows.append(row)
            print(f"{method:10s} {n:7d} {first.compile_seconds:9.2f} {best:9.4f} "
                  f"{n / best:10.1f} {mem.get('total', 0) / 2**20:8.1f} "
                  f"{row['speedup_vs_sequential']:8.1f}x", flush=True)
        print(f"{'':10s} sequential reference: {per_trial:.5f} s/trial ({how})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"device": device, "platform": platform.platform(), "versions": versions(),
              "benchmark": args.benchmark, "task": args.task, "budget": args.budget,
              "sequential": refs, "rows": rows,
              "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    (out / "run_all.json").write_text(json.dumps(record, indent=2))
    plot(rows, out / "scaling.png", device)
    print(f"wrote {out / 'run_all.json'} and {out / 'scaling.png'}")
    return 0


def plot(rows, path, device):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        n = np.array([r["trials"] for r in rs])
        axes[0].loglog(n, [r["trials_per_second"] for r in rs], "o-", label=method)
        axes[1].semilogx(n, [r["compile_seconds"] for r in rs], "o-", label=method)
        axes[2].loglog(n, [max(r["xla_bytes"].get("total", 0), 1) / 2**20 for r in rs], "o-",
                       label=method)
    for ax, label in zip(axes, ("trials / s (after compile)", "compile s", "XLA memory MB")):
        ax.set_xlabel("trials in the sweep")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.suptitle(f"catchjax sweeps on {device}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
