"""CATCH paper §4.2 on the real NB201 tables: sample-based search, 500 trials x 50 networks.

Methods: CATCH-meta (meta-trained once per target dataset on the leave-target-out pool,
then adapted in every trial), CATCH-sfs, CATCH-zero, CATCH-random, random search,
regularized evolution, REINFORCE, local search and the BANANAS-style search, on CIFAR-10,
CIFAR-100 and ImageNet16-120. Reward during search: 12-epoch validation accuracy;
reported: 200-epoch test accuracy of the architecture with the best reward.

Writes into --out:
  results.csv        one row per method x dataset x trial: chosen arch and its metrics
  curves.csv         mean best-so-far report accuracy per method x dataset x step
  summary.md         mean ± std, bootstrap 95% CI and global-best hits (markdown)
  summary.json       the same plus timings, config and versions
  fig3_sorted.png    per-trial final accuracy, trials sorted (the paper's Fig. 3)
  fig5_ablation.png  CATCH-meta vs -sfs, -zero, -random (the paper's Fig. 5)
  runs/DATASET/METHOD  each sweep as `catchjax sweep` saves it
  report/, report_ablation/  `catchjax report` over those runs (the figures above come
                     from it; also best-so-far curves with 95% bands)

    CATCHJAX_DATA=../shared/data python experiments/nb201_catch.py --out runs/nb201_catch
Use --trials 20 --budget 20 --benchmark synthetic-nb201 for a quick check.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from catchjax import make_task, methods, sweep
from catchjax.cli import parse_setting
from catchjax.runs import agent as agents
from catchjax.runs.analysis import bootstrap_ci
from catchjax.runs.results import versions

if __package__ in (None, ""):  # run as a script: make the repository root importable
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments import agent_diagnostics  # noqa: E402

DATASETS = ("cifar10", "cifar100", "imagenet16-120")
METHODS = ("catch-meta", "catch-sfs", "catch-zero", "catch-random", "random", "rea", "reinforce",
           "ls", "bananas")


def run(args) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for dataset in args.datasets:
        task = make_task(args.benchmark, dataset, protocol=args.protocol)
        for method in args.methods:
            t0 = time.perf_counter()
            # --set applies to the methods whose config has the setting (the CATCH family)
            accepted = set(methods.setting_names(method))
            settings = {k: v for k, v in args.set if k in accepted}
            config = methods.make_config(method, budget=args.budget, **settings)
            learner = methods.get(method).learner
            if learner is not None and learner.requires_agent:
                # several meta-trained agents (seeds seed..seed+N-1), one vmapped call; the
                # sweep shares the trials among them (trial i: agent i % N), so the spread
                # across agents shows
                seeds = [args.seed + a for a in range(args.agents)]
                trained = agents.train_many(method, task, config, seeds, pool=args.pool)
                for t in trained:
                    agents.save_agent(out / "agents" / f"{method}-{dataset}-seed{t.seed}", t,
                                      overwrite=True)
                if method == "catch-meta":
                    agents.save_agent(out / f"meta-agent-{dataset}", trained[0], overwrite=True)
                res = sweep(config, task, trials=args.trials, budget=args.budget, seed=args.seed,
                            agent=[t.agent for t in trained], progress=not args.no_progress)
                res.info.update(meta_pool=trained[0].pool,
                                meta_train_seconds=sum(t.seconds for t in trained),
                                agent_seeds=seeds)
                if methods.get(method).family == "catch":  # what each agent learned
                    res.info["agent_diagnostics"] = agent_diagnostics.diagnose(
                        res, trained, method, dataset)
            else:
                res = sweep(config, task, trials=args.trials, budget=args.budget,
                            seed=args.seed, progress=not args.no_progress)
            results[(method, dataset)] = res
            s = describe(res)
            print(f"{dataset:15s} {method:13s} {s['mean']:.2f} ± {s['std']:.2f} "
                  f"hits {s['best_hits']:3d} top-3 {s['top3']:.0%} distinct {s['distinct']:3d}"
                  f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return results


def describe(res) -> dict:
    """summary() plus the paper's claims' statistics: top-3 fraction, distinct networks,
    spread across meta-trained agents, and how the adaptation behaved (CATCH metrics)."""
    s = res.summary()
    report = np.asarray(res.task.arrays.report)[:, 0][res.task.searchable]
    third = np.sort(report)[-3]
    final = res.final_report
    s["top3"] = float(np.mean(final >= third))
    s["rates"] = {"best": rates(final >= report.max(), res.n_agents),
                  "top3": rates(final >= third, res.n_agents)}
    s["distinct"] = int(len(np.unique(res.best_row[:, -1])))
    s.setdefault("agent_spread", None)  # SweepResult.agent_summary, with several agents
    for k in ("controller_entropy", "distinct_candidates"):
        if k in res.metrics:
            v = np.asarray(res.metrics[k], np.float64).mean(axis=0)
            s[f"{k}_first"], s[f"{k}_last"] = float(v[0]), float(v[-1])
    return s


def rates(hit: np.ndarray, n_agents: int) -> dict:
    """The fraction of trials that hit (found the best, chose a top-3 network) with two
    95% intervals: a bootstrap over trials, and -- with several agents, trial i adapting
    agent i mod N -- a bootstrap over the agents' own rates (issue 32: the hits of a few
    agents are not the hits of the method)."""
    hit = np.asarray(hit, np.float64)
    out = {"rate": float(hit.mean()), "ci_trials": list(bootstrap_ci(hit)), "ci_agents": None}
    if n_agents > 1:
        which = np.arange(len(hit)) % n_agents
        per_agent = np.array([hit[which == a].mean() for a in range(n_agents)])
        out["agent_rates"] = per_agent.tolist()
        out["ci_agents"] = list(bootstrap_ci(per_agent))
    return out


def rate_text(r: dict) -> str:
    text = f"{r['rate']:.0%} [{r['ci_trials'][0]:.0%}–{r['ci_trials'][1]:.0%}]"
    if r["ci_agents"] is not None:
        text += f" (agents {r['ci_agents'][0]:.0%}–{r['ci_agents'][1]:.0%})"
    return text


def cell(s: dict) -> str:
    """One table cell; metrics below 10 in size (SSIM, losses) get more decimals."""
    f = ".2f" if abs(s["mean"]) >= 10 else ".4f"
    lo, hi = s["ci95"]
    spread = (f", agents ± {s['agent_spread']:{f}}" if s.get("agent_spread") is not None
              else "")
    if "rates" not in s:  # a summary written before the rates were recorded
        return (f"{s['mean']:{f}} ± {s['std']:{f}} ({lo:{f}}–{hi:{f}}), {s['best_hits']} "
                f"hits, top-3 {s['top3']:.0%}, {s['distinct']} distinct{spread}")
    return (f"{s['mean']:{f}} ± {s['std']:{f}} ({lo:{f}}–{hi:{f}}), {s['best_hits']} hits = "
            f"{rate_text(s['rates']['best'])}, top-3 {rate_text(s['rates']['top3'])}, "
            f"{s['distinct']} distinct{spread}")


def _columns(results) -> str:
    """Each dataset's reward and reported column, as the tasks were built."""
    seen = {}
    for (_, dataset), res in results.items():
        spec = res.task.spec
        seen.setdefault(dataset, f"{dataset}: reward {spec.reward_metric}, reported "
                                 f"{spec.report_metrics[0]}")
    return "; ".join(seen.values())


