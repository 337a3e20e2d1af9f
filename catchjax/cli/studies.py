"""``catchjax transfer``, ``tasks`` and ``report``: studies over many runs."""

from __future__ import annotations

from pathlib import Path

from catchjax.cli import options
from catchjax.cli.options import parse_setting
from catchjax.errors import CatchjaxError


def add_parsers(sub) -> None:
    add_transfer(sub)
    add_tasks(sub)
    add_report(sub)


def add_transfer(sub) -> None:
    """``catchjax transfer``."""
    tr = sub.add_parser("transfer", help="the transfer study of paper 002: train on each "
                        "source task, transfer to each target (zero-shot, fine-tune, retrain)")
    tr.add_argument("--agent", default="dqn",
                    help="the agent that transfers: dqn, or catch (= catch-meta: meta-training "
                         "on the task, evaluated by adaptation searches)")
    tr.add_argument("--space", choices=("micro", "macro"), default="micro",
                    help="TransNAS-Bench-101 search space")
    tr.add_argument("--benchmark", help="benchmark instead of --space, e.g. "
                    "synthetic-transnas-micro")
    tr.add_argument("--tasks", default="class_object,room_layout,autoencoder,segmentsemantic",
                    help="comma-separated tasks (default: the paper's four)")
    tr.add_argument("--steps", type=options.positive_int, required=True,
                    help="T: environment steps per training run (paper: 10000000)")
    tr.add_argument("--seeds", type=options.positive_int, default=3,
                    help="agents per cell (seeds 0..N-1)")
    tr.add_argument("--fine-tune", type=float, default=0.1,
                    help="fine-tune regime: this fraction of T on the target (paper: 0.1)")
    tr.add_argument("--eval-points", type=options.positive_int, default=20,
                    help="training-curve points (the fine-tune point must be one of them)")
    tr.add_argument("--eval-episodes", type=options.positive_int, default=128,
                    help="evaluations per curve point (DQN: greedy episodes; CATCH: "
                         "adaptation searches)")
    tr.add_argument("--gamma", action="append", default=[], type=parse_setting,
                    metavar="TASK=GAMMA", help="gamma transform of a task's reward "
                    "(default: segmentsemantic=0.478, as the paper; TASK=none turns it off)")
    tr.add_argument("--set", type=parse_setting, action="append", default=[], metavar="NAME=VALUE",
                    help="agent setting, e.g. --set width=64 --set n_envs=64")
    options.add_process_flags(tr)
    tr.add_argument("--out", required=True, help="study folder (rerun to resume it)")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace a finished or different study in --out")


def add_tasks(sub) -> None:
    """``catchjax tasks``."""
    tk = sub.add_parser("tasks", help="how the TransNAS tasks relate: Kendall tau matrix of "
                        "their validation metrics, gamma that maximizes each reward's spread")
    tk.add_argument("--space", choices=("micro", "macro"), default="micro")
    tk.add_argument("--benchmark", help="benchmark instead of --space")
    tk.add_argument("--out", help="folder for kendall.csv/.png and gamma_spread.csv/.png")
    tk.add_argument("--overwrite", action="store_true")


def add_report(sub) -> None:
    """``catchjax report``."""
    rp = sub.add_parser("report", help="compare saved runs (sweeps, transfer studies): "
                        "table, Fig. 3 sorted-trial plot, best-so-far curves, heatmaps")
    rp.add_argument("runs", nargs="+", metavar="RUN_DIR",
                    help="sweep results folders (--out of `catchjax sweep`) or transfer "
                    "study folders")
    rp.add_argument("--out", required=True, help="report folder to write")
    rp.add_argument("--mix", action="store_true",
                    help="allow runs of different benchmarks/tasks (one table per task)")
    rp.add_argument("--overwrite", action="store_true", help="replace a report in --out")


def cmd_transfer(args) -> int:
    from catchjax import methods
    from catchjax.studies import transfer

    benchmark = args.benchmark or f"transnas-{args.space}"
    gammas = {"segmentsemantic": 0.478}
    for task, value in args.gamma:
        if value.strip().lower() == "none":
            gammas.pop(task, None)
            continue
        try:
            gammas[task] = float(value)
        except ValueError:
            raise CatchjaxError(f"--gamma {task}={value}: expected a number or 'none'") from None
    names = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    stray = [task for task, _ in args.gamma if task not in names]
    if stray:
        raise CatchjaxError(f"--gamma names {', '.join(stray)}, which is not among --tasks "
                            f"({', '.join(names)}): it would do nothing")
    if args.seeds > options.MAX_SEEDS:
        raise CatchjaxError(f"--seeds {args.seeds}: at most {options.MAX_SEEDS} agents per "
                            f"cell (each is trained in full)")
    agent = {"catch": "catch-meta"}.get(args.agent, args.agent)
    spec = transfer.StudySpec(agent, benchmark, names, args.steps,
                              tuple(range(args.seeds)), args.fine_tune,
                              tuple(sorted((t, g) for t, g in gammas.items() if t in names)),
                              eval_points=args.eval_points, eval_episodes=args.eval_episodes)
    config = methods.build(agent, **dict(args.set))
    options.check_process_flags(args)
    worker = options.start_processes(args)
    result = transfer.run_study(spec, config, args.out, overwrite=args.overwrite,
                                log=(lambda *_: None) if worker else print,
                                progress=not worker)
    if worker:
        import jax

        print(f"process {jax.process_index()} of {jax.process_count()}: its seeds are "
              f"done; process 0 wrote the study")
        return 0
    for regime in transfer.REGIMES:
        print(transfer.format_matrix(result, spec, regime))
    print(f"wrote {args.out}/cells.csv, curves.csv, crossover.csv and plots")
    return 0


def cmd_tasks(args) -> int:
    from catchjax.studies import task_relations

    benchmark = args.benchmark or f"transnas-{args.space}"
    print(task_relations.report(benchmark, args.out, args.overwrite))
    return 0


def cmd_report(args) -> int:
    from catchjax.studies import report as runs_report

    used = runs_report.build(args.runs, args.out, mix=args.mix, overwrite=args.overwrite)
    print(f"report of {len(used['runs'])} run(s) in {used['out']}:")
    for r in used["runs"]:
        print(f"  {r}")
    print((Path(used["out"]) / "report.md").read_text())
    return 0


COMMANDS = {"transfer": cmd_transfer, "tasks": cmd_tasks, "report": cmd_report}
