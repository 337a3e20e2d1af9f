"""Sweeps: N seeded trials of a search method as one compiled, vmapped call (SPEC §5).

Trial ``i`` of seed ``s`` uses the key ``fold_in(key(s), i)``, which does not depend on
how many trials run or how they are chunked, so trial ``i`` of a sweep equals
:func:`run_trial` ``(…, trial=i)`` run alone. Trials are vmapped, cut into chunks of equal
size (one compilation), and sharded over the devices along a ``trials`` mesh axis — the
local ones, or after :func:`catchjax.runs.distributed.initialize` those of every process (each
computes its share; the results are gathered to all, and only process 0 keeps progress).
The driver knows methods only through the protocol of :mod:`catchjax.core`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from catchjax import methods
from catchjax.arguments import (  # noqa: F401  (JAX-free)
    INT32_MAX,
    check_memory,
    check_run,
    check_seed,
    memory_estimate,
)
from catchjax.benchmarks import tasks
from catchjax.benchmarks.tasks import Task, TaskArrays
from catchjax.core import SearchTrace
from catchjax.errors import CatchjaxError
from catchjax.runs import batched, status
from catchjax.runs.progress import SweepProgress, device_counts, fingerprint
from catchjax.runs.results import SweepResult, versions
from catchjax.store import provenance, reporting

__all__ = ["SweepResult", "run_trial", "sweep", "trial_key", "versions"]

DEFAULT_MAX_CHUNK = 2048


def trial_key(seed, trial):
    """The PRNG key of one trial; a pure function of (seed, trial index)."""
    return jax.random.fold_in(jax.random.key(seed), trial)


WEIGHT_STREAM = 0x3E16  # folded into a trial's key for its objective weights


def trial_weights(seed, trial, n_objectives: int):
    """A multi-objective trial's weight vector [d] ~ Dirichlet(1, ..., 1) (uniform on the
    simplex, as ParEGO draws them): from the trial's own key, in a stream of its own, so the
    search's random numbers are those of the same trial without objectives."""
    return jax.random.dirichlet(jax.random.fold_in(trial_key(seed, trial), WEIGHT_STREAM),
                                jnp.ones(n_objectives))


def trial_task(seed, trial, task: TaskArrays) -> TaskArrays:
    """The task trial ``trial`` searches: ``task`` itself, or for a multi-objective task
    its reward under the trial's own weights (:func:`catchjax.benchmarks.tasks.scalarize`),
    so one sweep of many trials maps the whole front."""
    if task.objectives is None:
        return task
    return tasks.scalarize(task, trial_weights(seed, trial, task.objectives.shape[1]))


def agent_of_trial(trial, n_agents: int):
    """Which of ``n_agents`` agents trial ``trial`` adapts: trials go round the agents
    (``trial % n_agents``), so the assignment does not depend on the trial count or on
    how the trials are chunked."""
    return trial % n_agents


def stack_agents(agents):
    """``(agent, n_agents)`` for a sweep: one agent state as it is (n_agents 0: shared by
    every trial), or several stacked along a new leading axis (one per agent)."""
    if not isinstance(agents, (list, tuple)):
        return agents, 0
    if not agents:
        raise CatchjaxError("agent= is an empty list: give at least one agent")
    if len(agents) == 1:
        return agents[0], 0
    shapes = {str(jax.tree.map(lambda x: (np.shape(x), np.dtype(x.dtype)), a)) for a in agents}
    if len(shapes) > 1 or len({jax.tree.structure(a) for a in agents}) > 1:
        raise CatchjaxError("the agents given to one sweep must have the same networks "
                            "(one config, one search space)")
    return jax.tree.map(lambda *xs: jnp.stack(xs), *agents), len(agents)


def _trials_fn(config, n_agents: int = 0):
    """The runs of a sweep: trial ids (the batched axis) with the seed, task arrays and
    agent shared by all trials (:mod:`catchjax.runs.batched`); with ``n_agents`` > 0 the agent
    is that many stacked states and trial ``i`` adapts :func:`agent_of_trial`'s."""
    search = methods.search_function(config)

    def run(trial_ids, shared) -> SearchTrace:
        seed, task, agent = shared
        if n_agents:
            return jax.vmap(lambda i: search(
                config, trial_key(seed, i), trial_task(seed, i, task),
                jax.tree.map(lambda x: x[agent_of_trial(i, n_agents)], agent)))(trial_ids)
        return jax.vmap(lambda i: search(config, trial_key(seed, i),
                                         trial_task(seed, i, task), agent))(trial_ids)

    return run


