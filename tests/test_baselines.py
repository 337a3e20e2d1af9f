"""Baselines as sweeps: vmap-invariance, seed independence, and agreement with theory."""

import numpy as np
import pytest

from catchjax.benchmarks import tasks
from catchjax.errors import CatchjaxError
from catchjax.methods.baselines import reference
from catchjax.runs import analysis, sweeps

METHODS = ["random", "rea", "reinforce", "ls", "bananas"]
TRIALS, BUDGET = 64, 30
# settings that keep the compiled searches small (the defaults are for studies)
SETTINGS = {"bananas": {"n_initial": 6, "batch": 4, "ensemble": 2, "layers": 1, "width": 8,
                        "train_steps": 20, "candidates": 16, "parents": 4,
                        "random_candidates": 2}}


def _settings(method):
    return SETTINGS.get(method, {})


@pytest.fixture(scope="module")
def nb201_sweeps(syn_nb201):
    return {m: sweeps.sweep(m, syn_nb201, trials=TRIALS, budget=BUDGET, seed=3, **_settings(m))
            for m in METHODS}


@pytest.mark.parametrize("method", METHODS)
def test_trial_i_of_a_sweep_equals_trial_i_alone(nb201_sweeps, syn_nb201, method):
    result = nb201_sweeps[method]
    for i in (0, 17, TRIALS - 1):
        alone = sweeps.run_trial(method, syn_nb201, seed=3, trial=i, budget=BUDGET,
                                 **_settings(method))
        np.testing.assert_array_equal(result.rows[i], alone.rows)
        np.testing.assert_array_equal(result.rewards[i], alone.rewards)  # bitwise on CPU


@pytest.mark.parametrize("method", METHODS)
def test_chunking_does_not_change_results(nb201_sweeps, syn_nb201, method):
    chunked = sweeps.sweep(method, syn_nb201, trials=TRIALS, budget=BUDGET, seed=3, chunk_size=24,
                           **_settings(method))
    np.testing.assert_array_equal(chunked.rows, nb201_sweeps[method].rows)


@pytest.mark.parametrize("method", METHODS)
def test_seeds_and_trials_differ(nb201_sweeps, syn_nb201, method):
    result = nb201_sweeps[method]
    other = sweeps.sweep(method, syn_nb201, trials=TRIALS, budget=BUDGET, seed=4,
                         **_settings(method))
    assert not np.array_equal(result.rows, other.rows)
    # no two trials of one sweep are the same search
    distinct = {tuple(r) for r in result.rows.tolist()}
    assert len(distinct) == TRIALS


def test_random_search_without_replacement_never_repeats(nb201_sweeps):
    rows = nb201_sweeps["random"].rows
    assert all(len(set(r)) == BUDGET for r in rows.tolist())


@pytest.mark.parametrize("method", ["ls", "bananas"])
def test_model_based_searches_never_evaluate_a_network_twice(nb201_sweeps, method):
    assert all(len(set(r)) == BUDGET for r in nb201_sweeps[method].rows.tolist())


def test_evolution_children_are_one_edit_from_a_population_member(nb201_sweeps, syn_nb201):
    result = nb201_sweeps["rea"]
    acts = syn_nb201.table.actions
    for trial in range(5):
        rows = result.rows[trial]
        for t in range(10, BUDGET):
            population = rows[t - 10 : t]
            diffs = (acts[population] != acts[rows[t]]).sum(axis=1)
            assert (diffs == 1).any()


def _exact_rs(task, budget):
    reward = np.asarray(task.arrays.reward)[task.searchable]
    report = np.asarray(task.arrays.report)[task.searchable, 0]
    return analysis.random_search_expectation(reward, report, budget)


def test_random_search_mean_matches_order_statistics(syn_nb201):
    result = sweeps.sweep("random", syn_nb201, trials=4000, budget=20, seed=11)
    final = result.final_report
    expected = _exact_rs(syn_nb201, 20)
    sem = final.std(ddof=1) / np.sqrt(len(final))
    assert abs(final.mean() - expected) < 4 * sem, (final.mean(), expected, sem)


