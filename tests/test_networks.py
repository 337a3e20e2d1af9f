import jax
import jax.numpy as jnp
import numpy as np
import pytest

from catchjax import networks, ppo
from catchjax.benchmarks import spaces


def test_product_of_gaussians_matches_closed_form():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(5, 3))
    var = rng.uniform(0.2, 2.0, size=(5, 3))
    mask = np.array([True, True, False, True, False])
    post_mu, post_var = networks.product_of_gaussians(jnp.asarray(mu), jnp.asarray(var),
                                                      jnp.asarray(mask))
    # closed form: multiply the densities of the masked-in factors on a grid, per dimension
    grid = np.linspace(-6, 6, 20001)
    for d in range(3):
        logp = sum(-0.5 * (grid - mu[i, d]) ** 2 / var[i, d] for i in np.flatnonzero(mask))
        p = np.exp(logp - logp.max())
        p /= p.sum()
        m = np.sum(grid * p)
        v = np.sum((grid - m) ** 2 * p)
        assert float(post_mu[d]) == pytest.approx(m, abs=1e-4)
        assert float(post_var[d]) == pytest.approx(v, rel=1e-3)
    # no context: the prior
    m0, v0 = networks.product_of_gaussians(jnp.asarray(mu), jnp.asarray(var), jnp.zeros(5, bool))
    np.testing.assert_array_equal(np.asarray(m0), 0.0)
    np.testing.assert_array_equal(np.asarray(v0), 1.0)


def test_kl_to_prior_closed_form():
    mu, var = jnp.array([0.5, -1.0]), jnp.array([0.5, 2.0])
    expected = 0.5 * np.sum(np.asarray(var) + np.asarray(mu) ** 2 - 1 - np.log(np.asarray(var)))
    assert float(networks.kl_to_prior(mu, var)) == pytest.approx(expected, rel=1e-5)


def test_encoder_ignores_masked_contexts_and_gradients_flow():
    enc = networks.ContextEncoder(z_dim=4, hidden=(16,))
    ctx = jax.random.normal(jax.random.key(0), (6, 31))
    mask = jnp.array([True, True, True, False, False, False])
    params = enc.init(jax.random.key(1), ctx, mask)
    a = enc.apply(params, ctx, mask)
    b = enc.apply(params, ctx.at[3:].set(100.0), mask)  # change only masked-out contexts
    np.testing.assert_allclose(np.asarray(a[0]), np.asarray(b[0]))

    def loss(p):
        mu, var = enc.apply(p, ctx, mask)
        z = networks.sample_z(jax.random.key(2), mu, var)
        return jnp.sum(z**2) + networks.kl_to_prior(mu, var)

    grads = jax.grad(loss)(params)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    assert any(np.abs(np.asarray(g)).sum() > 0 for g in jax.tree.leaves(grads))


def test_controller_never_samples_masked_actions():
    space = spaces.TRANSNAS_MACRO
    allowed = space.enumerate()[::7]  # a sparse subset: masks are very restrictive
    mask = jnp.asarray(spaces.prefix_masks(space, allowed))
    ctrl = networks.Controller(6, 5, hidden=(32,))
    z = jnp.ones(10)
    params = ctrl.init(jax.random.key(0), z, jnp.zeros((6, 5)))
    keys = jax.random.split(jax.random.key(1), 3000)
    acts, logp = jax.jit(jax.vmap(
        lambda k: networks.controller_sample(ctrl, params, k, z, mask)))(keys)
    allowed_codes = set(space.encode(allowed).tolist())
    assert set(space.encode(np.asarray(acts)).tolist()) <= allowed_codes
    # the teacher-forced log-prob equals the one recorded while sampling
    lp = jax.vmap(lambda a: networks.controller_log_prob(ctrl, params, z, a, mask))(acts[:50])
    np.testing.assert_allclose(np.asarray(lp), np.asarray(logp[:50]), rtol=1e-5, atol=1e-5)


