"""Local search (catchjax.methods.baselines.local_search): one-edit moves, no repeats, restarts
only at local optima, and the top of a single basin."""

import numpy as np
import pytest

from catchjax.benchmarks import tables, tasks
from catchjax.runs import sweeps

TRIALS, BUDGET = 32, 120


def _with_reward(task, name, values):
    t = task.table
    table = tables.Table(t.benchmark, t.space, t.actions, t.arch_str,
                         {**t.columns, name: np.asarray(values, np.float32)}, t.source)
    return tasks.make_task(task.spec.benchmark, task.spec.task, reward=name, table=table)


@pytest.fixture(scope="module")
def rugged(syn_nb201):
    """Independent random rewards: many local optima, so restarts happen."""
    values = np.random.default_rng(0).permutation(syn_nb201.table.n_archs)
    return _with_reward(syn_nb201, "rugged", values)


@pytest.fixture(scope="module")
def rugged_sweeps(rugged):
    return {imp: sweeps.sweep("ls", rugged, trials=TRIALS, budget=BUDGET, seed=0,
                              improvement=imp, progress=False) for imp in ("best", "first")}


def _one_edit(actions, a, b) -> bool:
    return int((actions[a] != actions[b]).sum()) == 1


@pytest.mark.parametrize("improvement", ["best", "first"])
def test_moves_are_one_edit_and_restarts_only_at_local_optima(rugged_sweeps, rugged,
                                                              improvement):
    result = rugged_sweeps[improvement]
    acts, reward = rugged.table.actions, np.asarray(rugged.arrays.reward)
    nbrs = np.asarray(rugged.arrays.neighbors)
    restarts = np.asarray(result.metrics["restart"]) > 0
    assert restarts.any(), "the rugged table should force restarts"
    for trial in range(TRIALS):
        rows = result.rows[trial]
        assert len(set(rows.tolist())) == BUDGET  # never evaluates a network twice
        for t in range(10, BUDGET):
            before = rows[:t]
            if restarts[trial, t - 10]:
                # some evaluated network is a local optimum whose neighbours were all
                # evaluated: the search had nowhere better to go
                done = [c for c in before
                        if set(nbrs[c][nbrs[c] >= 0].tolist()) <= set(before.tolist())]
                assert any(reward[nbrs[c][nbrs[c] >= 0]].max() <= reward[c] for c in done)
            else:
                assert any(_one_edit(acts, c, rows[t]) for c in before)


@pytest.mark.parametrize("improvement", ["best", "first"])
def test_reaches_the_top_of_a_single_basin(syn_nb201, improvement):
    """Reward = decisions shared with one target cell: every other cell has a better
    neighbour, so local search climbs to the target without a restart."""
    target = syn_nb201.table.actions[1234]
    values = (syn_nb201.table.actions == target).sum(1).astype(np.float32)
    basin = _with_reward(syn_nb201, "basin", values)
    budget = 10 + 6 * 24 + 1  # the seeds, a full neighbourhood per decision to fix, the top
    result = sweeps.sweep("ls", basin, trials=16, budget=budget, seed=1, improvement=improvement,
                          progress=False)
    assert (result.rows == 1234).any(axis=1).all()
    first_top = (result.rows == 1234).argmax(axis=1)
    restarts = np.asarray(result.metrics["restart"])
    assert all(restarts[i, : max(first_top[i] - 10, 0)].sum() == 0 for i in range(16))


def test_first_improvement_agrees_with_the_sequential_reference(rugged):
    """Same algorithm, different random streams (the default 'best' is checked in
    test_baselines): the mean best reward of 300 searches agrees within 4 standard errors."""
    from catchjax.methods.baselines import reference

    reward = np.asarray(rugged.arrays.reward)
    jax_best = sweeps.sweep("ls", rugged, trials=300, budget=60, seed=2, improvement="first",
                            progress=False).rewards.max(1)
    ref_best = reward[reference.run("ls", rugged, trials=300, budget=60, seed=2,
                                    improvement="first")]
    se = np.sqrt(jax_best.var(ddof=1) / 300 + ref_best.var(ddof=1) / 300)
    assert abs(jax_best.mean() - ref_best.mean()) < 4 * se


