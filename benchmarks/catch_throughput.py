"""Throughput of a CATCH sweep (SPEC §7 shape) against the same compiled function per trial.

Times a --trials x --budget CATCH sweep (M = --candidates, width 64, 4 updates per epoch)
as one compiled, vmapped call after compilation, and the compiled single-trial function
called once per trial in a Python loop (--loop-trials of them, extrapolated). Prints
trials/second, compile time and the ratio. The eager sequential reference (the paper's
PyTorch-style loop) is not written yet.

    python benchmarks/catch_throughput.py [--benchmark synthetic-nb201] [--trials 500]
"""

from __future__ import annotations

import argparse
import time

import jax

from catchjax import make_task, run_trial, sweep


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default="synthetic-nb201")
    p.add_argument("--task", default="cifar10")
    p.add_argument("--method", default="catch-sfs")
    p.add_argument("--trials", type=int, default=500)
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--loop-trials", type=int, default=10)
    args = p.parse_args(argv)

    task = make_task(args.benchmark, args.task)
    settings = dict(candidates=args.candidates, hidden=64, updates_per_epoch=4)
    print(f"{args.method} on {args.benchmark}/{args.task}: {args.trials} trials x {args.budget} "
          f"epochs, M={args.candidates}; device {jax.devices()[0].device_kind} "
          f"x{jax.device_count()}")
    res = sweep(args.method, task, trials=args.trials, budget=args.budget, seed=0, **settings)
    print(f"sweep: compile {res.compile_seconds:.1f} s, run {res.wall_seconds:.2f} s, "
          f"{args.trials / res.wall_seconds:.1f} trials/s")
    run_trial(args.method, task, seed=0, trial=0, budget=args.budget, **settings)  # compile
    t0 = time.perf_counter()
    for i in range(args.loop_trials):
        run_trial(args.method, task, seed=0, trial=i, budget=args.budget, **settings)
    per_trial = (time.perf_counter() - t0) / args.loop_trials
    speedup = per_trial * args.trials / res.wall_seconds
    print(f"python loop over the compiled single trial: {per_trial:.3f} s/trial, "
          f"{1 / per_trial:.1f} trials/s; sweep speed-up {speedup:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
