"""Import benchmark files into catchjax's compact table format (see :mod:`tables`).

Accepted inputs (``kind`` in parentheses; ``auto`` tells them apart):

* a compact ``.npz`` table such as those in ``shared/data`` (``npz``): checked, then copied;
* the official NAS-Bench-201 ``.pth`` (``nb201-pth``), e.g. ``NAS-Bench-201-v1_1-096897.pth``;
* NATS-Bench topology files (``nats-topology``): one ``.pickle.pbz2`` holding every
  architecture, or a folder of per-architecture ``NNNNNN.pickle.pbz2`` files with an
  optional ``meta.pickle.pbz2``;
* the official TransNAS-Bench-101 ``.pth`` (``transnas-pth``): writes the micro and the
  macro table.

Official files are read with :mod:`safe_pickle`, which never runs code from them. Values
follow ``shared/data/README.md``: NB201 metrics are the final-epoch value averaged over
seeds; TransNAS metrics are the best over epochs (the API's ``mode='best'``), with plain
losses dropped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from catchjax import safe_io
from catchjax.benchmarks import safe_pickle, spaces, tables
from catchjax.errors import CatchjaxError

# (column, hp, NB201 dataset name, evaluation set); see NB201's `get_more_info`.
NB201_COLUMNS = [
    ("cifar10_valid_train_acc_200", "200", "cifar10-valid", "train"),
    ("cifar10_valid_valid_acc_200", "200", "cifar10-valid", "x-valid"),
    ("cifar10_valid_test_acc_200", "200", "cifar10-valid", "ori-test"),
    ("cifar10_test_acc_200", "200", "cifar10", "ori-test"),
    ("cifar100_train_acc_200", "200", "cifar100", "train"),
    ("cifar100_valid_acc_200", "200", "cifar100", "x-valid"),
    ("cifar100_test_acc_200", "200", "cifar100", "x-test"),
    ("imagenet16_train_acc_200", "200", "ImageNet16-120", "train"),
    ("imagenet16_valid_acc_200", "200", "ImageNet16-120", "x-valid"),
    ("imagenet16_test_acc_200", "200", "ImageNet16-120", "x-test"),
    ("cifar10_valid_valid_acc_12", "12", "cifar10-valid", "x-valid"),
    ("cifar10_test_acc_12", "12", "cifar10", "ori-test"),
    ("cifar100_valid_acc_12", "12", "cifar100", "x-valid"),
    ("cifar100_test_acc_12", "12", "cifar100", "x-test"),
    ("imagenet16_valid_acc_12", "12", "ImageNet16-120", "x-valid"),
    ("imagenet16_test_acc_12", "12", "ImageNet16-120", "x-test"),
]
# Cost info stored with each 200-epoch trial: (column prefix, field, scale).
NB201_COSTS = [("params", "params", 1.0), ("flops", "flop", 1.0), ("latency", "latency", 1000.0)]
NB201_COST_UNITS = {"params": "M", "flops": "M", "latency": "ms"}
NB201_COST_DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "ImageNet16-120"}
COMPACT_FILES = {
    "nb201.npz": "nb201",
    "nb201_hw.npz": "nb201",
    "transnas101_micro.npz": "transnas-micro",
    "transnas101_macro.npz": "transnas-macro",
}


def _final_metric(arch_res: dict, dataset: str, setname: str) -> float:
    """Final-epoch accuracy of one ArchResults state dict, averaged over its seeds."""
    seeds = arch_res.get("dataset_seed", {}).get(dataset)
    if not seeds:
        return np.nan
    values = []
    for seed in seeds:
        rc = arch_res["all_results"][(dataset, seed)]
        last = int(rc["epochs"]) - 1
        if setname == "train":
            v = rc["train_acc1es"].get(last) if rc.get("train_acc1es") else None
        else:
            v = (rc.get("eval_acc1es") or {}).get(f"{setname}@{last}")
        if v is None:
            return np.nan
        values.append(float(v))
    return float(np.mean(values))


def _cost(arch_res: dict, dataset: str, field: str) -> float:
    seeds = (arch_res.get("dataset_seed") or {}).get(dataset)
    if not seeds:
        return np.nan
    values = []
    for seed in seeds:
        v = arch_res["all_results"][(dataset, seed)].get(field)
        if isinstance(v, (list, tuple)):
            v = float(np.mean(v)) if len(v) else None
        if v is None or (isinstance(v, (int, float)) and v < 0):
            return np.nan
        values.append(float(v))
    return float(np.mean(values))


def nb201_columns(meta_archs: list, infos: dict) -> tuple[np.ndarray, dict]:
    """``infos[index] = {'12': ArchResults-state, '200': ...}`` -> (ops, columns)."""
    if not isinstance(meta_archs, (list, tuple)) or not meta_archs:
        raise CatchjaxError("the file has no list of architectures ('meta_archs')")
    ops = np.stack([spaces.NB201.from_str(a) for a in meta_archs])
    n = len(meta_archs)
    cols = {name: np.full(n, np.nan) for name, *_ in NB201_COLUMNS}
    for prefix, _, _ in NB201_COSTS:
        for d in NB201_COST_DATASETS:
            cols[f"{prefix}_{d}_{NB201_COST_UNITS[prefix]}"] = np.full(n, np.nan)
    for index, hp2res in infos.items():
        i = int(index)
        if not 0 <= i < n:
            raise CatchjaxError(f"architecture index {i} is outside 0..{n - 1}")
        for name, hp, dataset, setname in NB201_COLUMNS:
            if hp in hp2res:
                cols[name][i] = _final_metric(hp2res[hp], dataset, setname)
        if "200" in hp2res:
            for prefix, field, scale in NB201_COSTS:
                for d, dataset in NB201_COST_DATASETS.items():
                    value = _cost(hp2res["200"], dataset, field)
                    cols[f"{prefix}_{d}_{NB201_COST_UNITS[prefix]}"][i] = value * scale
    cols = {k: v for k, v in cols.items() if not np.isnan(v).all()}
    return ops, cols


def read_nb201_pth(path) -> tuple[np.ndarray, dict]:
    data = safe_pickle.load_torch_file(path)
    if not isinstance(data, dict) or "meta_archs" not in data or "arch2infos" not in data:
        raise CatchjaxError(f"{path}: not a NAS-Bench-201 file (no 'meta_archs'/'arch2infos')")
    infos = {}
    for index, both in data["arch2infos"].items():
        infos[index] = {"12": both["less"], "200": both["full"]} if "full" in both else both
    return nb201_columns(data["meta_archs"], infos)


def read_nats_topology(path) -> tuple[np.ndarray, dict]:
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.pickle.pbz2") if p.name.split(".")[0].isdigit())
        if not files:
            raise CatchjaxError(f"{path}: no NNNNNN.pickle.pbz2 files in this folder")
        infos = {int(p.name.split(".")[0]): safe_pickle.load_bz2_pickle(p) for p in files}
        meta_path = path / "meta.pickle.pbz2"
        if meta_path.exists():
            meta_archs = safe_pickle.load_bz2_pickle(meta_path)["meta_archs"]
        else:
            n = max(infos) + 1
            if set(infos) != set(range(n)):
                raise CatchjaxError(
                    f"{path}: without meta.pickle.pbz2 every index 0..{n - 1} must have a file"
                )
            meta_archs = [next(iter(infos[i].values()))["arch_str"] for i in range(n)]
        return nb201_columns(meta_archs, infos)
    data = safe_pickle.load_bz2_pickle(path)
    if not isinstance(data, dict) or "meta_archs" not in data or "arch2infos" not in data:
        raise CatchjaxError(f"{path}: not a NATS-Bench topology file (no 'meta_archs')")
    return nb201_columns(data["meta_archs"], data["arch2infos"])


def read_transnas_pth(path) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    """-> {'transnas-micro': (ops, arch_str, columns), 'transnas-macro': ...}."""
    db = safe_pickle.load_torch_file(path)
    if not isinstance(db, dict) or "data" not in db or "metrics_dict" not in db:
        raise CatchjaxError(f"{path}: not a TransNAS-Bench-101 file (no 'data'/'metrics_dict')")
    out = {}
    for ss, space in (("micro", spaces.TRANSNAS_MICRO), ("macro", spaces.TRANSNAS_MACRO)):
        archs = db["data"].get(ss)
        if not archs:
            continue
        ops = space.enumerate()
        row = {int(c): i for i, c in enumerate(space.encode(ops))}
        cols: dict[str, np.ndarray] = {}
        for arch, per_task in archs.items():
            i = row.get(int(space.encode(space.from_str(arch))))
            if i is None:
                raise CatchjaxError(f"{path}: {arch!r} is not in the {ss} space")
            for task, result in per_task.items():
                for metric, values in (result.get("metrics") or {}).items():
                    if metric.endswith("loss") and not metric.endswith("neg_loss"):
                        continue  # 'best' = max of a loss is its worst value
                    name = f"{task}__{metric}"
                    col = cols.setdefault(name, np.full(len(ops), np.nan))
                    col[i] = float(np.max(np.asarray(values, dtype=np.float64)))
                for info, value in (result.get("model_info") or {}).items():
                    if isinstance(value, (int, float)):
                        col = cols.setdefault(f"{task}__{info}", np.full(len(ops), np.nan))
                        col[i] = float(value)
        if not cols:
            raise CatchjaxError(f"no metric values for the {ss} architectures")
        present = ~np.all([np.isnan(c) for c in cols.values()], axis=0)
        out[f"transnas-{ss}"] = (ops[present], {k: v[present] for k, v in cols.items()})
    if not out:
        raise CatchjaxError(f"{path}: holds neither 'micro' nor 'macro' architectures")
    return out


def companions_agree(benchmark: str, filename: str, ops: np.ndarray, dest: Path) -> None:
    """A table whose benchmark has several files must list the rows of the others, in order."""
    for other in tables.BENCHMARKS[benchmark].files:
        path = dest / other
        if other == filename or not path.exists():
            continue
        try:
            with np.load(path, allow_pickle=False) as data:
                their = np.asarray(data["ops"])
        except Exception:  # an unreadable companion: `data list` reports it; do not block
            continue
        if their.shape != ops.shape or not np.array_equal(their, ops):
            raise CatchjaxError(
                f"{filename} would not match {path}: its {len(ops)} architectures are not the "
                f"{len(their)} of that file in the same order, so {benchmark} could not be "
                f"loaded. Import the matching file, or replace both"
            )


def _build_table(benchmark: str, filename: str, ops, columns, source: Path):
    """The validated table to write, or an error naming the file it came from."""
    space = tables.BENCHMARKS[benchmark].space
    if not columns:
        raise CatchjaxError(f"{source}: no metric values found for {filename}; nothing to import")
    try:
        return tables.make_table(benchmark, space, ops, columns, source=filename)
    except CatchjaxError as exc:
        raise CatchjaxError(f"{source}: {exc}") from None


def _write_table(table, filename: str, dest: Path) -> Path:
    return write_npz({"ops": table.actions.astype(np.int8), "arch_str": table.arch_str,
                      **{k: v.astype(np.float32) for k, v in table.columns.items()}},
                     dest, filename)


def write_npz(arrays: dict, dest: Path, filename: str) -> Path:
    """Write a compact table into ``dest`` through a temporary file and a rename (a crash
    never leaves half a table), with the user's usual permissions (not mkstemp's 0600)."""
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.chmod(tmp, 0o666 & ~safe_io.current_umask())
        os.replace(tmp, dest / filename)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest / filename


def write_sources(dest: Path, filename: str, built_by: str, sources: list[dict]) -> Path:
    """``<table>.sources.json`` beside a table: what it was built from. Written with every
    table catchjax writes, so a replaced table never keeps another's record."""
    import json

    path = dest / f"{filename}.sources.json"
    record = {"table": filename, "built_by": built_by, "sources": sources}
    safe_io.atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
    return path


