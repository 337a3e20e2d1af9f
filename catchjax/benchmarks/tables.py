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
from pathlib import Path

import numpy as np

from catchjax.benchmarks import synthetic
from catchjax.benchmarks.catalog import (  # noqa: F401  (the catalog, re-exported)
    BENCHMARKS,
    NB201_TASKS,
    TRANSNAS_METRIC,
    TRANSNAS_TASKS,
    BenchmarkInfo,
    TaskDefaults,
    benchmark_info,
    target_columns,
    training_pool,
)
from catchjax.benchmarks.table import Table, make_table  # noqa: F401
from catchjax.errors import CatchjaxError

DATA_ENV = "CATCHJAX_DATA"


def data_dir() -> Path:
    """Where real tables are read from and imported to: ``$CATCHJAX_DATA`` or the user cache."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("catchjax"))


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
    return from_arrays(arrays, benchmark, space, source=str(path))


def from_arrays(arrays: dict, benchmark: str, space, source: str) -> Table:
    """A table from a compact file's arrays (``ops``, optional ``arch_str`` and ``index``,
    1-D numeric metric columns), validated as every load is."""
    if "ops" not in arrays:
        raise CatchjaxError(f"{source}: has no 'ops' array; arrays found: {', '.join(arrays)}")
    skip = {"ops", "arch_str", "index"}
    columns = {k: v for k, v in arrays.items()
               if k not in skip and v.ndim == 1 and v.dtype.kind in "fiu"}
    return make_table(benchmark, space, arrays["ops"], columns, arrays.get("arch_str"),
                      source=source)


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
        return synthetic.synthetic_table(benchmark)
    folder = Path(folder) if folder is not None else data_dir()
    main = folder / info.files[0]
    if not main.exists():
        raise CatchjaxError(
            f"benchmark {benchmark!r} needs {info.files[0]} in {folder}, which is not there. "
            f"Run `catchjax data get {benchmark}` to download and build "
            f"it, point {DATA_ENV} at a folder holding it, or `catchjax data import PATH`; "
            f"to try catchjax without data, use --benchmark synthetic-{benchmark}"
        )
    stamp = tuple(
        (f, (folder / f).stat().st_mtime_ns) for f in info.files if (folder / f).exists()
    )
    return _load_real(benchmark, str(folder.resolve()), stamp)


def table_digest(benchmark: str, folder: str | os.PathLike | None = None) -> str | None:
    """SHA-256 over the files a real benchmark is read from (name and bytes, in order;
    None for a synthetic one, or when its main file is missing): which data a run used,
    recorded in summary.json."""
    import hashlib

    info = benchmark_info(benchmark)
    if info.synthetic_of is not None:
        return None
    folder = Path(folder) if folder is not None else data_dir()
    if not (folder / info.files[0]).exists():
        return None
    digest = hashlib.sha256()
    for name in info.files:
        if (folder / name).exists():  # name, NUL, bytes; read a megabyte at a time
            digest.update(name.encode() + b"\0")
            with open(folder / name, "rb") as f:
                for block in iter(lambda f=f: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def available(folder: str | os.PathLike | None = None, check: bool = False) -> dict[str, str]:
    """Each benchmark -> where its table comes from, or why it is missing. With ``check``,
    each present table is read and validated (with its companion files), and a table that
    fails says ``BROKEN: <why>``."""
    folder = Path(folder) if folder is not None else data_dir()
    out = {}
    for name, info in BENCHMARKS.items():
        if info.synthetic_of is not None:
            out[name] = "synthetic (generated, no data needed)"
        elif (folder / info.files[0]).exists():
            out[name] = str(folder / info.files[0])
            if check:
                try:
                    table = load_table(name, folder)
                except CatchjaxError as exc:
                    out[name] = f"BROKEN: {exc}"
                else:
                    out[name] += f" (OK: {table.n_archs} architectures, {len(table.columns)} " \
                                 f"metrics)"
        else:
            out[name] = (f"missing: {info.files[0]} not in {folder} (`catchjax data get "
                         f"{name}`)")
    return out
