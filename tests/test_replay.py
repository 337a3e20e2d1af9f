import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import chisquare

from catchjax import replay


def _filled(priorities, capacity=8):
    buf = replay.init({"x": jnp.zeros(2), "r": jnp.zeros(())}, capacity)
    for i, p in enumerate(priorities):
        buf = replay.add(buf, {"x": jnp.full(2, float(i)), "r": jnp.asarray(i * 1.0)}, p)
    return buf


def test_samples_in_proportion_to_priority_to_the_alpha():
    priorities = [0.1, 0.5, 1.0, 2.0, 4.0]
    buf = _filled(priorities)
    alpha = 0.6
    idx, items, _ = jax.jit(lambda b, k: replay.sample(b, k, 200_000, alpha, 0.4))(
        buf, jax.random.key(0)
    )
    idx = np.asarray(idx)
    assert idx.max() < len(priorities)  # empty slots are never drawn
    np.testing.assert_array_equal(np.asarray(items["x"])[:, 0], idx)
    expected = np.asarray(priorities) ** alpha
    expected = expected / expected.sum() * len(idx)
    assert chisquare(np.bincount(idx, minlength=5), expected).pvalue > 1e-3


def test_importance_weights():
    priorities = np.array([0.1, 0.5, 1.0, 2.0])
    buf = _filled(priorities)
    alpha, beta = 0.6, 0.4
    idx, _, w = replay.sample(buf, jax.random.key(1), 64, alpha, beta)
    p = priorities**alpha / np.sum(priorities**alpha)
    expected = (4 * p) ** -beta / np.max((4 * p) ** -beta)
    np.testing.assert_allclose(np.asarray(w), expected[np.asarray(idx)], rtol=1e-5)
    assert np.all(np.asarray(w) <= 1.0 + 1e-6)


def test_new_items_get_max_priority_and_updates_change_sampling():
    buf = _filled([1.0, 1.0, 1.0])
    buf = replay.update_priorities(buf, jnp.array([0]), jnp.array([-3.0]), eps=0.0)
    assert float(buf.priorities[0]) == 3.0 and float(buf.max_priority) == 3.0
    buf = replay.add(buf, {"x": jnp.zeros(2), "r": jnp.asarray(0.0)})
    assert float(buf.priorities[3]) == 3.0


def test_ring_buffer_overwrites_the_oldest():
    buf = _filled([1.0] * 10, capacity=4)  # items 0..9 into 4 slots
    assert int(buf.size) == 4
    assert sorted(np.asarray(buf.items["r"]).tolist()) == [6.0, 7.0, 8.0, 9.0]


def test_works_under_vmap():
    bufs = jax.vmap(lambda p: _filled([1.0]).replace(priorities=p))(
        jnp.stack([jnp.array([1.0] + [0.0] * 7)] * 3)
    )
    idx, _, w = jax.vmap(lambda b, k: replay.sample(b, k, 5, 0.6, 0.4))(
        bufs, jax.random.split(jax.random.key(0), 3)
    )
    assert idx.shape == (3, 5) and (np.asarray(idx) == 0).all()
    np.testing.assert_allclose(np.asarray(w), 1.0)


@pytest.mark.parametrize("step,expected", [(0, 0.4), (50, 0.7), (100, 1.0), (200, 1.0)])
def test_beta_annealing(step, expected):
    assert float(replay.beta_schedule(0.4, step, 100)) == pytest.approx(expected)
