"""Many independent seeds of one training run as one compiled call, sharded over devices.

Training N agents (DQN seeds, meta-trained CATCH seeds, the stages of a transfer study)
is ``vmap`` over a leading seed axis. Like the trials of a sweep (:mod:`catchjax.sweeps`),
that axis is split over the local devices along a ``seeds`` mesh axis; the arguments
shared by all seeds (task arrays, reward pools) are replicated. A seed count that the
device count does not divide is padded with copies of the last seed, whose results are
dropped: seed ``i`` never mixes with another seed, so the result does not depend on how
many devices ran it.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["SeedBatch", "describe"]


def _pad(tree, pad: int):
    if pad == 0:
        return tree
    return jax.tree.map(
        lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), tree)


def describe(devices) -> str:
    """``"cpu x2"``: the device kinds and count, as sweeps report them."""
    return ", ".join(sorted({d.device_kind for d in devices})) + f" x{len(devices)}"


class SeedBatch:
    """``fn(batched, shared)`` compiled with ``batched``'s leading axis (one entry per
    seed) sharded over ``devices`` (default: all local devices) and ``shared`` replicated.

    ``SeedBatch(fn, batched, shared)(batched, shared)`` returns ``fn``'s output for the
    real seeds only; ``compile_seconds`` says what compiling took.
    """

    def __init__(self, fn, batched, shared, devices=None):
        self.devices = list(devices) if devices is not None else jax.local_devices()
        n = jax.tree.leaves(batched)[0].shape[0]
        d = len(self.devices)
        self.n, self.pad = n, (-n) % d
        if d > 1:
            mesh = Mesh(np.asarray(self.devices), ("seeds",))
            split = NamedSharding(mesh, PartitionSpec("seeds"))
            repl = NamedSharding(mesh, PartitionSpec())
            jitted = jax.jit(fn, in_shardings=(split, repl), out_shardings=split)
        else:
            jitted = jax.jit(fn)
        t0 = time.perf_counter()
        self.compiled = jitted.lower(_pad(batched, self.pad), shared).compile()
        self.compile_seconds = time.perf_counter() - t0

    def __call__(self, batched, shared):
        out = self.compiled(_pad(batched, self.pad), shared)
        if self.pad:
            out = jax.tree.map(lambda x: x[: self.n], out)
        return out
