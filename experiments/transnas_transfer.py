"""Paper 002's transfer study (§4, Figs. 1, 4-13) on TransNAS-Bench-101, at a scale the
2-core CPU finishes in well under an hour, plus the baselines at equal table queries.

For each space (micro, then macro): the Kendall-tau matrix and gamma-spread sweep of the
seven tasks (`catchjax tasks`), then the 4 x 4 study of the paper's tasks
(class_object, room_layout, autoencoder, segmentsemantic; segmentsemantic's reward
gamma-transformed with 0.478) with the edit-based DQN, N seeds per cell, T steps per
run; then random search and regularized evolution on each target, 500 trials each, with
(a) as many queries as the DQN's scratch runs made (distinct architectures), (b) the 11
queries of one greedy episode of a trained agent and (c) 50; CATCH from scratch with
(a) (a few trials: its cost grows with the square of the budget), (b) and (c). Then the
same 4 x 4 study with CATCH as the agent (``--catch-steps`` table queries of
meta-training per run; each curve point = adaptation searches of 50 networks from the
current agent). Writes ``transfer.md`` (tables) and the study folders with CSVs and
plots; the reading lives in experiments/results/transnas_transfer/transfer.md.

    CATCHJAX_DATA=../shared/data python experiments/transnas_transfer.py --out runs/transfer

The full-scale study of the paper (width 256, Adam 5e-5, T = 10^7, 256 environments;
about 2 minutes per run on one H100, see README) is

    catchjax transfer --agent dqn --space micro --steps 10000000 --seeds 5 --out runs/full

CPU-scale deviations from the paper's settings (all recorded in each study.json): width
64, 64 environments, batch 64, Adam 3e-4 (5e-5 barely moves in 4*10^4 steps), target
network every 2,048 steps, 20 curve points of 128 greedy episodes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from catchjax import methods, sweep
from catchjax.benchmarks import tables  # noqa: E402
from catchjax.runs.analysis import bootstrap_ci  # noqa: E402
from catchjax.studies import task_relations, transfer  # noqa: E402

TASKS = ("class_object", "room_layout", "autoencoder", "segmentsemantic")
CPU_SETTINGS = dict(width=64, n_envs=64, batch_size=64, learning_rate=3e-4, target_period=2048,
                    learning_starts=256)
EVAL = dict(eval_points=20, eval_episodes=128)  # curve points, greedy episodes per point
# CATCH's curve points are adaptation searches (budget 50 each): fewer, they cost more
CATCH_EVAL = dict(eval_points=10, eval_episodes=16)


def baselines(study_dir, spec, task_objs, budget_episode, trials=500,
              methods_=("random", "rea", "catch-sfs"), catch_trials=4):
    """RS and REA on each target with the DQN scratch runs' number of distinct queries,
    with one greedy episode's and with 50; CATCH from scratch with one episode's and 50
    (``trials`` each), and with the DQN's queries (``catch_trials``: its cost grows with
    the square of the budget, ~2-3 min per trial at 2,500 queries on the 2-core CPU)."""
    rows = []
    for t in spec.tasks:
        distinct = int(round(float(np.mean(
            transfer.load_stage(study_dir, f"scratch__{t}")["distinct"]))))
        runs = [(m, label, b, trials) for m in ("random", "rea") if m in methods_
                for label, b in (("= DQN queries", distinct),
                                 ("= one episode", budget_episode), ("50", 50))]
        if "catch-sfs" in methods_:
            runs += [("catch-sfs", "= one episode", budget_episode, trials),
                     ("catch-sfs", "50", 50, trials)]
            if catch_trials > 0:
                runs.append(("catch-sfs", "= DQN queries", distinct, catch_trials))
        for method, label, budget, n in runs:
            res = sweep(method, task_objs[t], trials=n, budget=budget, seed=0,
                        progress=False)
            v = np.asarray(res.final_report, np.float64)
            lo, hi = bootstrap_ci(v)
            rows.append((t, method, label, budget, n, v.mean(), v.std(), lo, hi))
    return rows


def md_matrix(result, spec, regime):
    cells = {(c["source"], c["target"]): c for c in result["cells"] if c["regime"] == regime}
    lines = ["| source \\ target | " + " | ".join(spec.tasks) + " |",
             "|---" * (len(spec.tasks) + 1) + "|"]
    for s in spec.tasks:
        row = [f"**{s}**"]
        for t in spec.tasks:
            c = cells.get((s, t))
            row.append("N/A" if c is None else
                       f"{c['mean']:.3f} ± {c['std']:.3f} [{c['ci_low']:.3f}, {c['ci_high']:.3f}]"
                       f" (seeds ± {c['seed_std']:.3f})")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def study_report(spec, config, study_dir, label, prefix=""):
    """Run (or resume) one transfer study; its matrices and crossover table as markdown
    (``prefix`` before its section headings, to tell two studies in one file apart)."""
    t0 = time.perf_counter()
    result = transfer.run_study(spec, config, study_dir)
    minutes = (time.perf_counter() - t0) / 60
    stages = [transfer.load_stage(study_dir, f.stem)
              for f in (study_dir / "stages").glob("*.npz")]
    train_min = sum(float(z["seconds"]) + float(z["compile_seconds"]) for z in stages) / 60
    learner = methods.get(spec.method).learner
    unit = learner.curve_unit
    report = [f"**{label} study** (`{study_dir.name}/`): "
              f"{len(spec.tasks)} tasks, T = {result['trained_steps']:,} {unit} per run, "
              f"{len(spec.seeds)} seeds per cell, fine-tune = first "
              f"{result['fine_tune_step']:,} target {unit}; training and compiling "
              f"{train_min:.1f} min (this run: {minutes:.1f} min). Cells: mean ± std over "
              f"episodes and seeds [bootstrap 95% CI] (seeds ± std of the per-seed means); "
              + learner.curve_scored_by.format(budget=config.budget) + ".", ""]
    for regime in transfer.REGIMES:
        report += [f"### {prefix}{regime}", "", md_matrix(result, spec, regime), ""]
    report += [f"### {prefix}{'c' if prefix else 'C'}rossover ({unit} for a transferred run "
               "to reach a scratch "
               "run's final smoothed performance; all-to-all pairs)", "",
               "| source | target | mean [95% CI] | mean seconds | pairs reached |",
               "|---|---|---|---|---|"]
    for c in result["crossover"]:
        report.append(f"| {c['source']}{' (scratch)' if c['kind'] == 'scratch' else ''} | "
                      f"{c['target']} | {c['mean_steps']:.0f} [{c['ci_low_steps']:.0f}, "
                      f"{c['ci_high_steps']:.0f}] | {c['mean_seconds']:.2f} | "
                      f"{c['pairs_reached']}/{c['pairs']} |")
    return report + [""]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/transfer")
    p.add_argument("--spaces", nargs="+", default=["micro", "macro"])
    p.add_argument("--steps", type=int, nargs="+", default=[40_960, 20_480],
                   help="T per space, in the order of --spaces")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--synthetic", action="store_true", help="synthetic tables (a smoke run)")
    p.add_argument("--trials", type=int, default=500, help="trials per baseline sweep")
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--baselines", nargs="*", default=["random", "rea", "catch-sfs"])
    p.add_argument("--catch-trials", type=int, default=4,
                   help="trials of CATCH-sfs with as many queries as the DQN made (0: skip)")
    p.add_argument("--eval-episodes", type=int, default=EVAL["eval_episodes"])
    p.add_argument("--set", nargs="*", default=[], help="extra agent settings NAME=VALUE")
    p.add_argument("--catch-steps", type=int, default=2000,
                   help="T of the CATCH study in meta-training table queries (0: skip it)")
    p.add_argument("--catch-set", nargs="*", default=[], help="CATCH settings NAME=VALUE")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(CPU_SETTINGS)
    settings.update(dict(s.split("=", 1) for s in args.set))
    catch_settings = dict(s.split("=", 1) for s in args.catch_set)
    report = ["# Transfer study of paper 002 on TransNAS-Bench-101 (CPU scale)", "",
              f"`python experiments/transnas_transfer.py {' '.join(argv or [])}`".strip(), ""]
    for space, steps in zip(args.spaces, args.steps):
        bench = f"{'synthetic-' if args.synthetic else ''}transnas-{space}"
        rel = task_relations.compute(bench)
        report += [f"## {space} space", "", "```", task_relations.format_report(rel), "```", ""]
        gammas = (("segmentsemantic", 0.478),) if "segmentsemantic" in args.tasks else ()
        spec = transfer.StudySpec("dqn", bench, tuple(args.tasks), steps,
                                  tuple(range(args.seeds)), gammas=gammas,
                                  eval_points=EVAL["eval_points"],
                                  eval_episodes=args.eval_episodes)
        config = methods.make_config("dqn", **settings)
        study_dir = out / f"study_{space}"
        report += study_report(spec, config, study_dir, "DQN")
        if args.catch_steps > 0:
            cspec = transfer.StudySpec("catch-meta", bench, tuple(args.tasks), args.catch_steps,
                                       tuple(range(args.seeds)), gammas=gammas,
                                       eval_points=CATCH_EVAL["eval_points"],
                                       eval_episodes=CATCH_EVAL["eval_episodes"])
            report += study_report(cspec, methods.make_config("catch-meta", **catch_settings),
                                   out / f"catch_study_{space}", "CATCH", prefix="CATCH ")
        task_objs = transfer.make_tasks(spec, tables.load_table(bench))
        rows = baselines(study_dir, spec, task_objs, config.max_episode_steps + 1, args.trials,
                         tuple(args.baselines), args.catch_trials)
        report += ["", "### Baselines at equal table queries", "",
                   "| target | method | budget | queries | trials | test metric mean ± std "
                   "[95% CI] |", "|---|---|---|---|---|---|"]
        for t, m, label, b, n, mean, std, lo, hi in rows:
            report.append(f"| {t} | {m} | {label} | {b} | {n} | {mean:.3f} ± {std:.3f} "
                          f"[{lo:.3f}, {hi:.3f}] |")
        report.append("")
        (out / "transfer.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
