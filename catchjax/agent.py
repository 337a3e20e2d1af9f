"""Meta-trained CATCH agents: the leave-target-out task pool, meta-training, and Orbax
checkpoints (params, Adam state, config, key data).

A checkpoint is a folder: ``state/`` (the Orbax PyTree checkpoint of the AgentState) and
``catchjax.json`` (config, space shape, pool, seed, key data, versions). The JSON file is
written last, so a folder without it is a checkpoint whose writing did not finish.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from catchjax import catch
from catchjax.benchmarks import tables
from catchjax.benchmarks.tasks import Task
from catchjax.errors import CatchjaxError

FORMAT = 1
# Fields that fix the shapes of the saved networks and optimizer state.
SHAPE_FIELDS = ("z_dim", "hidden")


def meta_pool(task: Task) -> list[str]:
    """Reward columns of the meta-training pool, leaving the target out (SPEC §2).

    NB201 target dataset D: the other two datasets' validation accuracy at 12 and 200
    epochs. TransNAS: the other six tasks' reward metric in the same space.
    """
    spec = task.spec
    info = tables.BENCHMARKS[spec.benchmark]
    names = list(info.tasks)
    if spec.task not in names:
        raise CatchjaxError(
            f"the meta-training pool is defined for the named tasks of {spec.benchmark} "
            f"({', '.join(names)}), not for {spec.task!r}"
        )
    others = [t for t in names if t != spec.task]
    if info.space.name == "nb201":
        prefix = {"cifar10": "cifar10_valid_valid_acc", "cifar100": "cifar100_valid_acc",
                  "imagenet16-120": "imagenet16_valid_acc"}
        return [f"{prefix[t]}_{e}" for t in others for e in (12, 200)]
    return [info.tasks[t].reward for t in others]


def pool_rewards(task: Task, columns: list[str]) -> np.ndarray:
    """[P, n_archs] float32; architectures the target cannot search get -inf."""
    out = []
    for name in columns:
        col = task.table.column(name).astype(np.float64)
        bad = np.isnan(col) & task.searchable
        if bad.any():
            raise CatchjaxError(
                f"pool metric {name!r} is NaN for {int(bad.sum())} searchable architectures"
            )
        out.append(np.where(task.searchable, col, -np.inf))
    return np.asarray(out, np.float32)


@dataclasses.dataclass
class MetaTrainedAgent:
    agent: catch.AgentState
    config: catch.CatchConfig
    benchmark: str
    target_task: str
    pool: list[str]
    seed: int
    n_decisions: int
    n_choices: int
    seconds: float = 0.0
    compile_seconds: float = 0.0


def meta_train(task: Task, config: catch.CatchConfig | None = None, seed: int = 0,
               pool: list[str] | None = None) -> MetaTrainedAgent:
    """Meta-train one agent on the leave-``task``-out pool (one compiled call)."""
    from catchjax import methods

    config = config or catch.CatchConfig()
    methods.validate(dataclasses.replace(config, meta_trained=False), task)
    if config.context != "learned":
        raise CatchjaxError("meta-training uses the learned context (context='learned')")
    pool = pool or meta_pool(task)
    rewards = jax.numpy.asarray(pool_rewards(task, pool))
    fn = jax.jit(lambda key, t, r: catch.meta_train(config, key, t, r))
    key = jax.random.key(seed)
    t0 = time.perf_counter()
    compiled = fn.lower(key, task.arrays, rewards).compile()
    t1 = time.perf_counter()
    agent, _, _ = compiled(key, task.arrays, rewards)
    agent = jax.block_until_ready(agent)
    L, _, K = task.arrays.prefix_mask.shape
    return MetaTrainedAgent(
        agent, config, task.spec.benchmark, task.spec.task, list(pool), seed, L, K,
        seconds=time.perf_counter() - t1, compile_seconds=t1 - t0,
    )


def save_agent(path, trained: MetaTrainedAgent, overwrite: bool = False) -> Path:
    """Write a checkpoint folder (see module docstring); never half-replaces an old one."""
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    if path.exists() and not overwrite:
        raise CatchjaxError(f"checkpoint {path} already exists; pass overwrite=True/--overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(tmp / "state", trained.agent)
        checkpointer.wait_until_finished()
        meta = {
            "format": FORMAT,
            "kind": "catchjax CATCH agent",
            "config": dataclasses.asdict(trained.config),
            "benchmark": trained.benchmark,
            "target_task": trained.target_task,
            "pool": trained.pool,
            "seed": trained.seed,
            "key_data": np.asarray(jax.random.key_data(jax.random.key(trained.seed))).tolist(),
            "n_decisions": trained.n_decisions,
            "n_choices": trained.n_choices,
            "meta_train_seconds": trained.seconds,
            "versions": {"jax": jax.__version__},
        }
        with open(tmp / "catchjax.json", "w") as f:
            json.dump(meta, f, indent=2)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_agent(path, task: Task | None = None, **overrides) -> MetaTrainedAgent:
    """Restore a checkpoint; ``overrides`` change non-shape config fields (e.g. budget).

    Raises a clear error for a missing or half-written folder, a space of another shape
    than ``task``'s, or overrides that change the saved networks' shapes.
    """
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    if not path.exists():
        raise CatchjaxError(f"checkpoint {path} does not exist")
    meta_file = path / "catchjax.json"
    if not meta_file.exists() or not (path / "state").is_dir():
        raise CatchjaxError(
            f"{path} is not a complete catchjax agent checkpoint (no catchjax.json or state/): "
            f"its writing may not have finished; meta-train again"
        )
    try:
        meta = json.loads(meta_file.read_text())
        saved = catch.CatchConfig(**meta["config"])
    except (ValueError, TypeError, KeyError) as exc:
        raise CatchjaxError(f"{meta_file} is damaged or from another version: {exc}") from None
    if meta.get("format") != FORMAT:
        raise CatchjaxError(f"{path}: checkpoint format {meta.get('format')}, expected {FORMAT}")
    unknown = set(overrides) - {f.name for f in dataclasses.fields(catch.CatchConfig)}
    if unknown:
        raise CatchjaxError(f"CATCH has no setting {', '.join(sorted(unknown))}")
    clash = {k: (getattr(saved, k), v) for k, v in overrides.items()
             if k in SHAPE_FIELDS and v != getattr(saved, k)}
    if clash:
        raise CatchjaxError(
            f"checkpoint {path} was trained with "
            + ", ".join(f"{k}={a}" for k, (a, _) in clash.items())
            + "; the requested config has "
            + ", ".join(f"{k}={b}" for k, (_, b) in clash.items())
            + ": an incompatible config. Use the checkpoint's values or meta-train anew"
        )
    L, K = meta["n_decisions"], meta["n_choices"]
    if task is not None:
        tl, _, tk = task.arrays.prefix_mask.shape
        if (tl, tk) != (L, K):
            raise CatchjaxError(
                f"checkpoint {path} is for a {L} x {K} search space, but {task.name} is "
                f"{tl} x {tk}: an incompatible config"
            )
    config = dataclasses.replace(saved, **overrides)
    target = catch.init_agent(saved, jax.random.key(0), L, K)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
        agent = ocp.StandardCheckpointer().restore(path / "state", abstract)
    except Exception as exc:  # orbax raises many types for damaged files
        raise CatchjaxError(
            f"cannot restore {path / 'state'} ({type(exc).__name__}: {str(exc)[:200]}); the "
            f"checkpoint is damaged or incompatible"
        ) from None
    return MetaTrainedAgent(agent, config, meta["benchmark"], meta["target_task"], meta["pool"],
                            meta["seed"], L, K, meta.get("meta_train_seconds", 0.0))
