"""A managed folder: what catchjax keeps on disk, written and checked in one place.

Agent checkpoints, ask/tell searches and meta-trainings through ask/tell are all folders
of the same shape: one or more Orbax PyTree states and a JSON **manifest** that names
them, with a SHA-256 of every state file (``state_sha256``) and one of the manifest
itself (``manifest_sha256``). The manifest is written last and atomically, so a folder
whose manifest is missing or does not match is one whose writing did not finish, or one
changed afterwards; loading says which, and how to fix it.

This module alone

* computes and checks the two checksums (:func:`seal`, :func:`is_sealed`,
  :func:`state_digest`);
* saves and restores states with Orbax (:func:`save_state`, :func:`restore_state`), leaf
  by leaf or packed one array per dtype (:func:`pack`, :func:`unpack`);
* writes manifests (:func:`write_manifest`);
* holds a folder's lock for many workers (:func:`hold`, :mod:`catchjax.store.locking`);
* writes **generations** — ``state-NNNNNN/`` beside the manifest that names the current
  one — and removes older generations and a crashed write's leftovers only after the new
  manifest is in place (:func:`write_generation`, :func:`remove_stale`), and creates a
  new folder whole, never replacing one another worker created meanwhile
  (:func:`create_whole`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from catchjax import safe_io
from catchjax.errors import CatchjaxError
from catchjax.store import locking

DIGEST = "manifest_sha256"
STATE_DIGEST = "state_sha256"
DEFAULT_TIMEOUT = locking.DEFAULT_TIMEOUT


# -- checksums ---------------------------------------------------------------------------


def manifest_digest(meta: dict, field: str = DIGEST) -> str:
    """SHA-256 of the manifest's content (keys sorted), without its own digest ``field``
    (a run's summary.json keeps its own under another name)."""
    body = {k: v for k, v in meta.items() if k != field}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def seal(meta: dict) -> dict:
    """``meta`` with its own checksum (the field :data:`DIGEST`), in place."""
    meta[DIGEST] = manifest_digest(meta)
    return meta


def is_sealed(meta: dict) -> bool:
    """Whether ``meta`` carries its checksum and still matches it."""
    return meta.get(DIGEST) == manifest_digest(meta)


def state_digest(state_dir: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file under ``state_dir``."""
    digest = hashlib.sha256()
    for f in sorted(p for p in Path(state_dir).rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(state_dir)).encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()


# -- manifests ---------------------------------------------------------------------------


def read_json_object(meta_file: Path) -> dict:
    """A manifest file's JSON object, or a clear error naming the file."""
    try:
        meta = json.loads(Path(meta_file).read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatchjaxError(f"{meta_file} is damaged or from another version: {exc}") from None
    return meta


def write_manifest(meta_file: Path, meta: dict, *, indent: int = 1, atomic: bool = True,
                   durable: bool = True, allow_nan: bool = True) -> dict:
    """Seal ``meta`` and write it to ``meta_file``: atomically (the old manifest or the
    new one, never half of one), or plainly into a folder that is not in place yet."""
    seal(meta)
    text = json.dumps(meta, indent=indent, allow_nan=allow_nan)
    if atomic:
        safe_io.atomic_write_bytes(Path(meta_file), text.encode(), durable=durable)
    else:
        Path(meta_file).write_text(text)
    return meta


# -- states (Orbax) ----------------------------------------------------------------------


def checkpointer():
    """An Orbax checkpointer that reads and writes from this process alone. States are
    small host pytrees that one process saves (process 0 of a multi-process run, see
    :mod:`catchjax.runs.distributed`); Orbax's default would wait for every process."""
    import jax  # not at the top: argument checks that read manifests run before JAX loads
    import orbax.checkpoint as ocp

    me = jax.process_index()
    return ocp.StandardCheckpointer(multiprocessing_options=ocp.options.MultiprocessingOptions(
        primary_host=me, active_processes={me}))


def save_state(target: Path, state, *, packed: bool = False) -> str:
    """Write the pytree ``state`` to the new folder ``target``; its :func:`state_digest`.
    ``packed``: as one array per dtype (:func:`pack`), which a restore must be told."""
    writer = checkpointer()
    writer.save(target, pack(state) if packed else state)
    writer.wait_until_finished()
    return state_digest(target)


def abstract_of(tree):
    """The shapes and dtypes of ``tree`` (a pytree or its ``jax.eval_shape``), as a restore
    needs them."""
    import jax
    import orbax.checkpoint as ocp

    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def restore_state(state_path: Path, abstract, damaged: str, *, packed: bool = False):
    """The pytree saved in ``state_path`` with the shapes of ``abstract``; a clear error
    ending in ``damaged`` (what to say of the folder) when it cannot be read. ``packed``:
    it was saved packed (:func:`pack`)."""
    try:
        if not packed:
            return checkpointer().restore(state_path, abstract)
        import jax

        sizes = _packed_sizes(abstract)
        flat = checkpointer().restore(
            state_path, {name: jax.ShapeDtypeStruct((n,), name) for name, n in sizes.items()})
        return unpack(flat, abstract, sizes=sizes)
    except Exception as exc:  # orbax raises many types for damaged files
        raise CatchjaxError(f"cannot restore {state_path} ({type(exc).__name__}: "
                            f"{str(exc)[:200]}); {damaged}") from None


# A search state has dozens of small leaves (CATCH's: 70), and Orbax writes and reads each
# leaf as an array of its own: about 1.4 ms a leaf each way plus ~40 ms a save on a 2-core
# CPU, most of a CATCH ask/tell step. Ask/tell folders therefore keep their state packed:
# one flat array per dtype holding the leaves in the tree's order (a PRNG key array as its
# uint32 key data). A restore splits them again by the shapes of the state it restores
# into, which the folder's method, config and space fix.


def _stored(leaf):
    """``(dtype name, shape)`` of a leaf (an array or a ShapeDtypeStruct) as stored: a
    PRNG key array as its key data."""
    import jax
    import numpy as np

    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.eval_shape(jax.random.key_data, jax.ShapeDtypeStruct(leaf.shape, leaf.dtype))
    return np.dtype(leaf.dtype).name, tuple(leaf.shape)


def _packed_sizes(abstract) -> dict:
    """How many elements of each dtype :func:`pack` stores for a tree shaped as
    ``abstract``; a dtype with none is not stored."""
    import math

    import jax

    sizes: dict = {}
    for leaf in jax.tree.leaves(abstract):
        name, shape = _stored(leaf)
        sizes[name] = sizes.get(name, 0) + math.prod(shape)
    return {name: n for name, n in sizes.items() if n}


def pack(tree) -> dict:
    """The leaves of ``tree`` as one flat NumPy array per dtype name, in leaf order (a PRNG
    key array as its uint32 key data): what an ask/tell folder saves with Orbax."""
    import jax
    import numpy as np

    parts: dict = {}
    for leaf in jax.tree.leaves(tree):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        value = np.asarray(leaf)
        parts.setdefault(value.dtype.name, []).append(value.reshape(-1))
    return {name: np.concatenate(p) for name, p in parts.items() if sum(a.size for a in p)}


def unpack(flat: dict, abstract, *, sizes: dict | None = None):
    """The tree shaped as ``abstract`` whose leaves :func:`pack` stored in ``flat``; a
    ValueError when the sizes do not add up (a state of another shape). ``sizes``:
    :func:`_packed_sizes` of ``abstract``, where the caller has it already."""
    import math

    import jax
    import jax.numpy as jnp
    import numpy as np

    flat = {name: np.asarray(a) for name, a in flat.items()}  # to the host once, not per leaf
    sizes = _packed_sizes(abstract) if sizes is None else sizes
    got = {name: a.size for name, a in flat.items()}
    if got != sizes:
        raise ValueError(f"the packed state holds {got} elements per dtype, the state it is "
                         f"restored into {sizes}")
    leaves, treedef = jax.tree.flatten(abstract)
    at = dict.fromkeys(sizes, 0)
    out = []
    for leaf in leaves:
        name, shape = _stored(leaf)
        n = math.prod(shape)
        if n:
            value = flat[name][at[name]:at[name] + n].reshape(shape)
            at[name] += n
        else:
            value = np.zeros(shape, name)
        value = jnp.asarray(value)
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            value = jax.random.wrap_key_data(value, dtype=leaf.dtype)
        out.append(value)
    return jax.tree.unflatten(treedef, out)


# -- many workers ------------------------------------------------------------------------


def hold(lock_file: Path, *, timeout=DEFAULT_TIMEOUT, what: str = "folder",
         read_only_ok: bool = False):
    """The folder's exclusive lock for a whole read-change-write
    (:func:`catchjax.store.locking.hold`)."""
    return locking.hold(lock_file, timeout=timeout, what=what, read_only_ok=read_only_ok)


def timeout_value(timeout) -> float:
    """A lock timeout in seconds, or a clear error."""
    return locking.timeout_value(timeout)


# -- generations -------------------------------------------------------------------------


def generation_name(generation: int) -> str:
    return f"state-{generation:06d}"


def write_generation(folder: Path, meta_file: str, state, meta: dict, generation: int,
                     *, packed: bool = False, **manifest_options) -> dict:
    """Write ``state`` as generation ``generation`` into ``folder`` (``packed``: as
    :func:`pack`), then (atomically) the manifest ``meta`` naming it; the caller holds the
    lock or owns the folder."""
    name = generation_name(generation)
    target = folder / name
    if target.exists():  # a crashed write of this generation; the manifest never named it
        shutil.rmtree(target)
    digest = save_state(target, state, packed=packed)
    meta["state_dir"], meta["generation"] = name, generation
    meta[STATE_DIGEST] = digest
    return write_manifest(folder / meta_file, meta, **manifest_options)


def remove_stale(folder: Path, keep: str, stale: re.Pattern) -> None:
    """Delete what ``stale`` matches in ``folder`` except ``keep`` (older generations, a
    crashed write's leftovers); only after the manifest naming ``keep`` is in place."""
    for entry in folder.iterdir():
        if entry.name != keep and stale.match(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


class ExistsAlready(CatchjaxError):
    """A folder being created whole appeared meanwhile (another worker created it)."""


def create_whole(path: Path, fill: Callable[[Path], dict], exists_message: str) -> dict:
    """Write a new folder whole in a temporary folder beside ``path`` (``fill(tmp)``
    returns its manifest), then move it in. A folder another worker created meanwhile is
    never replaced: :class:`ExistsAlready` with ``exists_message``."""
    tmp = safe_io.make_temp_dir(path)
    try:
        meta = fill(tmp)
        os.chmod(tmp, 0o777 & ~safe_io.current_umask())
        try:
            os.rename(tmp, path)  # fails on a non-empty folder: never replaces one
        except OSError:
            if path.exists():
                raise ExistsAlready(exists_message) from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta
