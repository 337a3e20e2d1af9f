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
"""

from __future__ import annotations

import _compat_pickle
import bz2
import collections
import io
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


def _strided_copy(flat, offset, size, stride):
    if len(size) == 0:
        return flat[offset].copy()
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    )
    return np.array(view)


class _LazyTensor:
    """A legacy-layout tensor whose storage bytes are only read after the object."""

    def __init__(self, ref, offset, size, stride):
        self.ref, self.offset, self.size, self.stride = ref, offset, size, stride


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    """NumPy version of ``torch._utils._rebuild_tensor_v2``: a strided copy."""
    if isinstance(storage, _LegacyStorageRef):
        return _LazyTensor(storage, offset, tuple(size), tuple(stride))
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
        return _strided_copy(obj.ref.array, obj.offset, obj.size, obj.stride)
    if isinstance(obj, dict):
        return type(obj)((k, _resolve(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v) for v in obj)
    return obj


def loads_plain(data: bytes):
    """Unpickle bytes holding plain data only."""
    return PlainDataUnpickler(io.BytesIO(data)).load()


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
                    return zf.read(f"{root}data/{key}")

                with zf.open(pkl[0]) as f:
                    return PlainDataUnpickler(f, storages=storage).load()
        with open(path, "rb") as f:
            return _load_legacy(f, path)
    except (CatchjaxError, FileNotFoundError):
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, zipfile.BadZipFile, OSError) as exc:
        raise CatchjaxError(
            f"{path}: cannot read it as a PyTorch file ({type(exc).__name__}: {exc}); it may "
            f"be truncated or of another format"
        ) from None


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
    for key in keys:
        ref = by_key[str(key)]
        size = int.from_bytes(f.read(8), "little")
        raw = f.read(size * ref.dtype.itemsize)
        if len(raw) != size * ref.dtype.itemsize:
            raise EOFError("storage data ends early")
        ref.array = np.frombuffer(raw, dtype=ref.dtype)
    return _resolve(obj)


def load_bz2_pickle(path) -> object:
    """Read a NATS-Bench ``.pickle.pbz2`` file (a bz2-compressed pickle) safely."""
    try:
        with bz2.open(path, "rb") as f:
            return PlainDataUnpickler(f).load()
    except (CatchjaxError, FileNotFoundError):
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, OSError, KeyError,
            AttributeError, IndexError) as exc:
        raise CatchjaxError(
            f"{path}: cannot read it as a NATS-Bench .pickle.pbz2 file "
            f"({type(exc).__name__}: {exc}); it may be truncated or of another format"
        ) from None
