"""catchjax.runs.numerics: Threefry lowered unrolled on CPU gives JAX's bits, faster."""

import jax
import jax.numpy as jnp
import numpy as np
from jax._src.random.threefry2x32 import _threefry2x32_lowering

from catchjax.runs import numerics


def test_threefry_is_lowered_without_a_loop_on_cpu():
    assert numerics.UNROLLED_THREEFRY
    text = numerics.jit(lambda k: jax.random.bits(jax.random.fold_in(k, 3), (8,))).lower(
        jax.random.key(0)).compile().as_text()
    assert " while(" not in text


def test_unrolled_threefry_gives_the_rolled_loops_bits():
    # Random123's known answers for Threefry-2x32 with 20 rounds
    known = {((0, 0), (0, 0)): (0x6B200159, 0x99BA4EFE),
             ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF)): (0x1CB996FC, 0xBB002BE7),
             ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3)): (0xC4923A9C, 0x483DF7A0)}
    for (key, count), want in known.items():
        got = jax.extend.random.threefry_2x32(jnp.asarray(key, jnp.uint32),
                                              jnp.asarray(count, jnp.uint32))
        assert tuple(int(v) for v in np.asarray(got)) == want
    # and the same bits as JAX's rolled loop on many inputs
    rng = np.random.default_rng(0)
    k1, k2, x1, x2 = (jnp.asarray(rng.integers(0, 2**32, 1000, dtype=np.uint32))
                      for _ in range(4))
    rolled = jax.jit(lambda *a: _threefry2x32_lowering(*a, use_rolled_loops=True))
    want = np.stack([np.asarray(v) for v in rolled(k1, k2, x1, x2)])
    got = jax.jit(jax.vmap(lambda a, b, c, d: jax.extend.random.threefry_2x32(
        jnp.stack([a, b]), jnp.stack([c, d]))))(k1, k2, x1, x2)
    assert np.array_equal(np.asarray(got).T, want)
