"""The ``catchjax`` command line.

    catchjax sweep --method rea --benchmark nb201 --task cifar10 --trials 500 --budget 50 \
        --seed 0 --out runs/rea-c10
    catchjax train --method catch-meta --benchmark nb201 --task cifar10 --out agents/c10
    catchjax ask --state DIR -k 8 --out proposals.json [--method M --space S]  # ask/tell
    catchjax tell --state DIR results.csv
    catchjax data get nb201|nb201-hw|transnas-micro|transnas-macro|all
    catchjax data import PATH [--kind KIND] [--as FILENAME]
    catchjax data list

Every command is generic over the method registry (:mod:`catchjax.methods`).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
from pathlib import Path

from catchjax.errors import CatchjaxError


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


MAX_SEEDS = 1024


def _no_budget_setting(args) -> None:
    """sweep and ask have --budget; a --set budget=N beside it would be a second source."""
    if any(name == "budget" for name, _ in args.set):
        raise CatchjaxError("the budget is --budget, not a --set setting")


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def parse_setting(text):
    """``--set NAME=VALUE`` -> (NAME, VALUE as typed); the method's config parses VALUE by
    the field's declared type (:func:`catchjax.methods.parse_value`)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    if not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def _version() -> str:
    import importlib.metadata as md

    try:
        return md.version("catchjax")
    except md.PackageNotFoundError:
        return "unknown (not installed)"


def _add_process_flags(parser) -> None:
    hosts = parser.add_argument_group(
        "several processes or hosts (jax.distributed; each process runs the same command "
        "with its own --process-id, process 0 writes the results)")
    hosts.add_argument("--coordinator", metavar="HOST:PORT",
                       help="address of process 0, which hosts the coordinator")
    hosts.add_argument("--num-processes", type=_positive_int)
    hosts.add_argument("--process-id", type=int)
    hosts.add_argument("--distributed", action="store_true",
                       help="let JAX detect the processes (SLURM, Open MPI, TPU pod, or "
                       "JAX_COORDINATOR_ADDRESS) instead of the three flags above")
    hosts.add_argument("--init-timeout", type=float, default=300,
                       help="seconds to wait for the other processes (default 300)")


def _check_process_flags(args) -> bool:
    """Check the process flags (before anything runs); True on a process that is not 0."""
    from catchjax import distributed

    distributed.check(args.coordinator, args.num_processes, args.process_id)
    distributed.check_timeout(args.init_timeout)
    return args.process_id not in (None, 0)


def _start_processes(args) -> bool:
    """Join the other processes, if any; True on a process that is not 0."""
    from catchjax import distributed

    # what this process runs, for the check that every process runs the same
    run = {k: v for k, v in vars(args).items()
           if k not in ("process_id", "debug", "no_compile_cache", "init_timeout", "argv")}
    if distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                              args.init_timeout, auto=args.distributed, run=run):
        import jax

        return jax.process_index() != 0
    return False


