"""What the safety net costs: start-up time of the `catchjax` command, and the overhead of
checkpointing sweep progress chunk by chunk (resumable sweeps).

    python benchmarks/safety_overhead.py [--trials 1024] [--chunk-size 8]

Prints the median wall time of `catchjax --help` and `catchjax data list` (fresh
interpreters), and a --trials random-search sweep run unchunked, chunked without
progress, and chunked with progress checkpoints, with the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time


def command_seconds(args, repeats=5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "catchjax.cli", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=1024)
    p.add_argument("--chunk-size", type=int, default=8)
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    bare = command_seconds(["--help"])
    print(f"catchjax --help:    {bare:.3f} s (median of 5 fresh interpreters)")
    print(f"catchjax data list: {command_seconds(['data', 'list']):.3f} s")

    import catchjax

    task = catchjax.make_task("synthetic-nb201", "cifar10")

    def timed(chunk_size=None, progress=False) -> float:
        kw = {"chunk_size": chunk_size}
        catchjax.sweep("random", task, trials=args.trials, budget=args.budget, **kw)  # compile
        best = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as d:
                extra = {"progress_dir": f"{d}/p"} if progress else {}
                t0 = time.perf_counter()
                catchjax.sweep("random", task, trials=args.trials, budget=args.budget,
                               **kw, **extra)
                best.append(time.perf_counter() - t0)
        return min(best)

    whole = timed()
    chunked = timed(chunk_size=args.chunk_size)
    progress = timed(chunk_size=args.chunk_size, progress=True)
    print(f"{args.trials} trials x {args.budget}, random search, best of {args.repeats}:")
    print(f"  one chunk, no progress:           {whole:.3f} s")
    print(f"  chunks of {args.chunk_size}, no progress:       {chunked:.3f} s")
    print(f"  chunks of {args.chunk_size}, progress saved:    {progress:.3f} s "
          f"({progress / whole:.1f}x one chunk, {progress / chunked:.1f}x chunked)")


if __name__ == "__main__":
    main()
