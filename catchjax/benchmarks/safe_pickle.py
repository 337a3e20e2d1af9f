"""Loading official benchmark pickles without running code from them.

A pickle can name any importable callable and call it while loading, so ``pickle.load``
of a downloaded file can run arbitrary code. :class:`PlainDataUnpickler` resolves only
an allow-list of names: plain containers, NumPy arrays and scalars, and PyTorch's tensor
and storage rebuild functions, which are mapped to NumPy stand-ins (torch is never
imported). Anything else is refused with :class:`UnsafePickleError`.

Two PyTorch ``torch.save`` layouts are read:

* the zip layout (torch >= 1.6): ``<name>/data.pkl`` plus one raw file per storage
  under ``<name>/data/<key>``;
* the legacy layout: a magic number, protocol version and system info, then the
  object, then the storage keys and raw storage bytes, as consecutive pickles.

:func:`load_pandas_frame` reads a pickled pandas ``DataFrame`` (the layout pandas 0.25 to
1.x writes, ``DataFrame.to_pickle``) into plain NumPy columns: the DataFrame, its block
manager and its indexes are replaced by inert stand-ins that only keep their pickled
state, so neither pandas nor any code named in the file is run.
"""

from __future__ import annotations

import _compat_pickle
import bz2
import collections
import contextvars
import functools
import io
import os
import pickle
import zipfile

import numpy as np

from catchjax.errors import CatchjaxError

TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class UnsafePickleError(CatchjaxError):
    """The file asks to load something other than plain data."""


_TORCH_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    """Stand-in for ``torch.<X>Storage`` classes: only records the dtype."""

    def __init__(self, name):
        self.name = name
        self.dtype = _TORCH_DTYPES[name]


MAX_TENSOR_BYTES = 2**31  # 2 GiB: far above any benchmark tensor, far below a bad claim
# all tensors of one file together: a few small views of one storage can otherwise ask
# for many times the machine's memory (eight 2 GiB zero-stride views in a 690-byte file)
MAX_TOTAL_BYTES = 2**32
_loaded_bytes: contextvars.ContextVar = contextvars.ContextVar("catchjax_loaded_bytes",
                                                                default=None)


class MalformedTensorError(CatchjaxError):
    """A tensor's size, stride or offset does not fit inside its storage."""


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def check_tensor_view(n_storage: int, itemsize: int, offset, size, stride) -> tuple:
    """Validate a tensor view (offset, size, stride, in elements) against a storage of
    ``n_storage`` elements before any view is made; returns (offset, size, stride) as
    Python ints. Every element the view can reach must lie inside the storage."""
    if not (isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list))):
        raise MalformedTensorError(f"tensor size/stride must be tuples, got {size!r}, {stride!r}")
    if len(size) != len(stride) or len(size) > 32:
        raise MalformedTensorError(f"tensor size {size!r} and stride {stride!r} do not match")
    if not (_is_int(offset) and all(map(_is_int, size)) and all(map(_is_int, stride))):
        raise MalformedTensorError(
            f"tensor offset/size/stride must be integers, got {offset!r}, {size!r}, {stride!r}"
        )
    offset, size, stride = int(offset), tuple(int(x) for x in size), tuple(int(x) for x in stride)
    if offset < 0 or any(x < 0 for x in size) or any(x < 0 for x in stride):
        raise MalformedTensorError(
            f"negative tensor offset, size or stride: {offset}, {size}, {stride}"
        )
    count = 1
    for x in size:
        count *= x
    if count * itemsize > MAX_TENSOR_BYTES:
        raise MalformedTensorError(
            f"a tensor of shape {size} ({count * itemsize:,} bytes) is larger than any benchmark "
            f"holds (limit {MAX_TENSOR_BYTES:,} bytes); the file is damaged or crafted"
        )
    if count == 0:
        if offset > n_storage:
            raise MalformedTensorError(f"tensor offset {offset} is past its storage ({n_storage})")
        return offset, size, stride
    last = offset + sum((n - 1) * st for n, st in zip(size, stride))
    if last >= n_storage:
        raise MalformedTensorError(
            f"a tensor of shape {size}, stride {stride}, offset {offset} reaches element {last} "
            f"of a storage of {n_storage}; the file is damaged or crafted"
        )
    return offset, size, stride


