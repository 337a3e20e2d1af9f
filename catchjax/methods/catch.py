"""The CATCH search loop on one task (paper Algorithm 1, lines 3-13), as one pure function.

Each search epoch is an ask and a tell (:data:`STEPPER`, see :mod:`catchjax.stepping`).
Ask (:func:`propose`): encode the whole search history into z (Eq. 1, reparameterized,
:func:`encode_context`), sample M candidates from the controller, let the evaluator pick
one (epsilon-greedy, :func:`select_candidate`). Tell (:func:`learn`): add the network and
its reward to the history, then take ``updates_per_epoch`` gradient steps (:func:`update_step`) on
L_c + L_e + beta * KL (Eq. 2, :func:`catch_loss`): PPO's clipped surrogate on the
evaluated networks (stored log-probs, rewards normalized over the history) and the
evaluator's Huber loss on a PER batch of 80% of the memory. One Adam optimizer updates all
three networks; the encoder gets the gradient of the whole sum through z.

Variants (paper §4.2, §5): ``context`` = ``learned`` (the encoder's z), ``zero`` (z = 0,
the encoder never runs and gets no gradient), ``random`` (z ~ N(0, I), ignoring the
history) or ``oracle`` (z = the task itself, :func:`oracle_context`: an upper bound for
the learned context that no real search has, issue 32); ``meta_trained`` = the search
adapts an agent meta-trained by :func:`catchjax.methods.catch_meta.train` on a pool of
other tasks with the same context (SPEC §2: leave the target out; methods catch-meta,
catch-zero, catch-random, catch-oracle), or starts from random parameters (catch-sfs,
catch-sfs-zero, catch-sfs-random); see :mod:`catchjax.methods` and :mod:`catchjax.runs.agent`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from catchjax import networks, optimizers, ppo, replay, sampling
from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import Ledger, SearchTrace, Stepper, unevaluated_row, uniform_rows
from catchjax.errors import CatchjaxError

# the settings live in their own module; these names stay importable from here
from catchjax.methods.catch_config import (  # noqa: F401
    CONTEXTS,
    MAX_CANDIDATES,
    META_SETTINGS,
    META_TASKS,
    ORACLE_SEED,
    CatchConfig,
)
from catchjax.stepping import run_on_table, take_planned


@struct.dataclass
class History:
    """The search history: every evaluated network, its reward and its sampling log-prob.

    The PER memory stores only priorities over these slots (slot i of the memory is
    history entry i: its capacity is the budget, so it never wraps).
    """

    actions: jnp.ndarray  # i32 [H, L]
    rewards: jnp.ndarray  # f32 [H]
    log_probs: jnp.ndarray  # f32 [H], under the policy that sampled them
    count: jnp.ndarray  # i32


class CatchNetworks(NamedTuple):
    encoder: networks.ContextEncoder
    controller: networks.Controller
    evaluator: networks.Evaluator


def make_networks(config: CatchConfig, L: int, K: int) -> CatchNetworks:
    hidden = (config.hidden, config.hidden)
    return CatchNetworks(
        networks.ContextEncoder(config.z_dim, hidden),
        networks.Controller(L, K, hidden),
        networks.Evaluator(hidden),
    )


def init_params(config: CatchConfig, key, L: int, K: int):
    enc, ctrl, ev = make_networks(config, L, K)
    k1, k2, k3 = jax.random.split(key, 3)
    z = jnp.zeros(config.z_dim)
    return {
        "encoder": enc.init(k1, jnp.zeros((1, L * K + 1)), jnp.ones(1, bool)),
        "controller": ctrl.init(k2, z, jnp.zeros((L, K))),
        "evaluator": ev.init(k3, jnp.zeros((L, K)), z),
    }


@struct.dataclass
class AgentState:
    """What carries over between searches: the three networks and their Adam state."""

    params: dict
    opt_state: object


def init_agent(config: CatchConfig, key, L: int, K: int) -> AgentState:
    params = init_params(config, key, L, K)
    return AgentState(params, optimizers.adam(config.learning_rate).init(params))


# -- the parts of one search epoch ---------------------------------------------------------


def oracle_context(reward, z_dim: int):
    """The oracle's z [z_dim]: a fixed random projection (N(0, 1) entries, ORACLE_SEED) of
    the task's whole reward vector, standardized over its reachable (finite) rows. Tasks
    with the same rewards get the same z, unrelated tasks nearly orthogonal ones (each
    entry ~ N(0, 1)): the task's identity, which a search only learns from its history."""
    finite = jnp.isfinite(reward)
    mean, inv_std = ppo.masked_mean_inv_std(jnp.where(finite, reward, 0.0), finite)
    r = jnp.where(finite, (reward - mean) * inv_std, 0.0)
    proj = jax.random.normal(jax.random.key(ORACLE_SEED), (reward.shape[0], z_dim))
    return r @ proj / jnp.sqrt(jnp.maximum(jnp.sum(finite), 1).astype(r.dtype))