def test_random_search_on_real_nb201_matches_order_statistics(real_nb201):
    # Real table: many exact ties in the 12-epoch reward exercise the tie handling.
    result = sweeps.sweep("random", real_nb201, trials=4000, budget=50, seed=5)
    final = result.final_report
    expected = _exact_rs(real_nb201, 50)
    sem = final.std(ddof=1) / np.sqrt(len(final))
    assert abs(final.mean() - expected) < 4 * sem, (final.mean(), expected, sem)


def test_order_statistics_formula_by_enumeration():
    # 5 archs, budget 2, ties in reward: brute force over all ordered pairs
    reward = np.array([1.0, 2.0, 2.0, 3.0, 0.5])
    report = np.array([10.0, 20.0, 30.0, 40.0, 5.0])
    import itertools

    vals = []
    for a, b in itertools.permutations(range(5), 2):
        vals.append(report[b] if reward[b] > reward[a] else report[a])
    assert analysis.random_search_expectation(reward, report, 2) == pytest.approx(np.mean(vals))
    vals = []
    for a, b in itertools.product(range(5), repeat=2):
        vals.append(report[b] if reward[b] > reward[a] else report[a])
    assert analysis.random_search_expectation(reward, report, 2, replace=True) == pytest.approx(
        np.mean(vals)
    )


@pytest.mark.parametrize("method", ["rea", "reinforce", "ls", "bananas"])
def test_jax_baselines_agree_with_sequential_numpy_reference(syn_nb201, method):
    """Same algorithm, different random streams: the means must agree statistically."""
    n = 300
    jax_final = sweeps.sweep(method, syn_nb201, trials=n, budget=BUDGET, seed=8,
                             **_settings(method)).final_report
    ref = reference.run(method, syn_nb201, trials=n, budget=BUDGET, seed=8, **_settings(method))
    ref_final = np.asarray(syn_nb201.arrays.report)[ref, 0]
    se = np.sqrt(jax_final.var(ddof=1) / n + ref_final.var(ddof=1) / n)
    assert abs(jax_final.mean() - ref_final.mean()) < 4 * se


def test_searches_beat_random_on_a_table_where_the_answer_is_known(syn_nb201):
    rs = sweeps.sweep("random", syn_nb201, trials=500, budget=100, seed=1).final_report.mean()
    rea = sweeps.sweep("rea", syn_nb201, trials=500, budget=100, seed=1).final_report.mean()
    assert rea > rs


def test_macro_searches_only_evaluate_valid_archs(syn_macro):
    for m in METHODS:
        result = sweeps.sweep(m, syn_macro, trials=32, budget=40, seed=0, **_settings(m))
        assert (result.rows >= 0).all() and (result.rows < 3256).all()
        assert np.isfinite(result.rewards).all()


def test_masked_rows_are_never_evaluated(real_nb201):
    task = tasks.make_task("nb201", "cifar10", reward="flops_cifar10_M_naslib", mask_nan=True,
                           table=real_nb201.table)
    for m in METHODS:
        result = sweeps.sweep(m, task, trials=32, budget=40, seed=0, **_settings(m))
        assert task.searchable[result.rows].all()


def test_bad_sweep_arguments_fail_before_compiling(syn_nb201, syn_macro):
    with pytest.raises(CatchjaxError, match="budget must be a positive"):
        sweeps.sweep("rea", syn_nb201, trials=4, budget=0)
    with pytest.raises(CatchjaxError, match="trials must be a positive"):
        sweeps.sweep("rea", syn_nb201, trials=0, budget=5)
    with pytest.raises(CatchjaxError, match="only 3256"):
        sweeps.sweep("random", syn_macro, trials=2, budget=4000)
    with pytest.raises(CatchjaxError, match="unknown method 'bo'"):
        sweeps.sweep("bo", syn_nb201, trials=2, budget=5)
    with pytest.raises(CatchjaxError, match="no setting tournament"):
        sweeps.sweep("rea", syn_nb201, trials=2, budget=5, tournament=4)


