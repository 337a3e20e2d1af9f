"""The transfer study of paper 002 (§4, SPEC §4): does an agent trained on one task help on
another, under which regime, and how much target training does it save?

For every source task s: N seeds trained from scratch for T steps on s (one vmapped call;
their final state is also the diagonal "scratch" cell of s). For every ordered pair
(s, t), s != t: the N source agents continue training on t for T steps (one vmapped call),
their greedy test metric on t recorded along the way. From that one target run:

* zero-shot = the source agent evaluated on t before any target training (curve point 0),
* fine-tune = after ``fine_tune_fraction`` * T target steps (the paper's 10^6 of 10^7:
  as in the paper, the fine-tune numbers are the retrain run truncated there),
* retrain = after T target steps,

and the crossover analysis: for every transferred run and every scratch run on t, the
step (and wall time) at which the transferred run's smoothed curve first reaches the
scratch run's final smoothed performance (paper §4.3, Figs. 10-13; curves smoothed by a
moving average of up to 16 points).

Works for any method whose :class:`~catchjax.core.Learner` has a ``curve``: trains on a
task from an optional start agent and reports a training curve (``info["steps"]``,
``info["test_episodes"]`` [points, episodes]): the DQN (greedy episodes; T = environment
steps) and CATCH (``catch-meta``: meta-training on the one task, evaluated by adaptation
searches; T = table queries of meta-training). Every finished stage (a
source's scratch agents, or one source -> target pair for all seeds) is kept on disk —
source agents as Orbax checkpoints under ``agents/``, curves under ``stages/`` — so a
killed study rerun with the same arguments resumes where it stopped and ends with the
identical result.
"""

from __future__ import annotations

import dataclasses
import json
import time
import zlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from catchjax import methods, safe_io
from catchjax.benchmarks import tables, tasks
from catchjax.errors import CatchjaxError
from catchjax.runs import batched, status
from catchjax.studies.transfer_results import (
    REGIMES,
    analyze,
    crossover_steps,
    curve_arrays,
    format_matrix,
    load_stage,
    save_stage,
    smooth,
    write_results,
)

__all__ = ["REGIMES", "StudySpec", "analyze", "crossover_steps", "format_matrix", "load_stage",
           "make_tasks", "open_study", "run_study", "smooth", "write_results"]

STUDY_FILE = "study.json"
OWNED = {STUDY_FILE, "agents", "stages", "cells.csv", "curves.csv", "crossover.csv",
         "summary.json", "matrix_zero-shot.png", "matrix_fine-tune.png", "matrix_retrain.png",
         "curves.png", "crossover.png"}


@dataclasses.dataclass(frozen=True)
class StudySpec:
    method: str
    benchmark: str
    tasks: tuple[str, ...]
    steps: int  # T, environment steps per training run
    seeds: tuple[int, ...]
    fine_tune_fraction: float = 0.1
    gammas: tuple[tuple[str, float], ...] = ()  # (task, gamma) reward shaping per task
    smoothing: int = 16
    eval_points: int = 20  # curve points after the start (the fine-tune point is one)
    eval_episodes: int = 128  # evaluations per curve point (DQN: greedy episodes)


def _key_for(seed: int, stage: str):
    return jax.random.fold_in(jax.random.key(seed), zlib.crc32(stage.encode()) & 0x7FFFFFFF)