def _count_bytes(n: int) -> None:
    """Add a tensor's bytes to what the file being read has asked for so far."""
    total = _loaded_bytes.get()
    if total is None:
        return
    total[0] += n
    if total[0] > MAX_TOTAL_BYTES:
        raise MalformedTensorError(
            f"its tensors together ask for more than {MAX_TOTAL_BYTES:,} bytes, more than "
            f"any benchmark file holds; the file is damaged or crafted"
        )


def _strided_copy(flat, offset, size, stride):
    offset, size, stride = check_tensor_view(len(flat), flat.dtype.itemsize, offset, size,
                                             stride)
    count = 1
    for x in size:
        count *= x
    _count_bytes(count * flat.dtype.itemsize)
    if len(size) == 0:
        return flat[offset].copy()
    if 0 in size:
        return np.zeros(size, flat.dtype)
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[offset:], shape=size, strides=tuple(s * itemsize for s in stride)
    )
    return np.array(view)


class _LazyTensor:
    """A legacy-layout tensor whose storage bytes are only read after the object."""

    def __init__(self, ref, offset, size, stride):
        self.ref, self.offset, self.size, self.stride = ref, offset, size, stride


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    """NumPy version of ``torch._utils._rebuild_tensor_v2``: a strided copy."""
    if isinstance(storage, _LegacyStorageRef):
        return _LazyTensor(storage, offset, size, stride)  # checked once its bytes are read
    if not isinstance(storage, np.ndarray):
        raise MalformedTensorError(f"a tensor's storage is {type(storage).__name__}, not a storage")
    return _strided_copy(storage, offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    return data


_ALLOWED = {
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "int"): int,
    ("builtins", "float"): float,
    ("builtins", "complex"): complex,
    ("builtins", "str"): str,
    ("builtins", "bytes"): bytes,
    ("builtins", "bool"): bool,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # numpy's own array and scalar rebuild helpers, wherever this numpy keeps them
    ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
    ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
    ("numpy.core.multiarray", "scalar"): np.float64(0).__reduce__()[0],
    ("numpy._core.multiarray", "scalar"): np.float64(0).__reduce__()[0],
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class PlainDataUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain data (see module docstring)."""

    def __init__(self, file, storages=None):
        super().__init__(file)
        self._storages = storages  # zip layout: key -> raw bytes

    def find_class(self, module, name):
        # Protocol <= 2 pickles written by Python 3 use Python 2 names (__builtin__.set).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module == "torch" and name in _TORCH_DTYPES:
            return _StorageType(name)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise UnsafePickleError(
            f"refused to load {module}.{name}: catchjax only loads plain data (containers, "
            f"numbers, strings, arrays) from benchmark files, never code"
        )

    def persistent_load(self, pid):
        # torch's persistent ids: ('storage', storage_type, key, location, numel)
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafePickleError(f"unsupported persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise UnsafePickleError(f"unsupported storage type {storage_type!r}")
        if self._storages is None:
            return _LegacyStorageRef(key, storage_type.dtype)
        return np.frombuffer(self._storages(key), dtype=storage_type.dtype)


class _LegacyStorageRef:
    """A storage of the legacy layout, whose bytes come after the object pickle."""

    def __init__(self, key, dtype):
        self.key, self.dtype = key, np.dtype(dtype)
        self.array = None


def _resolve(obj):
    """Replace legacy lazy tensors by arrays, through plain containers."""
    if isinstance(obj, _LazyTensor):
        if obj.ref.array is None:
            raise MalformedTensorError(f"storage {obj.ref.key!r} has no data in the file")
        return _strided_copy(obj.ref.array, obj.offset, obj.size, obj.stride)
    if isinstance(obj, dict):
        return type(obj)((k, _resolve(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v) for v in obj)
    return obj


def loads_plain(data: bytes):
    """Unpickle bytes holding plain data only."""
    return PlainDataUnpickler(io.BytesIO(data)).load()


# How loading a file can fail when it is damaged, crafted or of another format.
_READ_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
                AttributeError, zipfile.BadZipFile, OSError, RecursionError, OverflowError)


def _name_the_file(exc: Exception, path, what: str,
                   hint: str = "it may be truncated or of another format"):
    """Re-raise a loader's exception as one clear error that names the file (a missing
    file and unexpected errors as they are)."""
    if isinstance(exc, UnsafePickleError):
        raise UnsafePickleError(f"{path}: {exc}") from None
    if isinstance(exc, CatchjaxError):
        raise CatchjaxError(f"{path}: {exc}") from None
    if isinstance(exc, MemoryError):
        raise CatchjaxError(
            f"{path}: asks for more memory than this machine has while loading; the file is "
            f"damaged or crafted"
        ) from None
    if isinstance(exc, _READ_ERRORS) and not isinstance(exc, FileNotFoundError):
        raise CatchjaxError(
            f"{path}: cannot read it as {what} ({type(exc).__name__}: {str(exc)[:200]}); {hint}"
        ) from None
    raise exc


def _one_file_budget(load):
    """Count the tensor bytes of one file's load from zero (:data:`MAX_TOTAL_BYTES`)."""

    @functools.wraps(load)
    def wrapper(path):
        token = _loaded_bytes.set([0])
        try:
            return load(path)
        finally:
            _loaded_bytes.reset(token)

    return wrapper


