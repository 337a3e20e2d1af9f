"""Meta-trained CATCH and its meta-trained ablations (paper §5), training pools."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from catchjax import cli, methods
from catchjax.benchmarks import tables, tasks
from catchjax.errors import CatchjaxError
from catchjax.methods import catch, catch_meta
from catchjax.runs import agent as agents

TINY = catch.CatchConfig(budget=10, candidates=8, hidden=8, updates_per_epoch=1,
                         meta_epochs=3, meta_budget=8, meta_trained=True)


@pytest.fixture(scope="module")
def zero_agents(syn_nb201):
    config = dataclasses.replace(TINY, context="zero")
    return agents.train_many("catch-zero", syn_nb201, config, seeds=(0, 1))


def test_zero_context_agent_never_trains_or_reads_the_encoder(zero_agents):
    L, K = 6, 5
    config = zero_agents[0].config
    for trained in zero_agents:
        k_init, _ = jax.random.split(jax.random.key(trained.seed))
        fresh = catch.init_agent(config, k_init, L, K)
        # exactly zero gradient: Adam leaves the encoder where it started, moments at 0
        for a, b in zip(jax.tree.leaves(fresh.params["encoder"]),
                        jax.tree.leaves(trained.agent.params["encoder"])):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        mu = trained.agent.opt_state[0].mu["encoder"]
        assert all(not np.asarray(x).any() for x in jax.tree.leaves(mu))
        # while the controller did learn
        assert any(not np.array_equal(a, b) for a, b in zip(
            jax.tree.leaves(fresh.params["controller"]),
            jax.tree.leaves(trained.agent.params["controller"])))
    assert zero_agents[0].method == "catch-zero"
    assert not np.array_equal(np.asarray(jax.tree.leaves(zero_agents[0].agent.params)[3]),
                              np.asarray(jax.tree.leaves(zero_agents[1].agent.params)[3]))


def test_train_many_matches_training_one_by_one(syn_nb201, zero_agents):
    one = agents.train("catch-zero", syn_nb201, zero_agents[1].config, seed=1)
    for a, b in zip(jax.tree.leaves(one.agent), jax.tree.leaves(zero_agents[1].agent)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_trained_agents_say_what_their_compile_seconds_were(syn_nb201, zero_agents):
    """A training compiled earlier in the process is reused (0 s, said so), with the same
    agents; a first compile is "compiled", or "loaded" from the compilation cache."""
    assert {a.compile_source for a in zero_agents} <= {"compiled", "loaded"}
    assert zero_agents[0].compile_seconds > 0
    again = agents.train_many("catch-zero", syn_nb201, zero_agents[0].config, seeds=(0, 1))
    assert [(a.compile_source, a.compile_seconds) for a in again] == [("reused", 0.0)] * 2
    for a, b in zip(jax.tree.leaves(again[1].agent), jax.tree.leaves(zero_agents[1].agent)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_checkpoint_records_context_and_pool_and_refuses_another(zero_agents, syn_nb201,
                                                                 tmp_path, capsys):
    ck = agents.save_agent(tmp_path / "zero", zero_agents[0])
    manifest = json.loads((ck / "catchjax.json").read_text())
    assert manifest["method"] == "catch-zero" and manifest["config"]["context"] == "zero"
    assert manifest["pool"] == ["cifar100_valid_acc_12", "imagenet16_valid_acc_12"]
    with pytest.raises(CatchjaxError, match="holds a catch-zero agent, not one for catch-meta"):
        agents.load_agent(ck, syn_nb201, method="catch-meta")
    with pytest.raises(CatchjaxError, match="fixes context='zero'"):
        agents.load_agent(ck, syn_nb201, context="learned")
    assert cli.main(["sweep", "--method", "catch-meta", "--benchmark", "synthetic-nb201",
                     "--task", "cifar10", "--init", str(ck), "--trials", "2", "--budget", "10",
                     "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "holds a catch-zero agent" in capsys.readouterr().err
    assert cli.main(["sweep", "--method", "catch-zero", "--benchmark", "synthetic-nb201",
                     "--task", "cifar10", "--init", str(ck), "--trials", "2", "--budget", "10",
                     "--out", str(tmp_path / "o"), "--no-progress"]) == 0


def test_meta_trained_ablations_require_an_agent_and_train_one_from_the_cli(tmp_path,
                                                                          syn_nb201):
    for name in ("catch-zero", "catch-random"):
        assert methods.get(name).learner is not None
        with pytest.raises(CatchjaxError, match=f"{name} adapts a meta-trained agent"):
            from catchjax.runs import sweeps

            sweeps.sweep(name, syn_nb201, trials=2, budget=10)
    out = tmp_path / "random"
    assert cli.main(["sweep", "--method", "catch-random", "--benchmark", "synthetic-nb201",
                     "--task", "cifar100", "--trials", "2", "--budget", "10", "--pool", "12,200",
                     "--set", "candidates=8", "--set", "hidden=8", "--set", "meta_epochs=2",
                     "--set", "meta_budget=8", "--agents", "2", "--out", str(out),
                     "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "catch-random" and summary["config"]["context"] == "random"
    assert summary["meta_pool"] == ["cifar10_valid_valid_acc_12", "cifar10_valid_valid_acc_200",
                                    "imagenet16_valid_acc_12", "imagenet16_valid_acc_200"]
    # several agents (seeds 0, 1), the trials shared among them (issue 19)
    assert summary["agents"] == 2 and summary["meta_seeds"] == [0, 1]
    manifest = json.loads((out / "meta-agent" / "seed-0" / "catchjax.json").read_text())
    assert manifest["method"] == "catch-random"


@pytest.mark.parametrize("benchmark", ["nb201", "transnas-micro", "transnas-macro"])
def test_no_pool_ever_holds_a_column_of_the_target(benchmark):
    info = tables.BENCHMARKS[benchmark]
    for target, defaults in info.tasks.items():
        own = tables.target_columns(benchmark, target) | {defaults.reward, *defaults.report}
        for pool in (None, *info.pools):
            columns = tables.training_pool(benchmark, target, pool)
            assert columns and not set(columns) & own, (target, pool, columns)
            # and every column belongs to another task
            prefix = {"cifar10": "cifar10_", "cifar100": "cifar100_",
                      "imagenet16-120": "imagenet16_"}.get(target, f"{target}__")
            assert not any(c.startswith(prefix) for c in columns)


def test_named_pools_of_nb201():
    assert tables.training_pool("nb201", "cifar10") == ["cifar100_valid_acc_12",
                                                        "imagenet16_valid_acc_12"]
    assert tables.training_pool("nb201", "imagenet16-120", "12,test12") == [
        "cifar10_valid_valid_acc_12", "cifar10_test_acc_12",
        "cifar100_valid_acc_12", "cifar100_test_acc_12"]
    micro = tasks.make_task("synthetic-transnas-micro", "autoencoder")
    assert agents.meta_pool(micro) == [f"{t}__valid_{m}" for t, m in
                                       tables.TRANSNAS_METRIC.items() if t != "autoencoder"]


def _leaves_close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def test_meta_batch_of_one_task_twice_is_one_search(syn_nb201):
    """The lockstep meta-batch step is the mean of each search's Eq. 2: two copies of the
    same search (same key, same rewards) propose what that search proposes alone and move
    the agent exactly as it does."""
    config = dataclasses.replace(TINY, budget=TINY.meta_budget)
    task = syn_nb201.arrays
    agent = catch.init_agent(config, jax.random.key(0), 6, 5)
    key = jax.random.key(4)
    one_trace, one_agent = catch_meta.search_and_learn(config, key, task, agent)
    lockstep = catch_meta.lockstep_search_and_learn
    rows, both = jax.jit(lambda k, r: lockstep(config, k, task, r, agent))(
        jax.numpy.stack([key, key]), jax.numpy.stack([task.reward, task.reward]))
    np.testing.assert_array_equal(np.asarray(rows), np.stack([one_trace.rows] * 2))
    _leaves_close(both.params, one_agent.params)


def test_meta_batch_trains_on_distinct_pool_tasks(syn_nb201):
    config = dataclasses.replace(TINY, meta_batch=2)
    rewards = agents.pool_rewards(syn_nb201, agents.meta_pool(syn_nb201))
    agent, info = jax.jit(lambda k: catch_meta.train(config, k, syn_nb201.arrays,
                                                jax.numpy.asarray(rewards)))(jax.random.key(0))
    assert info["rows"].shape == (TINY.meta_epochs, 2, TINY.meta_budget)
    # B = pool size: every meta-epoch searches both pool tasks, each on its own reward
    np.testing.assert_array_equal(np.sort(np.asarray(info["pool_task"]), axis=1),
                                  np.tile([0, 1], (TINY.meta_epochs, 1)))
    # the B searches share each Adam step (one per search epoch, not one per search)
    epochs = TINY.meta_budget - TINY.n_initial
    assert int(agent.opt_state[0].count) == TINY.meta_epochs * epochs * TINY.updates_per_epoch
    with pytest.raises(CatchjaxError, match="meta_batch must be >= 1"):
        dataclasses.replace(TINY, meta_batch=0).validate(syn_nb201)
