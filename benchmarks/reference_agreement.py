"""Do the compiled searches compute what their sequential NumPy references compute?

For each method: --trials searches as one vmapped sweep and --trials searches of the
sequential reference (catchjax.methods.baselines.reference: the same algorithm written one trial
at a time, other random streams), both with the default settings. Printed: the mean
reported value of each with its bootstrap 95% CI, the difference with its 95% interval
(normal approximation), and whether the reference's mean lies inside the sweep's CI.

    python benchmarks/reference_agreement.py [--methods ls bananas] [--trials 500]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from catchjax import make_task, sweep
from catchjax.methods.baselines import reference
from catchjax.runs.analysis import bootstrap_ci


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default="synthetic-nb201")
    p.add_argument("--task", default="cifar10")
    p.add_argument("--methods", nargs="+", default=["ls", "bananas"],
                   choices=list(reference.ALGORITHMS))
    p.add_argument("--trials", type=int, default=500)
    p.add_argument("--budget", type=int, default=50)
    args = p.parse_args(argv)
    task = make_task(args.benchmark, args.task)
    report = np.asarray(task.arrays.report)[:, 0]
    print(f"{args.benchmark}/{args.task}, {args.trials} trials x {args.budget}, default settings")
    print(f"{'method':10s} {'sweep mean [95% CI]':>26s} {'reference mean [95% CI]':>28s} "
          f"{'difference [95%]':>24s} {'inside':>7s} {'ref s':>7s}")
    for method in args.methods:
        jax_final = sweep(method, task, trials=args.trials, budget=args.budget,
                          seed=0).final_report
        t0 = time.perf_counter()
        ref_final = report[reference.run(method, task, trials=args.trials, budget=args.budget,
                                         seed=0)]
        seconds = time.perf_counter() - t0
        (jl, jh), (rl, rh) = bootstrap_ci(jax_final), bootstrap_ci(ref_final)
        diff = jax_final.mean() - ref_final.mean()
        se = np.sqrt(jax_final.var(ddof=1) / len(jax_final) + ref_final.var(ddof=1)
                     / len(ref_final))
        inside = "yes" if jl <= ref_final.mean() <= jh else "no"
        print(f"{method:10s} {jax_final.mean():8.3f} [{jl:7.3f}, {jh:7.3f}] "
              f"{ref_final.mean():10.3f} [{rl:7.3f}, {rh:7.3f}] "
              f"{diff:+8.3f} [{diff - 1.96 * se:+.3f}, {diff + 1.96 * se:+.3f}] {inside:>7s} "
              f"{seconds:7.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