def check_spec(spec: StudySpec, config) -> int:
    """Validate everything before anything compiles; returns the curve index of the
    fine-tune point."""
    m = methods.get(spec.method)

    def studied(x):
        return (x.learner is not None and x.learner.curve is not None
                and x.learner.fresh is not None and x.learner.requires_agent)

    if not studied(m):
        able = [n for n, x in methods.REGISTRY.items() if studied(x)]
        raise CatchjaxError(
            f"the transfer study trains an agent on one task and then on another; method "
            f"{spec.method!r} has no such learner (one that trains from a given or a fresh "
            f"agent and reports a training curve). Methods that do: {', '.join(able)}")
    info = tables.benchmark_info(spec.benchmark)
    unknown = [t for t in spec.tasks if t not in info.tasks]
    if unknown:
        raise CatchjaxError(f"unknown task(s) {', '.join(unknown)} of {spec.benchmark}; tasks: "
                            f"{', '.join(info.tasks)}")
    if len(spec.tasks) < 2 or len(set(spec.tasks)) != len(spec.tasks):
        raise CatchjaxError("a transfer study needs at least two different tasks")
    if not isinstance(spec.steps, int) or spec.steps < 1:
        raise CatchjaxError(f"the number of training steps T must be >= 1, got {spec.steps}")
    if not spec.seeds or len(set(spec.seeds)) != len(spec.seeds):
        raise CatchjaxError("give at least one seed, each once")
    for s in spec.seeds:
        if not 0 <= int(s) < 2**31:
            raise CatchjaxError(f"seeds must lie in 0..2^31-1, got {s}")
    for task, g in spec.gammas:
        if task not in spec.tasks:
            raise CatchjaxError(f"gamma given for {task!r}, which is not one of the study's tasks")
        if not (isinstance(g, (int, float)) and np.isfinite(g) and g > 0):
            raise CatchjaxError(f"gamma for {task} must be finite and > 0, got {g}")
    if spec.smoothing < 1:
        raise CatchjaxError("the smoothing window must be >= 1")
    if spec.eval_points < 1 or spec.eval_episodes < 1:
        raise CatchjaxError("eval_points and eval_episodes must be >= 1")
    if not m.matches(config):
        raise CatchjaxError(f"a {type(config).__name__} with {dict(m.preset)} is needed for "
                            f"{m.name}")
    point = spec.fine_tune_fraction * spec.eval_points
    if not 0 < spec.fine_tune_fraction < 1 or abs(point - round(point)) > 1e-9:
        raise CatchjaxError(
            f"the fine-tune point ({spec.fine_tune_fraction} of T) must fall on a curve point: "
            f"fine_tune_fraction * eval_points must be a whole number between 0 and "
            f"eval_points (eval_points is {spec.eval_points}; use a multiple of 10)")
    return int(round(point))


def make_tasks(spec: StudySpec, table=None) -> dict[str, tasks.Task]:
    table = table if table is not None else tables.load_table(spec.benchmark)
    gammas = dict(spec.gammas)
    out = {}
    for name in spec.tasks:
        g = gammas.get(name)
        norm = "minmax"
        if g is not None:  # top-1, mIoU: / 100; SSIM: as is; neg_loss: by range (shaping)
            from catchjax.studies import shaping

            norm = shaping.default_normalization(tables.benchmark_info(spec.benchmark)
                                                 .tasks[name].reward)
        out[name] = tasks.make_task(spec.benchmark, name, gamma=g, gamma_normalize=norm,
                                    table=table)
    masks = {n: t.searchable for n, t in out.items()}
    first = next(iter(masks.values()))
    for n, m in masks.items():
        if not np.array_equal(m, first):
            raise CatchjaxError(
                f"task {n} can search other architectures than {spec.tasks[0]} (NaN rewards): "
                f"agents cannot move between them")
    return out


# -- the study folder -------------------------------------------------------------------


def _spec_json(spec: StudySpec, config) -> dict:
    return {"kind": "catchjax transfer study", "spec": dataclasses.asdict(spec),
            "config": dataclasses.asdict(config)}


def open_study(out, spec: StudySpec, config, overwrite: bool = False) -> Path:
    """Create the study folder, or reopen one of the same study to resume it. A folder
    of another study (or not catchjax's) is refused; --overwrite replaces only a study
    folder catchjax wrote."""
    out = Path(out)
    want = json.loads(json.dumps(_spec_json(spec, config)))
    marker = out / STUDY_FILE
    if out.is_dir() and marker.exists() and not overwrite:
        try:
            have = json.loads(marker.read_text())
        except (OSError, ValueError):
            raise CatchjaxError(f"{marker} is unreadable; use another --out") from None
        if have != want:
            diff = [k for k in ("spec", "config") if have.get(k) != want.get(k)]
            detail = {k: (have.get(k, {}) or {}) for k in diff}
            fields = sorted({f for k in diff for f in set(want[k]) | set(detail[k])
                             if detail[k].get(f) != want[k].get(f)})
            raise CatchjaxError(
                f"{out} holds another transfer study (differs in {', '.join(fields)}); "
                f"use another --out, or --overwrite to replace it" + _set_aside_hint(out, want))
        return out
    safe_io.check_output_dir(out, overwrite, owned=OWNED, marker=STUDY_FILE,
                             what="transfer study")
    if out.exists() and overwrite:
        # set aside, deleted only once the new study has finished (_drop_replaced): a
        # new study that fails or is killed leaves the old one recoverable beside it
        out.rename(out.parent / f".{out.name}.replaced-{int(time.time() * 1000)}")
    (out / "stages").mkdir(parents=True)
    (out / "agents").mkdir()
    safe_io.atomic_write_bytes(marker, json.dumps(want, indent=2).encode())
    # what the study adds as it runs is ours too (the record lists only what is there now)
    safe_io.write_record(out, "transfer study",
                         patterns=("stages/*", "agents/*", *sorted(OWNED)))
    return out


