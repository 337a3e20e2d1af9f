"""The designed task family of issue 32 (catchjax.benchmarks.context_family), the oracle
context, and that a task's context reaches CATCH's decisions: on this family an agent
that is given the task beats one with z = 0, and one that learns z from its history does
too."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from catchjax import methods
from catchjax.asktell.search import space_domain
from catchjax.benchmarks import catalog, context_family, tasks
from catchjax.errors import CatchjaxError
from catchjax.methods import catch
from catchjax.runs import agent as agents
from catchjax.runs import numerics, sweeps
from catchjax.runs.analysis import bootstrap_ci


@pytest.fixture(scope="module")
def family():
    return tasks.make_task("synthetic-context", "type0_a")


def _score(task, name):
    return task.table.columns[f"{name}__valid_score"]


def test_types_come_in_opposite_pairs_and_siblings_agree(family):
    names = context_family.task_names()
    assert len(names) == 18 and names[0] == "type0_a"
    scores = np.stack([_score(family, n) for n in names])
    assert np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(scores.std(axis=1), 1, atol=1e-4)
    corr = np.corrcoef(scores)
    types = np.array([context_family.type_of(n) for n in names])
    same = types[:, None] == types[None, :]
    opposite = (types[:, None] // 2 == types[None, :] // 2) & ~same
    assert corr[same].min() > 0.8  # siblings rank cells alike
    assert corr[opposite].max() < -0.8  # the pair's best cells are the other's worst
    assert np.abs(corr[~same & ~opposite]).max() < 0.5  # other pairs: unrelated
    # the best cells of the six types are six different cells
    assert len({int(np.argmax(scores[types == t][0])) for t in range(6)}) == 6


def test_leaving_a_task_out_keeps_its_siblings_in_the_pool():
    pool = catalog.training_pool("synthetic-context", "type0_a")
    assert "type0_a__valid_score" not in pool and len(pool) == 17
    assert {"type0_b__valid_score", "type0_c__valid_score"} <= set(pool)


def test_oracle_context_is_the_task_itself(family):
    r = jnp.asarray(_score(family, "type0_a"))
    z = catch.oracle_context(r, 10)
    np.testing.assert_allclose(catch.oracle_context(3 * r + 7, 10), z, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(catch.oracle_context(-r, 10), -z, rtol=1e-5, atol=1e-6)
    sibling = catch.oracle_context(jnp.asarray(_score(family, "type0_b")), 10)
    other = catch.oracle_context(jnp.asarray(_score(family, "type2_a")), 10)
    assert np.linalg.norm(z - sibling) < 0.5 * np.linalg.norm(z - other)
    # unreachable rows (-inf) are left out, not turned into NaN
    masked = catch.oracle_context(r.at[:100].set(-jnp.inf), 10)
    assert np.all(np.isfinite(masked))


def test_the_oracle_context_needs_a_table(syn_nb201):
    config = methods.build("catch-oracle", 10)
    config.validate(syn_nb201)  # a table task: fine
    with pytest.raises(CatchjaxError, match="whole reward table"):
        config.validate(space_domain("nb201"))  # rewards told from outside: refused


SMALL = dict(candidates=50, hidden=32, z_dim=4, updates_per_epoch=2, n_initial=4)
META = dict(SMALL, meta_budget=16)


def _adapted(method, task, **settings):
    """Best reward of 120 searches of 16 cells of the target by six agents meta-trained on
    the family's 17 other tasks (one agent's luck moves a mean of two by 0.4)."""
    config = methods.build(method, 16, **META, **settings)
    trained = agents.train_many(method, task, config, seeds=list(range(6)))
    res = sweeps.sweep(config, task, trials=120, seed=0, agent=[t.agent for t in trained])
    return np.max(res.rewards, axis=1)


def _apart(better, worse):
    lo, _ = bootstrap_ci(better)
    _, hi = bootstrap_ci(worse)
    assert lo > hi, (better.mean(), worse.mean())


@pytest.fixture(scope="module")
def zero_context(family):
    return _adapted("catch-zero", family, meta_epochs=40)


def test_a_context_that_knows_the_task_beats_z_zero(family, zero_context):
    """The oracle's z reaches the controller's and the evaluator's decisions: meta-trained
    on the 17 other tasks, it finds better cells of the target than the same agent with
    z = 0, CIs apart (2.33 vs 1.84 standard units). Replacing z by zeros in the
    controller and evaluator fails this."""
    _apart(_adapted("catch-oracle", family, meta_epochs=40), zero_context)


@pytest.mark.slow
def test_a_learned_context_beats_z_zero(family):
    """The encoder learns the task from the history: with a small KL weight (0.01; at the
    paper's 0.1 the posterior collapses onto the prior on this family) and a meta-batch
    of 4, learned z beats z = 0, CIs apart."""
    settings = dict(meta_epochs=100, meta_batch=4)
    _apart(_adapted("catch-meta", family, beta_kl=0.01, **settings),
           _adapted("catch-zero", family, **settings))


def test_entropy_schedule_runs_from_start_to_end(family):
    config = methods.build("catch-sfs", 8, candidates=4, hidden=8, z_dim=2,
                           updates_per_epoch=1, n_initial=3, entropy_coef=0.4,
                           entropy_coef_end=0.1)
    res = sweeps.sweep(config, family, trials=2, seed=0)
    coef = np.asarray(res.metrics["entropy_coef"])
    np.testing.assert_allclose(coef[:, 0], 0.4, rtol=1e-6)
    np.testing.assert_allclose(coef[:, -1], 0.1, rtol=1e-6)
    assert np.all(np.diff(coef, axis=1) < 0)
    with pytest.raises(CatchjaxError, match="entropy_coef_end"):
        methods.build("catch-sfs", 10, entropy_coef_end=-1.0).validate(family)
    # as typed on the command line (--set entropy_coef_end=0.1 / none)
    assert methods.make_config("catch-meta", entropy_coef_end="0.1").entropy_coef_end == 0.1
    assert methods.make_config("catch-meta", entropy_coef_end="none").entropy_coef_end is None
    with pytest.raises(CatchjaxError, match="entropy_coef_end of catch-meta is a number"):
        methods.make_config("catch-meta", entropy_coef_end="fast")


def test_temperature_schedule_concentrates_the_candidates_and_keeps_ppo_on_pi(family):
    """Issue 32 item 2: the candidates' temperature goes linearly from 1 to
    temperature_end; at T = 1 throughout, the search is the unscheduled one bit for bit
    (PPO stores log pi in both), and a low end leaves the last epoch's candidates drawn
    from a far sharper distribution than the first's."""
    base = dict(candidates=16, hidden=8, z_dim=2, updates_per_epoch=1, n_initial=3)
    plain = sweeps.sweep(methods.build("catch-sfs", 12, **base), family, trials=3, seed=1)
    flat = sweeps.sweep(methods.build("catch-sfs", 12, temperature_end=1.0, **base), family,
                        trials=3, seed=1)
    np.testing.assert_array_equal(flat.rows, plain.rows)
    np.testing.assert_array_equal(flat.rewards, plain.rewards)
    sharp = sweeps.sweep(methods.build("catch-sfs", 12, temperature_end=0.05, **base), family,
                         trials=3, seed=1)
    temp = np.asarray(sharp.metrics["temperature"])
    np.testing.assert_allclose(temp[:, 0], 1.0)
    np.testing.assert_allclose(temp[:, -1], 0.05, rtol=1e-6)
    assert np.all(np.diff(temp, axis=1) < 0)
    ent = np.asarray(sharp.metrics["controller_entropy"])
    # a fresh controller is near uniform: only a low temperature sharpens it
    assert np.all(ent[:, -1] < ent[:, 0] - 2.0), ent
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(CatchjaxError, match="temperature_end"):
            methods.build("catch-sfs", 10, temperature_end=bad).validate(family)
    assert methods.make_config("catch-meta", temperature_end="0.2").temperature_end == 0.2


def test_skip_evaluated_never_asks_a_network_twice(family):
    """Issue 32: Algorithm 1 as written re-proposes known networks (the more so the more
    the controller concentrates); with skip_evaluated (the default) every proposal of a
    search is a network it has not asked, in sweeps and in asks of several at once."""
    base = dict(candidates=16, hidden=8, z_dim=2, updates_per_epoch=1, n_initial=3,
                temperature_end=0.02)

    def distinct(res):
        return [len(set(r.tolist())) for r in np.asarray(res.rows)]

    plain = sweeps.sweep(methods.build("catch-sfs", 16, skip_evaluated=False, **base), family,
                         trials=4, seed=2)
    assert min(distinct(plain)) < 16  # a sharp controller repeats itself...
    skip = sweeps.sweep(methods.build("catch-sfs", 16, skip_evaluated=True, **base), family,
                        trials=4, seed=2)
    assert distinct(skip) == [16] * 4  # ...unless it skips what it asked
    config = methods.build("catch-sfs", 16, skip_evaluated=True, **base)
    # compiled as AskTell compiles them (run eagerly, each call traced its loops again)
    start = numerics.jit(catch.STEPPER.start, static_argnums=0)
    ask = numerics.jit(catch.STEPPER.ask, static_argnums=(0, 3, 4))
    tell = numerics.jit(catch.STEPPER.tell, static_argnums=(0, 5))
    arrays = family.arrays
    state = start(config, jax.random.key(3), arrays, None)
    rows, state, _ = ask(config, state, arrays, 3, True)
    state, _ = tell(config, state, arrays, jnp.arange(3), arrays.reward[rows], True)
    asked = list(np.asarray(rows))
    for k in (4, 4, 5):
        rows, state, _ = ask(config, state, arrays, k, False)
        asked += list(np.asarray(rows))
        state, _ = tell(config, state, arrays, jnp.arange(len(asked) - k, len(asked)),
                        arrays.reward[rows], False)
    assert len(asked) == 16 and len(set(asked)) == 16


def test_a_collapsed_controller_that_skips_known_networks_stays_finite(syn_nb201):
    """With the paper's loss the meta-trained controller collapses; skipping the networks
    it keeps proposing then takes ones it gave ~0 probability, whose PPO ratio overflowed
    exp and turned two of these agents' parameters to NaN (before ppo.LOG_RATIO_MAX)."""
    config = methods.make_config("catch-meta", budget=30, skip_evaluated=True,
                                 entropy_coef=0.0, hidden=16, candidates=16, meta_epochs=25,
                                 meta_budget=20)
    trained = agents.train_many("catch-meta", syn_nb201, config, [1, 2])
    for t in trained:
        assert all(np.isfinite(np.asarray(p)).all() for p in jax.tree.leaves(t.agent.params))
    res = sweeps.sweep(config, syn_nb201, trials=2, seed=0, agent=[t.agent for t in trained])
    assert all(np.isfinite(np.asarray(v)).all() for v in res.metrics.values())


def test_a_budget_beyond_the_searchable_networks_is_refused_when_skipping():
    """Never asking twice cannot fill a budget larger than the space (the fallback would
    look for an unasked network forever): refused before compiling, with the way out."""
    class Small:
        name, n_searchable, table = "a 30-network task", 30, None

    with pytest.raises(CatchjaxError, match="budget of 40 cannot exceed the 30 searchable"):
        methods.build("catch-sfs", 40).validate(Small())
    methods.build("catch-sfs", 40, skip_evaluated=False).validate(Small())
    with pytest.raises(CatchjaxError, match="meta_budget of 35"):
        methods.build("catch-meta", 30, meta_budget=35).validate(Small())