def test_tempered_sampling_draws_from_sharpened_decisions_and_reports_both_log_probs():
    """Issue 32's temperature schedule: candidates come from each decision's softmax(l / T);
    the first log-prob returned is the untempered policy's (what PPO trains), the second
    the tempered one's; T = 1 is the controller's own sampling, bit for bit."""
    space = spaces.TRANSNAS_MACRO
    mask = jnp.asarray(spaces.prefix_masks(space, space.enumerate()[::7]))
    ctrl = networks.Controller(6, 5, hidden=(32,))
    z = jnp.ones(10)
    params = ctrl.init(jax.random.key(0), z, jnp.zeros((6, 5)))
    keys = jax.random.split(jax.random.key(1), 4000)

    def draw(t):
        return jax.jit(jax.vmap(lambda k: networks.controller_sample_tempered(
            ctrl, params, k, z, mask, t)))(keys)

    plain, plain_lp = jax.jit(jax.vmap(
        lambda k: networks.controller_sample(ctrl, params, k, z, mask)))(keys)
    same, lp1, lpt1 = draw(1.0)
    np.testing.assert_array_equal(np.asarray(same), np.asarray(plain))
    np.testing.assert_array_equal(np.asarray(lp1), np.asarray(plain_lp))
    np.testing.assert_array_equal(np.asarray(lpt1), np.asarray(plain_lp))
    acts, lp, lpt = draw(0.25)
    teacher = jax.vmap(lambda a: networks.controller_log_prob(ctrl, params, z, a, mask))(acts)
    np.testing.assert_allclose(np.asarray(lp[:50]), np.asarray(teacher[:50]), rtol=1e-5,
                               atol=1e-5)
    # the first decision's frequencies follow softmax(logits / T)
    logits0 = ctrl.apply(params, z, jnp.zeros((6, 5)))[0]
    p_t = np.asarray(jax.nn.softmax(jnp.where(mask[0, 0], logits0 / 0.25, -1e9)))
    freq = np.bincount(np.asarray(acts[:, 0]), minlength=5) / len(keys)
    tolerance = 4 * np.sqrt(p_t * (1 - p_t) / len(keys)) + 1e-3
    assert np.all(np.abs(freq - p_t) <= tolerance), (freq, p_t)
    # sharper: the tempered distribution's entropy (-mean log-prob) is below the policy's
    assert -float(jnp.mean(lpt)) < -float(jnp.mean(plain_lp)) - 0.5
    assert len(set(space.encode(np.asarray(acts)).tolist())) < len(
        set(space.encode(np.asarray(plain)).tolist()))


def test_ppo_loss_equals_hand_computed_value():
    logp = jnp.log(jnp.array([0.5, 0.2, 0.3, 0.9]))
    old = jnp.log(jnp.array([0.4, 0.4, 0.3, 0.5]))
    adv = jnp.array([1.0, -1.0, 2.0, -0.5])
    # ratios 1.25, 0.5, 1.0, 1.8; clip to [0.8, 1.2] -> 1.2, 0.8, 1.0, 1.2
    # min(r*A, clip*A): 1.2, -0.8, 2.0, -0.9 -> mean 0.375, loss -0.375
    assert float(ppo.clipped_surrogate_loss(logp, old, adv)) == pytest.approx(-0.375, rel=1e-6)
    mask = jnp.array([True, True, False, False])
    assert float(ppo.clipped_surrogate_loss(logp, old, adv, mask)) == pytest.approx(-0.2)


def test_normalize_handles_constant_rewards():
    out = ppo.normalize(jnp.array([3.0, 3.0, 3.0]))
    assert np.isfinite(np.asarray(out)).all() and np.allclose(np.asarray(out), 0.0)
    out = ppo.normalize(jnp.array([1.0, 2.0, 3.0, 100.0]), jnp.array([True, True, True, False]))
    np.testing.assert_allclose(np.asarray(out)[:3], [-1.2247449, 0.0, 1.2247449], rtol=1e-5)
    assert float(out[3]) == 0.0


def test_ppo_loss_and_gradient_stay_finite_far_off_policy():
    """A network the controller gave ~0 probability when it was picked (catch.propose's
    fallback outside the candidates) has a log-ratio of hundreds later: loss and gradient
    stay finite instead of exp overflowing to inf and the gradient to NaN."""
    old = jnp.array([-300.0, -2.0, -3.0])
    adv = jnp.array([-1.0, 0.5, 1.0])

    def loss(lp):
        return ppo.clipped_surrogate_loss(lp, old, adv, jnp.array([True, True, False]))

    lp = jnp.array([-5.0, -2.1, -3.0])
    value, grad = jax.value_and_grad(loss)(lp)
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))
    assert float(grad[0]) == 0.0  # beyond the bound the entry no longer pulls
    near = jnp.array([-300.0 + 5.0, -2.1, -3.0])  # within the bound: PPO unchanged
    expected = -(np.exp(5.0) * -1.0 + np.exp(-0.1) * 0.5) / 2  # 2nd: ratio inside the clip
    np.testing.assert_allclose(float(ppo.clipped_surrogate_loss(
        near, old, adv, jnp.array([True, True, False]))), expected, rtol=1e-5)