def test_bad_settings_are_refused_before_compiling(syn_nb201, syn_macro, no_compile):
    from catchjax.errors import CatchjaxError

    with pytest.raises(CatchjaxError, match="n_initial >= 1"):
        sweeps.sweep("ls", syn_nb201, trials=2, budget=20, n_initial=0)
    with pytest.raises(CatchjaxError, match="'best' or 'first'"):
        sweeps.sweep("ls", syn_nb201, trials=2, budget=20, improvement="steepest")
    with pytest.raises(CatchjaxError, match="only 3256 searchable"):
        sweeps.sweep("ls", syn_macro, trials=2, budget=4000)


def test_the_neighbour_order_is_the_keys_sorted_and_uniform():
    """The centre's neighbours are visited in the order of random 32-bit keys (ties by
    slot): the first slot of that order among some slots is the first of them in the
    stable sort of the keys and, for a neighbourhood of 24 slots, in
    jax.random.permutation's order (so LS's trials kept their bits when it stopped
    sorting); over many draws every slot is first equally often."""
    import jax

    from catchjax.methods.baselines.local_search import first_in_order, order_keys

    keys = jax.random.split(jax.random.key(3), 12000)
    masks = np.random.default_rng(0).random((12000, 24)) < 0.3
    masks[:, 5] |= ~masks.any(1)  # at least one slot each
    bits = np.asarray(jax.vmap(lambda k: order_keys(k, 24))(keys))
    first = jax.jit(jax.vmap(first_in_order))
    stable = np.argsort(bits, axis=1, kind="stable")
    expect = stable[np.arange(12000), np.argmax(masks[np.arange(12000)[:, None], stable], 1)]
    np.testing.assert_array_equal(np.asarray(first(masks, bits)), expect)
    perms = np.asarray(jax.vmap(lambda k: jax.random.permutation(k, 24))(keys[:500]))
    np.testing.assert_array_equal(perms, stable[:500])
    tied = bits % 3  # ties: the lowest slot of the least key among the masked slots
    stable = np.argsort(tied, axis=1, kind="stable")
    expect = stable[np.arange(12000), np.argmax(masks[np.arange(12000)[:, None], stable], 1)]
    np.testing.assert_array_equal(np.asarray(first(masks, tied)), expect)
    counts = np.bincount(np.asarray(first(np.ones_like(masks), bits)), minlength=24)
    assert counts.min() > 12000 / 24 * 0.8 and counts.max() < 12000 / 24 * 1.2
    # keys equal to the largest 32-bit number, and no slot masked (then slot 0)
    top = np.full(6, 0xFFFFFFFF, np.uint32)
    cases = [([0, 0, 1, 0, 1, 0], top, 2), ([0, 0, 0, 0, 0, 0], top, 0),
             ([0, 1, 0, 1, 0, 0], np.array([0, 0xFFFFFFFF, 0, 7, 0, 0], np.uint32), 3),
             ([1, 0, 0, 1, 0, 0], np.array([0xFFFFFFFF, 0, 0, 5, 0, 0], np.uint32), 3)]
    for mask, keys6, want in cases:
        assert int(first_in_order(np.asarray(mask, bool), keys6)) == want


def test_the_search_state_does_not_grow_with_the_table(syn_nb201):
    """What was asked and what it scored are looked up in the ledger: no array of a trial's
    state is the table's size (two [15625] arrays per trial made a vmapped sweep
    memory-bound), so a state is the same size on a table of 15,625 networks or of 3,256."""
    import jax

    from catchjax.methods.baselines import local_search as ls

    config = ls.LocalSearchConfig(budget=50)
    leaves = jax.tree.leaves(jax.eval_shape(
        lambda k: ls.start(config, k, syn_nb201.arrays), jax.random.key(0)))
    assert syn_nb201.table.n_archs == 15625
    assert max(x.size for x in leaves) <= max(config.budget, syn_nb201.arrays.neighbors.shape[1])
