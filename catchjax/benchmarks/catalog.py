"""The benchmark catalog: which benchmarks exist, their search space, files and named
tasks (default reward and report columns, what each lends to a meta-training pool).

Facts only, as data: code that needs a benchmark's facts looks them up here instead of
branching on its name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from catchjax.benchmarks import spaces
from catchjax.errors import CatchjaxError


@dataclasses.dataclass(frozen=True)
class TaskDefaults:
    """Default reward column and report columns (first = primary) of a named task."""

    reward: str
    report: tuple[str, ...]
    # The reward columns this task lends to the meta-training pool of another target
    # (SPEC §2, leave the target out); empty = its reward column.
    pool: tuple[str, ...] = ()

    @property
    def pool_columns(self) -> tuple[str, ...]:
        return self.pool or (self.reward,)


@dataclasses.dataclass(frozen=True)
class BenchmarkInfo:
    name: str
    space: spaces.SearchSpace
    files: tuple[str, ...]  # first one required, the rest merged in when present
    tasks: Mapping[str, TaskDefaults]
    synthetic_of: str | None = None  # for synthetic benchmarks: the real one they mimic
    # named meta-training pools: name -> task -> columns it lends; the default pool is
    # each task's TaskDefaults.pool_columns
    pools: Mapping[str, Mapping[str, tuple[str, ...]]] = dataclasses.field(default_factory=dict)
    # named task protocols: name -> task -> its reward and report columns (``tasks`` is
    # the first one's); a benchmark without them has the one protocol of ``tasks``
    protocols: Mapping[str, Mapping[str, TaskDefaults]] = dataclasses.field(
        default_factory=dict)

    def protocol_name(self, protocol: str | None = None) -> str | None:
        """``protocol``, or for None the name of the default one (NB201: "nats"; None for
        a benchmark without named protocols)."""
        return protocol if protocol is not None else next(iter(self.protocols), None)

    def task_defaults(self, protocol: str | None = None) -> Mapping[str, TaskDefaults]:
        """The named tasks' reward and report columns under ``protocol`` (None: the
        default one)."""
        if protocol is None:
            return self.tasks
        if protocol not in self.protocols:
            known = ", ".join(self.protocols) or "none (only the default columns)"
            raise CatchjaxError(f"benchmark {self.name!r} has no protocol {protocol!r}; "
                                f"protocols: {known}")
        return self.protocols[protocol]

    def named_task(self, task: str | None, protocol: str | None = None):
        """``task``'s :class:`TaskDefaults` under ``protocol`` (None for a task given by
        its columns alone); unknown tasks and protocols are refused with the known ones."""
        named = self.task_defaults(protocol)  # an unknown protocol is refused here
        if task is None:
            if protocol is not None:
                raise CatchjaxError(f"protocol {protocol!r} sets the columns of a named task "
                                    f"of {self.name} ({', '.join(named)}); name one")
            return None
        if task not in named:
            raise CatchjaxError(
                f"benchmark {self.name!r} has no task {task!r}; tasks: {', '.join(self.tasks)}"
            )
        return named[task]


NB201_TASKS = {
    # Reward = 12-epoch validation accuracy; report = 200-epoch test accuracy (CIFAR-10:
    # the model trained on the full training set, best 94.37), then 200-epoch validation.
    # Default pool: a dataset lends its 12-epoch validation accuracy, like the paper's
    # 12-epoch ImageNet16 subsets (other pools: NB201_POOLS).
    "cifar10": TaskDefaults(
        "cifar10_valid_valid_acc_12",
        ("cifar10_test_acc_200", "cifar10_valid_valid_acc_200", "cifar10_valid_test_acc_200"),
    ),
    "cifar100": TaskDefaults(
        "cifar100_valid_acc_12", ("cifar100_test_acc_200", "cifar100_valid_acc_200"),
    ),
    "imagenet16-120": TaskDefaults(
        "imagenet16_valid_acc_12", ("imagenet16_test_acc_200", "imagenet16_valid_acc_200"),
    ),
}
# The CATCH paper's Fig. 3 axis (§4.2: "the highest validation accuracy", sampled from the
# NB201 database): reward and reported value both the target's 200-epoch validation
# accuracy, each dataset's own validation column; the 200-epoch test accuracy follows as
# a second report column. Meta-training pools are unchanged (the other datasets'
# 12-epoch validation accuracy): the target's columns are never in them.
NB201_FIG3_TASKS = {
    "cifar10": TaskDefaults(
        "cifar10_valid_valid_acc_200", ("cifar10_valid_valid_acc_200", "cifar10_test_acc_200"),
        pool=("cifar10_valid_valid_acc_12",)),
    "cifar100": TaskDefaults(
        "cifar100_valid_acc_200", ("cifar100_valid_acc_200", "cifar100_test_acc_200"),
        pool=("cifar100_valid_acc_12",)),
    "imagenet16-120": TaskDefaults(
        "imagenet16_valid_acc_200", ("imagenet16_valid_acc_200", "imagenet16_test_acc_200"),
        pool=("imagenet16_valid_acc_12",)),
}
# NATS-Bench's protocol (the default): reward 12-epoch validation, report 200-epoch test
NB201_PROTOCOLS = {"nats": NB201_TASKS, "catch-fig3": NB201_FIG3_TASKS}
_NB201_PREFIX = {"cifar10": ("cifar10_valid_valid_acc", "cifar10_test_acc"),
                 "cifar100": ("cifar100_valid_acc", "cifar100_test_acc"),
                 "imagenet16-120": ("imagenet16_valid_acc", "imagenet16_test_acc")}
# Named meta-training pools: pool name -> task -> the columns that task lends.
NB201_POOLS = {
    "12": {t: (f"{v}_12",) for t, (v, _) in _NB201_PREFIX.items()},
    # the pool of the first reproduction: fully trained results of the other datasets too
    "12,200": {t: (f"{v}_12", f"{v}_200") for t, (v, _) in _NB201_PREFIX.items()},
    # more 12-epoch tasks without any 200-epoch result: the 12-epoch test accuracy too
    "12,test12": {t: (f"{v}_12", f"{te}_12") for t, (v, te) in _NB201_PREFIX.items()},
}
TRANSNAS_METRIC = {
    "class_scene": "top1",
    "class_object": "top1",
    "jigsaw": "top1",
    "room_layout": "neg_loss",
    "segmentsemantic": "mIoU",
    "normal": "ssim",
    "autoencoder": "ssim",
}
# The designed family of issue 32 (catchjax.benchmarks.context_family): 6 task types in
# opposite pairs, 3 tasks each; a task lends its validation score to the others' pools.
CONTEXT_TASKS = {
    f"type{t}_{i}": TaskDefaults(f"type{t}_{i}__valid_score",
                                 (f"type{t}_{i}__test_score", f"type{t}_{i}__valid_score"))
    for t in range(6) for i in ("a", "b", "c")
}
TRANSNAS_TASKS = {
    task: TaskDefaults(f"{task}__valid_{m}", (f"{task}__test_{m}", f"{task}__valid_{m}"))
    for task, m in TRANSNAS_METRIC.items()
}

BENCHMARKS: dict[str, BenchmarkInfo] = {
    b.name: b
    for b in (
        BenchmarkInfo("nb201", spaces.NB201, ("nb201.npz", "nb201_hw.npz"), NB201_TASKS,
                      pools=NB201_POOLS, protocols=NB201_PROTOCOLS),
        BenchmarkInfo(
            "transnas-micro", spaces.TRANSNAS_MICRO, ("transnas101_micro.npz",), TRANSNAS_TASKS
        ),
        BenchmarkInfo(
            "transnas-macro", spaces.TRANSNAS_MACRO, ("transnas101_macro.npz",), TRANSNAS_TASKS
        ),
        BenchmarkInfo("synthetic-nb201", spaces.NB201, (), NB201_TASKS, "nb201",
                      pools=NB201_POOLS, protocols=NB201_PROTOCOLS),
        BenchmarkInfo(
            "synthetic-transnas-micro", spaces.TRANSNAS_MICRO, (), TRANSNAS_TASKS, "transnas-micro"
        ),
        BenchmarkInfo(
            "synthetic-transnas-macro", spaces.TRANSNAS_MACRO, (), TRANSNAS_TASKS, "transnas-macro"
        ),
        # not a copy of a real table: a family designed so that the task context matters
        BenchmarkInfo("synthetic-context", spaces.NB201, (), CONTEXT_TASKS, "nb201"),
    )
}


def benchmark_info(name: str) -> BenchmarkInfo:
    if name not in BENCHMARKS:
        raise CatchjaxError(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def training_pool(benchmark: str, target: str, pool: str | None = None) -> list[str]:
    """Reward columns of the meta-training pool of ``target``, leaving the target out.

    ``pool``: None for the default (each other task's ``TaskDefaults.pool_columns``), the
    name of one of the benchmark's named pools (``BenchmarkInfo.pools``: what each other
    task lends), or a comma-separated list of columns.
    """
    info = benchmark_info(benchmark)
    if pool is not None and pool not in info.pools:
        return [c.strip() for c in pool.split(",") if c.strip()]
    if target not in info.tasks:
        raise CatchjaxError(
            f"the meta-training pool is defined for the named tasks of {benchmark} "
            f"({', '.join(info.tasks)}), not for {target!r}"
        )
    if pool is None:
        return [c for name, t in info.tasks.items() if name != target for c in t.pool_columns]
    return [c for name, cols in info.pools[pool].items() if name != target for c in cols]


def target_columns(benchmark: str, target: str) -> set[str]:
    """Every column a named task lends to any pool (its own results)."""
    info = benchmark_info(benchmark)
    if target not in info.tasks:
        return set()
    own = set(info.tasks[target].pool_columns)
    for lent in info.pools.values():
        own.update(lent.get(target, ()))
    return own
