"""catchjax.replay against flashbax's prioritised item buffer at the DQN's size.

One "iteration" is what the DQN's Anakin loop does to its buffer: add a batch of
``--add`` n-step items (row, action, return, discount, bootstrap row), sample
``--batch`` of them by priority (alpha 0.6), set the sampled items' priorities. Both
run ``--iters`` iterations inside one compiled ``lax.scan`` on a buffer of
``--capacity``, first filled once; best of ``--repeats``. Prints microseconds per
iteration and the ratio. flashbax is not a catchjax dependency: ``pip install flashbax``
to run this.

    python benchmarks/replay_flashbax.py [--capacity 25000] [--add 256] [--batch 256]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from catchjax import replay
from catchjax.methods.dqn.returns import NStepItem


def items(key, n):
    k1, k2, k3 = jax.random.split(key, 3)
    return NStepItem(row=jax.random.randint(k1, (n,), 0, 4096),
                     action=jax.random.randint(k2, (n,), 0, 19),
                     ret=jax.random.normal(k3, (n,)), discount=jnp.full((n,), 0.97),
                     boot_row=jax.random.randint(k1, (n,), 0, 4096))


def bench(fn, state, iters, repeats):
    run = jax.jit(lambda s, k: jax.lax.scan(fn, s, jax.random.split(k, iters))[0])
    run = run.lower(state, jax.random.key(0)).compile()
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run(state, jax.random.key(r + 1)))
        best = min(best, time.perf_counter() - t0)
    return best / iters * 1e6


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--capacity", type=int, default=25_000)
    p.add_argument("--add", type=int, default=256)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    try:
        import flashbax as fbx
    except ImportError:
        print("flashbax is not installed (pip install flashbax); nothing to compare")
        return 0
    alpha = 0.6
    example = jax.tree.map(lambda x: x[0], items(jax.random.key(0), 1))

    # catchjax.replay
    ours = replay.add_batch(replay.init(example, args.capacity),
                            items(jax.random.key(1), args.capacity),
                            jnp.ones(args.capacity, bool))

    def ours_step(buf, key):
        k_add, k_sample, k_td = jax.random.split(key, 3)
        buf = replay.add_batch(buf, items(k_add, args.add), jnp.ones(args.add, bool))
        idx, _, w = replay.sample(buf, k_sample, args.batch, alpha, 0.4)
        td = jax.random.normal(k_td, (args.batch,)) * w
        return replay.update_priorities(buf, idx, td), None

    # flashbax: prioritised item buffer (sum-tree), batches added at once
    fb = fbx.make_prioritised_item_buffer(max_length=args.capacity, min_length=1,
                                          sample_batch_size=args.batch, add_batches=True,
                                          priority_exponent=alpha)
    state = fb.add(fb.init(example), items(jax.random.key(1), args.capacity))

    def fb_step(st, key):
        k_add, k_sample, k_td = jax.random.split(key, 3)
        st = fb.add(st, items(k_add, args.add))
        s = fb.sample(st, k_sample)
        td = jnp.abs(jax.random.normal(k_td, (args.batch,))) + 1e-6
        return fb.set_priorities(st, s.indices, td), None

    us_ours = bench(ours_step, ours, args.iters, args.repeats)
    us_fb = bench(fb_step, state, args.iters, args.repeats)
    dev = jax.devices()[0].device_kind
    print(f"capacity {args.capacity:,}, add {args.add}, batch {args.batch}, device {dev}")
    print(f"catchjax.replay (cumsum + searchsorted): {us_ours:9.1f} us/iteration")
    print(f"flashbax prioritised item buffer (sum-tree): {us_fb:9.1f} us/iteration")
    print(f"flashbax / catchjax: {us_fb / us_ours:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