def _set_aside_hint(out: Path, want: dict) -> str:
    """Where the study that a killed --overwrite set aside is, when it is this one."""
    for old in sorted(out.parent.glob(f".{out.name}.replaced-*")):
        try:
            same = json.loads((old / STUDY_FILE).read_text()) == want
        except (OSError, ValueError):
            continue
        if same:
            return (f". This study is in {old}: an --overwrite set it aside and did not "
                    f"finish. Restore it with: mv {out} {out}.unfinished && mv {old} {out}")
    return ""


# -- running ----------------------------------------------------------------------------


def _train_batch(m, config, spec: StudySpec, task: tasks.Task, seeds, stage: str,
                 agents=None, devices=None):
    """Train one agent per seed in one vmapped call, the seeds sharded over the devices
    (:mod:`catchjax.runs.batched`). A scratch stage is a transfer from fresh agents
    (``Learner.fresh``: the same bits as the method starting from none), and the task's
    arrays are arguments, not constants, so every stage of a study reuses one compiled
    function."""
    keys = jnp.stack([_key_for(s, stage) for s in seeds])
    comp = 0.0
    if agents is None:
        fresh, comp = batched.compiled(
            ("transfer-fresh", m.name, config), lambda: jax.vmap(
                lambda k, arrays: m.learner.fresh(config, k, arrays), in_axes=(0, None)),
            keys, task.arrays, devices)
        agents = fresh(keys, task.arrays)
    shared = (task.arrays, task.arrays.reward[None])
    runs = (keys, agents)
    run = (spec.steps, spec.eval_points, spec.eval_episodes)

    def make():
        def one(b, sh):
            return m.learner.curve(config, b[0], *sh, b[1], *run)

        return jax.vmap(one, in_axes=(0, None))

    batch, more = batched.compiled(("transfer", m.name, config, run), make, runs, shared,
                                   devices)
    t1 = time.perf_counter()
    agent, info = jax.block_until_ready(batch(runs, shared))
    return agent, info, time.perf_counter() - t1, comp + more


def _agent_dir(out: Path, source: str, seed: int) -> Path:
    return out / "agents" / source / f"seed{seed}"


class _Stages:
    """The bookkeeping of a study's stages: numbering ([k/N]), the status line, how many
    new stages this call may run, and (several processes) process 0's decisions shared."""

    def __init__(self, n_stages: int, multi: bool, progress: bool, stop_after: int | None):
        self.n, self.multi, self.progress, self.stop_after = n_stages, multi, progress, stop_after
        self.number, self.done_now = 0, 0

    def next(self) -> int:
        self.number += 1
        return self.number

    def train(self, *args):
        with status.working(f"  [{self.number}/{self.n}] compiling and training",
                            enabled=self.progress):
            return _train_batch(*args)

    def budget_left(self) -> bool:
        return self.stop_after is None or self.done_now < self.stop_after

    def finished(self, done: bool) -> bool:  # process 0 decides, so all run the same stages
        return bool(_broadcast(done)) if self.multi else done

    def written(self, stage: str) -> None:  # the others read what process 0 wrote only after
        if self.multi:
            batched.barrier(f"catchjax transfer {stage}")
        self.done_now += stage != "results"