def encode_context(config: CatchConfig, nets: CatchNetworks, params, history: History, key,
                   reward=None):
    """z and KL(q(z|c) || N(0, I)) from the history (Eq. 1); the ablations skip the encoder.

    Each context is (one-hot architecture, reward normalized over the history); the
    encoder's Gaussians are multiplied over the filled slots. ``reward`` [n_archs]: the
    task's rewards, read by the oracle context only.
    """
    if config.context == "zero":
        return jnp.zeros(config.z_dim), jnp.zeros(())
    if config.context == "random":
        return jax.random.normal(key, (config.z_dim,)), jnp.zeros(())
    if config.context == "oracle":
        return oracle_context(reward, config.z_dim), jnp.zeros(())
    H, L = history.actions.shape
    K = nets.controller.n_choices
    mask = jnp.arange(H) < history.count
    r = ppo.normalize(history.rewards, mask)
    onehot = jax.nn.one_hot(history.actions, K).reshape(H, L * K)
    ctx = jnp.concatenate([onehot, r[:, None]], axis=1)
    mu, var = nets.encoder.apply(params["encoder"], ctx, mask)
    return networks.sample_z(key, mu, var), networks.kl_to_prior(mu, var)


def select_candidate(k_explore, k_pick, scores, epsilon, allowed=None):
    """Epsilon-greedy over the candidates: a uniform one with probability epsilon, else the
    evaluator's best (CATCH §3.3). ``allowed`` [M] (optional): pick only among these."""
    if allowed is None:
        explore = jax.random.randint(k_pick, (), 0, scores.shape[0])
    else:
        explore = jax.random.categorical(k_pick, jnp.where(allowed, 0.0, -jnp.inf))
        scores = jnp.where(allowed, scores, -jnp.inf)
    return jnp.where(jax.random.uniform(k_explore) < epsilon, explore, jnp.argmax(scores))


def catch_loss(config: CatchConfig, nets: CatchNetworks, params, history: History,
               memory: replay.ReplayBuffer, key, beta, n_init: int, prefix_mask, reward=None,
               entropy_coef=None):
    """Eq. (2): L_c + L_e + beta_kl * KL. Returns (loss, (PER indices, TD errors, parts)).

    L_c is PPO's clipped surrogate on the networks the controller sampled (the ``n_init``
    random seeds have no policy log-prob), advantage = reward normalized over the history.
    L_e is the evaluator's Huber loss on a PER batch, weighted by the IS weights, with
    targets normalized like the advantages. ``reward``: the task's rewards (oracle
    context only); ``entropy_coef``: this epoch's bonus weight under a schedule
    (:func:`entropy_coef_at`; None: ``config.entropy_coef``).
    """
    H = history.rewards.shape[0]
    K = nets.controller.n_choices
    k_z, k_per = jax.random.split(key)
    z, kl = encode_context(config, nets, params, history, k_z, reward)
    filled = jnp.arange(H) < history.count
    from_policy = filled & (jnp.arange(H) >= n_init)
    adv = ppo.normalize(history.rewards, filled)
    # one pass of the controller gives log pi(a) and, if asked, the entropy bonus
    step_lp, masks = jax.vmap(
        lambda a: networks.controller_step_log_probs(nets.controller, params["controller"], z,
                                                     a, prefix_mask)
    )(history.actions)
    logp = jax.vmap(networks.sequence_log_prob)(step_lp, history.actions)
    l_c = ppo.clipped_surrogate_loss(logp, history.log_probs, adv, from_policy, config.ppo_clip)
    if has_entropy_bonus(config):  # static: the default graph has no entropy term
        ent = jax.vmap(networks.sequence_entropy)(step_lp, masks)
        w = from_policy.astype(ent.dtype)
        c = config.entropy_coef if entropy_coef is None else entropy_coef
        # times 1 / count, not divided by it (see ppo._masked_mean_var)
        l_c = l_c - c * jnp.sum(ent * w) * (1.0 / jnp.maximum(jnp.sum(w), 1.0))
    mean, inv_std = ppo.masked_mean_inv_std(history.rewards, filled)
    batch = max(1, int(config.per_fraction * H))
    idx, _, weights = replay.sample(memory, k_per, batch, config.per_alpha, beta)
    acts, rewards = history.actions[idx], history.rewards[idx]
    pred = jax.vmap(
        lambda a: nets.evaluator.apply(params["evaluator"], jax.nn.one_hot(a, K), z)
    )(acts)
    delta = pred - (rewards - mean) * inv_std
    l_e = jnp.mean(weights * optax.huber_loss(delta))
    parts = {"loss_controller": l_c, "loss_evaluator": l_e, "kl": kl}
    return l_c + l_e + config.beta_kl * kl, (idx, delta, parts)


