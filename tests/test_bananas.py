"""The BANANAS-style predictor search (catchjax.methods.baselines.bananas): its encodings, its
ensemble, its acquisition, and rounds of proposals through ask/tell."""

import dataclasses

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from catchjax import methods
from catchjax.asktell.search import AskTell, task_domain
from catchjax.errors import CatchjaxError
from catchjax.methods.baselines import bananas, reference

TINY = {"n_initial": 4, "batch": 3, "ensemble": 2, "layers": 1, "width": 8,
        "train_steps": 10, "candidates": 12, "parents": 3, "random_candidates": 2}


def test_path_encoding_by_hand(syn_nb201):
    config = bananas.BananasConfig(encoding="path")
    # edges (0->1, 0->2, 1->2, 0->3, 1->3, 2->3); ops 0 none, 1 skip, 2 1x1, 3 3x3, 4 pool
    all_conv = bananas.encode(config, jnp.full((6,), 3), 5)
    # features: 4 single ops, then 16 pairs, then 64 triples (of the 4 ops other than none)
    assert all_conv.shape == (84,)
    assert np.flatnonzero(np.asarray(all_conv)).tolist() == [2, 4 + 2 * 4 + 2,
                                                             20 + 2 * 16 + 2 * 4 + 2]
    # no 0->3 and no 1->2 edge: only the paths 0->1->3 (skip, 3x3) and 0->2->3 (1x1, pool)
    two = bananas.encode(config, jnp.asarray([1, 2, 0, 0, 3, 4]), 5)
    assert np.flatnonzero(np.asarray(two)).tolist() == [4 + 0 * 4 + 2, 4 + 1 * 4 + 3]
    # the sequential reference's encoding, written path by path, agrees on every cell
    acts = syn_nb201.table.actions
    np.testing.assert_array_equal(np.asarray(bananas.encode(config, jnp.asarray(acts), 5)),
                                  reference._path_encoding(acts, 5))


def test_auto_encoding_follows_the_space(syn_nb201, syn_macro):
    assert methods.resolve("bananas", syn_nb201).encoding == "path"
    assert methods.resolve("bananas", syn_macro).encoding == "onehot"
    with pytest.raises(CatchjaxError, match="path encoding is for the 4-node cells"):
        methods.resolve("bananas", syn_macro, encoding="path")


def test_the_ensemble_fits_a_known_linear_reward(syn_nb201):
    """Trained on 100 networks whose reward is linear in the one-hot ops, the ensemble
    ranks 500 other networks as that reward does (Spearman >= 0.9)."""
    config = bananas.BananasConfig(encoding="onehot")
    rng = np.random.default_rng(0)
    rows = rng.permutation(syn_nb201.table.n_archs)[:600]
    x = bananas.encode(config, jnp.asarray(syn_nb201.table.actions[rows]), 5)
    y = x @ jnp.asarray(rng.normal(size=x.shape[1]), jnp.float32)
    train = jnp.arange(600) < 100
    params = jax.jit(lambda k: bananas.fit_ensemble(
        config, k, x, bananas.standardize(y, train), train))(jax.random.key(0))
    mean = bananas.predict(params, x).mean(0)
    rho = stats.spearmanr(np.asarray(mean)[100:], np.asarray(y)[100:]).statistic
    assert rho >= 0.9, rho


def test_acquisition_picks_what_a_hand_computation_picks():
    # members' predictions for 3 candidates: means 2, 2, 2.5; std 1, 2, 0
    preds = jnp.asarray([[1.0, 4.0, 2.5], [3.0, 0.0, 2.5]])
    ucb = bananas.BananasConfig(acquisition="ucb", beta=0.5)
    np.testing.assert_allclose(bananas.acquisition(ucb, None, preds), [2.5, 3.0, 2.5])
    assert int(jnp.argmax(bananas.acquisition(ucb, None, preds))) == 1
    greedy = dataclasses.replace(ucb, beta=0.0)
    assert int(jnp.argmax(bananas.acquisition(greedy, None, preds))) == 2
    # Thompson sampling: a draw from N(mean, std) per candidate. Candidate 0 ~ N(2, 1)
    # beats candidate 2 (2.5, std 0) with probability P(Z > 0.5) = 0.3085
    its = bananas.BananasConfig(acquisition="its")
    keys = jax.random.split(jax.random.key(0), 4000)
    scores = jax.vmap(lambda k: bananas.acquisition(its, k, preds[:, [0, 2]]))(keys)
    np.testing.assert_array_equal(scores[:, 1], 2.5)
    share = float((scores[:, 0] > scores[:, 1]).mean())
    assert abs(share - 0.3085) < 3 * np.sqrt(0.3085 * 0.6915 / 4000), share


