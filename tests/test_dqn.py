"""The edit-based DQN (paper 002, SPEC §4): environment, n-step targets with PEB, double Q,
dueling heads, masking, replay, training as one compiled call, seeds, checkpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from catchjax import methods, replay, sweep
from catchjax.benchmarks import tasks
from catchjax.errors import CatchjaxError
from catchjax.methods.dqn import env as edit_env
from catchjax.methods.dqn import learner, returns
from catchjax.methods.dqn.network import MASKED_Q, QNetwork, dueling, q_values
from catchjax.runs import agent as agents

TINY = learner.DQNConfig(total_steps=2048, n_envs=32, batch_size=32, width=16, heads=2,
                         layers=1, eval_points=2, eval_episodes=16, learning_starts=32,
                         buffer_capacity=512, target_period=256, budget=6)


@pytest.fixture(scope="session")
def micro():
    return tasks.make_task("synthetic-transnas-micro", "class_object")


@pytest.fixture(scope="session")
def macro():
    return tasks.make_task("synthetic-transnas-macro", "class_object")


@pytest.fixture(scope="session")
def tiny_agents(micro):
    """Seeds 0 and 1 trained in one vmapped call, and seed 1 trained alone."""
    both = agents.train_many("dqn", micro, TINY, seeds=(0, 1))
    alone = agents.train("dqn", micro, TINY, seed=1)
    return both, alone


# -- environment ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["micro", "macro"])
def test_moves_are_exactly_the_one_edit_searchable_archs(name, request):
    task = request.getfixturevalue(name)
    actions = np.asarray(task.arrays.row_actions)
    searchable = np.flatnonzero(task.searchable)
    rng = np.random.default_rng(0)
    for row in rng.choice(searchable, 40, replace=False):
        mask = np.asarray(edit_env.action_mask(row, task.arrays))
        assert mask[edit_env.STOP]
        reached = set()
        for a in np.flatnonzero(mask[1:]) + 1:
            state = edit_env.EnvState(jnp.int32(row), jnp.int32(0))
            _, tr = edit_env.step(jax.random.key(0), state, jnp.int32(a), task.arrays,
                                  task.arrays.reward, 10)
            nxt = int(tr.next_row)
            assert np.sum(actions[nxt] != actions[row]) == 1
            reached.add(nxt)
        hamming = np.sum(actions[searchable] != actions[row], axis=1)
        assert reached == set(searchable[hamming == 1].tolist())


def test_macro_masks_structurally_invalid_edits(macro):
    # some macro architectures have fewer searchable neighbours than L*(K-1) slots
    masks = jax.vmap(edit_env.action_mask, in_axes=(0, None))(macro.arrays.valid_rows,
                                                              macro.arrays)
    assert not bool(jnp.all(masks))


def test_step_rewards_change_and_time_limit(micro):
    t = micro.arrays
    row = int(t.valid_rows[5])
    a = 1 + int(np.flatnonzero(np.asarray(t.neighbors[row]) >= 0)[0])
    state = edit_env.EnvState(jnp.int32(row), jnp.int32(2))
    nxt, tr = edit_env.step(jax.random.key(1), state, jnp.int32(a), t, t.reward, 3)
    target = int(t.neighbors[row, a - 1])
    assert int(tr.next_row) == target
    assert float(tr.reward) == pytest.approx(float(t.reward[target] - t.reward[row]))
    assert bool(tr.truncated) and not bool(tr.terminal)  # 3rd edit hits the limit of 3
    assert int(nxt.t) == 0  # reset at once
    nxt, tr = edit_env.step(jax.random.key(1), state, jnp.int32(edit_env.STOP), t, t.reward, 3)
    assert bool(tr.terminal) and float(tr.reward) == 0.0 and int(tr.next_row) == row


# -- n-step targets with partial-episode bootstrapping -----------------------------------


def _window(rewards, terminal, truncated, valid=(True, True, True)):
    n = len(rewards)
    tr = edit_env.Transition(
        row=jnp.arange(10, 10 + n, dtype=jnp.int32), action=jnp.arange(n, dtype=jnp.int32) + 1,
        reward=jnp.asarray(rewards, jnp.float32), next_row=jnp.arange(20, 20 + n, dtype=jnp.int32),
        terminal=jnp.asarray(terminal), truncated=jnp.asarray(truncated))
    return returns.Window(tr, jnp.asarray(valid))


G = 0.9


@pytest.mark.parametrize("terminal,truncated,ret,discount,boot", [
    # no end inside the window: 3-step return, bootstrap from the 3rd next state
    ((0, 0, 0), (0, 0, 0), 1 + G * 2 + G**2 * 4, G**3, 22),
    # the agent stopped at step 1: no bootstrap, later steps (a new episode) ignored
    ((0, 1, 0), (0, 0, 0), 1 + G * 2, 0.0, 21),
    # time limit at step 1: bootstrapped from where it got (PEB), discount gamma^2
    ((0, 0, 0), (0, 1, 0), 1 + G * 2, G**2, 21),
    # time limit at step 0: one-step target
    ((0, 0, 0), (1, 0, 0), 1.0, G, 20),
    # stop at step 0
    ((1, 0, 0), (0, 0, 0), 1.0, 0.0, 20),
])
def test_n_step_targets_equal_hand_computation(terminal, truncated, ret, discount, boot):
    w = _window([1.0, 2.0, 4.0], np.asarray(terminal, bool), np.asarray(truncated, bool))
    item, valid = returns.oldest_target(w, G)
    assert bool(valid)
    assert float(item.ret) == pytest.approx(ret, rel=1e-6)
    assert float(item.discount) == pytest.approx(discount, rel=1e-6)
    assert int(item.boot_row) == boot and int(item.row) == 10 and int(item.action) == 1


def test_window_push_keeps_order_and_marks_unfilled_slots():
    w = returns.empty_window(3)
    tr = lambda r: edit_env.Transition(jnp.int32(r), jnp.int32(0), jnp.float32(r),  # noqa: E731
                                       jnp.int32(r + 1), jnp.bool_(False), jnp.bool_(False))
    w = returns.push(w, tr(1))
    assert not bool(returns.oldest_target(w, G)[1])  # first target only when full
    w = returns.push(returns.push(w, tr(2)), tr(3))
    item, valid = returns.oldest_target(w, G)
    assert bool(valid) and int(item.row) == 1
    assert float(item.ret) == pytest.approx(1 + G * 2 + G**2 * 3)


# -- network, double Q, masking ----------------------------------------------------------


def test_dueling_aggregation():
    adv = jnp.asarray([1.0, 3.0, 100.0, 2.0])
    mask = jnp.asarray([True, True, False, True])
    q = dueling(jnp.float32(5.0), adv, mask)
    mean = (1 + 3 + 2) / 3
    np.testing.assert_allclose(np.asarray(q), [5 + 1 - mean, 5 + 3 - mean, MASKED_Q,
                                               5 + 2 - mean], rtol=1e-6)


def test_double_q_uses_online_argmax_and_target_value(micro):
    t = micro.arrays
    L, _, K = t.prefix_mask.shape
    online = learner.init_agent(TINY, jax.random.key(0), L, K).params
    target = learner.init_agent(TINY, jax.random.key(1), L, K).params
    items = returns.NStepItem(row=t.valid_rows[:4], action=jnp.asarray([0, 1, 2, 3]),
                              ret=jnp.asarray([0.5, -1.0, 2.0, 0.0]),
                              discount=jnp.asarray([0.9, 0.0, 0.81, 0.729]),
                              boot_row=t.valid_rows[10:14])
    td = learner.td_errors(TINY, online, target, items, t)
    net = TINY.network()
    q_on = np.asarray(q_values(net, online, items.boot_row, t))
    q_tg = np.asarray(q_values(net, target, items.boot_row, t))
    q_now = np.asarray(q_values(net, online, items.row, t))
    for i in range(4):
        a_star = int(np.argmax(q_on[i]))
        want = (float(items.ret[i]) + float(items.discount[i]) * q_tg[i, a_star]
                - q_now[i, int(items.action[i])])
        assert float(td[i]) == pytest.approx(want, rel=1e-5, abs=1e-5)
    # the target network's own argmax would give another answer somewhere
    assert (np.argmax(q_on, 1) != np.argmax(q_tg, 1)).any()


def test_masked_actions_are_never_taken(macro):
    t = macro.arrays
    L, _, K = t.prefix_mask.shape
    params = learner.init_agent(TINY, jax.random.key(0), L, K).params
    rows = t.valid_rows[:64]
    q = q_values(TINY.network(), params, rows, t)
    mask = jax.vmap(edit_env.action_mask, in_axes=(0, None))(rows, t)
    assert bool(jnp.all(jnp.where(mask, q > MASKED_Q / 2, q == MASKED_Q)))
    for eps in (0.0, 1.0):
        for s in range(20):
            a = learner.select_actions(jax.random.key(s), q, mask, jnp.full((64,), eps))
            assert bool(jnp.all(mask[jnp.arange(64), a]))


def test_apex_epsilons():
    eps = np.asarray(learner.epsilons(dataclasses.replace(TINY, n_envs=8)))
    assert eps[0] == pytest.approx(0.4) and eps[-1] == pytest.approx(0.4**8)
    assert np.all(np.diff(eps) < 0)


def test_network_reads_every_token(micro):
    # a neighbour's advantage depends on the neighbour's architecture
    t = micro.arrays
    L, _, K = t.prefix_mask.shape
    net = QNetwork(16, 2, 1)
    S = L * (K - 1)
    params = net.init(jax.random.key(0), jnp.zeros((1 + S, L * K)), jnp.ones(1 + S, bool))
    x = jax.random.uniform(jax.random.key(1), (1 + S, L * K))
    q1 = net.apply(params, x, jnp.ones(1 + S, bool))
    q2 = net.apply(params, x.at[3].set(0.0), jnp.ones(1 + S, bool))
    assert not np.allclose(q1[3], q2[3])


# -- replay ------------------------------------------------------------------------------


def test_add_batch_equals_adding_one_by_one():
    buf = replay.init(jnp.zeros((), jnp.int32), 5)
    buf = replay.add(buf, jnp.int32(99), priority=3.0)
    items = jnp.asarray([1, 2, 3, 4, 5, 6], jnp.int32)
    valid = jnp.asarray([True, False, True, True, False, True])
    batched = replay.add_batch(buf, items, valid)
    one = buf
    for x, v in zip(items, valid):
        if bool(v):
            one = replay.add(one, x)
    for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(one)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# -- training: one compiled call, seeds, learning ---------------------------------------


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_seed_in_a_vmapped_batch_equals_seed_alone_and_seeds_differ(tiny_agents):
    """Equal up to float rounding: vmapped matmuls sum in another order, and Adam turns
    ~1e-7 gradient differences into steps of up to the learning rate (5e-5) on
    parameters whose gradient is near zero, so after 64 updates parameters agree to ~1e-4;
    different seeds differ by orders of magnitude more."""
    both, alone = tiny_agents
    assert _max_diff(both[1].agent.params, alone.agent.params) < 1e-3
    assert _max_diff(both[0].agent.params, both[1].agent.params) > 1e-1
    assert int(alone.agent.env_steps) == TINY.trained_steps


def test_seeds_shard_over_several_devices(tiny_agents, tmp_path):
    """3 seeds on 2 (forced) CPU devices — padded to 4, the copy dropped — train the same
    agents as one device (seeds 0 and 1 of ``tiny_agents``), up to the rounding of a
    different per-device batch (see above), and keep their order."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import os
        flags = os.environ.get("XLA_FLAGS", "")  # the suite's optimization level
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2 " + flags
        import jax, numpy as np
        from catchjax.runs import agent as agents
        from catchjax.benchmarks import tasks
        from tests.test_dqn import TINY
        assert jax.local_device_count() == 2
        task = tasks.make_task("synthetic-transnas-micro", "class_object")
        trained = agents.train_many("dqn", task, TINY, seeds=(0, 1, 2))
        assert [t.seed for t in trained] == [0, 1, 2]
        for t in trained:
            leaves = jax.tree.leaves(t.agent.params) + [t.agent.env_steps]
            np.savez(r"{tmp_path}/seed%d.npz" % t.seed, *[np.asarray(x) for x in leaves])
        print("ok")
    """)
    root = str(Path(__file__).resolve().parent.parent)  # the repository
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    both, _ = tiny_agents

    def saved(seed):
        with np.load(tmp_path / f"seed{seed}.npz") as z:
            return [z[f"arr_{i}"] for i in range(len(z.files))]

    for seed in (0, 1):
        leaves = saved(seed)
        assert int(leaves[-1]) == TINY.trained_steps
        assert _max_diff(leaves[:-1], jax.tree.leaves(both[seed].agent.params)) < 1e-3
    assert _max_diff(saved(2)[:-1], saved(0)[:-1]) > 1e-1


def test_acting_without_updates_is_bitwise_vmap_invariant(micro):
    cfg = dataclasses.replace(TINY, updates_per_iteration=0, eval_points=1)
    fn = lambda k: learner.train(cfg, k, micro.arrays, micro.arrays.reward[None])[1]  # noqa: E731
    keys = jax.vmap(jax.random.key)(jnp.arange(3))
    batch = jax.jit(jax.vmap(fn))(keys)
    alone = jax.jit(fn)(jax.random.key(2))
    for k in ("test", "reward", "distinct"):
        np.testing.assert_array_equal(np.asarray(batch[k][2]), np.asarray(alone[k]))
    assert float(batch["test"][0, -1]) != float(batch["test"][1, -1])


def test_training_curve_and_queries(micro):
    cfg = dataclasses.replace(TINY, total_steps=1000, n_envs=50, eval_points=4)
    assert cfg.trained_steps == 1000  # 5 iterations of 50 envs per curve point
    _, info = jax.jit(lambda k: learner.train(cfg, k, micro.arrays, micro.arrays.reward[None]))(
        jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(info["steps"]), [0, 250, 500, 750, 1000])
    assert info["test"].shape == (5,) and np.all(np.isfinite(np.asarray(info["test"])))
    assert 50 <= int(info["distinct"]) <= micro.n_searchable


@pytest.mark.slow
def test_dqn_learns_to_climb(micro):
    """A small agent trained for 60k steps ends its greedy episodes on better architectures
    than where they start (the untrained agent's curve point 0)."""
    cfg = learner.DQNConfig(total_steps=60_000, n_envs=64, batch_size=64, width=32, heads=2,
                            layers=1, eval_points=2, eval_episodes=256, learning_starts=256,
                            target_period=2048, learning_rate=3e-4)
    _, info = jax.jit(lambda k: learner.train(cfg, k, micro.arrays, micro.arrays.reward[None]))(
        jax.random.key(0))
    test = np.asarray(info["test"])
    random_mean = float(np.mean(np.asarray(micro.arrays.report[:, 0])[micro.searchable]))
    assert test[-1] > random_mean + 3.0, test


# -- the method protocol: sweep, checkpoint, errors -------------------------------------


def test_sweep_of_greedy_episodes_and_checkpoint_round_trip(tiny_agents, micro, tmp_path):
    trained = tiny_agents[1]
    res = sweep("dqn", micro, trials=8, budget=TINY.budget, seed=0, agent=trained.agent,
                progress=False, **{f.name: getattr(TINY, f.name)
                                   for f in dataclasses.fields(TINY) if f.name != "budget"})
    rows = np.asarray(res.rows)
    assert rows.shape == (8, TINY.budget)
    acts = np.asarray(micro.arrays.row_actions)
    for path in rows:  # each step of a greedy path is one edit or staying after a stop
        d = np.sum(acts[path[1:]] != acts[path[:-1]], axis=1)
        assert np.all(d <= 1)
        stopped = np.flatnonzero(d == 0)
        if stopped.size:
            assert np.all(d[stopped[0]:] == 0)
    path = agents.save_agent(tmp_path / "agent", trained)
    back = agents.load_agent(path, micro)
    assert back.method == "dqn" and back.pool == [micro.spec.reward_metric]
    again = sweep(back.config, micro, trials=8, budget=TINY.budget, seed=0, agent=back.agent,
                  progress=False)
    np.testing.assert_array_equal(np.asarray(again.rows), rows)


@pytest.mark.parametrize("bad,match", [
    (dict(buffer_capacity=16, batch_size=32), "smaller than the batch"),
    (dict(max_episode_steps=0), "max_episode_steps"),
    (dict(total_steps=0), "total_steps"),
    (dict(discount=0.0), "discount"),
    (dict(learning_rate=float("nan")), "learning_rate"),
    (dict(width=18, heads=4), "multiple of heads"),
])
def test_bad_configs_fail_before_compiling(micro, bad, match):
    with pytest.raises(CatchjaxError, match=match):
        agents.train("dqn", micro, dataclasses.replace(TINY, **bad))


def test_dqn_is_registered_with_a_task_learner(micro):
    m = methods.get("dqn")
    assert m.learner.trains_on == "task" and m.learner.requires_agent
    with pytest.raises(CatchjaxError, match="trained agent"):
        sweep("dqn", micro, trials=2, budget=4, progress=False)
