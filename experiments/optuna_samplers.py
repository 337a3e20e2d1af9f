"""catchjax's methods against optuna's own samplers on the real tables (issue 34).

Every search gets the same rule: it queries ``budget`` networks by the task's reward (the
12-epoch validation accuracy on NB201's NATS protocol), and its result is the reported
value (200-epoch test accuracy) of the network with the best reward it saw (the earliest
of ties). catchjax's methods run ``--trials`` seeded trials each as one compiled call;
optuna's samplers (TPE as optuna 5 makes it by default, i.e. multivariate; the univariate
TPE of earlier optuna; NSGA-II; random; GP, where PyTorch is installed) run ``--seeds``
studies each, one after another in this process, over the same categorical decisions.
``catch-meta`` first meta-trains ``--agents`` agents on the pool without the task (as
``catchjax sweep`` does; the time counts). ``--merge OLD/summary.json`` adds this run's
rows to an earlier run's (e.g. one more sampler), naming both commands. Writes
``results.csv`` (one row per search, rewritten after each method and sampler, so a
stopped run keeps what it finished), ``summary.csv`` / ``summary.md`` (mean, std,
bootstrap 95% CI, table's-best hits, seconds per search) and ``head_to_head.png``.

    python experiments/optuna_samplers.py --out experiments/results/optuna_samplers
        [--benchmark nb201] [--tasks cifar10 cifar100 imagenet16-120] [--budgets 50 100]
        [--trials 500] [--seeds 200] [--methods random rea ls bananas catch-sfs catch-meta]
        [--samplers tpe tpe-univariate nsga2 random]

optuna's GP sampler needs PyTorch, which catchjax does not install; ``--samplers gp`` runs
it where torch is there.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

SAMPLERS = ("tpe", "tpe-univariate", "tpe-multivariate", "nsga2", "random", "gp")
METHODS = ("random", "rea", "ls", "bananas", "catch-sfs", "catch-meta")


def make_sampler(name: str, seed: int):
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "tpe-univariate":  # optuna < 5's default: one density per parameter
        return optuna.samplers.TPESampler(seed=seed, multivariate=False)
    if name == "tpe-multivariate":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(name)


def catchjax_sweep(method: str, task, trials: int, budget: int, agents: int):
    """``trials`` searches of ``method`` as one call; a method that adapts trained agents
    (catch-meta) first trains ``agents`` of them on the pool without the task, as
    ``catchjax sweep`` does (their training counts in the time per search)."""
    from catchjax import methods, sweep
    from catchjax.runs import agent as trained_agents

    if methods.get(method).learner is None:
        return sweep(method, task, trials=trials, budget=budget, seed=0)
    config, trained, _ = trained_agents.for_search(method, task, budget=budget, seed=0,
                                                   log=None, agents=agents)
    return sweep(config, task, trials=trials, budget=budget, seed=0,
                 agent=[t.agent for t in trained])


def merged(rows: list[dict], path: str | None) -> list[dict]:
    """The summary rows of an earlier run (``--merge its summary.json``) that this run did
    not recompute, then this run's."""
    if not path:
        return rows
    done = {(r["task"], r["budget"], r["side"], r["method"]) for r in rows}
    old = json.loads(Path(path).read_text())["rows"]
    return [r for r in old if (r["task"], r["budget"], r["side"], r["method"]) not in done] \
        + rows


def commands(args) -> list[str]:
    """The commands whose rows the summary holds: the merged run's, then this one."""
    old = json.loads(Path(args.merge).read_text()).get("commands", []) if args.merge else []
    return old + ["python experiments/optuna_samplers.py " + " ".join(args.argv)]


def rows_by_decisions(task) -> dict:
    """The table row of each decision tuple (built once per task, not per study)."""
    return {tuple(a): r for r, a in enumerate(np.asarray(task.table.actions).tolist())}


def optuna_search(task, sampler_name: str, seed: int, budget: int,
                  row_of: dict | None = None) -> tuple[float, float]:
    """(reported value of the best-by-reward network, seconds)."""
    import optuna

    row_of = rows_by_decisions(task) if row_of is None else row_of
    reward = np.asarray(task.arrays.reward)
    report = np.asarray(task.arrays.report)[:, 0]
    choices = list(range(task.space.n_choices))
    seen: list[int] = []

    def objective(trial):
        a = tuple(trial.suggest_categorical(f"d{i}", choices)
                  for i in range(task.space.n_decisions))
        row = row_of.get(a)
        if row is None or not task.searchable[row]:
            raise optuna.TrialPruned()  # not a network of the table: no result
        seen.append(row)
        return float(reward[row])

    t0 = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=make_sampler(sampler_name, seed))
    study.optimize(objective, n_trials=budget)
    seconds = time.perf_counter() - t0
    rewards = reward[seen]
    best = seen[int(np.argmax(rewards))]  # the earliest of ties, as catchjax's best-so-far
    return float(report[best]), seconds