def write_tables(results, out: Path, args):
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "dataset", "trial", "best_row", "best_arch", "best_reward",
                    "report_metric", "report_value"])
        for (method, dataset), res in results.items():
            arch = res.task.table.arch_str
            for i in range(res.trials):
                row = int(res.best_row[i, -1])
                w.writerow([method, dataset, i, row, arch[row], float(res.best_reward[i, -1]),
                            res.task.spec.report_metrics[0], float(res.final_report[i])])
    with open(out / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "dataset", "step", "mean_best_report", "ci_low", "ci_high"])
        for (method, dataset), res in results.items():
            curve = res.best_report[:, :, 0]
            sem = curve.std(axis=0, ddof=1) / np.sqrt(res.trials)
            for t in range(res.budget):
                m = float(curve[:, t].mean())
                w.writerow([method, dataset, t + 1, m, m - 1.96 * sem[t], m + 1.96 * sem[t]])
    summaries = {f"{m}/{d}": describe(r) for (m, d), r in results.items()}
    with open(out / "summary.json", "w") as f:
        json.dump({"args": vars(args), "versions": versions(), "runs": summaries}, f,
                  indent=2, default=str)
    lines = [f"| method | {' | '.join(args.datasets)} |", "|---|" + "---|" * len(args.datasets)]
    for method in args.methods:
        cells = []
        for d in args.datasets:
            cells.append(cell(summaries[f"{method}/{d}"]))
        lines.append(f"| {method} | {' | '.join(cells)} |")
    diag = ["", "Adaptation (CATCH methods): controller entropy (nats, Monte-Carlo over the "
            "M candidates) and distinct candidates among M, mean over trials, first → last "
            "search epoch.", "", f"| method | {' | '.join(args.datasets)} |",
            "|---|" + "---|" * len(args.datasets)]
    for method in args.methods:
        cells = []
        for d in args.datasets:
            s = summaries[f"{method}/{d}"]
            if "controller_entropy_first" not in s:
                break
            cells.append(f"H {s['controller_entropy_first']:.2f} → "
                         f"{s['controller_entropy_last']:.2f}, distinct "
                         f"{s['distinct_candidates_first']:.0f} → "
                         f"{s['distinct_candidates_last']:.0f}")
        if len(cells) == len(args.datasets):
            diag.append(f"| {method} | {' | '.join(cells)} |")
    if len(diag) == 5:  # no method with adaptation diagnostics: no empty table
        diag = []
    text = (f"{args.trials} trials × {args.budget} networks, seed {args.seed}, "
            f"benchmark {args.benchmark}, protocol {args.protocol or 'default'} "
            f"({_columns(results)}), pool {args.pool or 'default'}, "
            f"{args.agents} meta-trained agents per meta-trained method (seeds "
            f"{args.seed}..{args.seed + args.agents - 1}, trial i adapts agent i mod N). Cell: "
            f"mean ± std of the reported column (named above) of the chosen network "
            f"(bootstrap 95% CI), trials that found the table's best, trials whose choice is "
            f"among the table's top 3 (each as a rate with its bootstrap 95% CI over trials "
            f"and, for meta-trained methods, over the agents' own rates), distinct chosen "
            f"networks, and the std of the per-agent means.\n\n" + "\n".join(lines) + "\n"
            + "\n".join(diag) + "\n")
    records = [r for res in results.values() for r in res.info.get("agent_diagnostics", [])]
    if records:
        agent_diagnostics.write(records, out, f"{args.benchmark}, protocol "
                                f"{args.protocol or 'default'}: each meta-trained agent "
                                f"({args.agents} per method and target), adapting")
        text += ("\nWhat each meta-trained agent learned: `agents.csv` and `agents.png` "
                 "(experiments/agent_diagnostics.py).\n")
    (out / "summary.md").write_text(text)
    print(text)


