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
import io
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

REGIMES = ("zero-shot", "fine-tune", "retrain")
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
    if m.learner is None or m.learner.curve is None or not m.learner.requires_agent:
        able = [n for n, x in methods.REGISTRY.items()
                if x.learner is not None and x.learner.curve is not None
                and x.learner.requires_agent]
        raise CatchjaxError(
            f"the transfer study trains an agent on one task and then on another; method "
            f"{spec.method!r} has no such learner (one that trains from a given agent and "
            f"reports a training curve). Methods that do: {', '.join(able)}")
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


def _stage_file(out: Path, stage: str) -> Path:
    return out / "stages" / f"{stage}.npz"


def _save_stage(out: Path, stage: str, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    safe_io.atomic_write_bytes(_stage_file(out, stage), buf.getvalue())


def load_stage(out, stage: str) -> dict | None:
    """A finished stage's arrays (None if it has not run): ``scratch__SOURCE`` or
    ``SOURCE__to__TARGET``; ``steps`` [P+1], ``test`` [seeds, P+1, episodes] (the target's
    test metric where each greedy episode ended), ``distinct`` [seeds] (architectures the
    run queried), ``seconds``, ``compile_seconds``, ``seeds``."""
    f = _stage_file(Path(out), stage)
    if not f.exists():
        return None
    import zipfile

    try:
        with np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise CatchjaxError(f"{f} is damaged or cut short ({type(exc).__name__}: {exc}); "
                            f"delete that file and run the same command again to recompute "
                            f"only that stage") from None
    missing = {"steps", "test", "seconds"} - set(arrays)
    if missing:
        raise CatchjaxError(f"{f} lacks {', '.join(sorted(missing))}: damaged or from another "
                            f"catchjax; delete it and run the same command again to recompute "
                            f"only that stage")
    return arrays


# -- running ----------------------------------------------------------------------------


def _train_batch(m, config, spec: StudySpec, task: tasks.Task, seeds, stage: str,
                 agents=None, devices=None):
    """Train one agent per seed in one vmapped call, the seeds sharded over the devices
    (:mod:`catchjax.runs.batched`). The task's arrays are arguments, not constants, so every
    stage of a study reuses one compiled function (one for scratch runs, one for
    transfers)."""
    keys = jnp.stack([_key_for(s, stage) for s in seeds])
    shared = (task.arrays, task.arrays.reward[None])
    runs = (keys,) if agents is None else (keys, agents)
    run = (spec.steps, spec.eval_points, spec.eval_episodes)

    def make():
        def one(b, sh):
            start = None if agents is None else b[1]
            return m.learner.curve(config, b[0], *sh, start, *run)

        return jax.vmap(one, in_axes=(0, None))

    batch, comp = batched.compiled(("transfer", m.name, config, run, agents is None), make,
                                   runs, shared, devices)
    t1 = time.perf_counter()
    agent, info = jax.block_until_ready(batch(runs, shared))
    return agent, info, time.perf_counter() - t1, comp


def _agent_dir(out: Path, source: str, seed: int) -> Path:
    return out / "agents" / source / f"seed{seed}"


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
    from catchjax.core import TrainedAgent
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
    done_now = 0
    n_stages = len(spec.tasks) ** 2  # a scratch run per task, a transfer per ordered pair
    stage_no = 0

    def train_stage(*args):
        with status.working(f"  [{stage_no}/{n_stages}] compiling and training",
                            enabled=progress):
            return _train_batch(*args)

    def budget_left():
        return stop_after is None or done_now < stop_after

    def finished(done: bool) -> bool:  # process 0 decides, so all run the same stages
        return bool(_broadcast(done)) if multi else done

    def written(stage: str) -> None:  # the others read what process 0 wrote only after
        if multi:
            batched.barrier(f"catchjax transfer {stage}")

    for s in spec.tasks:  # sources: scratch runs (also the diagonal)
        stage_no += 1
        stage = f"scratch__{s}"
        if finished(load_stage(out, stage) is not None and all(
                (_agent_dir(out, s, sd) / checkpoints.MANIFEST).exists() for sd in seeds)):
            continue
        if not budget_left():
            return {}
        log(f"[{stage_no}/{n_stages}] training {len(seeds)} {spec.method} agent(s) from "
            f"scratch on {s} ({spec.steps:,} steps each)")
        agent, info, secs, comp = train_stage(m, config, spec, task_objs[s], seeds, stage,
                                              None, devices)
        steps_run = int(np.asarray(info["steps"])[0][-1])
        if steps_run != spec.steps and stage_no == 1:
            log(f"  note: {spec.method} trains in whole curve segments, so T = {spec.steps:,} "
                f"became {steps_run:,} steps")
        L, _, K = task_objs[s].arrays.prefix_mask.shape
        for a, sd in enumerate(seeds):
            trained = TrainedAgent(jax.tree.map(lambda x, a=a: x[a], agent), config,
                                   spec.benchmark, s, [task_objs[s].spec.reward_metric], sd,
                                   L, K, secs / len(seeds), comp, method=m.name,
                                   space=task_objs[s].space.name)
            if writer:
                checkpoints.save_agent(_agent_dir(out, s, sd), trained, overwrite=True)
        if writer:
            _save_stage(out, stage, **_curve_arrays(info, secs, comp, seeds))
        written(stage)
        done_now += 1
    for s in spec.tasks:
        for t in spec.tasks:
            if s == t:
                continue
            stage_no += 1
            stage = f"{s}__to__{t}"
            if finished(load_stage(out, stage) is not None):
                continue
            if not budget_left():
                return {}
            log(f"[{stage_no}/{n_stages}] transferring the {s} agents to {t} "
                f"({spec.steps:,} steps each)")
            loaded = [checkpoints.load_agent(_agent_dir(out, s, sd), task_objs[t],
                                             method=m.name) for sd in seeds]
            start = jax.tree.map(lambda *xs: jnp.stack(xs), *[x.agent for x in loaded])
            _, info, secs, comp = train_stage(m, config, spec, task_objs[t], seeds, stage,
                                              start, devices)
            if writer:
                _save_stage(out, stage, **_curve_arrays(info, secs, comp, seeds))
            written(stage)
            done_now += 1
    result = analyze(out, spec, config, ft_point, task_objs)
    if writer:
        write_results(out, result, spec, config)
        _drop_replaced(out)
    written("results")
    return result


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


def _curve_arrays(info, seconds, compile_seconds, seeds):
    return {"steps": np.asarray(info["steps"])[0], "test": np.asarray(info["test_episodes"]),
            "distinct": np.asarray(info["distinct"]), "seconds": np.float64(seconds),
            "compile_seconds": np.float64(compile_seconds), "seeds": np.asarray(seeds)}


# -- analysis ---------------------------------------------------------------------------


def smooth(curve: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what there is so far)."""
    c = np.cumsum(np.asarray(curve, np.float64), axis=-1)
    n = curve.shape[-1]
    idx = np.arange(n)
    lo = np.maximum(idx - window, -1)
    upper = c[..., idx]
    lower = np.where(lo >= 0, c[..., np.maximum(lo, 0)], 0.0)
    return (upper - lower) / (idx - lo)


def crossover_steps(transferred: np.ndarray, scratch: np.ndarray, steps: np.ndarray,
                    window: int, exclude_self: bool = False) -> np.ndarray:
    """All-to-all crossover: for run i of ``transferred`` [N, P] and run j of ``scratch``
    [M, P] (mean test metric per curve point), the first step at which smoothed run i
    reaches smoothed run j's final value; NaN where it never does. Returns [N, M] (pairs
    i == j dropped, as NaN, with ``exclude_self``)."""
    a, b = smooth(transferred, window), smooth(scratch, window)
    ref = b[:, -1]
    reached = a[:, None, :] >= ref[None, :, None]  # [N, M, P]
    first = np.argmax(reached, axis=-1)
    out = np.where(reached.any(axis=-1), steps[first].astype(np.float64), np.nan)
    if exclude_self:
        n = min(out.shape)
        out[np.arange(n), np.arange(n)] = np.nan
    return out


def _cell(values: np.ndarray, seed: int = 0) -> dict:
    """mean ± std and bootstrap 95% CI over episodes and seeds, plus the spread across
    seeds (std of the per-seed means): values [N seeds, E episodes]."""
    from catchjax.runs.analysis import bootstrap_ci

    flat = values.reshape(-1)
    lo, hi = bootstrap_ci(flat, seed=seed)
    per_seed = values.mean(axis=1)
    return {"mean": float(flat.mean()), "std": float(flat.std()), "ci_low": lo, "ci_high": hi,
            "seed_std": float(per_seed.std()), "n_seeds": int(values.shape[0]),
            "n_episodes": int(values.shape[1])}


def analyze(out: Path, spec: StudySpec, config, ft_point: int, task_objs=None) -> dict:
    """Cells of the three matrices, curves and crossovers from the stage files (each
    read once)."""
    from catchjax.runs.analysis import bootstrap_ci

    runs = {(s, s): load_stage(out, f"scratch__{s}") for s in spec.tasks}
    runs.update({(s, t): load_stage(out, f"{s}__to__{t}")
                 for s in spec.tasks for t in spec.tasks if s != t})
    cells, curves, cross = [], [], []
    for (s, t), st in runs.items():
        if s == t:  # the diagonal: the scratch run, in the regimes that train on the target
            for regime in ("fine-tune", "retrain"):
                cells.append({"regime": regime, "source": s, "target": s, "kind": "scratch",
                              **_cell(st["test"][:, -1])})
        else:
            for regime, p in (("zero-shot", 0), ("fine-tune", ft_point), ("retrain", -1)):
                cells.append({"regime": regime, "source": s, "target": t, "kind": "transfer",
                              **_cell(st["test"][:, p])})
    for (s, t), st in runs.items():
        # seconds per step of one agent in this stage's vmapped run
        per_step = float(st["seconds"]) / len(st["seeds"]) / max(float(st["steps"][-1]), 1)
        mean_curve = st["test"].mean(axis=-1)  # [N, P]
        for i, sd in enumerate(st["seeds"]):
            for j, step in enumerate(st["steps"]):
                curves.append({"source": s, "target": t, "seed": int(sd), "step": int(step),
                               "test": float(mean_curve[i, j])})
        ref = runs[(t, t)]["test"].mean(axis=-1)
        pairs = crossover_steps(mean_curve, ref, st["steps"], spec.smoothing,
                                exclude_self=(s == t))
        finite = pairs[np.isfinite(pairs)]
        lo, hi = bootstrap_ci(finite) if finite.size else (np.nan, np.nan)
        mean = float(finite.mean()) if finite.size else float("nan")
        cross.append({"source": s, "target": t, "kind": "scratch" if s == t else "transfer",
                      "mean_steps": mean, "ci_low_steps": lo, "ci_high_steps": hi,
                      "mean_seconds": mean * per_step,
                      "ci_low_seconds": lo * per_step, "ci_high_seconds": hi * per_step,
                      "pairs_reached": int(finite.size),
                      "pairs": int(pairs.size - (min(pairs.shape) if s == t else 0))})
    first = runs[(spec.tasks[0], spec.tasks[0])]
    return {"cells": cells, "curves": curves, "crossover": cross,
            "fine_tune_step": int(first["steps"][ft_point]),
            "trained_steps": int(first["steps"][-1])}


def _csv(rows: list[dict]) -> bytes:
    if not rows:
        return b""
    cols = list(rows[0])
    lines = [",".join(cols)]
    for r in rows:
        lines.append(",".join(f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c])
                              for c in cols))
    return ("\n".join(lines) + "\n").encode()


def write_results(out: Path, result: dict, spec: StudySpec, config) -> None:
    for name in ("cells", "curves", "crossover"):
        safe_io.atomic_write_bytes(out / f"{name}.csv", _csv(result[name]))
    summary = {"spec": dataclasses.asdict(spec), "config": dataclasses.asdict(config),
               "fine_tune_step": result["fine_tune_step"],
               "trained_steps": result["trained_steps"],
               "device": jax.devices()[0].device_kind}
    safe_io.atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    from catchjax.studies import transfer_plots

    transfer_plots.plot_all(out, result, spec)


def format_matrix(result: dict, spec: StudySpec, regime: str) -> str:
    """One regime's source x target matrix as text: mean±std [CI]."""
    cells = {(c["source"], c["target"]): c for c in result["cells"] if c["regime"] == regime}
    w = 30
    lines = [f"{regime}: rows = source, columns = target",
             " " * 16 + "".join(f"{t[:w]:>{w}s}" for t in spec.tasks)]
    for s in spec.tasks:
        row = f"{s[:15]:16s}"
        for t in spec.tasks:
            c = cells.get((s, t))
            txt = ("N/A" if c is None else
                   f"{c['mean']:.3f}±{c['std']:.3f} [{c['ci_low']:.3f},{c['ci_high']:.3f}]")
            row += f"{txt:>{w}s}"
        lines.append(row)
    return "\n".join(lines)
