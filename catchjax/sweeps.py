"""Sweeps: N seeded trials of a search method as one compiled, vmapped call (SPEC §5).

Trial ``i`` of seed ``s`` uses the key ``fold_in(key(s), i)``, which does not depend on
how many trials run or how they are chunked, so trial ``i`` of a sweep equals
:func:`run_trial` ``(…, trial=i)`` run alone. Trials are vmapped, cut into chunks of equal
size (one compilation), and sharded over the local devices along a ``trials`` mesh axis.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from catchjax import analysis, methods
from catchjax.baselines.common import SearchTrace
from catchjax.benchmarks.tasks import Task, TaskArrays
from catchjax.errors import CatchjaxError

DEFAULT_MAX_CHUNK = 2048


def trial_key(seed, trial):
    """The PRNG key of one trial; a pure function of (seed, trial index)."""
    return jax.random.fold_in(jax.random.key(seed), trial)


def _search_with(config, search, key, task, agent):
    if agent is None:
        return search(config, key, task)
    return search(config, key, task, agent)  # a method that starts from a trained agent


def _trials_fn(config):
    search = methods.search_function(config)

    def run(seed, trial_ids, task: TaskArrays, agent) -> SearchTrace:
        return jax.vmap(
            lambda i: _search_with(config, search, trial_key(seed, i), task, agent)
        )(trial_ids)

    return run


_COMPILED: dict = {}


def _compiled(config, chunk: int, task: TaskArrays, agent, devices):
    """AOT-compile (and cache) the vmapped search for one config, chunk size and task shape."""
    shapes = tuple((x.shape, x.dtype) for x in jax.tree.leaves((task, agent)))
    cache_key = (config, chunk, shapes, jax.tree.structure(agent), tuple(devices))
    if cache_key in _COMPILED:
        return _COMPILED[cache_key], 0.0
    fn = _trials_fn(config)
    if len(devices) > 1:
        mesh = Mesh(np.asarray(devices), ("trials",))
        split = NamedSharding(mesh, PartitionSpec("trials"))
        repl = NamedSharding(mesh, PartitionSpec())
        jitted = jax.jit(fn, in_shardings=(repl, split, repl, repl), out_shardings=split)
    else:
        jitted = jax.jit(fn)
    t0 = time.perf_counter()
    compiled = jitted.lower(
        jnp.zeros((), jnp.int32), jnp.zeros((chunk,), jnp.int32), task, agent
    ).compile()
    seconds = time.perf_counter() - t0
    _COMPILED[cache_key] = compiled
    return compiled, seconds


@dataclasses.dataclass
class SweepResult:
    """Everything one sweep produced, as NumPy arrays on the host."""

    method: str
    config: object
    task: Task
    seed: int
    rows: np.ndarray  # i32 [T, B] evaluated rows
    rewards: np.ndarray  # f32 [T, B]
    compile_seconds: float
    wall_seconds: float
    device: str
    info: dict = dataclasses.field(default_factory=dict)  # extra fields for summary.json

    @property
    def trials(self) -> int:
        return self.rows.shape[0]

    @property
    def budget(self) -> int:
        return self.rows.shape[1]

    @property
    def best_step(self) -> np.ndarray:
        """[T, B]: the step whose architecture is best by reward among steps <= t."""
        if not hasattr(self, "_best_step"):
            self._best_step = analysis.best_so_far(self.rewards)
        return self._best_step

    @property
    def best_row(self) -> np.ndarray:
        return np.take_along_axis(self.rows, self.best_step, axis=1)

    @property
    def best_reward(self) -> np.ndarray:
        return np.take_along_axis(self.rewards, self.best_step, axis=1)

    @property
    def best_report(self) -> np.ndarray:
        """[T, B, n_report]: report metrics of the best-by-reward architecture so far."""
        return np.asarray(self.task.arrays.report)[self.best_row]

    @property
    def final_report(self) -> np.ndarray:
        """[T]: primary report metric of each trial's chosen architecture."""
        return self.best_report[:, -1, 0]

    def summary(self) -> dict:
        spec = self.task.spec
        report = np.asarray(self.task.arrays.report)[:, 0]
        table_best = float(np.nanmax(report[self.task.searchable]))
        final = self.final_report.astype(np.float64)
        return {
            "method": self.method,
            "benchmark": spec.benchmark,
            "task": spec.task,
            "trials": self.trials,
            "budget": self.budget,
            "seed": self.seed,
            "reward_metric": spec.reward_metric,
            "report_metric": spec.report_metrics[0],
            "report_metrics": list(spec.report_metrics),
            "mean": float(final.mean()),
            "std": float(final.std(ddof=1)) if len(final) > 1 else 0.0,
            "ci95": list(analysis.bootstrap_ci(final, seed=self.seed)),
            "best_hits": int(np.sum(final >= table_best)),
            "table_best": table_best,
            "report_means": {
                m: float(self.best_report[:, -1, j].mean())
                for j, m in enumerate(spec.report_metrics)
            },
            "mean_best_reward": float(self.best_reward[:, -1].mean()),
            "wall_seconds": self.wall_seconds,
            "compile_seconds": self.compile_seconds,
            "trials_per_second": self.trials / self.wall_seconds if self.wall_seconds else None,
            "device": self.device,
            "config": {"method": self.method, **dataclasses.asdict(self.config)},
            "task_spec": dataclasses.asdict(spec),
            "versions": versions(),
            **self.info,
        }


