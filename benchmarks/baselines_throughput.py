"""Throughput of the baseline sweeps against sequential NumPy references.

For each baseline: a 500-trial x 50-step sweep as one compiled, vmapped call (timed
after compilation, best of --repeats), and the sequential NumPy implementation of the
same algorithm (catchjax.methods.baselines.reference) run one trial at a time in this process
on --ref-trials trials, extrapolated per trial. Prints trials/second and the ratio.

    python benchmarks/baselines_throughput.py [--benchmark synthetic-nb201] [--task cifar10]
        [--methods random rea reinforce ls bananas] [--cpu-devices 2]

--cpu-devices N splits the CPU into N JAX devices (as
XLA_FLAGS=--xla_force_host_platform_device_count=N does), so that a sweep's trials run on
N cores at once; a trial's bits do not depend on it (docs/usage.md). The NumPy loop runs
on one core either way.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

from catchjax import make_task, sweep
from catchjax.methods.baselines import reference
from catchjax.store import provenance


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default="synthetic-nb201")
    p.add_argument("--task", default="cifar10")
    p.add_argument("--trials", type=int, default=500)
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--ref-trials", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--methods", nargs="+", default=list(reference.ALGORITHMS),
                   choices=list(reference.ALGORITHMS))
    p.add_argument("--cpu-devices", type=int, default=None,
                   help="split the CPU into this many devices (default: JAX's, 1)")
    args = p.parse_args(argv)
    # compile seconds measured, not loaded: a program compiled before (by this script, the
    # CLI or the Python API) would come from catchjax's persistent cache; a folder set in
    # the variable is kept
    os.environ.setdefault("CATCHJAX_COMPILE_CACHE", "off")
    if args.cpu_devices is not None:
        if args.cpu_devices < 1:
            p.error(f"--cpu-devices must be at least 1, got {args.cpu_devices}")
        jax.config.update("jax_num_cpu_devices", args.cpu_devices)  # before any device use

    task = make_task(args.benchmark, args.task)
    device = jax.devices()[0].device_kind
    cpu = provenance.host_cpu()  # the figures hold for this CPU (docs/performance.md)
    print(f"{args.benchmark}/{args.task}, {args.trials} trials x {args.budget} steps, "
          f"device: {device} x{jax.device_count()}, host CPU: {provenance.describe_cpu(cpu)}")
    header = (f"{'method':10s} {'compile s':>9s} {'sweep s':>9s} {'trials/s':>10s} "
              f"{'numpy s/trial':>13s} {'numpy trials/s':>14s} {'speed-up':>9s}")
    print(header)
    any_loaded = False
    for method in args.methods:
        first = sweep(method, task, trials=args.trials, budget=args.budget, seed=0)
        runs = []
        for r in range(args.repeats):
            res = sweep(method, task, trials=args.trials, budget=args.budget, seed=r + 1)
            runs.append(res.wall_seconds)
        best = min(runs)
        t0 = time.perf_counter()
        reference.run(method, task, trials=args.ref_trials, budget=args.budget, seed=0)
        per_trial = (time.perf_counter() - t0) / args.ref_trials
        tps = args.trials / best
        loaded = first.compile_source == "loaded"  # only with CATCHJAX_COMPILE_CACHE set
        print(f"{method:10s} {first.compile_seconds:8.2f}{'*' if loaded else ' '} {best:9.4f} "
              f"{tps:10.0f} {per_trial:13.5f} {1 / per_trial:14.1f} {tps * per_trial:8.1f}x")
        any_loaded = any_loaded or loaded
    if any_loaded:
        print("* loaded from the compilation cache in CATCHJAX_COMPILE_CACHE, not compiled")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    raise SystemExit(main())