def _compiled(config, chunk: int, task: TaskArrays, agent, devices, n_agents: int = 0):
    """The vmapped search for one config, chunk size and task shape, compiled once
    (:func:`catchjax.runs.batched.compiled`): ``(batch, seconds compiling now)``; call it as
    ``batch(trial_ids, (seed, task, agent))``."""
    ids = jnp.zeros((chunk,), jnp.int32)
    # >= 2 trials per device: on one CPU device trial i's bits then do not depend on the
    # chunk size (catchjax.runs.batched, catchjax.runs.numerics)
    return batched.compiled(("sweep", config, n_agents), lambda: _trials_fn(config, n_agents),
                            ids, (jnp.zeros((), jnp.int32), task, agent), devices,
                            min_per_device=2)


def _chunk(trials: int, chunk_size: int | None, n_devices: int) -> int:
    """Trials per compiled call: ``chunk_size`` or all of them (up to DEFAULT_MAX_CHUNK),
    rounded up to a multiple of the device count."""
    return math.ceil(min(trials, chunk_size or DEFAULT_MAX_CHUNK) / n_devices) * n_devices


def _compiled_for(method, task, trials, budget, agent, devices, settings):
    agent, n_agents = stack_agents(agent)
    config = methods.resolve(method, task, budget=budget,
                             agent=_first(agent, n_agents), **settings)
    devices = list(devices) if devices is not None else jax.devices()
    chunk = _chunk(trials, None, len(devices))
    return _compiled(config, chunk, task.arrays, agent, devices, n_agents)[0].compiled


def _first(agent, n_agents: int):
    """One agent of a (possibly stacked) agent, to check that it fits the config."""
    return jax.tree.map(lambda x: x[0], agent) if n_agents else agent


def compiled_cost(method, task: Task, trials: int, budget: int | None = None, agent=None,
                  devices=None, **settings) -> dict:
    """XLA's cost analysis of one chunk of this sweep: ``flops``, ``bytes accessed``,
    ``transcendentals``. XLA counts the body of a loop once, not once per iteration: for
    the search methods that is one search step (epoch) of every trial in the chunk."""
    cost = _compiled_for(method, task, trials, budget, agent, devices, settings).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return {k: float(v) for k, v in (cost or {}).items()
            if k in ("flops", "bytes accessed", "transcendentals")}


def compiled_memory(method, task: Task, trials: int, budget: int | None = None, agent=None,
                    devices=None, **settings) -> dict:
    """What XLA allocates for one chunk of this sweep (bytes, per device): arguments,
    outputs, temporaries and generated code, from the compiled executable's memory
    analysis (the same compiled function the sweep uses, cached)."""
    compiled = _compiled_for(method, task, trials, budget, agent, devices, settings)
    m = compiled.memory_analysis()
    if m is None:
        return {}
    out = {k: int(getattr(m, f"{k}_size_in_bytes", 0)) for k in
           ("argument", "output", "temp", "generated_code")}
    out["total"] = sum(out.values())
    return out


def check_sweep_arguments(task, chunk_size, devices, progress_dir) -> list:
    """What the Python API is given, checked as the CLI checks it: one clear error that
    names the argument, before anything compiles. Returns the devices to use."""
    from catchjax import safe_io

    if not isinstance(task, Task):
        raise CatchjaxError(f"task must be a Task (catchjax.make_task(benchmark, task)), got "
                            f"{task!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(
            chunk_size, numbers.Integral) or chunk_size <= 0):
        raise CatchjaxError(f"chunk_size must be a positive integer (trials per compiled "
                            f"call), got {chunk_size!r}")
    if devices is None:
        devices = jax.devices()
    else:
        if isinstance(devices, (str, bytes)) or not hasattr(devices, "__iter__"):
            raise CatchjaxError(f"devices must be a list of jax devices, got {devices!r}")
        devices = list(devices)
        if not devices:
            raise CatchjaxError("devices is empty; give at least one (e.g. jax.devices())")
        bad = [d for d in devices if not isinstance(d, jax.Device)]
        if bad:
            raise CatchjaxError(f"devices must be jax devices (e.g. jax.devices()[:2]), got "
                                f"{bad[0]!r}")
    if progress_dir is not None:
        if not isinstance(progress_dir, (str, os.PathLike)) or str(progress_dir).strip() == "":
            raise CatchjaxError(f"progress_dir must be a folder path, got {progress_dir!r}")
        where = Path(progress_dir)
        if where.exists() and not where.is_dir():
            raise CatchjaxError(f"progress_dir {where} exists and is not a folder")
        if not where.exists():
            safe_io.ensure_writable_parent(where)
        elif not os.access(where, os.W_OK | os.X_OK):
            raise CatchjaxError(f"progress_dir {where} is not writable")
    return devices


