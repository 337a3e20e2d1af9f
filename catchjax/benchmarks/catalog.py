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


NB201_TASKS = {
    # Reward = 12-epoch validation accuracy; report = 200-epoch test accuracy (CIFAR-10:
    # the model trained on the full training set, best 94.37), then 200-epoch validation.
    # Pool: a dataset lends its validation accuracy at 12 and 200 epochs.
    "cifar10": TaskDefaults(
        "cifar10_valid_valid_acc_12",
        ("cifar10_test_acc_200", "cifar10_valid_valid_acc_200", "cifar10_valid_test_acc_200"),
        ("cifar10_valid_valid_acc_12", "cifar10_valid_valid_acc_200"),
    ),
    "cifar100": TaskDefaults(
        "cifar100_valid_acc_12", ("cifar100_test_acc_200", "cifar100_valid_acc_200"),
        ("cifar100_valid_acc_12", "cifar100_valid_acc_200"),
    ),
    "imagenet16-120": TaskDefaults(
        "imagenet16_valid_acc_12", ("imagenet16_test_acc_200", "imagenet16_valid_acc_200"),
        ("imagenet16_valid_acc_12", "imagenet16_valid_acc_200"),
    ),
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
TRANSNAS_TASKS = {
    task: TaskDefaults(f"{task}__valid_{m}", (f"{task}__test_{m}", f"{task}__valid_{m}"))
    for task, m in TRANSNAS_METRIC.items()
}

BENCHMARKS: dict[str, BenchmarkInfo] = {
    b.name: b
    for b in (
        BenchmarkInfo("nb201", spaces.NB201, ("nb201.npz", "nb201_hw.npz"), NB201_TASKS),
        BenchmarkInfo(
            "transnas-micro", spaces.TRANSNAS_MICRO, ("transnas101_micro.npz",), TRANSNAS_TASKS
        ),
        BenchmarkInfo(
            "transnas-macro", spaces.TRANSNAS_MACRO, ("transnas101_macro.npz",), TRANSNAS_TASKS
        ),
        BenchmarkInfo("synthetic-nb201", spaces.NB201, (), NB201_TASKS, "nb201"),
        BenchmarkInfo(
            "synthetic-transnas-micro", spaces.TRANSNAS_MICRO, (), TRANSNAS_TASKS, "transnas-micro"
        ),
        BenchmarkInfo(
            "synthetic-transnas-macro", spaces.TRANSNAS_MACRO, (), TRANSNAS_TASKS, "transnas-macro"
        ),
    )
}


def benchmark_info(name: str) -> BenchmarkInfo:
    if name not in BENCHMARKS:
        raise CatchjaxError(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def training_pool(benchmark: str, target: str) -> list[str]:
    """Reward columns of the meta-training pool of ``target``: what every other named task
    of the benchmark lends (``TaskDefaults.pool``), so the target itself is left out."""
    info = benchmark_info(benchmark)
    if target not in info.tasks:
        raise CatchjaxError(
            f"the meta-training pool is defined for the named tasks of {benchmark} "
            f"({', '.join(info.tasks)}), not for {target!r}"
        )
    return [c for name, t in info.tasks.items() if name != target for c in t.pool_columns]