def versions() -> dict:
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for pkg in ("catchjax", "jax", "jaxlib", "flax", "optax", "numpy", "scipy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _check_counts(trials, budget):
    for name, value in (("trials", trials), ("budget", budget)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise CatchjaxError(f"{name} must be a positive integer, got {value!r}")


def sweep(
    method,
    task: Task,
    trials: int = 500,
    budget: int = 50,
    seed: int = 0,
    *,
    chunk_size: int | None = None,
    progress: bool = False,
    devices=None,
    agent=None,
    progress_dir=None,
    **settings,
) -> SweepResult:
    """Run ``trials`` seeded trials of ``method`` (a name or a config) on ``task``.

    ``settings`` override the method's config fields (e.g. ``population=20``); ``agent``
    is the trained starting point of methods that adapt one (``catch-meta``). With
    ``progress_dir``, finished chunks are checkpointed there (Orbax) and a rerun of the
    same sweep resumes after the last one, giving the same result as an uninterrupted run.
    """
    _check_counts(trials, budget)
    if isinstance(method, str):
        config = methods.make_config(method, budget=budget, **settings)
    else:
        config = dataclasses.replace(method, budget=budget, **settings)
    methods.validate(config, task, agent)
    devices = list(devices) if devices is not None else jax.local_devices()
    n_dev = len(devices)
    chunk = min(trials, chunk_size or DEFAULT_MAX_CHUNK)
    if chunk <= 0:
        raise CatchjaxError(f"chunk_size must be positive, got {chunk_size}")
    chunk = math.ceil(chunk / n_dev) * n_dev
    compiled, compile_seconds = _compiled(config, chunk, task.arrays, agent, devices)

    n_chunks = math.ceil(trials / chunk)
    rows, rewards = [], []
    store = None
    if progress_dir is not None:
        fingerprint = _fingerprint(config, task, seed, trials, chunk, agent)
        store = SweepProgress(progress_dir, fingerprint)
        rows, rewards = store.restore()
    done = len(rows)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=trials, unit="trial", desc=f"{methods.method_name(config)} sweep",
                   initial=min(done * chunk, trials))
    t0 = time.perf_counter()
    for c in range(done, n_chunks):
        ids = np.arange(c * chunk, (c + 1) * chunk, dtype=np.int32)
        ids = np.minimum(ids, trials - 1)  # pad the last chunk; padded trials are dropped
        out = compiled(jnp.asarray(seed, jnp.int32), jnp.asarray(ids), task.arrays, agent)
        n_real = min(chunk, trials - c * chunk)
        rows.append(np.asarray(out.rows)[:n_real])
        rewards.append(np.asarray(out.rewards)[:n_real])
        if store is not None:
            store.save(rows, rewards)
        if bar is not None:
            bar.update(n_real)
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    if store is not None:
        store.close()
    return SweepResult(
        method=methods.method_name(config),
        config=config,
        task=task,
        seed=seed,
        rows=np.concatenate(rows),
        rewards=np.concatenate(rewards),
        compile_seconds=compile_seconds,
        wall_seconds=wall,
        device=", ".join(sorted({d.device_kind for d in devices})) + f" x{n_dev}",
    )


def _fingerprint(config, task: Task, seed, trials, chunk, agent) -> dict:
    """What must match for saved progress to belong to this sweep."""
    import hashlib

    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(agent):
        digest.update(np.asarray(leaf).tobytes())
    return {
        "method": methods.method_name(config),
        "config": json.loads(json.dumps(dataclasses.asdict(config), default=str)),
        "task": json.loads(json.dumps(dataclasses.asdict(task.spec), default=str)),
        "table": task.table.source,
        "seed": int(seed),
        "trials": int(trials),
        "chunk": int(chunk),
        "agent_sha256": digest.hexdigest() if agent is not None else None,
    }


class SweepProgress:
    """Finished chunks of one sweep, checkpointed with an Orbax CheckpointManager.

    Step k holds the rows and rewards of the first k chunks; only the latest is kept.
    ``sweep.json`` records the sweep's fingerprint, so progress of another sweep is never
    mixed in.
    """

    def __init__(self, directory, fingerprint: dict):
        import orbax.checkpoint as ocp

        self.directory = Path(directory).absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = self.directory / "sweep.json"
        if meta.exists():
            saved = json.loads(meta.read_text())
            if saved != fingerprint:
                diff = sorted(k for k in fingerprint if saved.get(k) != fingerprint[k])
                raise CatchjaxError(
                    f"{self.directory} holds progress of a different sweep (differs in "
                    f"{', '.join(diff)}); remove that folder or choose another output"
                )
        else:
            meta.write_text(json.dumps(fingerprint, indent=2))
        self._ocp = ocp
        self.manager = ocp.CheckpointManager(
            self.directory / "chunks", options=ocp.CheckpointManagerOptions(max_to_keep=1)
        )

    def restore(self):
        step = self.manager.latest_step()
        if step is None:
            return [], []
        try:
            state = self.manager.restore(step, args=self._ocp.args.StandardRestore())
        except Exception as exc:  # a damaged step: start over rather than guess
            raise CatchjaxError(
                f"cannot read sweep progress in {self.directory} ({type(exc).__name__}); "
                f"remove the folder to start the sweep over"
            ) from None
        sizes = np.asarray(state["sizes"])
        bounds = np.cumsum(sizes)[:-1]
        rows = np.split(np.asarray(state["rows"]), bounds)
        rewards = np.split(np.asarray(state["rewards"]), bounds)
        return list(rows), list(rewards)

    def save(self, rows, rewards):
        state = {
            "rows": np.concatenate(rows),
            "rewards": np.concatenate(rewards),
            "sizes": np.asarray([len(r) for r in rows], np.int32),
        }
        self.manager.save(len(rows), args=self._ocp.args.StandardSave(state))
        self.manager.wait_until_finished()

    def close(self):
        self.manager.close()


@functools.lru_cache(maxsize=64)
def _single_trial_fn(config):
    """One jitted single-trial function per config, so repeated calls do not recompile."""
    search = methods.search_function(config)
    return jax.jit(lambda s, i, t, a: _search_with(config, search, trial_key(s, i), t, a))


def run_trial(method, task: Task, seed: int = 0, trial: int = 0, budget: int = 50,
              agent=None, **settings) -> SearchTrace:
    """One trial alone, without vmap: the reference a sweep's trial ``trial`` must equal."""
    if isinstance(method, str):
        config = methods.make_config(method, budget=budget, **settings)
    else:
        config = method
    methods.validate(config, task, agent)
    fn = _single_trial_fn(config)
    out = fn(jnp.asarray(seed, jnp.int32), jnp.asarray(trial, jnp.int32), task.arrays, agent)
    return jax.tree.map(np.asarray, out)
