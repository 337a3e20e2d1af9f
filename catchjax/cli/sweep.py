"""``catchjax sweep`` and ``catchjax train``: seeded trials in one compiled call, and
the agents that methods such as catch-meta start from."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from catchjax.cli import options
from catchjax.cli.options import parse_setting
from catchjax.errors import CatchjaxError


def add_parsers(sub) -> None:
    add_sweep(sub)
    add_train(sub)


def add_sweep(sub) -> None:
    """``catchjax sweep``."""
    from catchjax.benchmarks import catalog as tables

    sw = sub.add_parser("sweep", help="run N seeded search trials in one compiled call")
    sw.add_argument("--method", required=True,
                    help="a search method, e.g. rea or catch-meta (`catchjax methods` lists them)")
    sw.add_argument("--benchmark", required=True, help=f"one of: {', '.join(tables.BENCHMARKS)}")
    sw.add_argument("--task", help="task name (nb201: cifar10, cifar100, imagenet16-120)")
    sw.add_argument("--trials", type=options.positive_int, default=500)
    sw.add_argument("--budget", type=options.positive_int, default=None,
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
    sw.add_argument("--objective", action="append", default=None, metavar="COLUMN:max|min",
                    help="several objectives (give two or three): each trial searches its own "
                         "weighting of them, the summary measures the found fronts against "
                         "the table's true front, e.g. --objective cifar100_valid_acc_12:max "
                         "--objective cifar100_edgegpu_latency:min")
    sw.add_argument("--objectives", metavar="DEVICE-latency|DEVICE-energy",
                    help="NB201 hardware preset: the task's reward (max) against a device's "
                         "latency or energy (min); devices: edgegpu, edgetpu, raspi4, pixel3, "
                         "eyeriss, fpga (HW-NAS-Bench, nb201_hw.npz)")
    sw.add_argument("--mask-nan", action="store_true",
                    help="search only architectures whose reward is not NaN")
    sw.add_argument("--chunk-size", type=options.positive_int,
                    help="trials per compiled call (default: all of them, up to 2048)")
    sw.add_argument("--set", type=parse_setting, action="append", default=[], metavar="NAME=VALUE",
                    help="override a method setting, e.g. --set population=20")
    sw.add_argument("--pool", help="for methods that train an agent first: the meta-training "
                    "pool (see `catchjax train --help`)")
    sw.add_argument("--init", help="methods that adapt a trained agent (catch-meta): this "
                    "checkpoint, or a folder of several (`train --agents`, a sweep's "
                    "meta-agent/); without it, they train agents first")
    sw.add_argument("--agents", type=options.positive_int, default=None,
                    help="without --init: trained agents the trials are shared among "
                    "(seeds SEED..SEED+N-1, one vmapped call; default: catch-meta and its "
                    "ablations 20, dqn 1)")
    sw.add_argument("--no-progress", action="store_true")
    sw.add_argument("--parquet", action="store_true",
                    help="also write results.parquet (automatic from 100,000 rows)")
    options.add_process_flags(sw)


def add_train(sub) -> None:
    """``catchjax train`` and ``meta-train``."""
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
        mt.add_argument("--agents", type=options.positive_int, default=None,
                        help="agents to train, seeds SEED..SEED+N-1 in one vmapped call "
                        "(default: catch-meta and its ablations 20, dqn 1); several are "
                        "saved as one folder that `sweep --init` shares its trials among")
        mt.add_argument("--out", required=True, help="checkpoint folder to write")
        mt.add_argument("--overwrite", action="store_true")
        mt.add_argument("--set", type=parse_setting, action="append", default=[],
                        metavar="NAME=VALUE",
                        help="method setting, e.g. --set meta_epochs=25 --set meta_budget=20")


def cmd_sweep(args) -> int:
    from catchjax import arguments
    from catchjax.store import reporting

    # Everything the user typed is checked before anything trains or compiles; names,
    # counts and the output folder before JAX is even imported.
    options.no_budget_setting(args)
    arguments.check_run(args.trials, args.budget, args.seed)
    arguments.check_memory(args.trials, args.budget)
    arguments.check_names(args.method, args.benchmark, args.task, args.protocol)
    worker = options.check_process_flags(args)  # process 0 alone writes files
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
    from catchjax.runs import agent as agents
    from catchjax.runs import sweeps
    from catchjax.store import checkpoints

    worker = options.start_processes(args)
    task = _task_from_args(args)
    out = Path(args.out)
    # the agent the search starts from: --init's checkpoint, or one trained now
    config, trained, info = agents.for_search(
        args.method, task, init=args.init, budget=args.budget, seed=args.seed, pool=args.pool,
        agents=args.agents, **dict(args.set))
    new_agent = None
    if trained is not None and args.init is None and not worker:
        new_agent = checkpoints.stage_run_agents(out, trained)
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
        where = checkpoints.attach_run_agents(new_agent, out)
        many = len(trained) > 1
        print(f"  {'the ' + str(len(trained)) + ' trained agents' if many else 'trained agent'}"
              f" saved in {where} (reuse {'them' if many else 'it'} with --init)")
    shutil.rmtree(partial, ignore_errors=True)
    print(reporting.format_summary(result.summary()))
    print(f"  wrote {out}/results.csv{', fronts.csv' if task.spec.objectives else ''} and "
          f"{out}/summary.json")
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


def _record_now() -> dict:
    """What this process would compute with (provenance.record), compiler options
    included: they are registered by catchjax.runs.numerics, which a command that has not
    compiled anything yet has not imported (without it, every second run of a command
    read as "computed otherwise")."""
    from catchjax.runs import numerics  # noqa: F401  (registers the compiler options)
    from catchjax.store import provenance

    return provenance.record()


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
    source revision) on the same platform, devices and XLA flags, without ``--init``
    (whose agent may have changed since). A sweep is a pure function of those, so running
    it again would write the same results; a quickstart can then be run twice. The same
    command computed by another jax, catchjax or device count is refused, saying what
    differs (it may have other bits)."""
    import json

    from catchjax import safe_io
    from catchjax.store import reporting

    path = out / "summary.json"
    if args.init is not None or getattr(args, "coordinator", None) or \
            getattr(args, "distributed", False) or not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
        sealed = summary.get(reporting.DIGEST) == reporting.summary_digest(summary)
    except (OSError, ValueError, AttributeError):
        return None
    if not (sealed and summary.get("command") == _command(args)
            and summary.get("table_sha256", "absent") == _table_digest(args)
            and not safe_io.not_written_by_catchjax(out, "results", reporting.RESULT_FILES)):
        return None
    revision = _revision()
    then = {"source_revision": summary.get("source_revision"),
            "versions": summary.get("versions"), "computed_on": summary.get("computed_on")}
    now = {"source_revision": revision, **_record_now()}
    from catchjax.store import provenance

    differ = provenance.differences(then, now)
    if (revision or "").endswith("-dirty"):
        differ.insert(0, f"catchjax's source has uncommitted changes ({revision})")
    if differ:
        raise CatchjaxError(
            f"{out} already holds results of this very command, but computed otherwise "
            f"({'; '.join(differ[:4])}{'; ...' if len(differ) > 4 else ''}): they may differ "
            f"in the last bits. Pass --overwrite to compute them again here, or choose "
            f"another --out")
    return summary


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
    objectives = args.objective
    if getattr(args, "objectives", None):
        if objectives:
            raise CatchjaxError("--objectives (a preset) and --objective (columns) go apart; "
                                "give one of them")
        objectives = tasks.hardware_objectives(args.benchmark, args.task, args.objectives,
                                               args.protocol)
    return tasks.make_task(
        args.benchmark, args.task, reward=args.reward, report=args.report, gamma=args.gamma,
        gamma_normalize=args.gamma_normalize or "minmax", cost=cost, mask_nan=args.mask_nan,
        protocol=args.protocol, objectives=objectives,
    )


