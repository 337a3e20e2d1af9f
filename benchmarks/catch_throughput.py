"""Throughput of a CATCH sweep (SPEC §7 shape) against the same compiled function per trial.

Times a --trials x --budget CATCH sweep (M = --candidates, width 64, 4 updates per epoch)
as one compiled, vmapped call after compilation, and the compiled single-trial function
called once per trial in a Python loop (--loop-trials of them, extrapolated), and the
same search function run eagerly (``jax.disable_jit``: every op dispatched one at a time,
loops as Python loops, one trial after another, as the paper's PyTorch code runs) for
--eager-epochs search epochs, extrapolated to the full budget. Prints trials/second,
compile time and both ratios.

    python benchmarks/catch_throughput.py [--benchmark synthetic-nb201] [--trials 500]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import jax

from catchjax import make_task, methods, run_trial, sweep
from catchjax.methods import catch
from catchjax.runs.sweeps import compiled_cost


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default="synthetic-nb201")
    p.add_argument("--task", default="cifar10")
    p.add_argument("--method", default="catch-sfs")
    p.add_argument("--trials", type=int, default=500)
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--loop-trials", type=int, default=10)
    p.add_argument("--eager-epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1,
                   help="time the sweep this many times (seeds 0..n-1, one compile), keep the best")
    p.add_argument("--scale", default="",
                   help="comma-separated extra trial counts to time (e.g. 2000,8000)")
    args = p.parse_args(argv)
    # compile seconds measured, not loaded: a program compiled before (by this script, the
    # CLI or the Python API) would come from catchjax's persistent cache; a folder set in
    # the variable is kept
    os.environ.setdefault("CATCHJAX_COMPILE_CACHE", "off")

    task = make_task(args.benchmark, args.task)
    settings = dict(candidates=args.candidates, hidden=64, updates_per_epoch=4)
    print(f"{args.method} on {args.benchmark}/{args.task}: {args.trials} trials x {args.budget} "
          f"epochs, M={args.candidates}; device {jax.devices()[0].device_kind} "
          f"x{jax.device_count()}")
    runs = [sweep(args.method, task, trials=args.trials, budget=args.budget, seed=r, **settings)
            for r in range(max(1, args.repeats))]
    res = min(runs, key=lambda r: r.wall_seconds)
    print(f"sweep: compile {runs[0].compile_seconds:.1f} s ({runs[0].compile_source}), "
          f"run {res.wall_seconds:.3f} s "
          f"(best of {len(runs)}: {', '.join(f'{r.wall_seconds:.3f}' for r in runs)}), "
          f"{args.trials / res.wall_seconds:.1f} trials/s")
    # where the time goes: XLA's count of one search epoch (a loop body), per trial
    cost = compiled_cost(args.method, task, args.trials, args.budget, **settings)
    # a sweep compiles at least two trials per device (catchjax.runs.batched): halve a pair's
    one = {k: v / 2 for k, v in compiled_cost(args.method, task, 2, args.budget,
                                              **settings).items()}
    epochs = args.budget - methods.make_config(args.method, **settings).n_initial
    if cost:
        flops = cost["flops"] * epochs / res.wall_seconds
        moved = cost["bytes accessed"] * epochs / res.wall_seconds
        print(f"XLA cost per search epoch: {one['flops'] / 1e6:.1f} MFLOP, "
              f"{one['bytes accessed'] / 1e6:.1f} MB accessed for one trial; the "
              f"{args.trials}-trial sweep runs {flops / 1e9:,.1f} GFLOP/s and touches "
              f"{moved / 1e9:,.1f} GB/s (XLA's unfused byte count, an upper bound)")
    for n in [int(x) for x in args.scale.split(",") if x.strip()]:
        first = sweep(args.method, task, trials=n, budget=args.budget, seed=0, **settings)
        again = sweep(args.method, task, trials=n, budget=args.budget, seed=1, **settings)
        wall = min(first.wall_seconds, again.wall_seconds)
        print(f"sweep of {n} trials: compile {first.compile_seconds:.1f} s "
              f"({first.compile_source}), run {wall:.3f} s, {n / wall:.1f} trials/s")
    run_trial(args.method, task, seed=0, trial=0, budget=args.budget, **settings)  # compile
    t0 = time.perf_counter()
    for i in range(args.loop_trials):
        run_trial(args.method, task, seed=0, trial=i, budget=args.budget, **settings)
    per_trial = (time.perf_counter() - t0) / args.loop_trials
    speedup = per_trial * args.trials / res.wall_seconds
    print(f"python loop over the compiled single trial: {per_trial:.3f} s/trial, "
          f"{1 / per_trial:.1f} trials/s; sweep speed-up {speedup:.1f}x")

    if args.eager_epochs <= 0:
        return 0
    config = methods.make_config(args.method, budget=args.budget, **settings)
    n_init = config.n_initial
    short = dataclasses.replace(config, budget=n_init + args.eager_epochs)
    with jax.disable_jit():
        t0 = time.perf_counter()
        out = catch.catch_search(short, jax.random.key(0), task.arrays)
        jax.block_until_ready(out)
        per_epoch = (time.perf_counter() - t0) / args.eager_epochs
    eager_trial = per_epoch * (args.budget - n_init)
    ratio = eager_trial * args.trials / res.wall_seconds
    print(f"eager sequential reference: {per_epoch:.2f} s/search epoch -> "
          f"{eager_trial:.0f} s/trial "
          f"({args.trials} trials: {eager_trial * args.trials / 3600:.1f} h); "
          f"sweep speed-up {ratio:,.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