@_one_file_budget
def load_torch_file(path) -> object:
    """Read a ``torch.save`` file (zip or legacy layout) as plain Python/NumPy data."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
                if not pkl:
                    raise CatchjaxError(f"{path}: a zip file without data.pkl is not a torch file")
                root = pkl[0][: -len("data.pkl")]

                def storage(key):
                    name = f"{root}data/{key}"
                    try:
                        info = zf.getinfo(name)
                    except KeyError:
                        raise MalformedTensorError(f"storage {key!r} is missing") from None
                    if info.file_size > MAX_TENSOR_BYTES:
                        raise MalformedTensorError(
                            f"storage {key!r} claims {info.file_size:,} bytes (limit "
                            f"{MAX_TENSOR_BYTES:,}); the file is damaged or crafted"
                        )
                    return zf.read(name)

                with zf.open(pkl[0]) as f:
                    return PlainDataUnpickler(f, storages=storage).load()
        with open(path, "rb") as f:
            return _load_legacy(f, path)
    except Exception as exc:
        _name_the_file(exc, path, "a PyTorch file")


def _load_legacy(f, path):
    magic = PlainDataUnpickler(f).load()
    if magic != TORCH_LEGACY_MAGIC:
        # Not a legacy torch file: maybe a plain pickle of the same content.
        f.seek(0)
        return PlainDataUnpickler(f).load()
    PlainDataUnpickler(f).load()  # protocol version
    PlainDataUnpickler(f).load()  # system info
    refs: list[_LegacyStorageRef] = []

    class _Collecting(PlainDataUnpickler):
        def persistent_load(self, pid):
            ref = super().persistent_load(pid)
            refs.append(ref)
            return ref

    obj = _Collecting(f).load()
    if not refs:
        return obj
    keys = PlainDataUnpickler(f).load()
    by_key = {r.key: r for r in refs}
    end = os.fstat(f.fileno()).st_size
    if not isinstance(keys, (list, tuple)):
        raise MalformedTensorError(f"storage keys must be a list, got {type(keys).__name__}")
    for key in keys:
        if str(key) not in by_key:
            raise MalformedTensorError(f"storage {key!r} is not used by any tensor")
        ref = by_key[str(key)]
        size = int.from_bytes(f.read(8), "little")
        if size * ref.dtype.itemsize > end - f.tell():
            raise MalformedTensorError(
                f"storage {key!r} claims {size:,} elements, more than the file holds; the "
                f"file is truncated, damaged or crafted"
            )
        raw = f.read(size * ref.dtype.itemsize)
        if len(raw) != size * ref.dtype.itemsize:
            raise EOFError("storage data ends early")
        ref.array = np.frombuffer(raw, dtype=ref.dtype)
    return _resolve(obj)


class _PandasStandIn:
    """An inert stand-in for a pandas class: records the state pickled for it, nothing else."""

    def __init__(self, *args):
        self.args = args

    def __setstate__(self, state):
        self.state = state


_PANDAS_CLASSES = {
    key: type(key[1], (_PandasStandIn,), {})
    for key in [("pandas.core.frame", "DataFrame"),
                ("pandas.core.internals.managers", "BlockManager"),
                ("pandas.core.indexes.base", "Index"),
                ("pandas.core.indexes.range", "RangeIndex")]
}


def _new_index(cls, fields):
    """pandas' ``_new_Index(cls, fields)``: keep the class name and the fields."""
    if not (isinstance(cls, type) and issubclass(cls, _PandasStandIn) and isinstance(fields, dict)):
        raise UnsafePickleError(f"unexpected index {cls!r} in a pandas pickle")
    return (cls.__name__, fields)