def plot(results, out: Path, args):
    """The figures come from `catchjax report` over the saved runs (runs/DATASET/METHOD):
    Fig. 3 (all methods) and Fig. 5 (the CATCH context ablation), one panel per dataset,
    plus best-so-far curves; the reports are kept under report/ and report_ablation/."""
    import shutil

    from catchjax.store import reporting
    from catchjax.studies import report as runs_report

    folders = {}
    for (method, dataset), res in results.items():
        folders[(method, dataset)] = reporting.write_results(
            res, out / "runs" / dataset / method, overwrite=True)
    ablation = ("catch-meta", "catch-sfs", "catch-zero", "catch-random")
    for name, chosen, fig in (("report", args.methods, "fig3_sorted.png"),
                              ("report_ablation", [m for m in args.methods if m in ablation],
                               "fig5_ablation.png")):
        runs = [folders[(m, d)] for d in args.datasets for m in chosen if (m, d) in folders]
        if not runs:
            continue
        built = runs_report.build(runs, out / name, mix=True, overwrite=True)
        shutil.copyfile(Path(built["out"]) / "fig3_sorted.png", out / fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/nb201_catch")
    p.add_argument("--benchmark", default="nb201")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--trials", type=int, default=500)
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", type=parse_setting, action="append", default=[],
                   help="CATCH setting for all CATCH variants, e.g. --set candidates=100")
    p.add_argument("--agents", type=int, default=20,
                   help="meta-trained agents per meta-trained method (seeds seed, seed+1, ...)")
    p.add_argument("--pool", help="meta-training pool: a named pool (nb201: 12, 12,200, "
                   "12,test12) or columns; default: the benchmark's default pool")
    p.add_argument("--protocols", nargs="+", default=[None],
                   help="task protocols to run (nb201: nats = 12-epoch validation reward, "
                   "200-epoch test report, the default; catch-fig3 = 200-epoch validation "
                   "for both, the paper's Fig. 3); with several, each goes into "
                   "--out/PROTOCOL")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.agents < 1:
        p.error("--agents must be >= 1")
    from catchjax.benchmarks import tables

    info = tables.benchmark_info(args.benchmark)
    for protocol in args.protocols:
        info.task_defaults(protocol)  # every protocol checked before anything runs
    for protocol in args.protocols:
        one = argparse.Namespace(**vars(args), protocol=protocol)
        out = Path(args.out) / protocol if len(args.protocols) > 1 else Path(args.out)
        one.out = str(out)
        results = run(one)
        write_tables(results, out, one)
        plot(results, out, one)
        print(f"wrote {out}/summary.md, results.csv, curves.csv, summary.json and the figures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
