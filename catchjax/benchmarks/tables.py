"""Benchmark tables on the host: named metric columns over the architectures of a space.

catchjax's own compact format is one ``.npz`` per table, read with ``allow_pickle=False``:

* ``ops``: int ``[n, 6]`` action sequences (see :mod:`catchjax.benchmarks.spaces`);
* ``arch_str`` (optional): the benchmark's arch strings, checked against ``ops``;
* every other 1-D numeric array of length ``n``: a metric column (stored as float32).

The real tables in ``../shared/data`` are in exactly this format. Files are looked up in
the folder named by ``CATCHJAX_DATA``, else in the user cache folder that
``catchjax data import`` writes to.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from catchjax.benchmarks import spaces
from catchjax.errors import CatchjaxError

DATA_ENV = "CATCHJAX_DATA"


@dataclasses.dataclass(frozen=True)
class TaskDefaults:
    """Default reward column and report columns (first = primary) of a named task."""

    reward: str
    report: tuple[str, ...]


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
    "cifar10": TaskDefaults(
        "cifar10_valid_valid_acc_12",
        ("cifar10_test_acc_200", "cifar10_valid_valid_acc_200", "cifar10_valid_test_acc_200"),
    ),
    "cifar100": TaskDefaults(
        "cifar100_valid_acc_12", ("cifar100_test_acc_200", "cifar100_valid_acc_200")
    ),
    "imagenet16-120": TaskDefaults(
        "imagenet16_valid_acc_12", ("imagenet16_test_acc_200", "imagenet16_valid_acc_200")
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


def data_dir() -> Path:
    """Where real tables are read from and imported to: ``$CATCHJAX_DATA`` or the user cache."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("catchjax"))


@dataclasses.dataclass(frozen=True, eq=False)
class Table:
    """A benchmark table on the host (NumPy). Row ``i`` is architecture ``actions[i]``."""

    benchmark: str
    space: spaces.SearchSpace
    actions: np.ndarray  # int32 [n, L]
    arch_str: np.ndarray  # str [n]
    columns: Mapping[str, np.ndarray]  # float32 [n] each
    source: str

    @property
    def n_archs(self) -> int:
        return len(self.actions)

    def column(self, name: str) -> np.ndarray:
        if name not in self.columns:
            raise CatchjaxError(
                f"benchmark {self.benchmark!r} has no metric {name!r}; available: "
                f"{', '.join(sorted(self.columns))}"
            )
        return self.columns[name]

    @functools.cached_property
    def code_to_row(self) -> np.ndarray:
        """int32 ``[K**L]``: the row of each action-sequence code, -1 where there is none."""
        table = np.full(self.space.n_codes, -1, dtype=np.int32)
        table[self.space.encode(self.actions)] = np.arange(self.n_archs, dtype=np.int32)
        return table

    def row_of(self, arch: str) -> int:
        row = int(self.code_to_row[self.space.encode(self.space.from_str(arch))])
        if row < 0:
            raise CatchjaxError(f"architecture {arch!r} is not in benchmark {self.benchmark!r}")
        return row


def make_table(benchmark: str, space, actions, columns, arch_str=None, source="") -> Table:
    """Build a :class:`Table`, checking shapes, values and uniqueness of the rows."""
    where = source or benchmark
    actions = np.asarray(actions)
    if not np.issubdtype(actions.dtype, np.integer):
        raise CatchjaxError(f"{where}: 'ops' must be an integer array, got dtype {actions.dtype}")
    space.check_actions(actions, where)
    actions = actions.astype(np.int32)
    n = len(actions)
    codes = space.encode(actions)
    if len(np.unique(codes)) != n:
        _, first, counts = np.unique(codes, return_index=True, return_counts=True)
        dup = int(first[np.argmax(counts > 1)])
        raise CatchjaxError(f"{where}: architecture {actions[dup].tolist()} appears more than once")
    out = {}
    for name, values in columns.items():
        values = np.asarray(values)
        if values.shape != (n,):
            raise CatchjaxError(
                f"{where}: column {name!r} has shape {values.shape}, expected ({n},) "
                f"(one value per row of 'ops')"
            )
        if values.dtype.kind not in "fiu":
            raise CatchjaxError(f"{where}: column {name!r} is not numeric (dtype {values.dtype})")
        out[name] = values.astype(np.float32)
    expected = np.asarray([space.to_str(a) for a in actions])
    if arch_str is not None:
        arch_str = np.asarray(arch_str).astype(str)
        if arch_str.shape != (n,):
            raise CatchjaxError(f"{where}: 'arch_str' has shape {arch_str.shape}, expected ({n},)")
        bad = np.flatnonzero(arch_str != expected)
        if len(bad):
            i = int(bad[0])
            raise CatchjaxError(
                f"{where}: row {i} has arch_str {arch_str[i]!r} but ops {actions[i].tolist()} "
                f"(= {expected[i]!r}); the file is inconsistent"
            )
    return Table(benchmark, space, actions, expected, out, source)


