"""Issue 19: one training seed no longer decides the answer (several agents per sweep, a
folder of several agents), the meta-trained methods' default, the many-task pool, and
checkpoints that keep how and for which protocol they were trained."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from catchjax import cli, methods
from catchjax.benchmarks import tasks
from catchjax.errors import CatchjaxError
from catchjax.methods import catch, catch_meta
from catchjax.runs import agent as agents
from catchjax.runs import sweeps
from catchjax.store import checkpoints

TINY = dict(candidates=8, hidden=8, updates_per_epoch=1, meta_epochs=3, meta_budget=8)
SETS = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]


@pytest.fixture(scope="module")
def three(syn_nb201):
    config = methods.make_config("catch-meta", budget=10, **TINY)
    return agents.train_many("catch-meta", syn_nb201, config, seeds=(0, 1, 2))


def test_meta_trained_methods_default_to_ppo_with_its_entropy_bonus(capsys):
    for name in ("catch-meta", "catch-zero", "catch-random"):
        # a sweep without --init (and `catchjax train`) trains 20 agents (issue 32:
        # five were too few to quote hit counts), the DQN one
        assert methods.get(name).learner.agents == 20
        assert methods.make_config(name).entropy_coef == 0.5
        assert methods.setting_defaults(name)["entropy_coef"] == 0.5
        # the paper's literal loss stays reachable
        assert methods.make_config(name, entropy_coef="0").entropy_coef == 0.0
    for name in ("catch-sfs", "catch-sfs-zero", "catch-sfs-random"):
        assert methods.make_config(name).entropy_coef == 0.0
    assert methods.get("dqn").learner.agents == 1
    # a config given whole keeps its own value (a saved one, or one built by hand)
    literal = catch.CatchConfig(meta_trained=True)
    assert methods.build(literal) is literal and methods.build(literal, budget=9).entropy_coef == 0
    assert cli.main(["methods", "catch-meta"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "entropy_coef" in x)
    assert line.split()[1] == "0.5"


def test_trials_go_round_the_agents_and_each_equals_its_trial_alone(three, syn_nb201):
    config = three[0].config
    states = [t.agent for t in three]
    res = sweeps.sweep(config, syn_nb201, trials=7, seed=3, agent=states)
    assert res.n_agents == 3
    for i in (0, 1, 5):
        alone = sweeps.run_trial(config, syn_nb201, seed=3, trial=i, agent=states)
        np.testing.assert_array_equal(res.rows[i], alone.rows)
        # ... which is the trial adapting agent i % 3
        single = sweeps.run_trial(config, syn_nb201, seed=3, trial=i, agent=states[i % 3])
        np.testing.assert_array_equal(alone.rows, single.rows)
    # the agents differ, and so do their trials
    assert not np.array_equal(res.rows[0], sweeps.run_trial(
        config, syn_nb201, seed=3, trial=0, agent=states[1]).rows)
    s = res.summary()
    final = res.final_report
    assert s["agents"] == 3 and s["agent_trials"] == [3, 2, 2]
    np.testing.assert_allclose(s["agent_means"], [final[[0, 3, 6]].mean(), final[[1, 4]].mean(),
                                                  final[[2, 5]].mean()])
    assert s["agent_spread"] == pytest.approx(np.std(s["agent_means"], ddof=1))
    # one agent in a list is the single-agent sweep, bit for bit
    one = sweeps.sweep(config, syn_nb201, trials=3, seed=3, agent=states[:1])
    same = sweeps.sweep(config, syn_nb201, trials=3, seed=3, agent=states[0])
    np.testing.assert_array_equal(one.rows, same.rows)
    assert one.n_agents == 1 and "agents" not in one.summary()


def test_agents_of_other_networks_are_refused_before_compiling(three, syn_nb201, no_compile):
    bigger = methods.make_config("catch-meta", budget=10, **{**TINY, "hidden": 16})
    other = catch.init_agent(bigger, jax.random.key(0), 6, 5)
    with pytest.raises(CatchjaxError, match="same networks"):
        sweeps.sweep(three[0].config, syn_nb201, trials=2, agent=[three[0].agent, other])
    with pytest.raises(CatchjaxError, match="empty list"):
        sweeps.sweep(three[0].config, syn_nb201, trials=2, agent=[])


def test_a_folder_of_agents_round_trips_and_one_agent_consumers_name_a_member(three, syn_nb201,
                                                                              tmp_path):
    path = agents.save_agents(tmp_path / "set", three)
    listed = json.loads((path / checkpoints.SET_MANIFEST).read_text())
    assert listed["agents"] == ["seed-0", "seed-1", "seed-2"] and listed["protocol"] == "nats"
    back = agents.load_agents(path, syn_nb201, method="catch-meta", budget=12)
    assert [t.seed for t in back] == [0, 1, 2] and back[0].config.budget == 12
    for a, b in zip(back, three):
        for x, y in zip(jax.tree.leaves(a.agent), jax.tree.leaves(b.agent)):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    with pytest.raises(CatchjaxError, match="holds several agents.*seed-0"):
        agents.load_agent(path, syn_nb201)
    # a plain checkpoint is a folder of one
    assert [t.seed for t in agents.load_agents(agents.save_agent(tmp_path / "one", three[1]))] \
        == [1]
    # an edited list is refused
    listed["agents"] = ["seed-1", "seed-0", "seed-2"]
    (path / checkpoints.SET_MANIFEST).write_text(json.dumps(listed))
    with pytest.raises(CatchjaxError, match="changed after it was written"):
        agents.load_agents(path)


def test_cli_sweep_trains_several_agents_and_init_takes_them_back(tmp_path, capsys):
    out = tmp_path / "first"
    args = ["sweep", "--method", "catch-meta", "--benchmark", "synthetic-nb201", "--task",
            "cifar10", "--trials", "6", "--budget", "10", "--no-progress"]
    assert cli.main([*args, "--out", str(out), "--agents", "3", *SETS]) == 0
    text = capsys.readouterr().out
    assert "training 3 catch-meta agents" in text and "across 3 trained agents" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["agents"] == 3 and summary["meta_seeds"] == [0, 1, 2]
    assert summary["config"]["entropy_coef"] == 0.5
    kept = agents.load_agents(out / "meta-agent")  # kept under --out
    assert len(kept) == 3 and {a.target_task for a in kept} == {"cifar10"}
    again = tmp_path / "again"
    assert cli.main([*args, "--out", str(again), "--init", str(out / "meta-agent")]) == 0
    summary2 = json.loads((again / "summary.json").read_text())
    assert summary2["agent_means"] == summary["agent_means"] and summary2["mean"] == summary["mean"]
    # refusals, before anything trains or compiles
    assert cli.main([*args, "--out", str(tmp_path / "x"), "--init", str(out / "meta-agent"),
                     "--agents", "2"]) == 2
    assert "holds 3 agent(s)" in capsys.readouterr().err
    assert cli.main(["sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task",
                     "cifar10", "--agents", "2", "--out", str(tmp_path / "y")]) == 2
    assert "--agents goes with a method that adapts" in capsys.readouterr().err


def test_checkpoint_keeps_its_training_settings_and_protocol(three, syn_nb201, tmp_path):
    ck = agents.save_agent(tmp_path / "a", three[0])
    manifest = json.loads((ck / "catchjax.json").read_text())
    assert manifest["protocol"] == "nats" and manifest["config"]["meta_tasks"] == "pool"
    assert manifest["pool"] == ["cifar100_valid_acc_12", "imagenet16_valid_acc_12"]
    with pytest.raises(CatchjaxError, match="trained with meta_epochs=3.*meta_epochs=5"):
        agents.load_agent(ck, syn_nb201, meta_epochs=5)
    with pytest.raises(CatchjaxError, match="meta_tasks='pool'"):
        agents.load_agent(ck, syn_nb201, meta_tasks="mixtures")
    assert agents.load_agent(ck, syn_nb201, meta_epochs="3").config.meta_epochs == 3
    fig3 = tasks.make_task("synthetic-nb201", "cifar10", protocol="catch-fig3")
    with pytest.raises(CatchjaxError, match="under the 'nats' protocol.*'catch-fig3'"):
        agents.load_agent(ck, fig3)
    assert agents.load_agent(ck, tasks.make_task("synthetic-nb201", "cifar10",
                                                 protocol="nats")).protocol == "nats"


# -- the many-task pool ------------------------------------------------------------------


def test_many_task_pool_makes_a_new_task_per_meta_epoch_from_the_pool_alone(syn_nb201):
    pool = jnp.asarray(agents.pool_rewards(syn_nb201, agents.meta_pool(syn_nb201)))
    config = methods.make_config("catch-meta", meta_tasks="mixtures", **TINY)
    made = [np.asarray(catch_meta.meta_task_rewards(config, jax.random.key(k), pool))
            for k in range(3)]
    ok = syn_nb201.searchable
    assert all(np.isfinite(m[ok]).all() and np.isneginf(m[~ok]).all() for m in made)
    assert not np.allclose(made[0][ok], made[1][ok])  # a new task per key
    # related to the pool's tasks, as class subsets of one dataset are
    from scipy.stats import spearmanr

    for m in made:
        assert max(spearmanr(m[ok], np.asarray(pool[p])[ok])[0] for p in range(2)) > 0.5
    # meta-training reads only the pool: the target's own reward never enters
    key = jax.random.key(0)
    fn = jax.jit(lambda t: catch_meta.train(config, key, t, pool)[0])
    a = fn(syn_nb201.arrays)
    shuffled = syn_nb201.arrays.replace(reward=syn_nb201.arrays.reward[::-1])
    b = fn(shuffled)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # ... and the pool of a task never holds its columns (checked as for every pool)
    with pytest.raises(CatchjaxError, match="target's own columns"):
        agents.train("catch-meta", syn_nb201, config, pool=["cifar10_valid_valid_acc_12"])


def test_many_task_pool_with_a_meta_batch_and_its_settings_checked(syn_nb201):
    pool = jnp.asarray(agents.pool_rewards(syn_nb201, agents.meta_pool(syn_nb201)))
    config = methods.make_config("catch-meta", meta_tasks="mixtures", meta_batch=2, **TINY)
    _, info = jax.jit(lambda k: catch_meta.train(config, k, syn_nb201.arrays, pool))(
        jax.random.key(1))
    assert info["rows"].shape == (TINY["meta_epochs"], 2, TINY["meta_budget"])
    assert (np.asarray(info["pool_task"]) == -1).all()
    with pytest.raises(CatchjaxError, match="meta_tasks must be one of pool, mixtures"):
        methods.make_config("catch-meta", meta_tasks="subsets").validate(syn_nb201)
    with pytest.raises(CatchjaxError, match="task_noise must be finite and >= 0"):
        methods.make_config("catch-meta", task_noise=-1).validate(syn_nb201)
    with pytest.raises(CatchjaxError, match="does not use the setting.*meta_tasks"):
        methods.make_config("catch-sfs", meta_tasks="mixtures")
    assert dataclasses.replace(config, meta_tasks="pool") == methods.make_config(
        "catch-meta", meta_batch=2, **TINY)
