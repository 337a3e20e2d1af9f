"""What the CLI's progress chunking costs: a sweep as one compiled call against the same
sweep in ``sweeps.CPU_PROGRESS_CHUNKS`` calls (what ``catchjax sweep`` does on CPU when no
--chunk-size is given, so that its bar moves). Both are timed after compiling, best of
--repeats; the results are the same (checked here too).

    python benchmarks/progress_chunks.py [--methods rea catch-sfs] [--trials 500]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from catchjax import make_task, sweep, sweeps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default="synthetic-nb201")
    p.add_argument("--task", default="cifar10")
    p.add_argument("--methods", nargs="+", default=["rea", "reinforce", "catch-sfs"])
    p.add_argument("--trials", type=int, default=500)
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    task = make_task(args.benchmark, args.task)
    chunk = sweeps.progress_chunk(args.trials)
    print(f"{args.benchmark}/{args.task}, {args.trials} trials x {args.budget}, "
          f"{jax.devices()[0].device_kind} x{jax.device_count()}; chunks of {chunk}")
    print(f"{'method':10s} {'one call s':>10s} {'chunked s':>10s} {'cost':>7s}")
    for method in args.methods:
        times = {}
        for name, size in (("one", None), ("chunked", chunk)):
            runs = [sweep(method, task, trials=args.trials, budget=args.budget, seed=0,
                          chunk_size=size) for _ in range(args.repeats + 1)]  # 1st compiles
            times[name] = min(r.wall_seconds for r in runs[1:])
            times[name + "_rows"] = runs[-1].rows
        assert np.array_equal(times["one_rows"], times["chunked_rows"])
        cost = times["chunked"] / times["one"] - 1
        print(f"{method:10s} {times['one']:10.3f} {times['chunked']:10.3f} {cost:+7.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