def _frombuffer(buf, dtype, shape, order):
    """numpy's ``_frombuffer`` (how newer NumPy pickles plain arrays), numbers only."""
    dtype = np.dtype(dtype)
    if dtype.hasobject or not isinstance(buf, (bytes, bytearray)):
        raise UnsafePickleError("an array pickled from a buffer must hold plain numbers")
    _count_bytes(len(buf))
    return np.frombuffer(buf, dtype).reshape(shape, order=order)


_PANDAS_ALLOWED = {
    **_PANDAS_CLASSES,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("builtins", "slice"): slice,
}


class _PandasUnpickler(PlainDataUnpickler):
    def find_class(self, module, name):
        if (module, name) in _PANDAS_ALLOWED:
            return _PANDAS_ALLOWED[(module, name)]
        return super().find_class(module, name)


def _index_values(index) -> np.ndarray:
    kind, fields = index
    if kind == "RangeIndex":
        return np.arange(fields["start"], fields["stop"], fields.get("step", 1))
    return np.asarray(fields["data"])


def _frame_columns(frame) -> dict[str, np.ndarray]:
    """A DataFrame stand-in -> {column name: 1-D array} (the 0.14.1 block-manager state)."""
    if type(frame).__name__ != "DataFrame":
        raise UnsafePickleError(f"expected a pickled DataFrame, found {type(frame).__name__}")
    manager = frame.state["_data"]
    extra = manager.state[3]["0.14.1"]
    names = [str(n) for n in _index_values(extra["axes"][0])]
    n_rows = len(_index_values(extra["axes"][1]))
    columns = {}
    for block in extra["blocks"]:
        values, locs = np.asarray(block["values"]), block["mgr_locs"]
        positions = (range(len(names))[locs] if isinstance(locs, slice)
                     else [int(i) for i in np.asarray(locs).ravel()])
        if values.ndim != 2 or values.shape != (len(positions), n_rows):
            raise ValueError(f"a block of shape {values.shape} for {len(positions)} columns "
                             f"of {n_rows} rows")
        for row, position in enumerate(positions):
            columns[names[position]] = values[row]
    if set(columns) != set(names):
        raise ValueError(f"no values for columns {sorted(set(names) - set(columns))}")
    return {name: columns[name] for name in names}


@_one_file_budget
def load_pandas_frame(path) -> dict[str, np.ndarray]:
    """Read a pickled pandas DataFrame as {column: array} without pandas or unsafe code."""
    try:
        with open(path, "rb") as f:
            return _frame_columns(_PandasUnpickler(f).load())
    except Exception as exc:
        _name_the_file(exc, path, "a pickled pandas DataFrame",
                       "it may be truncated, or written by a pandas version whose layout "
                       "catchjax does not read")


@_one_file_budget
def load_bz2_pickle(path) -> object:
    """Read a NATS-Bench ``.pickle.pbz2`` file (a bz2-compressed pickle) safely."""
    try:
        with bz2.open(path, "rb") as f:
            return PlainDataUnpickler(f).load()
    except Exception as exc:
        _name_the_file(exc, path, "a NATS-Bench .pickle.pbz2 file")