def keep(out: Path, rows: list[dict]) -> None:
    """Write every search finished so far to ``results.csv`` (after each method and
    sampler: a run stopped hours in keeps what it computed; a new file replaces the old
    one only once complete)."""
    from catchjax import safe_io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    safe_io.atomic_write_bytes(out / "results.csv", buf.getvalue().encode())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default="nb201")
    p.add_argument("--tasks", nargs="+", default=None)
    p.add_argument("--protocol", default=None, help="NB201: nats (default) or catch-fig3")
    p.add_argument("--budgets", nargs="+", type=int, default=[50, 100])
    p.add_argument("--trials", type=int, default=500, help="catchjax trials per method")
    p.add_argument("--seeds", type=int, default=200, help="optuna studies per sampler")
    p.add_argument("--methods", nargs="*", default=list(METHODS))
    # optuna 5's default TPESampler is multivariate (multivariate=None means True), so
    # "tpe" and "tpe-multivariate" are one sampler there; "tpe-univariate" is the old one
    p.add_argument("--samplers", nargs="*", default=["tpe", "tpe-univariate", "nsga2",
                                                      "random"], choices=SAMPLERS)
    p.add_argument("--agents", type=int, default=20,
                   help="agents a meta-trained method (catch-meta) trains first")
    p.add_argument("--merge", metavar="SUMMARY_JSON",
                   help="keep the rows of an earlier run's summary.json that this run does "
                   "not recompute (tables and figure show both; results.csv only this run)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)

    import jax
    import optuna

    from catchjax import make_task
    from catchjax.benchmarks import catalog
    from catchjax.runs.analysis import bootstrap_ci

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = args.tasks or list(catalog.benchmark_info(args.benchmark).tasks)
    device = f"{jax.devices()[0].device_kind} x{jax.device_count()}"
    rows, labels = [], {}
    for name in tasks:
        task = make_task(args.benchmark, name, protocol=args.protocol) if args.protocol \
            else make_task(args.benchmark, name)
        labels[name] = report_label(task)
        row_of = rows_by_decisions(task)
        table_best = float(np.nanmax(np.asarray(task.arrays.report)[task.searchable, 0]))
        for budget in args.budgets:
            for method in args.methods:
                t0 = time.perf_counter()
                res = catchjax_sweep(method, task, args.trials, budget, args.agents)
                total = time.perf_counter() - t0  # compile + run, as a user waits for it
                for i, v in enumerate(res.final_report.tolist()):
                    rows.append({"task": name, "budget": budget, "side": "catchjax",
                                 "method": method, "seed": i, "final": v,
                                 "seconds": total / args.trials, "table_best": table_best})
                print(f"{name} {budget} catchjax {method}: {res.final_report.mean():.3f} "
                      f"({total:.1f} s for {args.trials})", flush=True)
                keep(out, rows)
            for sampler in args.samplers:
                t0 = time.perf_counter()
                for seed in range(args.seeds):
                    v, seconds = optuna_search(task, sampler, seed, budget, row_of)
                    rows.append({"task": name, "budget": budget, "side": "optuna",
                                 "method": sampler, "seed": seed, "final": v,
                                 "seconds": seconds, "table_best": table_best})
                mean = np.mean([r["final"] for r in rows[-args.seeds:]])
                print(f"{name} {budget} optuna {sampler}: {mean:.3f} "
                      f"({time.perf_counter() - t0:.1f} s for {args.seeds})", flush=True)
                keep(out, rows)

    summary = merged(summarize(rows, bootstrap_ci), args.merge)
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(summary[0]))
        w.writeheader()
        w.writerows(summary)
    (out / "summary.md").write_text(markdown(summary, args, device))
    (out / "summary.json").write_text(json.dumps(
        {"benchmark": args.benchmark, "protocol": args.protocol or "default",
         "trials": args.trials, "seeds": args.seeds, "device": device,
         "optuna": optuna.__version__, "commands": commands(args), "rows": summary},
        indent=1))
    plot(summary, out / "head_to_head.png", args, labels)
    print(f"wrote {out}")
    return 0