def has_entropy_bonus(config: CatchConfig) -> bool:
    return config.entropy_coef > 0 or bool(config.entropy_coef_end)


def entropy_coef_at(config: CatchConfig, epoch, n_epochs: int):
    """The entropy bonus's weight at search epoch ``epoch`` (0-based): None without a
    schedule (the loss uses ``entropy_coef``), else linear from ``entropy_coef`` at the
    first epoch to ``entropy_coef_end`` at the last."""
    if config.entropy_coef_end is None:
        return None
    return optax.linear_schedule(config.entropy_coef, config.entropy_coef_end,
                                 max(n_epochs - 1, 1))(epoch)


def temperature_at(config: CatchConfig, epoch, n_epochs: int):
    """The candidates' sampling temperature at search epoch ``epoch`` (0-based): None
    without a schedule (samples of the controller itself), else linear from 1 at the first
    epoch to ``temperature_end`` at the last."""
    if config.temperature_end is None:
        return None
    return optax.linear_schedule(1.0, config.temperature_end, max(n_epochs - 1, 1))(epoch)


def adam_step(config: CatchConfig, params, opt_state, grads):
    """One Adam step of the three networks (one optimizer for all, CATCH §3)."""
    updates, opt_state = optimizers.adam(config.learning_rate).update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state


def update_step(config: CatchConfig, nets: CatchNetworks, carry, key, history, beta,
                n_init: int, prefix_mask, reward=None, entropy_coef=None):
    """One Adam step on :func:`catch_loss`; the sampled items get |TD error| priorities."""
    params, opt_state, memory = carry
    grads, (idx, delta, parts) = jax.grad(catch_loss, argnums=2, has_aux=True)(
        config, nets, params, history, memory, key, beta, n_init, prefix_mask, reward,
        entropy_coef
    )
    params, opt_state = adam_step(config, params, opt_state, grads)
    return (params, opt_state, replay.update_priorities(memory, idx, delta)), parts


def epsilon_at(config: CatchConfig, epoch, n_epochs: int):
    """Epsilon of search epoch ``epoch`` (0-based): linear from ``epsilon_start`` at the
    first epoch to ``epsilon_end`` at the last."""
    return optax.linear_schedule(config.epsilon_start, config.epsilon_end,
                                 max(n_epochs - 1, 1))(epoch)


def per_beta_at(config: CatchConfig, epoch, n_epochs: int):
    """PER's importance-sampling exponent: ``per_beta0`` at the first epoch, 1 at the last
    (Schaul et al. 2016: fully corrected at the end of learning)."""
    return replay.beta_schedule(config.per_beta0, epoch, n_epochs - 1)


def distinct_count(codes):
    """Number of distinct values in a 1-D array, with static shapes (sort, count changes)."""
    s = jnp.sort(codes)
    return 1 + jnp.sum(s[1:] != s[:-1])


@struct.dataclass
class SearchState:
    """A CATCH search in progress (what ask/tell carries): the agent being adapted, the
    history and PER memory, and what each proposal was sampled with."""

    ledger: Ledger
    params: dict
    opt_state: object
    history: History
    memory: replay.ReplayBuffer
    seeds: jnp.ndarray  # i32 [n_init], the random networks that seed the history
    loop_key: jnp.ndarray
    asked_log_probs: jnp.ndarray  # f32 [budget], log pi of each proposal when sampled


def n_seeds(config: CatchConfig) -> int:
    return min(config.n_initial, config.budget)


def start_search(config: CatchConfig, key, task: TaskArrays, agent=None) -> SearchState:
    """Algorithm 1 line 3 on one task: the agent (fresh or given), an empty history and
    the seeds drawn; no reset of the optimizer (meta-training carries it over)."""
    L, _, K = task.prefix_mask.shape
    H = config.budget
    k_init, k_first, k_loop = jax.random.split(key, 3)
    if agent is None:
        agent = init_agent(config, k_init, L, K)
    history = History(actions=jnp.zeros((H, L), jnp.int32), rewards=jnp.zeros(H),
                      log_probs=jnp.zeros(H), count=jnp.zeros((), jnp.int32))
    return SearchState(
        ledger=Ledger.empty(H), params=agent.params, opt_state=agent.opt_state,
        history=history, memory=replay.init(None, H),
        seeds=uniform_rows(k_first, task.valid_rows, (n_seeds(config),)), loop_key=k_loop,
        asked_log_probs=jnp.zeros(H))


