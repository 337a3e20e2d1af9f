"""CATCH search loop (from scratch and the z ablations) as sweeps, on small configs."""

import numpy as np
import pytest

from catchjax.errors import CatchjaxError
from catchjax.runs import sweeps

SMALL = dict(candidates=24, hidden=32, updates_per_epoch=2)
TRIALS, BUDGET = 200, 30


@pytest.fixture(scope="module")
def catch_sweep(syn_nb201):
    return sweeps.sweep("catch-sfs", syn_nb201, trials=TRIALS, budget=BUDGET, seed=1, **SMALL)


def test_trial_i_of_a_catch_sweep_equals_trial_i_alone(catch_sweep, syn_nb201):
    for i in (0, TRIALS - 1):
        alone = sweeps.run_trial("catch-sfs", syn_nb201, seed=1, trial=i, budget=BUDGET, **SMALL)
        np.testing.assert_array_equal(catch_sweep.rows[i], alone.rows)
        np.testing.assert_allclose(catch_sweep.rewards[i], alone.rewards)


@pytest.fixture(scope="module")
def default_sized_sweep(syn_nb201, users_compiler):
    """24 trials at CATCH's default network sizes (shared by the two tests below),
    compiled as a user's are."""
    with users_compiler():
        return sweeps.sweep("catch-sfs", syn_nb201, trials=24, budget=40, seed=0)


def test_a_catch_trial_does_not_depend_on_how_many_trials_share_its_call(default_sized_sweep,
                                                                          syn_nb201,
                                                                          users_compiler):
    """At the default network sizes, 24 trials as one call and as 12 calls of two trials
    (chunk_size=2) search the same networks bit for bit. Before catchjax.runs.numerics turned
    XLA's YNNPACK fusions off, larger batches summed in another order (11 of these 24
    trials differed); before sweeps kept two trials per call, a batch of one compiled to
    other arithmetic (10 differed). A call of one trial (chunk_size=1) runs this same
    two-trial program on the trial and a copy of it, as run_trial does (next test); these
    calls are of two different trials, at half the cost of 24 calls of one."""
    whole = default_sized_sweep
    with users_compiler():
        in_pairs = sweeps.sweep("catch-sfs", syn_nb201, trials=24, budget=40, seed=0,
                                chunk_size=2)
    np.testing.assert_array_equal(whole.rows, in_pairs.rows)
    np.testing.assert_array_equal(whole.rewards, in_pairs.rewards)


def test_a_catch_trial_run_alone_equals_the_sweeps_at_default_sizes(default_sized_sweep,
                                                                    syn_nb201, users_compiler):
    """run_trial runs the sweep's own program (the trial and a copy of it), so at CATCH's
    default sizes it equals the sweep's trial; computed without a batch axis, as it was
    before, 1 of 6 trials at budget 40 chose other networks."""
    whole = default_sized_sweep
    for i in (0, 7, 23):
        with users_compiler():
            alone = sweeps.run_trial("catch-sfs", syn_nb201, seed=0, trial=i, budget=40)
        np.testing.assert_array_equal(alone.rows, whole.rows[i])
        np.testing.assert_array_equal(alone.rewards, whole.rewards[i])


def test_catch_seeds_and_trials_differ(catch_sweep, syn_nb201):
    other = sweeps.sweep("catch-sfs", syn_nb201, trials=8, budget=BUDGET, seed=2, **SMALL)
    assert not np.array_equal(other.rows, catch_sweep.rows[:8])
    assert len({tuple(r) for r in catch_sweep.rows.tolist()}) == TRIALS


def test_catch_improves_over_random_search(catch_sweep, syn_nb201):
    rs = sweeps.sweep("random", syn_nb201, trials=TRIALS, budget=BUDGET, seed=1).final_report
    ours = catch_sweep.final_report
    se = np.sqrt(ours.var(ddof=1) / TRIALS + rs.var(ddof=1) / TRIALS)
    assert ours.mean() - rs.mean() > 2 * se, (ours.mean(), rs.mean(), se)


def test_catch_variants_run_on_the_macro_space(syn_macro):
    for method in ("catch-sfs-zero", "catch-sfs-random"):
        r = sweeps.sweep(method, syn_macro, trials=4, budget=12, seed=0, **SMALL)
        assert (r.rows >= 0).all() and np.isfinite(r.rewards).all()
        assert r.summary()["config"]["context"] in ("zero", "random")


def test_bad_catch_configs_are_refused(syn_nb201):
    with pytest.raises(CatchjaxError, match="candidates"):
        sweeps.sweep("catch-sfs", syn_nb201, trials=2, budget=5, candidates=0)
    with pytest.raises(CatchjaxError, match="z_dim"):
        sweeps.sweep("catch-sfs", syn_nb201, trials=2, budget=5, z_dim=0)


def test_constant_rewards_do_not_produce_nan(syn_nb201):
    """Normalizing constant rewards must not divide by zero (paper: r normalized)."""
    import dataclasses

    import jax

    from catchjax.benchmarks import tables, tasks
    from catchjax.methods import catch, catch_meta

    table = syn_nb201.table
    flat = tables.Table(table.benchmark, table.space, table.actions, table.arch_str,
                        {**table.columns, "flat": np.full(table.n_archs, 50.0, np.float32)},
                        table.source)
    task = tasks.make_task("synthetic-nb201", "cifar10", reward="flat", table=flat)
    config = dataclasses.replace(catch.CatchConfig(), budget=10, **SMALL)
    trace, agent = jax.jit(lambda k: catch_meta.search_and_learn(config, k, task.arrays))(
        jax.random.key(0))
    assert np.all(np.asarray(trace.rewards) == 50.0)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(agent))