def build_parser() -> argparse.ArgumentParser:
    # Only light modules here: `catchjax --help` must not wait for jax to import.
    from catchjax.benchmarks import catalog as tables

    parser = argparse.ArgumentParser(
        prog="catchjax", description="Reinforcement-learning architecture search on NAS benchmarks."
    )
    parser.add_argument("--version", action="version", version=f"catchjax {_version()}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="do not keep compiled functions on disk (default: JAX's "
                        "persistent compilation cache in the user cache folder, or in "
                        "$CATCHJAX_COMPILE_CACHE; 'off' there turns it off too)")
    sub = parser.add_subparsers(dest="command", required=True)
    ms = sub.add_parser("methods", help="list the search methods; with a name, describe its "
                        "settings")
    ms.add_argument("method", nargs="?", help="a method name: its settings, defaults and "
                    "what each does")

    sw = sub.add_parser("sweep", help="run N seeded search trials in one compiled call")
    sw.add_argument("--method", required=True,
                    help="a search method, e.g. rea or catch-meta (`catchjax methods` lists them)")
    sw.add_argument("--benchmark", required=True, help=f"one of: {', '.join(tables.BENCHMARKS)}")
    sw.add_argument("--task", help="task name (nb201: cifar10, cifar100, imagenet16-120)")
    sw.add_argument("--trials", type=_positive_int, default=500)
    sw.add_argument("--budget", type=_positive_int, default=None,
                    help="evaluations per trial: the method's own budget when not given "
                         "(default: 50), for dqn 11 (one greedy episode)")
    sw.add_argument("--seed", type=int, default=0)
    sw.add_argument("--out", required=True, help="output folder (must be new or empty)")
    sw.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    sw.add_argument("--protocol", help="a named set of the task's reward and report columns "
                    "(nb201: nats = 12-epoch validation reward, 200-epoch test report, the "
                    "default; catch-fig3 = 200-epoch validation for both, the CATCH paper's "
                    "Fig. 3)")
    sw.add_argument("--reward", help="reward column (default: the task's)")
    sw.add_argument("--report", help="report columns, comma-separated, first = primary")
    sw.add_argument("--gamma", type=float, help="gamma-transform the reward: R' = R^gamma")
    sw.add_argument("--gamma-normalize", choices=("minmax", "percent", "none"), default=None,
                    help="how the reward is scaled before --gamma (default minmax)")
    sw.add_argument("--cost-metric", help="latency column for R = P * (LAT/T)^w")
    sw.add_argument("--cost-target", type=float, help="the target T of the cost objective")
    sw.add_argument("--cost-weight", type=float, default=None,
                    help="the exponent w (default -0.05)")
    sw.add_argument("--mask-nan", action="store_true",
                    help="search only architectures whose reward is not NaN")
    sw.add_argument("--chunk-size", type=_positive_int,
                    help="trials per compiled call (default: all of them, up to 2048)")
    sw.add_argument("--set", type=parse_setting, action="append", default=[], metavar="NAME=VALUE",
                    help="override a method setting, e.g. --set population=20")
    sw.add_argument("--pool", help="for methods that train an agent first: the meta-training "
                    "pool (see `catchjax train --help`)")
    sw.add_argument("--init", help="methods that adapt a trained agent (catch-meta): this "
                    "checkpoint, or a folder of several (`train --agents`, a sweep's "
                    "meta-agent/); without it, they train agents first")
    sw.add_argument("--agents", type=_positive_int, default=None,
                    help="without --init: trained agents the trials are shared among "
                    "(seeds SEED..SEED+N-1, one vmapped call; default: catch-meta and its "
                    "ablations 5, dqn 1)")
    sw.add_argument("--no-progress", action="store_true")
    sw.add_argument("--parquet", action="store_true",
                    help="also write results.parquet (automatic from 100,000 rows)")
    _add_process_flags(sw)

    for command, text in (("train", "train the agent of a method (CATCH: on the leave-target-"
                                    "out pool; the DQN: on the task)"),
                          ("meta-train", "the same as `train --method catch-meta`")):
        mt = sub.add_parser(command, help=text)
        if command == "train":
            mt.add_argument("--method", required=True,
                            help="a method that uses a trained agent, e.g. catch-meta or dqn")
        mt.add_argument("--benchmark", required=True)
        mt.add_argument("--task", required=True,
                        help="the target task (CATCH: left out of the pool; DQN: trained on)")
        mt.add_argument("--protocol", help="the task's named reward/report columns (nb201: "
                        "nats, the default, or catch-fig3); the pool does not depend on it")
        mt.add_argument("--pool", help="training pool: a named pool (nb201: 12, 12,200, "
                        "12,test12) or reward columns, comma-separated (default: CATCH, the "
                        "other tasks' 12-epoch / validation reward; DQN, the task's reward)")
        mt.add_argument("--gamma", type=float,
                        help="gamma transform R' = R^gamma of the min-max normalized reward "
                             "(paper 002 §3.2; e.g. 0.478 for segmentsemantic)")
        mt.add_argument("--seed", type=int, default=0)
        mt.add_argument("--agents", type=_positive_int, default=1,
                        help="agents to train, seeds SEED..SEED+N-1 in one vmapped call; "
                        "several are saved as one folder that `sweep --init` shares its "
                        "trials among")
        mt.add_argument("--out", required=True, help="checkpoint folder to write")
        mt.add_argument("--overwrite", action="store_true")
        mt.add_argument("--set", type=parse_setting, action="append", default=[],
                        metavar="NAME=VALUE",
                        help="method setting, e.g. --set meta_epochs=25 --set meta_budget=20")

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
    tr.add_argument("--steps", type=_positive_int, required=True,
                    help="T: environment steps per training run (paper: 10000000)")
    tr.add_argument("--seeds", type=_positive_int, default=3, help="agents per cell (seeds 0..N-1)")
    tr.add_argument("--fine-tune", type=float, default=0.1,
                    help="fine-tune regime: this fraction of T on the target (paper: 0.1)")
    tr.add_argument("--eval-points", type=_positive_int, default=20,
                    help="training-curve points (the fine-tune point must be one of them)")
    tr.add_argument("--eval-episodes", type=_positive_int, default=128,
                    help="evaluations per curve point (DQN: greedy episodes; CATCH: "
                         "adaptation searches)")
    tr.add_argument("--gamma", action="append", default=[], type=parse_setting,
                    metavar="TASK=GAMMA", help="gamma transform of a task's reward "
                    "(default: segmentsemantic=0.478, as the paper; TASK=none turns it off)")
    tr.add_argument("--set", type=parse_setting, action="append", default=[], metavar="NAME=VALUE",
                    help="agent setting, e.g. --set width=64 --set n_envs=64")
    _add_process_flags(tr)
    tr.add_argument("--out", required=True, help="study folder (rerun to resume it)")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace a finished or different study in --out")

    tk = sub.add_parser("tasks", help="how the TransNAS tasks relate: Kendall tau matrix of "
                        "their validation metrics, gamma that maximizes each reward's spread")
    tk.add_argument("--space", choices=("micro", "macro"), default="micro")
    tk.add_argument("--benchmark", help="benchmark instead of --space")
    tk.add_argument("--out", help="folder for kendall.csv/.png and gamma_spread.csv/.png")
    tk.add_argument("--overwrite", action="store_true")

    rp = sub.add_parser("report", help="compare saved runs (sweeps, transfer studies): "
                        "table, Fig. 3 sorted-trial plot, best-so-far curves, heatmaps")
    rp.add_argument("runs", nargs="+", metavar="RUN_DIR",
                    help="sweep results folders (--out of `catchjax sweep`) or transfer "
                    "study folders")
    rp.add_argument("--out", required=True, help="report folder to write")
    rp.add_argument("--mix", action="store_true",
                    help="allow runs of different benchmarks/tasks (one table per task)")
    rp.add_argument("--overwrite", action="store_true", help="replace a report in --out")

    data = sub.add_parser("data", help="get, import and list benchmark tables")
    dsub = data.add_subparsers(dest="data_command", required=True)
    get = dsub.add_parser("get", help="download the public files a real table is built from "
                          "(pinned commits, SHA-256 checked) and build it in the data folder")
    get.add_argument("names", nargs="*", metavar="TABLE",  # checked by download.get
                     help="nb201, nb201-hw, transnas-micro, transnas-macro or all")
    get.add_argument("--to", dest="dest", help="folder to write to (default: the data folder)")
    get.add_argument("--from", dest="source_folder", metavar="FOLDER",
                     help="use source files downloaded by hand into FOLDER (see --list) "
                          "instead of the network")
    get.add_argument("--overwrite", action="store_true",
                     help="build a table again although the data folder has it")
    get.add_argument("--list", action="store_true",
                     help="print each table's source files (URL, SHA-256, licence) and exit")
    imp = dsub.add_parser("import", help="import a benchmark file into catchjax's format")
    imp.add_argument("path")
    imp.add_argument("--kind", default="auto",
                     choices=("auto", "npz", "nb201-pth", "nats-topology", "transnas-pth"))
    imp.add_argument("--as", dest="name", help="for a compact .npz: which file it is")
    imp.add_argument("--to", dest="dest", help="folder to write to (default: the data folder)")
    imp.add_argument("--overwrite", action="store_true",
                     help="replace a table of the same name already in the data folder")
    dl = dsub.add_parser("list", help="show which benchmarks are available and their tasks")
    dl.add_argument("--columns", action="store_true",
                    help="also list each available table's columns (what --reward, --report "
                         "and --cost-metric take) with what they measure")
    ak = sub.add_parser("ask", help="ask/tell: propose architectures to evaluate (your "
                        "trainer evaluates them, `catchjax tell` hands the rewards back)")
    ak.add_argument("--state", required=True, help="the search folder (created on the "
                    "first ask, with --method and --space; saved after every ask and tell)")
    ak.add_argument("-k", type=_positive_int, default=1,
                    help="how many proposals to evaluate in parallel (fewer come back when "
                    "the method first needs rewards, e.g. evolution's initial population)")
    ak.add_argument("--out", help="write the proposals to this JSON file (default: stdout)")
    ak.add_argument("--pending", action="store_true",
                    help="ask nothing new: write the proposals still waiting for a reward "
                    "(e.g. after the job that was training them crashed)")
    start = ak.add_argument_group("starting a search (first ask only)")
    start.add_argument("--method", help="a method with ask/tell steps (`catchjax methods`)")
    start.add_argument("--space", help="residual, nb201, transnas-micro or transnas-macro; "
                       "or table:BENCHMARK/TASK for a table's searchable rows")
    start.add_argument("--budget", type=_positive_int, default=None,
                       help="evaluations in all (default: the method's own, 50; dqn: 11); on "
                       "an existing search only its own value is accepted")
    start.add_argument("--seed", type=int, default=None, help="default 0")
    start.add_argument("--set", type=parse_setting, action="append", default=[],
                       metavar="NAME=VALUE", help="override a method setting")
    start.add_argument("--init", help="a trained agent's checkpoint (catch-meta, dqn)")

    ma = sub.add_parser("meta-ask", help="meta-training through ask/tell (CATCH §4.3): "
                        "propose the networks of the current meta-epoch, each with its task")
    ma.add_argument("--state", required=True, help="the meta-training folder (created on "
                    "the first meta-ask, with --space and --tasks)")
    ma.add_argument("-k", type=_positive_int, default=1,
                    help="how many proposals to train in parallel")
    ma.add_argument("--out", help="write the proposals to this JSON file (default: stdout)")
    ma.add_argument("--agent-out", help="once meta-training is done: save the agent here "
                    "(`sweep/ask --method catch-meta --init` adapts it)")
    mstart = ma.add_argument_group("starting a meta-training (first meta-ask only)")
    mstart.add_argument("--method", default="catch-meta",
                        help="catch-meta (default), catch-zero or catch-random")
    mstart.add_argument("--space", help="residual, nb201, transnas-micro or transnas-macro")
    mstart.add_argument("--tasks", help="the task generator: classes:N:LOW-HIGH (LOW..HIGH "
                        "random classes of N per meta-epoch, e.g. classes:10:3-6) or pool:P")
    mstart.add_argument("--seed", type=int, default=0)
    mstart.add_argument("--set", type=parse_setting, action="append", default=[],
                        metavar="NAME=VALUE", help="method setting, e.g. --set meta_epochs=8 "
                        "--set meta_budget=8")
    mt_ = sub.add_parser("meta-tell", help="meta-training through ask/tell: hand the rewards "
                         "of a meta-epoch's networks back")
    mt_.add_argument("--state", required=True, help="the meta-training folder")
    mt_.add_argument("results", help="CSV with a header: id (from the proposals) and reward")
    for p in (ma, mt_):
        p.add_argument("--lock-timeout", type=_seconds, default=120.0, metavar="SECONDS",
                       help="how long to wait for another worker (default 120)")

    tl = sub.add_parser("tell", help="ask/tell: hand the rewards of asked architectures back")
    tl.add_argument("--state", required=True, help="the search folder")
    for p in (ak, tl):
        p.add_argument("--lock-timeout", type=_seconds, default=120.0, metavar="SECONDS",
                       help="how long to wait for another worker's ask or tell on the same "
                       "search (default 120)")
    tl.add_argument("results", help="CSV with a header: reward, and id (from the proposals "
                    "file) or arch; other columns (accuracy, latency, ...) are kept")

    for command in sub.choices.values():
        _add_debug(command)
        _show_defaults(command)
    return parser


def _show_defaults(parser) -> None:
    """--help shows each option's default where it has one worth showing (not None, a
    flag's False or an empty list) and its help does not already name one."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _show_defaults(child)
        default = action.default
        if (not action.option_strings or action.help == argparse.SUPPRESS
                or isinstance(default, bool) or default in (None, argparse.SUPPRESS, [])
                or "default" in (action.help or "")):
            continue
        action.help = f"{action.help} (default: {default})" if action.help else \
            f"default: {default}"


def _add_debug(parser):
    # --debug is accepted after the command too; SUPPRESS keeps the top-level value.
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_debug(child)


def cmd_sweep(args) -> int:
    from catchjax import arguments, reporting

    # Everything the user typed is checked before anything trains or compiles; names,
    # counts and the output folder before JAX is even imported.
    _no_budget_setting(args)
    arguments.check_run(args.trials, args.budget, args.seed)
    arguments.check_names(args.method, args.benchmark, args.task, args.protocol)
    worker = _check_process_flags(args)  # process 0 alone writes files
    reporting.check_parquet(args.parquet)
    done = None if args.overwrite else _same_run_done(args, Path(args.out))
    if done is not None:
        print(f"{args.out} already holds this run (the same command, catchjax "
              f"{done['source_revision'] or done['versions']['catchjax']}, written "
              f"{done['written_at']}): nothing to compute. Its summary:")
        print(reporting.format_summary(done))
        print("  (pass --overwrite to run it again)")
        return 0
    if not worker:
        reporting.check_out_dir(Path(args.out), args.overwrite)
    from catchjax import agent as agents
    from catchjax import sweeps

    worker = _start_processes(args)
    task = _task_from_args(args)
    out = Path(args.out)
    # the agent the search starts from: --init's checkpoint, or one trained now
    config, trained, info = agents.for_search(
        args.method, task, init=args.init, budget=args.budget, seed=args.seed, pool=args.pool,
        agents=args.agents, **dict(args.set))
    new_agent = None
    if trained is not None and args.init is None and not worker:
        new_agent = agents.save_agents(out.parent / f".{out.name}.meta-agent", trained,
                                       overwrite=True)
    agent = None if trained is None else [t.agent for t in trained]
    partial = out.parent / f".{out.name}.partial"
    result = sweeps.sweep(
        config, task, trials=args.trials, seed=args.seed,
        chunk_size=args.chunk_size, progress=not args.no_progress, agent=agent,
        progress_dir=None if worker else partial, log=None if worker else print,
    )
    if worker:
        import jax

        print(f"process {jax.process_index()} of {jax.process_count()}: its trials are done; "
              f"process 0 writes the results")
        return 0
    if "init" in info:  # relative to the run, so that runs and agents can move together
        info["init"] = os.path.relpath(info["init"], out.absolute())
    result.info.update(info, **_provenance(args), table_sha256=_table_digest(args))
    out = reporting.write_results(result, out, overwrite=args.overwrite,
                                  parquet=True if args.parquet else None)
    if new_agent is not None:
        from catchjax import safe_io

        os.replace(new_agent, out / "meta-agent")
        safe_io.write_record(out, "results")  # the agent is the run's too
        many = len(trained) > 1
        print(f"  {'the ' + str(len(trained)) + ' trained agents' if many else 'trained agent'}"
              f" saved in {out / 'meta-agent'} (reuse {'them' if many else 'it'} with --init)")
    shutil.rmtree(partial, ignore_errors=True)
    print(reporting.format_summary(result.summary()))
    print(f"  wrote {out}/results.csv and {out}/summary.json")
    return 0


def _revision() -> str | None:
    """catchjax's source revision when it runs from a git checkout (``-dirty`` if edited)."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        revision = subprocess.run(["git", "-C", str(here), "describe", "--always", "--dirty"],
                                  capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        revision = ""
    return revision or None


def _command(args) -> str:
    import shlex

    return "catchjax " + " ".join(shlex.quote(a) for a in args.argv)


def _provenance(args) -> dict:
    """What produced a run: the command line, catchjax's source revision (when it runs
    from a git checkout) and the UTC time, for summary.json."""
    import time

    return {"command": _command(args), "source_revision": _revision(),
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _table_digest(args) -> str | None:
    from catchjax.benchmarks import tables

    return tables.table_digest(args.benchmark)


def _same_run_done(args, out: Path) -> dict | None:
    """The summary of ``out`` when it already holds this very run: the same command on the
    same table files (SHA-256), by the same catchjax and libraries (versions, a clean
    source revision), without ``--init`` (whose agent may have changed since). A sweep is
    a pure function of those, so running it again would write the same results; a
    quickstart can then be run twice."""
    import json

    from catchjax import reporting, safe_io

    path = out / "summary.json"
    if args.init is not None or getattr(args, "coordinator", None) or \
            getattr(args, "distributed", False) or not path.is_file():
        return None
    from catchjax.results import versions

    try:
        summary = json.loads(path.read_text())
        sealed = summary.get(reporting.DIGEST) == reporting.summary_digest(summary)
    except (OSError, ValueError, AttributeError):
        return None
    revision = _revision()
    same = (sealed and summary.get("command") == _command(args)
            and summary.get("source_revision") == revision
            and not (revision or "").endswith("-dirty")
            and summary.get("versions") == versions()  # another jax may round differently
            and summary.get("table_sha256", "absent") == _table_digest(args)
            and not safe_io.not_written_by_catchjax(out, "results", reporting.RESULT_FILES))
    return summary if same else None


def _task_from_args(args):
    """The task a sweep's arguments name (reward, report, gamma, cost, NaN masking)."""
    from catchjax.benchmarks import tasks

    cost = None
    if args.cost_metric is not None or args.cost_target is not None:
        if args.cost_metric is None or args.cost_target is None:
            raise CatchjaxError("--cost-metric and --cost-target go together")
        cost = tasks.CostObjective(args.cost_metric, args.cost_target,
                                   -0.05 if args.cost_weight is None else args.cost_weight)
    elif args.cost_weight is not None:
        raise CatchjaxError("--cost-weight goes with --cost-metric and --cost-target; alone it "
                            "would do nothing")
    if args.gamma_normalize is not None and args.gamma is None:
        raise CatchjaxError("--gamma-normalize goes with --gamma; alone it would do nothing")
    return tasks.make_task(
        args.benchmark, args.task, reward=args.reward, report=args.report, gamma=args.gamma,
        gamma_normalize=args.gamma_normalize or "minmax", cost=cost, mask_nan=args.mask_nan,
        protocol=args.protocol,
    )


def cmd_train(args) -> int:
    from catchjax import arguments

    name = getattr(args, "method", None) or "catch-meta"
    arguments.check_seed(args.seed)
    arguments.check_seed(args.seed + args.agents - 1)
    arguments.check_names(name, args.benchmark, args.task, args.protocol)
    from catchjax import agent as agents
    from catchjax import methods
    from catchjax.benchmarks import tasks

    method = methods.get(name)
    if method.learner is None:
        raise CatchjaxError(f"method {method.name!r} has no agent to train")
    from catchjax import checkpoints

    checkpoints.check_agent_dir(args.out, args.overwrite)  # before any training
    task = tasks.make_task(args.benchmark, args.task, gamma=args.gamma, protocol=args.protocol)
    config = methods.make_config(method.name, **dict(args.set))
    if args.agents == 1:
        trained = [agents.train(method.name, task, config, seed=args.seed, pool=args.pool,
                                progress=True)]
    else:
        from catchjax import status

        with status.working(f"compiling and training {args.agents} {method.name} agents in "
                            f"one vmapped call"):
            trained = agents.train_many(method.name, task, config,
                                        list(range(args.seed, args.seed + args.agents)),
                                        pool=args.pool)
    path = checkpoints.save_agents(args.out, trained, overwrite=args.overwrite)
    t = trained[0]
    print(f"trained {len(trained)} {method.name} agent{'s' if len(trained) > 1 else ''} on "
          f"{', '.join(t.pool)} in {sum(x.seconds for x in trained):.1f} s after a "
          f"{t.compile_seconds:.1f} s compile; saved {path}")
    return 0


def cmd_transfer(args) -> int:
    from catchjax import methods, transfer

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
    if args.seeds > MAX_SEEDS:
        raise CatchjaxError(f"--seeds {args.seeds}: at most {MAX_SEEDS} agents per cell (each "
                            f"is trained in full)")
    agent = {"catch": "catch-meta"}.get(args.agent, args.agent)
    spec = transfer.StudySpec(agent, benchmark, names, args.steps,
                              tuple(range(args.seeds)), args.fine_tune,
                              tuple(sorted((t, g) for t, g in gammas.items() if t in names)),
                              eval_points=args.eval_points, eval_episodes=args.eval_episodes)
    config = methods.make_config(agent, **dict(args.set))
    _check_process_flags(args)
    worker = _start_processes(args)
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
    from catchjax import task_relations

    benchmark = args.benchmark or f"transnas-{args.space}"
    print(task_relations.report(benchmark, args.out, args.overwrite))
    return 0


def cmd_report(args) -> int:
    from catchjax import runs_report

    used = runs_report.build(args.runs, args.out, mix=args.mix, overwrite=args.overwrite)
    print(f"report of {len(used['runs'])} run(s) in {used['out']}:")
    for r in used["runs"]:
        print(f"  {r}")
    print((Path(used["out"]) / "report.md").read_text())
    return 0


def cmd_data(args) -> int:
    from catchjax.benchmarks import importers, tables

    if args.data_command == "get":
        from catchjax.benchmarks import download

        if args.list:
            print(download.listing())
            return 0
        if not args.names:
            raise CatchjaxError("name the tables to get: nb201, nb201-hw, transnas-micro, "
                                "transnas-macro or all (`catchjax data get --list` shows "
                                "their sources)")
        got = download.get(args.names, args.dest, args.source_folder, overwrite=args.overwrite)
        folder = got[0].parent
        used = folder.resolve() == tables.data_dir().resolve()
        print(f"{len(got)} table(s) in {folder}" + ("" if used else
              f"; catchjax reads {tables.data_dir()}: set {tables.DATA_ENV}={folder} to use them"))
        bench = download.TABLES["nb201" if "all" in args.names else args.names[0]].benchmark
        print(f"try: catchjax sweep --method rea --benchmark {bench} --task "
              f"{next(iter(tables.BENCHMARKS[bench].tasks))} --out runs/rea-{bench}")
        return 0
    if args.data_command == "import":
        for path in importers.import_benchmark(args.path, args.kind, args.dest, args.name,
                                               overwrite=args.overwrite):
            print(f"wrote {path}")
        return 0
    print(f"data folder: {tables.data_dir()} (set {tables.DATA_ENV} to change it)")
    broken = 0
    for name, where in tables.available(check=True).items():
        info = tables.BENCHMARKS[name]
        broken += where.startswith("BROKEN")
        print(f"{name:26s} {where}")
        print(f"{'':26s} tasks: {', '.join(info.tasks)}")
        if args.columns and not where.startswith(("BROKEN", "missing")):
            from catchjax.benchmarks.names import display_name

            table = tables.load_table(name)
            width = max(len(c) for c in table.columns)
            for column in sorted(table.columns):
                print(f"{'':28s}{column:{width}s}  {display_name(column)}")
    return 1 if broken else 0


def cmd_ask(args) -> int:
    import json

    from catchjax import safe_io
    from catchjax.ask_tell import AskTell

    _no_budget_setting(args)
    out = Path(args.out) if args.out else None
    if out is not None:  # before the search changes: proposals must reach their file
        _check_proposals_file(out)
    search = AskTell.open(args.state, method=args.method, space=args.space,
                          budget=args.budget, seed=args.seed, agent=args.init,
                          settings=dict(args.set), lock_timeout=args.lock_timeout)
    if args.pending:
        proposals = search.pending_proposals()
    else:
        proposals = search.ask(args.k)
    doc = {"kind": "catchjax proposals", "state": str(search.state_dir),
           "method": search.method, "space": search.domain.name, "proposals": proposals,
           "pending": search.pending, "asked": search.n_asked, "budget": search.config.budget}
    if len(proposals) < args.k and not args.pending:
        doc["note"] = search.why_not_more()
        print(f"catchjax: {len(proposals)} of {args.k} proposals: {doc['note']}",
              file=sys.stderr)
    text = json.dumps(doc, indent=1)
    if out is None:
        print(text)
    else:
        safe_io.atomic_write_bytes(out, text.encode())
        print(f"{len(proposals)} proposals -> {out} (ids "
              f"{[p['id'] for p in proposals]}); pending: {search.pending}")
    return 0


def _check_proposals_file(out: Path) -> None:
    """--out may replace only a proposals file catchjax wrote."""
    import json

    from catchjax import safe_io

    if out.is_dir():
        raise CatchjaxError(f"--out {out} is a folder; give a file name")
    if not out.parent.is_dir():
        raise CatchjaxError(f"--out {out}: the folder {out.parent} does not exist; create "
                            f"it first (nothing was asked)")
    safe_io.ensure_writable_parent(out)
    if out.exists():
        try:
            ours = json.loads(out.read_text()).get("kind") == "catchjax proposals"
        except (ValueError, UnicodeDecodeError, AttributeError):
            ours = False
        if not ours:
            raise CatchjaxError(f"--out {out} exists and is not a proposals file catchjax "
                                f"wrote; it is left as it is. Pick another name")


def read_results_csv(path) -> tuple[list, list, list, list]:
    """(ids or None, archs or None, rewards, extras) from a results CSV, or a clear error.
    A UTF-8 byte-order mark (Excel's "CSV UTF-8") and spaces around names and values are
    accepted; a column name that appears twice is refused (which one would count?)."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise CatchjaxError(f"results file {path} does not exist")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f, skipinitialspace=True))
    except UnicodeDecodeError:
        raise CatchjaxError(f"{path} is not UTF-8 text; save it as CSV (UTF-8)") from None
    except csv.Error as exc:
        raise CatchjaxError(f"{path} is not a readable CSV file: {exc}") from None
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if len(lines) < 2:
        raise CatchjaxError(f"{path} has no results (a header line and one line per result)")
    header = [name.strip() for name in lines[0]]
    twice = sorted({name for name in header if name and header.count(name) > 1})
    if twice:
        raise CatchjaxError(f"{path}: the column {', '.join(map(repr, twice))} appears more "
                            f"than once in the header; keep one")
    columns = set(header)
    if "reward" not in columns or not ({"id", "arch"} & columns):
        raise CatchjaxError(f"{path} needs a 'reward' column and an 'id' or 'arch' column; "
                            f"it has {sorted(c for c in columns if c)}")
    ids, archs, rewards, extras = [], [], [], []
    for n, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            raise CatchjaxError(f"{path} line {n}: {len(line)} fields, but the header has "
                                f"{len(header)}")
        row = dict(zip(header, (cell.strip() for cell in line)))
        if "id" in columns:
            if not re.fullmatch(r"[+-]?\d+", row["id"]):
                raise CatchjaxError(f"{path} line {n}: id {row['id']!r} is not an integer")
            ids.append(int(row["id"]))
        archs.append(row.get("arch") or None)
        rewards.append(row["reward"])
        extra = {}
        for k, v in row.items():
            if k in ("id", "arch", "reward") or not k:
                continue
            try:
                extra[k] = float(v)
            except ValueError:
                extra[k] = v
        extras.append(extra)
    if "arch" not in columns or all(a is None for a in archs):
        archs = None
    return (ids if "id" in columns else None), archs, rewards, extras


def cmd_tell(args) -> int:
    from catchjax.ask_tell import AskTell

    ids, archs, rewards, extras = read_results_csv(args.results)  # checked before the lock
    search = AskTell.load(args.state, lock_timeout=args.lock_timeout)
    search.tell(ids, rewards, archs=archs, extras=extras)
    best = search.best()
    told = search.n_asked - len(search.pending)
    print(f"told {len(rewards)} results ({told} of {search.config.budget} evaluations); "
          f"best so far: {best['arch']} reward {best['reward']:.6g}; pending: "
          f"{search.pending}")
    return 0


def cmd_meta_ask(args) -> int:
    import json

    from catchjax import safe_io
    from catchjax.meta_ask_tell import MetaTraining

    out = Path(args.out) if args.out else None
    if out is not None:
        _check_proposals_file(out)
    state = Path(args.state)
    if state.exists():
        if args.space or args.tasks or args.set:
            raise CatchjaxError(f"{state} is a meta-training already: leave out --space, "
                                f"--tasks and --set to continue it")
        meta = MetaTraining.load(state, lock_timeout=args.lock_timeout)
    else:
        if not (args.space and args.tasks):
            raise CatchjaxError(f"{state} does not exist: start a meta-training with --space "
                                f"and --tasks (e.g. --space residual --tasks classes:10:3-6)")
        meta = MetaTraining.start(args.space, args.tasks, method=args.method, seed=args.seed,
                                  state_dir=state, lock_timeout=args.lock_timeout,
                                  **dict(args.set))
    proposals = meta.ask(args.k)
    doc = {"kind": "catchjax proposals", "state": str(meta.state_dir), "method": meta.method,
           "space": meta.domain.name, "proposals": proposals}
    if not proposals:
        doc["note"] = meta.why_not_more()
        print(f"catchjax: no proposals: {doc['note']}", file=sys.stderr)
    if meta.done and args.agent_out:
        from catchjax import agent as agents

        path = agents.save_agent(args.agent_out, meta.trained())
        print(f"meta-trained agent saved in {path}", file=sys.stderr)
    text = json.dumps(doc, indent=1)
    if out is None:
        print(text)
    else:
        safe_io.atomic_write_bytes(out, text.encode())
        print(f"{len(proposals)} proposals -> {out} (ids {[p['id'] for p in proposals]})")
    return 0


def cmd_meta_tell(args) -> int:
    from catchjax.meta_ask_tell import MetaTraining

    ids, archs, rewards, extras = read_results_csv(args.results)
    if len(ids) != len(rewards):
        raise CatchjaxError(f"{args.results}: meta-tell needs the id column of the proposals")
    meta = MetaTraining.load(args.state, lock_timeout=args.lock_timeout)
    meta.tell(ids, rewards, extras=extras)
    state = "done: save the agent with `catchjax meta-ask --state ... --agent-out PATH`" \
        if meta.done else f"meta-epoch {len(meta.epochs) - 1} of {meta.config.meta_epochs}"
    print(f"told {len(rewards)} results; {state}")
    return 0


def cmd_methods(args) -> int:
    from catchjax import methods

    if args.method is None:
        for m in methods.REGISTRY.values():
            fixed = ", ".join(f"{k}={v}" for k, v in m.preset.items())
            print(f"{m.name:14s} {m.help}" + (f" [{fixed}]" if fixed else ""))
        print("\n`catchjax methods NAME` describes a method's settings (--set NAME=VALUE)")
        return 0
    name = methods.canonical_name(args.method)
    m = methods.get(name)
    print(f"{name}: {m.help}")
    if m.preset:
        print("fixed by the name: " + ", ".join(f"{k}={v}" for k, v in m.preset.items()))
    docs = methods.setting_docs(name)
    defaults = methods.setting_defaults(name)
    shown = [k for k in methods.setting_names(name) if k not in m.preset]
    width = max(len(k) for k in shown)
    for k in shown:
        default = defaults[k]
        print(f"  {k:{width}s}  {default!s:>10s}  {docs.get(k, '')}".rstrip())
    if m.ignores:
        print(f"not used by {name}: {', '.join(m.ignores)}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in summary.json
    if os.environ.get("CATCHJAX_NATIVE_LOG"):
        from catchjax import distributed

        distributed.route_native_log()
    if (getattr(args, "coordinator", None) or getattr(args, "distributed", False)) and \
            not os.environ.get("CATCHJAX_SUPERVISED") and not args.debug:
        # JAX's runtime aborts a process whose peers die or never join; a child process
        # runs the command so that this one can say what happened in one line
        from catchjax import distributed

        try:
            _check_process_flags(args)
        except CatchjaxError as exc:
            print(f"catchjax: error: {exc}", file=sys.stderr)
            return 2
        return distributed.supervise(sys.argv[1:] if argv is None else list(argv),
                                     args.init_timeout, args.process_id)
    commands = {"sweep": cmd_sweep, "train": cmd_train, "meta-train": cmd_train,
                "meta-ask": cmd_meta_ask, "meta-tell": cmd_meta_tell,
                "data": cmd_data, "methods": cmd_methods, "transfer": cmd_transfer,
                "tasks": cmd_tasks, "report": cmd_report, "ask": cmd_ask, "tell": cmd_tell}
    try:
        if args.command not in ("methods", "data", "report"):  # the commands that compile
            from catchjax import compile_cache

            compile_cache.settle(compile_cache.resolve(args.no_compile_cache))
        return commands[args.command](args)
    except CatchjaxError as exc:
        if args.debug:
            raise
        print(f"catchjax: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("catchjax: interrupted. A sweep keeps its finished chunks: run the same command "
              "again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`catchjax methods dqn | head`)
        sys.stderr.close()
        return 0
    except Exception as exc:  # a bug or an environment problem: one line, not 150
        if args.debug:
            raise
        print(f"catchjax: unexpected {type(exc).__name__}: {str(exc)[:300]} (run again with "
              f"--debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
