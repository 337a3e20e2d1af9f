"""Many keyed runs of one pure function as one compiled call, over devices and processes.

The one module that owns a leading axis of independent runs: the trials of a sweep
(:mod:`catchjax.runs.sweeps`), the seeds of ``train_many`` (:mod:`catchjax.runs.agent`) and the
stages of a transfer study (:mod:`catchjax.studies.transfer`). ``fn(batched, shared)`` is
compiled with ``batched``'s leading axis split over the devices along one ``runs`` mesh
axis — the local ones, or after :func:`catchjax.runs.distributed.initialize` those of every
process, each computing the runs on its devices, the outputs then gathered to every
process — and ``shared`` (task arrays, reward pools, an agent) replicated. One padding
rule: a run count the device count does not divide (or that leaves a device fewer than
``min_per_device`` runs) is padded with copies of the last run, whose outputs are
dropped, so run ``i`` never mixes with another. Compiled with :mod:`catchjax.runs.numerics`'
options, so that on one CPU device a run's floating point does not depend on how many
runs share the call, nor on the device count (docs/usage.md); sweeps ask for at least
two runs per device, because XLA simplifies a batch
axis of size one away and then rewrites some arithmetic differently. Typed PRNG keys
travel between processes as their raw bits and are wrapped again inside. One compile
cache (:func:`compiled`), keyed by what the caller says the function is plus the
arguments' shapes and the devices. :func:`broadcast` and :func:`allgather` move host
values between processes.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from catchjax.runs import compile_cache, numerics

__all__ = ["Batched", "allgather", "barrier", "broadcast", "compile_source", "compiled"]

AXIS = "runs"


def _pad(tree, pad: int):
    if pad == 0:
        return tree
    return jax.tree.map(
        lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), tree)


def _is_key(x) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


class Batched:
    """``fn(batched, shared)`` compiled with ``batched``'s leading axis (one entry per
    run) sharded over ``devices`` (default: all devices, of every process) and ``shared``
    replicated.

    ``Batched(fn, batched, shared)(batched, shared)`` returns ``fn``'s output for the
    real runs only (on every process); ``compile_seconds`` says what compiling took,
    ``loaded`` whether JAX's persistent compilation cache gave the executable instead
    (then the seconds are a load), and ``compiled`` is XLA's executable (its cost and
    memory analyses).
    """

    def __init__(self, fn, batched, shared, devices=None, min_per_device: int = 1):
        self.devices = list(devices) if devices is not None else jax.devices()
        n = jax.tree.leaves(batched)[0].shape[0]
        d = len(self.devices)
        per_device = max(-(-n // d), min_per_device)
        self.n, self.pad = n, per_device * d - n
        me = jax.process_index()
        self.multi = any(dev.process_index != me for dev in self.devices)
        self.keys = [_is_key(x) for x in jax.tree.leaves(batched)]
        if self.multi:
            # global arrays are assembled from host data, which typed PRNG keys have not:
            # they travel as their raw bits and are wrapped again inside
            inner, flags = fn, self.keys

            def fn(b, sh):
                leaves, tree = jax.tree.flatten(b)
                leaves = [jax.random.wrap_key_data(x) if k else x
                          for x, k in zip(leaves, flags)]
                return inner(jax.tree.unflatten(tree, leaves), sh)
        if d > 1:
            mesh = Mesh(np.asarray(self.devices), (AXIS,))
            self.split = NamedSharding(mesh, PartitionSpec(AXIS))
            repl = NamedSharding(mesh, PartitionSpec())
            jitted = numerics.jit(fn, self.devices[0].platform, in_shardings=(self.split, repl),
                                  out_shardings=self.split)
        else:
            jitted = numerics.jit(fn, self.devices[0].platform)
        t0 = time.perf_counter()
        self.compiled, self.loaded = compile_lowered(jitted.lower(*self._inputs(batched, shared)))
        self.compile_seconds = time.perf_counter() - t0

    def _inputs(self, batched, shared):
        batched = _pad(batched, self.pad)
        if not self.multi:
            return batched, shared
        leaves, tree = jax.tree.flatten(batched)
        host = [np.asarray(jax.random.key_data(x) if k else x)
                for x, k in zip(leaves, self.keys)]
        glob = [jax.make_array_from_callback(x.shape, self.split, lambda i, x=x: x[i])
                for x in host]
        return jax.tree.unflatten(tree, glob), jax.tree.map(np.asarray, shared)

    def __call__(self, batched, shared):
        out = self.compiled(*self._inputs(batched, shared))
        if self.multi:
            out = multihost_utils.process_allgather(out, tiled=True)
        if self.pad:
            out = jax.tree.map(lambda x: x[: self.n], out)
        return out


def compile_lowered(lowered):
    """``lowered.compile()`` and whether JAX loaded it from its persistent compilation
    cache (the hit event JAX records for each executable it reads from the folder)."""
    hits = []

    def listen(event, **_):
        if event == CACHE_HIT:
            hits.append(event)

    jax.monitoring.register_event_listener(listen)
    try:
        return lowered.compile(), bool(hits)
    finally:
        jax.monitoring.unregister_event_listener(listen)


CACHE_HIT = "/jax/compilation_cache/cache_hits"
_CACHE: dict = {}


def compiled(key, make_fn, batched, shared, devices=None,
             min_per_device: int = 1) -> tuple[Batched, float]:
    """The :class:`Batched` of ``make_fn()`` for ``key`` (what the function is: a method's
    config, a study's run, ...), compiled once per process for the shapes and structure
    of ``batched`` and ``shared`` and the ``devices``; returns it and the seconds this
    call spent compiling (0 when it was cached; see :func:`compile_source`)."""
    devices = list(devices) if devices is not None else jax.devices()
    leaves = jax.tree.leaves((batched, shared))
    options = numerics.compiler_options(devices[0].platform) or {}
    full = (key, tuple((np.shape(x), getattr(x, "dtype", type(x))) for x in leaves),
            jax.tree.structure((batched, shared)), tuple(devices), min_per_device,
            tuple(sorted(options.items())))  # another compiler is another program
    if full in _CACHE:
        return _CACHE[full], 0.0
    compile_cache.use_default()
    batch = Batched(make_fn(), batched, shared, devices, min_per_device)
    _CACHE[full] = batch
    return batch, batch.compile_seconds


def compile_source(batch: Batched, seconds: float) -> str:
    """What :func:`compiled`'s seconds were: ``"compiled"`` (XLA compiled the program),
    ``"loaded"`` (from the persistent compilation cache) or ``"reused"`` (compiled
    earlier in this process, 0 s)."""
    if seconds == 0:
        return "reused"
    return "loaded" if batch.loaded else "compiled"


def compile_note(batch: Batched, seconds: float) -> str | None:
    """The end of a "compiling ..." status line when nothing was compiled."""
    return {"reused": "already compiled in this process",
            "loaded": f"loaded from the compilation cache in {seconds:.1f} s"}.get(
        compile_source(batch, seconds))


def broadcast(tree):
    """Process 0's value of ``tree`` (host arrays or numbers), on every process."""
    return multihost_utils.broadcast_one_to_all(tree)


def allgather(tree):
    """Every process's value of ``tree``, stacked along a new leading axis."""
    return multihost_utils.process_allgather(tree)


def barrier(name: str) -> None:
    """Wait until every process has reached the barrier ``name``."""
    multihost_utils.sync_global_devices(name)