def cmd_train(args) -> int:
    from catchjax import arguments

    name = getattr(args, "method", None) or "catch-meta"
    arguments.check_seed(args.seed)
    arguments.check_names(name, args.benchmark, args.task, args.protocol)
    from catchjax import methods
    from catchjax.benchmarks import tasks
    from catchjax.runs import agent as agents

    method = methods.get(name)
    if method.learner is None:
        raise CatchjaxError(f"method {method.name!r} has no agent to train")
    if args.agents is None:  # the method's default: enough agents to quote (issue 32)
        args.agents = method.learner.agents
    arguments.check_seed(args.seed + args.agents - 1)
    from catchjax.store import checkpoints

    checkpoints.check_agent_dir(args.out, args.overwrite)  # before any training
    task = tasks.make_task(args.benchmark, args.task, gamma=args.gamma, protocol=args.protocol)
    config = methods.build(method.name, **dict(args.set))
    if args.agents == 1:
        trained = [agents.train(method.name, task, config, seed=args.seed, pool=args.pool,
                                progress=True)]
    else:
        from catchjax.runs import status

        with status.working(f"compiling and training {args.agents} {method.name} agents in "
                            f"one vmapped call"):
            trained = agents.train_many(method.name, task, config,
                                        list(range(args.seed, args.seed + args.agents)),
                                        pool=args.pool)
    path = checkpoints.save_agents(args.out, trained, overwrite=args.overwrite)
    t = trained[0]
    compile_words = (f"loading its compiled program from the compilation cache in "
                     f"{t.compile_seconds:.1f} s" if t.compile_source == "loaded"
                     else f"a {t.compile_seconds:.1f} s compile")
    print(f"trained {len(trained)} {method.name} agent{'s' if len(trained) > 1 else ''} on "
          f"{', '.join(t.pool)} in {sum(x.seconds for x in trained):.1f} s after "
          f"{compile_words}; saved {path}")
    return 0


COMMANDS = {"sweep": cmd_sweep, "train": cmd_train, "meta-train": cmd_train}