def test_summary_fields(nb201_sweeps):
    s = nb201_sweeps["rea"].summary()
    for key in ("method", "benchmark", "task", "trials", "budget", "seed", "reward_metric",
                "report_metric", "mean", "std", "ci95", "best_hits", "wall_seconds",
                "compile_seconds", "device", "versions"):
        assert key in s
    lo, hi = s["ci95"]
    assert lo <= s["mean"] <= hi
    final = nb201_sweeps["rea"].final_report
    assert s["best_hits"] == int(np.sum(final >= s["table_best"]))


def test_distinct_indices_are_uniform():
    import jax

    from catchjax.methods.baselines.random_search import distinct_indices

    n, k, reps = 10, 4, 20_000
    keys = jax.random.split(jax.random.key(0), reps)
    picks = np.asarray(jax.vmap(lambda key: distinct_indices(key, n, k))(keys))
    assert all(len(set(p)) == k for p in picks[:500].tolist())
    from scipy.stats import chisquare

    # every index is in the subset with probability k/n, and every position is uniform
    assert chisquare(np.bincount(picks.ravel(), minlength=n)).pvalue > 1e-3
    for pos in range(k):
        assert chisquare(np.bincount(picks[:, pos], minlength=n)).pvalue > 1e-3


def test_restarts_draw_uniformly_from_the_networks_not_evaluated():
    """core.unevaluated_row (local search's restarts, BANANAS' fill-ins): never an asked
    row, every other searchable row equally likely, also when nearly all are asked."""
    import jax
    import jax.numpy as jnp
    from scipy.stats import chisquare

    from catchjax.core import unevaluated_row

    valid = jnp.asarray([0, 2, 3, 5, 7, 8, 9], jnp.int32)  # row 1, 4, 6 not searchable
    for asked_rows in ([2, 5], [0, 2, 3, 5, 7, 8]):
        asked = jnp.zeros(10, bool).at[jnp.asarray(asked_rows)].set(True)
        keys = jax.random.split(jax.random.key(1), 6000)
        draws = np.asarray(jax.vmap(lambda k, a=asked: unevaluated_row(k, valid, a))(keys))
        rest = sorted(set(np.asarray(valid).tolist()) - set(asked_rows))
        assert set(draws.tolist()) == set(rest)
        if len(rest) > 1:
            assert chisquare([int((draws == r).sum()) for r in rest]).pvalue > 1e-3


def test_unevaluated_row_redraws_only_where_needed():
    """Where the caller does not need the row (a local search that does not restart), the
    first draw comes back as is; where it does, the same draws go on to an unasked row, so
    a vmapped search's restarting trials get the same rows as before."""
    import jax
    import jax.numpy as jnp

    from catchjax.core import unevaluated_row

    valid = jnp.arange(10, dtype=jnp.int32)
    asked = jnp.ones(10, bool).at[7].set(False)  # only row 7 is left
    keys = jax.random.split(jax.random.key(4), 200)
    needed = jnp.arange(200) % 2 == 0
    rows = np.asarray(jax.vmap(lambda k, n: unevaluated_row(k, valid, asked, n))(keys, needed))
    first = np.asarray(jax.vmap(lambda k: unevaluated_row(k, valid, jnp.zeros(10, bool)))(keys))
    assert (rows[::2] == 7).all()
    np.testing.assert_array_equal(rows[1::2], first[1::2])
    assert (first[1::2] != 7).any()


def test_sweep_shards_over_several_devices(tmp_path):
    """With 2 (forced) CPU devices the sharded sweep equals the single-device one."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        import jax, numpy as np
        from catchjax import make_task, sweep
        assert jax.local_device_count() == 2
        task = make_task("synthetic-transnas-micro", "jigsaw")
        two = sweep("rea", task, trials=10, budget=15, seed=2)
        one = sweep("rea", task, trials=10, budget=15, seed=2, devices=jax.local_devices()[:1])
        assert np.array_equal(two.rows, one.rows)
        assert two.device.endswith("x2")
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ok" in out.stdout