def start(config: CatchConfig, key, task: TaskArrays, agent=None) -> SearchState:
    """The start of one search (a sweep trial or an ask/tell search); ``agent`` =
    meta-trained start (None: from scratch); ``reset_optimizer`` gives it a fresh Adam."""
    if config.meta_trained and agent is None:
        raise CatchjaxError("catch-meta needs a meta-trained agent (agent= / --init)")
    if agent is not None and config.reset_optimizer:  # adaptation only, not meta-training
        agent = AgentState(agent.params, optimizers.adam(config.learning_rate).init(agent.params))
    return start_search(config, key, task, agent)


def propose(config: CatchConfig, state: SearchState, task: TaskArrays, n, taken=None):
    """Search epoch ``n``'s proposal (Algorithm 1 lines 5-7): z from the history, M
    candidates from the controller, the evaluator's epsilon-greedy pick.

    ``taken`` (rows already proposed in the same ask or, with ``skip_evaluated``, in
    the search, -1 = none): the pick skips them;
    when every candidate is taken (a near-deterministic controller), the proposal is a
    uniform searchable network not taken, with its log-prob under the controller."""
    nets = make_networks(config, *task.prefix_mask.shape[::2])
    K = nets.controller.n_choices
    n_epochs = config.budget - n_seeds(config)
    k_z, k_cand, k_eps, k_pick, _ = jax.random.split(jax.random.fold_in(state.loop_key, n), 5)
    z, _ = encode_context(config, nets, state.params, state.history, k_z, task.reward)
    temperature = temperature_at(config, n, n_epochs)
    if temperature is None:
        cands, logps = jax.vmap(
            lambda k: networks.controller_sample(nets.controller, state.params["controller"],
                                                 k, z, task.prefix_mask)
        )(jax.random.split(k_cand, config.candidates))
        sampled_logps = logps
    else:  # candidates from the tempered controller; PPO keeps log pi (see CatchConfig)
        cands, logps, sampled_logps = jax.vmap(
            lambda k: networks.controller_sample_tempered(
                nets.controller, state.params["controller"], k, z, task.prefix_mask,
                temperature)
        )(jax.random.split(k_cand, config.candidates))
    scores = jax.vmap(
        lambda a: nets.evaluator.apply(state.params["evaluator"], jax.nn.one_hot(a, K), z)
    )(cands)
    eps = epsilon_at(config, n, n_epochs)
    codes = sampling.sequence_code(cands, K)
    if taken is None:  # one proposal per ask: Algorithm 1 as written
        pick = select_candidate(k_eps, k_pick, scores, eps)
        row, logp = task.code_to_row[codes[pick]], logps[pick]
    else:
        rows = task.code_to_row[codes]
        free = ~jnp.isin(rows, taken)
        pick = select_candidate(k_eps, k_pick, scores, eps, free)
        # a uniform searchable row not taken, by rejection: O(|taken|) per draw, where a
        # categorical over every row cost a random number per row at every proposal;
        # redrawn only where it is used (vmapped, the loop runs while any trial redraws)
        other = unevaluated_row(jax.random.fold_in(k_pick, 1), task.valid_rows,
                                lambda r: jnp.isin(r, taken), ~free.any())
        other_logp = networks.controller_log_prob(nets.controller, state.params["controller"],
                                                  z, task.row_actions[other], task.prefix_mask)
        row = jnp.where(free.any(), rows[pick], other)
        logp = jnp.where(free.any(), logps[pick], other_logp)
    info = dict(
        epsilon=jnp.asarray(eps, jnp.float32),
        # -mean log-prob over the M samples: a Monte-Carlo estimate of the entropy over
        # whole architectures (nats) of what the candidates are drawn from (the tempered
        # controller under a temperature schedule)
        controller_entropy=-jnp.mean(sampled_logps),
        distinct_candidates=distinct_count(codes),
    )
    if temperature is not None:
        info["temperature"] = jnp.asarray(temperature, jnp.float32)
    return row, logp, info