def test_rounds_through_ask_tell_wait_for_every_reward(syn_nb201):
    search = AskTell.start("bananas", task_domain(syn_nb201), budget=12, seed=0, **TINY)
    seeds = search.ask(10)
    assert [p["id"] for p in seeds] == [0, 1, 2, 3]
    assert search.ask(1) == []
    search.tell([p["id"] for p in seeds], [0.1, 0.4, 0.2, 0.3])
    first = search.ask(2)  # a round of 3 may go to workers while the others train
    assert [p["id"] for p in search.ask(5)] == [6] and search.ask(1) == []
    search.tell([p["id"] for p in first] + [6], [0.5, 0.6, 0.7])
    assert len(search.ask(10)) == 3
    assert search.config.encoding == "path"


def test_a_round_fits_on_the_first_rows_that_hold_every_told_network(syn_nb201):
    """fit_told fits on the first 16, 32, 48 or all 50 ledger rows, the least that holds
    every asked one: the same fit as on exactly those rows, blind to the rows after them,
    and (one Adam step, before MAE's kinks and Adam's sign-like first steps amplify
    rounding) the fit on all 50 masked rows."""
    config = bananas.BananasConfig(train_steps=20, ensemble=2).for_task(syn_nb201)
    assert bananas.fit_sizes(config) == (16, 32, 48, 50)
    assert bananas.fit_sizes(dataclasses.replace(config, budget=500))[-3:] == (224, 336, 500)
    assert bananas.fit_sizes(dataclasses.replace(config, budget=12)) == (12,)
    rng = np.random.default_rng(1)
    x = bananas.encode(config, jnp.asarray(syn_nb201.table.actions[rng.permutation(
        syn_nb201.table.n_archs)[:50]]), 5)
    y = jnp.asarray(rng.normal(size=50), jnp.float32)
    fit_told = jax.jit(bananas.fit_told, static_argnums=0)
    fit = jax.jit(bananas.fit_ensemble, static_argnums=0)
    one_step = dataclasses.replace(config, train_steps=1)
    key = jax.random.key(2)
    for n_asked, size in ((10, 16), (16, 16), (17, 32), (45, 48)):
        told = jnp.arange(50) < n_asked
        ys = bananas.standardize(y, told)
        got = bananas.predict(fit_told(config, key, x, ys, told, n_asked), x)
        want = bananas.predict(fit(config, key, x[:size], ys[:size], told[:size]), x)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        later = bananas.predict(fit_told(config, key, x.at[size:].set(1.0),
                                         ys.at[size:].set(5.0), told, n_asked), x)
        np.testing.assert_array_equal(np.asarray(later), np.asarray(got))
        np.testing.assert_allclose(
            np.asarray(bananas.predict(fit_told(one_step, key, x, ys, told, n_asked), x)),
            np.asarray(bananas.predict(fit(one_step, key, x, ys, told), x)), atol=1e-3)


def test_a_sweep_computes_one_fit_size_per_round(syn_nb201):
    """Vmapped over trials, the number asked stays one unbatched number, so the round's
    switch between fit sizes stays a branch (were it batched, vmap would compute every
    size for every trial and select: the search would be slower than without sizes)."""
    config = bananas.BananasConfig(budget=40, **TINY).for_task(syn_nb201)
    search = jax.vmap(lambda k: bananas.bananas(config, k, syn_nb201.arrays).rows)
    jaxpr = jax.make_jaxpr(search)(jax.random.split(jax.random.key(0), 3))

    def branch_counts(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "cond":
                yield len(eqn.params["branches"])
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                yield from branch_counts(sub)

    assert len(bananas.fit_sizes(config)) in set(branch_counts(jaxpr.jaxpr))