def _describe(path: Path) -> dict:
    """An imported file (its SHA-256) or folder (its file count), for the record."""
    path = path.absolute()
    if path.is_dir():
        return {"path": str(path), "files": sum(1 for p in path.iterdir() if p.is_file())}
    return {"path": str(path), "sha256": safe_io.sha256_file(path),
            "size": path.stat().st_size}


def _check_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise CatchjaxError(
            f"{path} already exists; pass --overwrite (overwrite=True) to replace that table"
        )


# What each kind of official file must hold, for errors about files laid out otherwise.
EXPECTED_LAYOUT = {
    "nb201-pth": "a dict with 'meta_archs' (a list of arch strings) and 'arch2infos' (index "
                 "-> {'less': ArchResults dict, 'full': ArchResults dict})",
    "nats-topology": "a dict with 'meta_archs' and 'arch2infos' (index -> {'12': ..., "
                     "'200': ...} ArchResults dicts), or a folder of NNNNNN.pickle.pbz2 files",
    "transnas-pth": "a dict with 'data' ({'micro'|'macro': {arch string: {task: {'metrics': "
                    "{name: list of values}}}}}) and 'metrics_dict'",
}


def detect_kind(path: Path) -> str:
    if path.is_dir():
        return "nats-topology"
    name = path.name
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".pbz2"):
        return "nats-topology"
    if name.endswith(".pth"):
        return "nb201-pth" if "transnas" not in name.lower() else "transnas-pth"
    raise CatchjaxError(
        f"{path}: cannot tell its format from the name; pass --kind (kind=), one of "
        f"npz, nb201-pth, nats-topology, transnas-pth"
    )