def read_npz(path: Path, benchmark: str, space) -> Table:
    """Read one table file in catchjax's compact format (no pickle is ever loaded)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise CatchjaxError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise CatchjaxError(
            f"{path}: not a readable catchjax table ({type(exc).__name__}: {exc}); the file "
            f"may be truncated or of another format: re-import it with `catchjax data import`"
        ) from None
    if "ops" not in arrays:
        raise CatchjaxError(f"{path}: has no 'ops' array; arrays found: {', '.join(arrays)}")
    ops = arrays.pop("ops")
    arch_str = arrays.pop("arch_str", None)
    arrays.pop("index", None)
    columns = {k: v for k, v in arrays.items() if v.ndim == 1 and v.dtype.kind in "fiu"}
    return make_table(benchmark, space, ops, columns, arch_str, source=str(path))


def _merge(main: Table, extra: Table) -> Table:
    if not np.array_equal(main.actions, extra.actions):
        raise CatchjaxError(
            f"{extra.source}: its rows are not in the same order as {main.source}; both files "
            f"must list the same architectures in the same order"
        )
    clash = set(main.columns) & set(extra.columns)
    if clash:
        raise CatchjaxError(f"{extra.source}: columns {sorted(clash)} also in {main.source}")
    return dataclasses.replace(main, columns={**main.columns, **extra.columns})


@functools.lru_cache(maxsize=16)
def _load_real(benchmark: str, folder: str, stamp: tuple) -> Table:
    info = BENCHMARKS[benchmark]
    table = read_npz(Path(folder) / info.files[0], benchmark, info.space)
    for extra in info.files[1:]:
        path = Path(folder) / extra
        if path.exists():
            table = _merge(table, read_npz(path, benchmark, info.space))
    return table


def load_table(benchmark: str, folder: str | os.PathLike | None = None) -> Table:
    """The table of a benchmark: synthetic ones are generated, real ones read from disk."""
    info = benchmark_info(benchmark)
    if info.synthetic_of is not None:
        from catchjax.benchmarks import synthetic

        return synthetic.synthetic_table(benchmark)
    folder = Path(folder) if folder is not None else data_dir()
    main = folder / info.files[0]
    if not main.exists():
        raise CatchjaxError(
            f"benchmark {benchmark!r} needs {info.files[0]} in {folder}, which is not there. "
            f"Point {DATA_ENV} at a folder holding it, or run `catchjax data import PATH`; "
            f"to try catchjax without data, use --benchmark synthetic-{benchmark}"
        )
    stamp = tuple(
        (f, (folder / f).stat().st_mtime_ns) for f in info.files if (folder / f).exists()
    )
    return _load_real(benchmark, str(folder.resolve()), stamp)


def available(folder: str | os.PathLike | None = None) -> dict[str, str]:
    """Each benchmark -> where its table comes from, or why it is missing."""
    folder = Path(folder) if folder is not None else data_dir()
    out = {}
    for name, info in BENCHMARKS.items():
        if info.synthetic_of is not None:
            out[name] = "synthetic (generated, no data needed)"
        elif (folder / info.files[0]).exists():
            out[name] = str(folder / info.files[0])
        else:
            out[name] = f"missing: {info.files[0]} not in {folder}"
    return out