def run_study(spec: StudySpec, config=None, out=None, overwrite: bool = False,
              table=None, log=print, stop_after: int | None = None,
              devices=None, progress: bool = False) -> dict:
    """Run (or resume) the study; writes the results into ``out`` and returns the
    analysis (see :func:`analyze`). Each stage's seeds run as one call sharded over
    ``devices`` (default: all devices; after :func:`catchjax.runs.distributed.initialize`
    those of every process — process 0 then writes the folder, which must be on a file
    system every process sees). ``stop_after``: run at most this many new stages (tests
    use it to simulate an interruption). ``progress``: a status line with the seconds
    while each stage compiles and trains (:mod:`catchjax.runs.status`)."""
    from catchjax.store import checkpoints

    m = methods.get(spec.method)
    config = config if config is not None else methods.build(spec.method)
    ft_point = check_spec(spec, config)
    task_objs = make_tasks(spec, table)
    for t in task_objs.values():
        config.validate(t)
    multi = jax.process_count() > 1 and devices is None
    writer = jax.process_index() == 0  # several processes: process 0 writes, all read
    out = open_study(out, spec, config, overwrite) if writer else Path(out)
    if multi:
        _check_shared_folder(out)
    seeds = [int(s) for s in spec.seeds]
    # a scratch run per task, a transfer per ordered pair
    stages = _Stages(len(spec.tasks) ** 2, multi, progress, stop_after)
    for s in spec.tasks:  # sources: scratch runs (also the diagonal)
        n, stage = stages.next(), f"scratch__{s}"
        if stages.finished(load_stage(out, stage) is not None and all(
                (_agent_dir(out, s, sd) / checkpoints.MANIFEST).exists() for sd in seeds)):
            continue
        if not stages.budget_left():
            return {}
        log(f"[{n}/{stages.n}] training {len(seeds)} {spec.method} agent(s) from "
            f"scratch on {s} ({spec.steps:,} steps each)")
        agent, info, secs, comp = stages.train(m, config, spec, task_objs[s], seeds, stage,
                                               None, devices)
        steps_run = int(np.asarray(info["steps"])[0][-1])
        if steps_run != spec.steps and n == 1:
            log(f"  note: {spec.method} trains in whole curve segments, so T = {spec.steps:,} "
                f"became {steps_run:,} steps")
        if writer:
            _save_sources(out, spec, config, m.name, s, task_objs[s], seeds, agent, secs,
                          comp)
            save_stage(out, stage, **curve_arrays(info, secs, comp, seeds))
        stages.written(stage)
    for s, t in ((s, t) for s in spec.tasks for t in spec.tasks if s != t):
        n, stage = stages.next(), f"{s}__to__{t}"
        if stages.finished(load_stage(out, stage) is not None):
            continue
        if not stages.budget_left():
            return {}
        log(f"[{n}/{stages.n}] transferring the {s} agents to {t} ({spec.steps:,} steps each)")
        loaded = [checkpoints.load_agent(_agent_dir(out, s, sd), task_objs[t], method=m.name)
                  for sd in seeds]
        start = jax.tree.map(lambda *xs: jnp.stack(xs), *[x.agent for x in loaded])
        _, info, secs, comp = stages.train(m, config, spec, task_objs[t], seeds, stage, start,
                                           devices)
        if writer:
            save_stage(out, stage, **curve_arrays(info, secs, comp, seeds))
        stages.written(stage)
    result = analyze(out, spec, config, ft_point, task_objs)
    if writer:
        write_results(out, result, spec, config)
        _drop_replaced(out)
    stages.written("results")
    return result


def _save_sources(out: Path, spec: StudySpec, config, method: str, source: str, task, seeds,
                  agent, secs: float, comp: float) -> None:
    """The agents a scratch stage trained (one per seed), as checkpoints later stages and
    a resumed study start from."""
    from catchjax.core import TrainedAgent
    from catchjax.store import checkpoints

    L, _, K = task.arrays.prefix_mask.shape
    for a, sd in enumerate(seeds):
        trained = TrainedAgent(jax.tree.map(lambda x, a=a: x[a], agent), config,
                               spec.benchmark, source, [task.spec.reward_metric], sd,
                               L, K, secs / len(seeds), comp, method=method,
                               space=task.space.name)
        checkpoints.save_agent(_agent_dir(out, source, sd), trained, overwrite=True)


def _drop_replaced(out: Path) -> None:
    """Delete the studies this one replaced (--overwrite), now that it is complete."""
    import shutil

    for old in out.parent.glob(f".{out.name}.replaced-*"):
        if (old / STUDY_FILE).exists():
            shutil.rmtree(old, ignore_errors=True)


def _broadcast(value) -> int:
    return int(batched.broadcast(np.int32(value)))


def _check_shared_folder(out: Path) -> None:
    """Every process reads the source agents process 0 wrote: the study folder must be on
    a file system they all see. Checked with a token before anything trains."""
    nonce = int(np.random.default_rng().integers(1, 2**31 - 1))
    nonce = _broadcast(nonce)
    token = out / f".process-check-{nonce}"
    if jax.process_index() == 0:
        safe_io.atomic_write_bytes(token, str(nonce).encode())
    batched.barrier("catchjax transfer folder check")
    seen = token.exists() and token.read_text() == str(nonce)
    everyone = batched.allgather(np.int32(seen))
    batched.barrier("catchjax transfer folder checked")
    if jax.process_index() == 0:
        token.unlink()
    if not np.all(everyone):
        missing = [i for i, ok in enumerate(np.ravel(everyone)) if not ok]
        raise CatchjaxError(
            f"process(es) {missing} cannot see {out}: with several processes the study "
            f"folder must be on a file system all of them share (they read the source "
            f"agents process 0 writes)")
