"""catchjax.runs.batched: many keyed runs of one pure function as one compiled call —
padding, the one compile cache, and run i computing the same bits whatever shares its
call (on one CPU device) and on any number of devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from catchjax.runs import batched

W = jnp.linspace(-1.0, 1.0, 3000)  # a reduction long enough for XLA's library fusions


def one_run(key, scale):
    """A run whose result depends on its key and on long reductions."""
    x = jax.random.normal(key, W.shape) * scale
    return {"sum": jnp.sum(jnp.sin(x * W)), "dot": x @ W, "first": x[:3]}


def make():
    return jax.vmap(one_run, in_axes=(0, None))


def keys(n, offset=0):
    return jax.vmap(lambda i: jax.random.fold_in(jax.random.key(7), i))(
        jnp.arange(offset, offset + n))


def _alone_in_chunks_and_whole(n, sizes, scale=jnp.float32(1.5)):
    whole = batched.Batched(make(), keys(n), scale, min_per_device=2)(keys(n), scale)
    out = []
    for size in sizes:  # 1: padded to 2, the last run copied and dropped
        parts = []
        for start in range(0, n, size):
            k = keys(min(size, n - start), start)
            run, _ = batched.compiled("test_batched", make, k, scale, min_per_device=2)
            parts.append(run(k, scale))  # one compile per chunk shape
        out.append(jax.tree.map(lambda *xs: np.concatenate(xs), *parts))
    return whole, out


def test_run_i_is_the_same_bits_alone_in_chunks_or_in_one_call(users_compiler):
    n = 40
    with users_compiler():  # the guarantee is the one users get
        whole, chunked = _alone_in_chunks_and_whole(n, (1, 3, 8))
    assert jax.tree.map(np.shape, whole) == {"sum": (n,), "dot": (n,), "first": (n, 3)}
    for joined in chunked:
        for name in ("sum", "first"):  # long reductions and elementwise maths
            np.testing.assert_array_equal(np.asarray(whole[name]), joined[name], err_msg=name)


@pytest.mark.xfail(strict=True, reason="known limit (measured 2026-12-06): a vmapped "
                   "[n, 3000] @ [3000] product rounds differently for some run counts on "
                   "XLA CPU (19/40 runs equal in calls of 1-3); numerics.py does not cover "
                   "dots. If this passes, the guarantee grew: update docs/usage.md")
def test_a_long_dot_product_is_not_yet_the_same_bits_whatever_the_chunk(users_compiler):
    with users_compiler():
        whole, (joined,) = _alone_in_chunks_and_whole(40, (1,))
    np.testing.assert_array_equal(np.asarray(whole["dot"]), joined["dot"])


def test_different_keys_give_different_runs():
    out = batched.Batched(make(), keys(4), jnp.float32(1.0))(keys(4), jnp.float32(1.0))
    assert len(set(np.asarray(out["sum"]).tolist())) == 4


def test_one_compile_per_function_shape_and_devices():
    key = ("test_batched", "one_run")
    a, secs = batched.compiled(key, make, keys(6), jnp.float32(1.0), min_per_device=2)
    again, secs_again = batched.compiled(key, make, keys(6), jnp.float32(2.0),
                                         min_per_device=2)
    assert again is a and secs > 0 and secs_again == 0.0
    other, _ = batched.compiled(key, make, keys(7), jnp.float32(1.0), min_per_device=2)
    assert other is not a  # another run count is another program
    np.testing.assert_array_equal(a(keys(6), jnp.float32(2.0))["sum"],
                                  other(keys(7), jnp.float32(2.0))["sum"][:6])


def test_other_compiler_options_are_another_program(users_compiler):
    """The one compile cache keys a program by catchjax's compiler options too: a run
    compiled under other options is not handed out for the current ones."""
    key = ("test_batched", "options")
    a, _ = batched.compiled(key, make, keys(4), jnp.float32(1.0), min_per_device=2)
    with users_compiler():
        b, secs = batched.compiled(key, make, keys(4), jnp.float32(1.0), min_per_device=2)
    assert b is not a and secs > 0
    assert batched.compiled(key, make, keys(4), jnp.float32(1.0), min_per_device=2)[0] is a


def test_a_trial_is_the_same_bits_on_one_two_and_four_devices():
    """48 CATCH-sfs trials at the default network sizes give the same rows and rewards on
    1, 2 and 4 (simulated CPU) devices (BANANAS, CATCH-meta and the DQN alike, measured):
    the device count is not part of a trial (catchjax.optimizers; before it, 23 of 48
    CATCH-sfs trials and 41 of 48 CATCH-meta trials were equal at budget 40).

    Compiled at the suite's backend optimization level (LLVM's passes off) and budget 30
    to keep CI short: the difference was made by XLA's HLO simplifier, which runs at every
    level, and the code before catchjax.optimizers fails this very test (43 of 48 equal
    at budget 30; 21 of 48 at budget 40)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import os
        os.environ["XLA_FLAGS"] = ("--xla_force_host_platform_device_count=4 "
                                   "--xla_backend_optimization_level=0")
        import jax, numpy as np
        from catchjax import make_task, sweep
        assert jax.local_device_count() == 4
        task = make_task("synthetic-nb201", "cifar10")
        for method, trials, budget in (("catch-sfs", 48, 30),):  # BANANAS: in the note
            out = [sweep(method, task, trials=trials, budget=budget, seed=3,
                         devices=jax.local_devices()[:d]) for d in (1, 2, 4)]
            assert [o.device for o in out] == ["cpu x1", "cpu x2", "cpu x4"], out[1].device
            assert len({r.tobytes() for r in out[0].rows}) > trials // 2  # trials differ
            for o in out[1:]:
                same = [np.array_equal(a, b) for a, b in zip(out[0].rows, o.rows)]
                assert all(same), (method, o.device, sum(same))
                assert np.array_equal(out[0].rewards, o.rewards), (method, o.device)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ok" in out.stdout