def ask(config: CatchConfig, state: SearchState, task: TaskArrays, k: int, seeding: bool):
    if seeding:
        return *take_planned(state, state.seeds, k), {}
    first = state.ledger.n_asked - n_seeds(config)
    if k == 1 and not config.skip_evaluated:
        rows, logps, info = jax.lax.map(lambda j: propose(config, state, task, first + j),
                                        jnp.arange(k))
    else:  # k epochs' proposals from the same agent and history (parallel evaluation),
        # k different networks: each skips the rows proposed before it in this ask (and,
        # with skip_evaluated, every row this search asked before: the ledger's, -1 = none)
        known = state.ledger.rows if config.skip_evaluated else jnp.zeros(0, jnp.int32)

        def one(taken, j):
            row, logp, info = propose(config, state, task, first + j, taken)
            return taken.at[known.shape[0] + j].set(row), (row, logp, info)

        _, (rows, logps, info) = jax.lax.scan(
            one, jnp.concatenate([known, jnp.full((k,), -1, jnp.int32)]), jnp.arange(k))
    logps_all = jax.lax.dynamic_update_slice(state.asked_log_probs, logps,
                                             (state.ledger.n_asked,))
    return rows, state.replace(ledger=state.ledger.asked(rows), asked_log_probs=logps_all), info


def record(config: CatchConfig, state: SearchState, task: TaskArrays, i, reward,
           seeding: bool) -> SearchState:
    """Add proposal ``i`` and its reward to the history and the PER memory (Algorithm 1
    line 8)."""
    h = state.history
    j = h.count
    history = History(
        actions=h.actions.at[j].set(task.row_actions[state.ledger.rows[i]]),
        rewards=h.rewards.at[j].set(reward),
        # random seeds have no policy log-prob; PPO leaves them out
        log_probs=h.log_probs if seeding else h.log_probs.at[j].set(state.asked_log_probs[i]),
        count=j + 1,
    )
    return state.replace(history=history, memory=replay.add(state.memory, None),
                         ledger=state.ledger.told(i[None], reward[None]))


def update_inputs(config: CatchConfig, state: SearchState):
    """The update key and PER beta of the search epoch the last told result completes."""
    n_init = n_seeds(config)
    n = state.ledger.n_told - 1 - n_init
    k_upd = jax.random.split(jax.random.fold_in(state.loop_key, n), 5)[4]
    return k_upd, per_beta_at(config, n, config.budget - n_init)


def entropy_input(config: CatchConfig, state: SearchState):
    """The entropy bonus's weight of the search epoch the last told result completes
    (None without a schedule)."""
    n_init = n_seeds(config)
    return entropy_coef_at(config, state.ledger.n_told - 1 - n_init, config.budget - n_init)


def learn(config: CatchConfig, state: SearchState, task: TaskArrays, i, reward, seeding: bool):
    """Add proposal ``i`` and its reward to the history (Algorithm 1 line 8); after the
    seeds, ``updates_per_epoch`` gradient steps on Eq. 2 (lines 9-11)."""
    nets = make_networks(config, *task.prefix_mask.shape[::2])
    state = record(config, state, task, i, reward, seeding)
    if seeding:
        return state, {}
    k_upd, beta = update_inputs(config, state)
    coef = entropy_input(config, state)

    def update(c, u):
        return update_step(config, nets, c, jax.random.fold_in(k_upd, u), state.history, beta,
                           n_seeds(config), task.prefix_mask, task.reward, coef)

    (params, opt_state, memory), parts = jax.lax.scan(
        update, (state.params, state.opt_state, state.memory),
        jnp.arange(config.updates_per_epoch))
    info = {k: jnp.mean(v) for k, v in parts.items()}
    info["per_beta"] = jnp.asarray(beta, jnp.float32)
    if coef is not None:
        info["entropy_coef"] = jnp.asarray(coef, jnp.float32)
    return state.replace(params=params, opt_state=opt_state, memory=memory), info


def tell(config: CatchConfig, state: SearchState, task: TaskArrays, ids, rewards,
         seeding: bool):
    return jax.lax.scan(lambda s, item: learn(config, s, task, *item, seeding), state,
                        (ids, rewards))


def ready(config: CatchConfig, state: SearchState) -> int:
    asked, told, n0 = int(state.ledger.n_asked), int(state.ledger.n_told), n_seeds(config)
    if asked < n0:
        return n0 - asked
    return 0 if told < n0 else config.budget - asked  # z needs the seeds' rewards


STEPPER = Stepper(start=start, ask=ask, tell=tell, first=n_seeds, ready=ready)


def catch_search(config: CatchConfig, key, task: TaskArrays, agent=None) -> SearchTrace:
    """One CATCH search on ``task``; ``agent`` = meta-trained start (None: from scratch)."""
    return run_on_table(STEPPER, config, key, task, agent)[0]
