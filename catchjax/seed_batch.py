"""Many independent seeds of one training run as one compiled call, sharded over devices.

Training N agents (DQN seeds, meta-trained CATCH seeds, the stages of a transfer study)
is ``vmap`` over a leading seed axis. Like the trials of a sweep (:mod:`catchjax.sweeps`),
that axis is split over the devices along a ``seeds`` mesh axis — the local ones, or
after :func:`catchjax.distributed.initialize` those of every process, each training the
seeds on its devices, the trained agents then gathered to every process. The arguments
shared by all seeds (task arrays, reward pools) are replicated. A seed count that the
device count does not divide is padded with copies of the last seed, whose results are
dropped: seed ``i`` never mixes with another seed.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["SeedBatch"]


def _pad(tree, pad: int):
    if pad == 0:
        return tree
    return jax.tree.map(
        lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), tree)


def _is_key(x) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


class SeedBatch:
    """``fn(batched, shared)`` compiled with ``batched``'s leading axis (one entry per
    seed) sharded over ``devices`` (default: all devices, of every process) and
    ``shared`` replicated.

    ``SeedBatch(fn, batched, shared)(batched, shared)`` returns ``fn``'s output for the
    real seeds only (on every process); ``compile_seconds`` says what compiling took.
    """

    def __init__(self, fn, batched, shared, devices=None):
        self.devices = list(devices) if devices is not None else jax.devices()
        n = jax.tree.leaves(batched)[0].shape[0]
        d = len(self.devices)
        self.n, self.pad = n, (-n) % d
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
            mesh = Mesh(np.asarray(self.devices), ("seeds",))
            self.split = NamedSharding(mesh, PartitionSpec("seeds"))
            repl = NamedSharding(mesh, PartitionSpec())
            jitted = jax.jit(fn, in_shardings=(self.split, repl), out_shardings=self.split)
        else:
            jitted = jax.jit(fn)
        t0 = time.perf_counter()
        self.compiled = jitted.lower(*self._inputs(batched, shared)).compile()
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