def summarize(rows: list[dict], bootstrap_ci) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["budget"], r["side"], r["method"]), []).append(r)
    out = []
    for (task, budget, side, method), rs in groups.items():
        v = np.asarray([r["final"] for r in rs], np.float64)
        lo, hi = bootstrap_ci(v)
        out.append({"task": task, "budget": budget, "side": side, "method": method,
                    "searches": len(v), "mean": float(v.mean()), "std": float(v.std(ddof=1)),
                    "ci_low": lo, "ci_high": hi,
                    "best_hits": int(np.sum(v >= rs[0]["table_best"])),
                    "seconds_per_search": float(np.mean([r["seconds"] for r in rs]))})
    return out


def markdown(summary: list[dict], args, device: str) -> str:
    from catchjax.benchmarks.names import task_title

    lines = [f"# catchjax's methods vs optuna's samplers ({args.benchmark}, protocol "
             f"{args.protocol or 'default'})", "",
             f"Each search queries `budget` networks by the task's reward and reports the "
             f"test value of its best-by-reward network. catchjax: {args.trials} trials "
             f"per method as one compiled call (seconds per search = the call's compile + "
             f"run time / trials); optuna: studies per sampler (searches), one after "
             f"another in one process. Mean ± std [bootstrap 95% CI]; hits: searches that "
             f"found the table's best. Device: {device}. "
             + "; then ".join(f"`{c}`" for c in commands(args)) + ".", ""]
    for task in dict.fromkeys(s["task"] for s in summary):
        for budget in dict.fromkeys(s["budget"] for s in summary):
            rows = sorted((s for s in summary if s["task"] == task and s["budget"] == budget),
                          key=lambda s: -s["mean"])
            if not rows:
                continue
            lines += [f"## {task_title(args.benchmark, task)}, {budget} queries", "",
                      "| side | method | searches | mean ± std [95% CI] | hits | s per search |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {s['side']} | {s['method']} | {s['searches']} | {s['mean']:.3f} ± "
                      f"{s['std']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}] | "
                      f"{s['best_hits']} | {s['seconds_per_search']:.4f} |" for s in rows]
            lines.append("")
    return "\n".join(lines)


def save_png(fig, path: Path, dpi: int) -> None:
    """A PNG of 256 colours (points, bars and text need no more): a tall grid of panels
    stays a small file in the repository."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    Image.open(buf).convert("RGB").quantize(256).save(path, optimize=True)


def report_label(task) -> str:
    """The x axis of a task's panel: its reported metric in words."""
    from catchjax.benchmarks.names import display_name

    return display_name(task.spec.report_metrics[0])


def plot(summary: list[dict], path: Path, args, labels: dict) -> None:
    """One panel per task and budget (tasks as columns up to 3, else as rows)."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from catchjax.benchmarks.names import task_title

    tasks = list(dict.fromkeys(s["task"] for s in summary))
    budgets = list(dict.fromkeys(s["budget"] for s in summary))
    wide = len(tasks) <= 3
    shape = (len(budgets), len(tasks)) if wide else (len(tasks), len(budgets))
    with plt.rc_context({"pdf.fonttype": 42}):
        fig, axes = plt.subplots(*shape, squeeze=False,
                                 figsize=(4.3 * shape[1], 2.9 * shape[0]))
        for i, budget in enumerate(budgets):
            for j, task in enumerate(tasks):
                ax = axes[i][j] if wide else axes[j][i]
                rows = sorted((s for s in summary if s["task"] == task
                               and s["budget"] == budget), key=lambda s: s["mean"])
                y = np.arange(len(rows))
                for k, s in zip(y, rows):
                    c = "tab:blue" if s["side"] == "catchjax" else "tab:orange"
                    ax.errorbar([s["mean"]], [k], fmt="o", ms=3.5, color=c, capsize=2,
                                xerr=[[s["mean"] - s["ci_low"]], [s["ci_high"] - s["mean"]]])
                ax.set_yticks(y, [f"{s['method']} ({s['side']})" for s in rows], fontsize=7)
                ax.set_title("\n".join(textwrap.wrap(
                    f"{task_title(args.benchmark, task)}, {budget} queries", 44)), fontsize=8)
                ax.set_xlabel(f"{labels.get(task, 'reported value')}\nof the best-by-reward "
                              f"network (mean, 95% CI over searches)", fontsize=7)
                ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
                ax.tick_params(axis="x", labelsize=7)
                ax.grid(alpha=0.3, lw=0.5)
        fig.tight_layout()
        save_png(fig, path, dpi=160 if wide else 110)
        fig.savefig(path.with_suffix(".pdf"))
        plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
