"""Rank of the best network found, by validation score, after each query on
TransNAS-Bench-101: the measure TransNAS-Bench-101's own comparison of search methods
reports at 100 queries, for the methods both projects have (random search, regularized
evolution, REINFORCE, local search) plus the BANANAS-style search.

For every trial, the network with the best reward (the task's validation metric) after
``q`` queries is ranked among all searchable networks by that same metric (1 = the best;
ties share the better rank). Writes into --out:

  ranks.csv    method, task, trial, the rank after --budget queries
  curves.csv   method, task, query, mean and median rank of the best so far
  summary.md   mean rank (bootstrap 95% CI) and median per method x task
  ranks.png    median rank of the best so far against queries, one panel per task

    CATCHJAX_DATA=../shared/data python experiments/transnas_ranks.py --out runs/transnas_ranks
Use --benchmark synthetic-transnas-micro --trials 20 for a quick check.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository root importable
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catchjax import make_task, sweep  # noqa: E402
from catchjax.benchmarks import tables  # noqa: E402
from catchjax.runs.analysis import bootstrap_ci  # noqa: E402
from catchjax.runs.results import versions  # noqa: E402

METHODS = ("random", "rea", "reinforce", "ls", "bananas")


def best_so_far_ranks(rewards: np.ndarray, reward: np.ndarray,
                      searchable: np.ndarray) -> np.ndarray:
    """``[trials, queries]``: the rank among the searchable networks (by ``reward``, 1 =
    best, ties share the better rank) of the best-rewarded network so far; networks of
    equal reward have equal rank, so the best reward so far decides it."""
    pool = np.sort(reward[searchable])
    best = np.maximum.accumulate(rewards, axis=1)
    return len(pool) - np.searchsorted(pool, best, side="right") + 1  # strictly better + 1


def run(args) -> dict:
    results = {}
    for task_name in args.tasks:
        task = make_task(args.benchmark, task_name)
        reward = np.asarray(task.arrays.reward)
        for method in args.methods:
            t0 = time.perf_counter()
            res = sweep(method, task, trials=args.trials, budget=args.budget, seed=args.seed,
                        progress=not args.no_progress)
            ranks = best_so_far_ranks(res.rewards, reward, task.searchable)
            results[(method, task_name)] = {"ranks": ranks, "seconds": res.wall_seconds,
                                            "config": str(res.config)}
            print(f"{task_name:16s} {method:10s} mean rank {ranks[:, -1].mean():7.1f} "
                  f"median {np.median(ranks[:, -1]):5.0f}  ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
    return results


def write(results, out: Path, args) -> None:
    with open(out / "ranks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "task", "trial", f"rank_at_{args.budget}"])
        for (method, task), r in results.items():
            w.writerows([method, task, i, int(x)] for i, x in enumerate(r["ranks"][:, -1]))
    with open(out / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "task", "query", "mean_rank", "median_rank"])
        for (method, task), r in results.items():
            for q in range(r["ranks"].shape[1]):
                col = r["ranks"][:, q]
                w.writerow([method, task, q + 1, f"{col.mean():.2f}", f"{np.median(col):.1f}"])
    cells = {}
    for key, r in results.items():
        final = r["ranks"][:, -1].astype(np.float64)
        lo, hi = bootstrap_ci(final)
        cells[key] = {"mean": float(final.mean()), "ci95": [lo, hi],
                      "median": float(np.median(final)), "seconds": r["seconds"]}
    lines = [f"Rank of the best network found after {args.budget} queries ({args.benchmark}, "
             f"{args.trials} trials, seed {args.seed}): mean (bootstrap 95% CI), median.", "",
             "| method | " + " | ".join(args.tasks) + " |",
             "|---|" + "---|" * len(args.tasks)]
    for method in args.methods:
        row = []
        for task in args.tasks:
            c = cells[(method, task)]
            row.append(f"{c['mean']:.1f} ({c['ci95'][0]:.1f}–{c['ci95'][1]:.1f}), "
                       f"median {c['median']:.0f}")
        lines.append(f"| {method} | " + " | ".join(row) + " |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps({
        "benchmark": args.benchmark, "trials": args.trials, "budget": args.budget,
        "seed": args.seed, "versions": versions(),
        "cells": {f"{m}/{t}": c for (m, t), c in cells.items()},
        "configs": {f"{m}/{t}": r["config"] for (m, t), r in results.items()}}, indent=1))
    print("\n".join(lines))


def plot(results, out: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(args.tasks)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False,
                             sharex=True)
    for ax, task in zip(axes.flat, args.tasks):
        for method in args.methods:
            ranks = results[(method, task)]["ranks"]
            q = np.arange(1, ranks.shape[1] + 1)
            ax.plot(q, np.median(ranks, axis=0), label=method, lw=1.4)
        ax.set_yscale("log")
        ax.set_title(task, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("queries")
    for ax in axes[:, 0]:
        ax.set_ylabel("median rank of best so far")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{args.benchmark}: rank (by validation score) of the best network found, "
                 f"{args.trials} trials", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "ranks.png", dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/transnas_ranks")
    p.add_argument("--benchmark", default="transnas-micro")
    p.add_argument("--tasks", nargs="+", default=None,
                   help="default: every task of the benchmark")
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.tasks is None:
        args.tasks = list(tables.benchmark_info(args.benchmark).tasks)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = run(args)
    write(results, out, args)
    plot(results, out, args)
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
