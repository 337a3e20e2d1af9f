"""CATCH's loss, context encoding, candidate selection and per-epoch metrics, each on its
own, against values computed by hand from the networks."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from catchjax import networks, ppo, replay, sampling
from catchjax.methods import catch, catch_meta

L, K, H = 6, 5, 6
CFG = catch.CatchConfig(budget=H, n_initial=2, candidates=8, z_dim=3, hidden=8,
                        context="zero", meta_budget=H)


@pytest.fixture(scope="module")
def parts(syn_nb201):
    task = syn_nb201.arrays
    nets = catch.make_networks(CFG, L, K)
    params = catch.init_params(CFG, jax.random.key(1), L, K)
    rows = task.valid_rows[jnp.asarray([3, 50, 700, 1200, 0, 0])]
    actions = task.row_actions[rows]
    rewards = jnp.asarray([1.0, 2.0, 3.0, 4.0, 0.0, 0.0])
    z = jnp.zeros(CFG.z_dim)
    logp = jax.vmap(lambda a: networks.controller_log_prob(
        nets.controller, params["controller"], z, a, task.prefix_mask))(actions)
    memory = replay.init(None, H)
    for _ in range(4):
        memory = replay.add(memory, None)
    return task, nets, params, actions, rewards, logp, memory


def _history(actions, rewards, log_probs, count=4):
    return catch.History(actions=actions, rewards=rewards, log_probs=log_probs,
                         count=jnp.asarray(count, jnp.int32))


def _expected_evaluator_loss(nets, params, actions, rewards, idx, weights=1.0):
    filled = jnp.arange(H) < 4
    mean, std = ppo.masked_mean_std(rewards, filled)
    pred = jax.vmap(lambda a: nets.evaluator.apply(params["evaluator"], jax.nn.one_hot(a, K),
                                                   jnp.zeros(CFG.z_dim)))(actions[idx])
    return jnp.mean(weights * optax.huber_loss(pred - (rewards[idx] - mean) / std))


def test_loss_at_ratio_one_is_minus_the_mean_policy_advantage(parts):
    task, nets, params, actions, rewards, logp, memory = parts
    history = _history(actions, rewards, logp)
    loss, (idx, delta, p) = catch.catch_loss(CFG, nets, params, history, memory,
                                             jax.random.key(0), 0.4, 2, task.prefix_mask)
    std = np.sqrt(1.25 + 1e-8)  # rewards 1..4: mean 2.5, variance 1.25
    # slots 2, 3 came from the policy: advantages (3 - 2.5)/std and (4 - 2.5)/std
    np.testing.assert_allclose(p["loss_controller"], -(0.5 + 1.5) / 2 / std, rtol=1e-5)
    assert int(jnp.max(idx)) < 4  # PER samples only filled slots
    # equal priorities: every IS weight is 1
    expected_le = _expected_evaluator_loss(nets, params, actions, rewards, idx)
    np.testing.assert_allclose(p["loss_evaluator"], expected_le, rtol=1e-5)
    assert float(p["kl"]) == 0.0  # context "zero" never runs the encoder
    np.testing.assert_allclose(loss, p["loss_controller"] + p["loss_evaluator"], rtol=1e-6)
    assert delta.shape == (int(CFG.per_fraction * H),)


def test_loss_clips_the_ratio(parts):
    task, nets, params, actions, rewards, logp, memory = parts
    history = _history(actions, rewards, logp - jnp.log(2.0))  # pi / pi_old = 2
    _, (_, _, p) = catch.catch_loss(CFG, nets, params, history, memory, jax.random.key(0),
                                    0.4, 2, task.prefix_mask)
    std = np.sqrt(1.25 + 1e-8)
    # both advantages are positive, so min(2 A, 1.2 A) = 1.2 A
    np.testing.assert_allclose(p["loss_controller"], -1.2 * (0.5 + 1.5) / 2 / std, rtol=1e-5)


def test_encode_context_variants(parts):
    task, nets, params, actions, rewards, logp, _ = parts
    history = _history(actions, rewards, logp)
    z, kl = catch.encode_context(CFG, nets, params, history, jax.random.key(3))
    assert np.all(np.asarray(z) == 0) and float(kl) == 0
    rnd = dataclasses.replace(CFG, context="random")
    z, _ = catch.encode_context(rnd, nets, params, history, jax.random.key(3))
    np.testing.assert_array_equal(z, jax.random.normal(jax.random.key(3), (CFG.z_dim,)))
    learned = dataclasses.replace(CFG, context="learned")
    z1, kl1 = catch.encode_context(learned, nets, params, history, jax.random.key(3))
    # by hand: contexts = (one-hot arch, reward normalized over the 4 filled slots)
    mask = jnp.arange(H) < 4
    ctx = jnp.concatenate([jax.nn.one_hot(actions, K).reshape(H, L * K),
                           ppo.normalize(rewards, mask)[:, None]], axis=1)
    mu, var = nets.encoder.apply(params["encoder"], ctx, mask)
    np.testing.assert_allclose(z1, networks.sample_z(jax.random.key(3), mu, var), rtol=1e-6)
    np.testing.assert_allclose(kl1, networks.kl_to_prior(mu, var), rtol=1e-6)
    # entries past the count do not matter
    other = _history(actions.at[5].set(actions[0]), rewards.at[5].set(99.0), logp)
    z2, _ = catch.encode_context(learned, nets, params, other, jax.random.key(3))
    np.testing.assert_array_equal(z1, z2)


def test_select_candidate_is_greedy_or_uniform():
    scores = jnp.asarray([0.1, 0.9, 0.3, 0.2])
    keys = jax.random.split(jax.random.key(0), 4000)
    greedy = jax.vmap(lambda k: catch.select_candidate(k, k, scores, 0.0))(keys)
    assert set(np.asarray(greedy).tolist()) == {1}
    k2 = jax.random.split(jax.random.key(1), 4000)
    explore = np.asarray(jax.vmap(lambda a, b: catch.select_candidate(a, b, scores, 1.0))(
        keys, k2))
    counts = np.bincount(explore, minlength=4) / len(explore)
    np.testing.assert_allclose(counts, 0.25, atol=0.03)
    half = np.asarray(jax.vmap(lambda a, b: catch.select_candidate(a, b, scores, 0.5))(
        keys, k2))
    # greedy half + a quarter of the exploring half
    assert abs(np.mean(half == 1) - (0.5 + 0.5 * 0.25)) < 0.03


def test_search_returns_per_epoch_metrics(syn_nb201):
    config = dataclasses.replace(catch.CatchConfig(), budget=12, candidates=16, hidden=16,
                                 updates_per_epoch=2, n_initial=2)
    trace = jax.jit(lambda k: catch.catch_search(config, k, syn_nb201.arrays))(
        jax.random.key(0))
    m = {k: np.asarray(v) for k, v in trace.metrics.items()}
    n_epochs = 10
    assert {"loss_controller", "loss_evaluator", "kl", "epsilon", "per_beta",
            "controller_entropy", "distinct_candidates"} <= set(m)
    assert all(v.shape == (n_epochs,) for v in m.values())
    np.testing.assert_allclose(m["epsilon"][[0, -1]], [0.5, 0.05], rtol=1e-6)
    assert np.all(np.diff(m["per_beta"]) > 0)
    np.testing.assert_allclose(m["per_beta"][[0, -1]], [0.4, 1.0], rtol=1e-6)
    assert np.all((m["distinct_candidates"] >= 1) & (m["distinct_candidates"] <= 16))
    assert np.all(np.isfinite(m["controller_entropy"])) and np.all(m["controller_entropy"] > 0)
    assert np.all(m["kl"] >= 0)


def test_distinct_count():
    assert int(catch.distinct_count(jnp.asarray([3, 1, 3, 2, 1]))) == 3
    assert int(catch.distinct_count(jnp.asarray([7]))) == 1
    codes = sampling.sequence_code(jnp.asarray([[0, 1], [0, 1], [1, 0]]), 2)
    assert int(catch.distinct_count(codes)) == 2


def test_sweep_records_metrics_in_results_and_progress(tmp_path, syn_nb201):
    import csv
    import json

    from catchjax import cli
    from catchjax.runs import sweeps

    small = ["--set", "candidates=8", "--set", "hidden=8", "--set", "updates_per_epoch=1"]
    out = tmp_path / "sfs"
    assert cli.main(["sweep", "--method", "catch-sfs", "--benchmark", "synthetic-nb201",
                     "--task", "cifar10", "--trials", "4", "--budget", "8", "--chunk-size", "2",
                     "--out", str(out), "--no-progress", *small]) == 0
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * (8 - 5) and "controller_entropy" in rows[0]
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["search_metrics"]["epsilon"]) == 3
    settings = dict(candidates=8, hidden=8, updates_per_epoch=1)
    full = sweeps.sweep("catch-sfs", syn_nb201, trials=4, budget=8, chunk_size=2, **settings)
    progress = tmp_path / "progress"
    sweeps.sweep("catch-sfs", syn_nb201, trials=4, budget=8, chunk_size=2,
                 progress_dir=progress, **settings)
    resumed = sweeps.sweep("catch-sfs", syn_nb201, trials=4, budget=8, chunk_size=2,
                           progress_dir=progress, **settings)  # everything restored
    assert resumed.metrics.keys() == full.metrics.keys()
    for k in full.metrics:
        np.testing.assert_array_equal(resumed.metrics[k], full.metrics[k])


def test_controller_entropy_is_the_sum_of_step_entropies(parts):
    task, nets, params, actions, _, _, _ = parts
    z = jnp.zeros(CFG.z_dim)
    a = actions[0]
    got = networks.controller_entropy(nets.controller, params["controller"], z, a,
                                      task.prefix_mask)
    masks = np.asarray(sampling.step_masks(a, task.prefix_mask))
    expected = 0.0
    for t in range(L):
        logits = np.asarray(nets.controller.apply(
            params["controller"], z, networks.taken_onehots(a, t, K))[t], np.float64)
        logits = np.where(masks[t], logits, -np.inf)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        expected -= np.sum(p[p > 0] * np.log(p[p > 0]))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_entropy_bonus_keeps_the_controller_broader(syn_nb201):
    base = dataclasses.replace(catch.CatchConfig(), budget=20, candidates=16, hidden=16,
                               updates_per_epoch=4, learning_rate=1e-2, n_initial=2)
    bonus = dataclasses.replace(base, entropy_coef=1.0)

    def entropy(config):
        trace = jax.jit(lambda k: catch.catch_search(config, k, syn_nb201.arrays))(
            jax.random.key(3))
        return float(np.mean(np.asarray(trace.metrics["controller_entropy"])[-5:]))

    assert entropy(bonus) > entropy(base) + 0.1


def test_reset_optimizer_restarts_adam_at_adaptation_only(syn_nb201):
    config = dataclasses.replace(catch.CatchConfig(), budget=10, candidates=8, hidden=8,
                                 updates_per_epoch=1, n_initial=2, meta_trained=True,
                                 meta_epochs=2, meta_budget=6)
    agent, _ = jax.jit(lambda k: catch_meta.train(config, k, syn_nb201.arrays,
                                             syn_nb201.arrays.reward[None]))(jax.random.key(0))
    reset = dataclasses.replace(config, reset_optimizer=True)
    fresh = catch.AgentState(agent.params, optax.adam(config.learning_rate).init(agent.params))
    search = jax.jit(lambda c, a: catch.catch_search(c, jax.random.key(1), syn_nb201.arrays, a),
                     static_argnums=0)
    with_reset = search(reset, agent)
    by_hand = search(config, fresh)
    np.testing.assert_array_equal(with_reset.rows, by_hand.rows)
    np.testing.assert_allclose(with_reset.metrics["loss_controller"],
                               by_hand.metrics["loss_controller"], rtol=1e-6)
    # meta-training itself is unchanged by the flag (it carries Adam across searches)
    again, _ = jax.jit(lambda k: catch_meta.train(reset, k, syn_nb201.arrays,
                                             syn_nb201.arrays.reward[None]))(jax.random.key(0))
    for x, y in zip(jax.tree.leaves(agent), jax.tree.leaves(again)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