def sweep(method, task: Task, trials: int = 500, budget: int | None = None, seed: int = 0, *,
          chunk_size: int | None = None, progress: bool = False, devices=None, agent=None,
          progress_dir=None, log=None, **settings) -> SweepResult:
    """Run ``trials`` seeded trials of ``method`` (a name or a config) on ``task``.

    ``budget``: evaluations per trial (default: a config's own budget; for a name, the
    method's default: 50, the DQN's 11).
    ``settings`` override the method's config fields (e.g. ``population=20``); ``agent``
    is the trained starting point of methods that adapt one (``catch-meta``), or a list of
    several (e.g. ``catchjax.runs.agent.train_many``'s): trial ``i`` adapts agent ``i % len``,
    and the summary shows the spread across the agents beside the CI over trials. With
    ``progress_dir``, finished chunks are checkpointed there (Orbax) and a rerun of the
    same sweep resumes after the last one, giving the same result as an uninterrupted run.
    ``log``: where notes on a large run go before it compiles (the CLI: print).
    """
    check_run(trials, budget, seed)
    # after jax.distributed.initialize (catchjax.runs.distributed), jax.devices() spans processes
    devices = check_sweep_arguments(task, chunk_size, devices, progress_dir)
    agent, n_agents = stack_agents(agent)
    config = methods.resolve(method, task, budget=budget, agent=_first(agent, n_agents),
                             **settings)
    name = methods.method_name(config)
    check_memory(trials, config.budget, len(task.spec.report_metrics), name)
    if log is not None:
        for note in size_notes(name, config, task, trials):
            log(note)
    me = jax.process_index()
    multi = any(d.process_index != me for d in devices)
    arrays = task.arrays
    if multi:  # inputs every process holds whole: host arrays, replicated by jit
        arrays, agent = jax.tree.map(np.asarray, (arrays, agent))
    chunk = _chunk(trials, chunk_size, len(devices))  # chunk_size was checked above
    with status.working(f"compiling the {name} search ({chunk} trials per call)",
                        enabled=progress and me == 0) as shown:
        compiled, compile_seconds = _compiled(config, chunk, arrays, agent, devices, n_agents)
        if note := batched.compile_note(compiled, compile_seconds):
            shown["done"] = note

    computed_on = provenance.computed_on(devices)  # summary and resume record
    n_chunks = math.ceil(trials / chunk)
    chunks: list[SearchTrace] = []
    store = None
    if progress_dir is not None and me == 0:  # only process 0 keeps progress
        store = SweepProgress(progress_dir, fingerprint(name, config, task, seed, trials,
                                                        chunk, agent, computed_on),
                              device_counts(computed_on))
        chunks = store.restore()
        if log is not None and (note := store.device_note(len(chunks))):
            log(note)
    if multi:
        chunks = _share_restored(chunks, config, chunk, trials, arrays, agent, n_agents)
    done = len(chunks)
    # one call left: a bar would jump from 0 to 100 %, so a line counts its seconds instead
    # (more calls would move a bar, but CATCH's floating point depends on the batch size)
    one_call = n_chunks - done == 1
    bar = _bar(name, trials, min(done * chunk, trials)) if progress and me == 0 and \
        not one_call else None
    t0 = time.perf_counter()
    for c in range(done, n_chunks):
        n_real = min(chunk, trials - c * chunk)
        with status.working(f"running {n_real} trials of {name} in one compiled call",
                            enabled=progress and me == 0 and one_call):
            chunks.append(_run_chunk(compiled, c, chunk, trials, seed, arrays, agent, multi))
        if store is not None:
            store.save(c, chunks[-1])
        if bar is not None:
            bar.update(n_real)
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    if store is not None:
        store.close()
    trace = jax.tree.map(lambda *xs: np.concatenate(xs), *chunks)
    return SweepResult(
        method=name, config=config, task=task, seed=seed, rows=trace.rows,
        rewards=trace.rewards, compile_seconds=compile_seconds,
        compile_source=batched.compile_source(compiled, compile_seconds), wall_seconds=wall,
        device=_device_text(devices, multi), metrics=dict(trace.metrics),
        trials_run=trials - min(done * chunk, trials), n_agents=max(n_agents, 1),
        computed_on=computed_on)


def _run_chunk(compiled, c: int, chunk: int, trials: int, seed: int, arrays, agent,
               multi: bool) -> SearchTrace:
    """Chunk ``c``: trials ``c * chunk`` on, the last chunk padded with copies of the last
    trial (dropped here) so that every call has the compiled shape."""
    ids = np.arange(c * chunk, (c + 1) * chunk, dtype=np.int32)
    ids = np.minimum(ids, trials - 1)
    n_real = min(chunk, trials - c * chunk)
    out = compiled(ids if multi else jnp.asarray(ids),
                   (np.int32(seed) if multi else jnp.asarray(seed, jnp.int32), arrays, agent))
    return jax.tree.map(lambda x: np.asarray(x)[:n_real], out)


