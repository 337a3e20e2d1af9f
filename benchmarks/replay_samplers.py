"""PER sampling: cumulative sum + searchsorted against a sum-tree descent, in JAX.

One "step" = sample a batch with P(i) ~ p_i^alpha and its importance weights from dense
priorities, then write new priorities for it, as in a learner update. Both variants do
the same work except how indices are found from the uniforms. Sizes: CATCH's evaluator
memory (capacity 50, batch 40 = 80%, 500 buffers vmapped as in a sweep) and the DQN
agent's (capacity 25,000, batch 256; one buffer and 32 vmapped). Prints microseconds per
step and the ratio.

    python benchmarks/replay_samplers.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from catchjax import replay

ALPHA, BETA = 0.6, 0.4


def _weights(buf, probs, idx):
    n = buf.size.astype(jnp.float32)
    min_prob = jnp.min(jnp.where(jnp.arange(buf.capacity) < buf.size, probs, jnp.inf))
    return (n * probs[idx]) ** (-BETA) / (n * min_prob) ** (-BETA)


def cumsum_step(buf, key, batch):
    probs = replay.probabilities(buf, ALPHA)
    cdf = jnp.cumsum(probs)
    u = jax.random.uniform(key, (batch,)) * cdf[-1]
    idx = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, buf.size - 1)
    w = _weights(buf, probs, idx)
    return replay.update_priorities(buf, idx, w * 0.5).priorities


def _sum_tree(leaf_values: jnp.ndarray) -> list[jnp.ndarray]:
    """Levels of a sum-tree over the leaves (padded to a power of two), root first."""
    n = leaf_values.shape[0]
    width = 1 << max(n - 1, 0).bit_length()
    levels = [jnp.zeros(width, leaf_values.dtype).at[:n].set(leaf_values)]
    while levels[0].shape[0] > 1:
        levels.insert(0, levels[0].reshape(-1, 2).sum(axis=1))
    return levels


def _descend(levels, u):
    """Leaf index whose prefix-sum interval holds each ``u`` (inverse CDF), O(log n)."""
    idx = jnp.zeros(u.shape, jnp.int32)
    for level in levels[1:]:
        left = level[2 * idx]
        right = u >= left
        u = jnp.where(right, u - left, u)
        idx = 2 * idx + right
    return idx


def tree_step(buf, key, batch):
    probs = replay.probabilities(buf, ALPHA)
    levels = _sum_tree(probs)
    u = jax.random.uniform(key, (batch,)) * levels[0][0]
    idx = jnp.clip(_descend(levels, u), 0, buf.size - 1)
    w = _weights(buf, probs, idx)
    return replay.update_priorities(buf, idx, w * 0.5).priorities


def cumsum_via_catchjax(buf, key, batch):  # catchjax.replay.sample as shipped
    idx, _, w = replay.sample(buf, key, batch, ALPHA, BETA)
    return replay.update_priorities(buf, idx, w * 0.5).priorities


def bench(step, bufs, keys, batch, n=200):
    fn = jax.jit(jax.vmap(step, (0, 0, None)), static_argnums=2)
    jax.block_until_ready(fn(bufs, keys, batch))
    t0 = time.perf_counter()
    for _ in range(n):
        out = fn(bufs, keys, batch)
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / n * 1e6


def main():
    print(f"device: {jax.devices()[0].device_kind}")
    print(f"{'case':30s} {'cumsum us':>10s} {'sum-tree us':>12s} {'tree/cumsum':>12s} "
          f"{'catchjax us':>12s}")
    for name, cap, batch, n_buf in [
        ("CATCH evaluator, 500 buffers", 50, 40, 500),
        ("DQN, 1 buffer", 25_000, 256, 1),
        ("DQN, 32 buffers", 25_000, 256, 32),
    ]:
        pri = jax.random.uniform(jax.random.key(0), (n_buf, cap)) + 0.01
        bufs = jax.vmap(lambda p, cap=cap: replay.init(jnp.zeros(()), cap).replace(
            priorities=p, size=jnp.asarray(cap, jnp.int32)))(pri)
        keys = jax.random.split(jax.random.key(1), n_buf)
        a = bench(cumsum_step, bufs, keys, batch)
        b = bench(tree_step, bufs, keys, batch)
        c = bench(cumsum_via_catchjax, bufs, keys, batch)
        print(f"{name:30s} {a:10.1f} {b:12.1f} {b / a:11.2f}x {c:12.1f}")


if __name__ == "__main__":
    main()