def import_benchmark(path, kind: str = "auto", dest=None, name: str | None = None,
                     overwrite: bool = False) -> list[Path]:
    """Import ``path`` into ``dest`` (default: the data folder). Returns the files written.

    An existing table of the same name is replaced only with ``overwrite``; what is
    imported is validated first (rows, finite metrics, rows in the order of its companion
    tables), and an official file laid out otherwise gets an error naming the layout
    expected.
    """
    path = Path(path)
    if not path.exists():
        raise CatchjaxError(f"{path}: no such file or folder")
    dest = Path(dest) if dest is not None else tables.data_dir()
    if dest.exists() and not dest.is_dir():
        raise CatchjaxError(f"--to {dest} is a file; name the folder the table goes into "
                            f"(it is made when missing)")
    kind = detect_kind(path) if kind == "auto" else kind
    if kind == "npz":
        filename = name or path.name
        if filename not in COMPACT_FILES:
            raise CatchjaxError(
                f"{path}: a compact table must be named one of {', '.join(COMPACT_FILES)} "
                f"(pass --as NAME, name= in Python, to say which it is)"
            )
        benchmark = COMPACT_FILES[filename]
        table = tables.read_npz(path, benchmark, tables.BENCHMARKS[benchmark].space)  # validates
        if path.resolve() == (dest / filename).resolve():
            return [dest / filename]
        _check_target(dest / filename, overwrite)
        companions_agree(benchmark, filename, table.actions, dest)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / (filename + ".tmp"))
        os.replace(dest / (filename + ".tmp"), dest / filename)
        write_sources(dest, filename, "catchjax data import", [_describe(path)])
        return [dest / filename]
    readers = {"nb201-pth": read_nb201_pth, "nats-topology": read_nats_topology,
               "transnas-pth": read_transnas_pth}
    if kind not in readers:
        raise CatchjaxError(
            f"unknown import kind {kind!r} (--kind); kinds: auto, npz, nb201-pth, "
            f"nats-topology, transnas-pth"
        )
    try:
        read = readers[kind](path)
    except CatchjaxError as exc:
        if str(path) in str(exc):
            raise
        raise CatchjaxError(f"{path}: {exc}") from None
    except (KeyError, TypeError, AttributeError, StopIteration, IndexError, ValueError) as exc:
        raise CatchjaxError(
            f"{path}: not laid out like a {kind} file ({type(exc).__name__}: "
            f"{str(exc)[:120]}); expected {EXPECTED_LAYOUT[kind]}"
        ) from None
    if kind == "transnas-pth":
        outputs = [(b, tables.BENCHMARKS[b].files[0], ops, cols)
                   for b, (ops, cols) in read.items()]
    else:
        ops, cols = read
        outputs = [("nb201", "nb201.npz", ops, cols)]
    built = [(_build_table(b, f, ops, cols, path), f) for b, f, ops, cols in outputs]
    for table, filename in built:  # refuse before writing any of them
        _check_target(dest / filename, overwrite)
        companions_agree(table.benchmark, filename, table.actions, dest)
    written = [_write_table(table, filename, dest) for table, filename in built]
    record = [_describe(path)]
    for filename in (f for _, f in built):
        write_sources(dest, filename, f"catchjax data import --kind {kind}", record)
    return written