def _device_text(devices, multi: bool) -> str:
    """What a sweep ran on, for its summary: "cpu x2", "NVIDIA H100 x8 (2 processes)"."""
    return (", ".join(sorted({d.device_kind for d in devices})) + f" x{len(devices)}"
            + (f" ({jax.process_count()} processes)" if multi else ""))


def _bar(name: str, trials: int, done: int):
    from tqdm.auto import tqdm

    return tqdm(total=trials, unit="trial", desc=f"{name} sweep", initial=done)


def size_notes(name: str, config, task: Task, trials: int) -> list[str]:
    """What a user should know before a run starts: a budget that its method spends on
    random warm-up draws alone, a budget beyond the searchable networks (the method
    evaluates some again), and results of more than ~1 GB."""
    notes = [] if (warm := warmup_note(name, config)) is None else [warm]
    if config.budget > task.n_searchable:
        notes.append(f"note: budget {config.budget:,} is more than the {task.n_searchable:,} "
                     f"searchable networks of {task.name}: {name} will evaluate networks "
                     f"again")
    rows, n_report = trials * config.budget, len(task.spec.report_metrics)
    csv_bytes, parquet_bytes = reporting.output_estimate(task, rows)
    if csv_bytes > reporting.LARGE_OUTPUT_BYTES:
        also = (f" and results.parquet about {parquet_bytes / 2**30:.1f} GB"
                if reporting.has_pyarrow() else "")
        notes.append(f"note: {rows:,} result rows: results.csv will be about "
                     f"{csv_bytes / 2**30:.1f} GB{also}, and the sweep holds about "
                     f"{memory_estimate(trials, config.budget, n_report) / 2**30:.1f} GB "
                     f"of result arrays in memory (they are "
                     f"written in chunks); lower --trials or --budget for less")
    return notes


def warmup_note(name: str, config) -> str | None:
    """A note when every evaluation of a trial is one of the method's first proposals,
    which it makes before it uses any reward (REA's initial population, local search's
    and BANANAS' random starts, CATCH's seeds): its trials are then random draws."""
    stepper = methods.get(name).stepper
    if stepper is None:
        return None
    unbounded = 10**9  # the warm-up the method would make with budget to spare
    warm = stepper.first(dataclasses.replace(config, budget=unbounded))
    if not 0 < warm < unbounded or config.budget > warm:
        return None  # no warm-up, or one that grows with the budget (random search, DQN)
    return (f"note: {name} makes its first {warm} proposals at random, before it uses any "
            f"reward; with a budget of {config.budget} every evaluation is one of them, so "
            f"these trials are random draws. Give a budget above {warm} (or make the "
            f"warm-up smaller with --set) to run {name} itself")


def _share_restored(chunks, config, chunk, trials, arrays, agent, n_agents):
    """Process 0 restored ``chunks`` from its progress folder; every process gets them
    (and their count), so all run the same remaining chunks."""
    count = int(batched.broadcast(np.int32(len(chunks))))
    if count == 0:
        return []
    shapes = jax.eval_shape(_trials_fn(config, n_agents), jnp.zeros((chunk,), jnp.int32),
                            (jnp.int32(0), arrays, agent))
    shared = []
    for c in range(count):
        n_real = min(chunk, trials - c * chunk)
        mine = chunks[c] if jax.process_index() == 0 else jax.tree.map(
            lambda s, n=n_real: np.zeros((n, *s.shape[1:]), s.dtype), shapes)
        shared.append(jax.tree.map(np.asarray, batched.broadcast(mine)))
    return shared


def run_trial(method, task: Task, seed: int = 0, trial: int = 0, budget: int | None = None,
              agent=None, **settings) -> SearchTrace:
    """One trial alone: the reference a sweep's trial ``trial`` equals bit for bit (it runs
    the sweep's compiled program on one device, with no other trial in the call).
    ``budget``, ``agent`` (one, or a list: the trial adapts :func:`agent_of_trial`'s) and
    ``settings`` as in :func:`sweep`."""
    check_run(trial + 1, budget, seed)
    if isinstance(agent, (list, tuple)):
        stack_agents(agent)  # the same checks as a sweep's
        agent = agent[agent_of_trial(trial, len(agent))]
    config = methods.resolve(method, task, budget=budget, agent=agent, **settings)
    check_memory(1, config.budget, len(task.spec.report_metrics), methods.method_name(config))
    # the sweep's own program on one device: the trial and a copy of it (a batch of one
    # compiles without its batch axis, to other arithmetic), so it equals the sweep's
    # trial bit for bit at any size (runs.numerics)
    batch, _ = _compiled(config, 2, task.arrays, agent, jax.devices()[:1])
    out = batch(jnp.full((2,), trial, jnp.int32),
                (jnp.asarray(seed, jnp.int32), task.arrays, agent))
    return jax.tree.map(lambda x: np.asarray(x)[0], out)
