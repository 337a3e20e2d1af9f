"""The CATCH search loop on one task (paper Algorithm 1, lines 3-13), as one pure function.

Each search epoch: encode the whole search history into z (Eq. 1, reparameterized),
sample M candidates from the controller, let the evaluator pick one (epsilon-greedy),
query its reward, add it to the history, then take ``updates_per_epoch`` gradient steps
on L_c + L_e + beta * KL (Eq. 2): PPO's clipped surrogate on the evaluated networks
(stored log-probs, rewards normalized over the history) and the evaluator's Huber loss
on a PER batch of 80% of the memory. One Adam optimizer updates all three networks; the
encoder gets the gradient of the whole sum through z.

Variants (paper §4.2): ``sfs`` searches from scratch (random initial parameters, the
default here), ``zero`` fixes z = 0, ``random`` draws z ~ N(0, I) ignoring the history.
``meta`` adapts from an agent meta-trained by :func:`meta_train` on a pool of other tasks
(SPEC §2: leave the target out), see :mod:`catchjax.agent`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import struct

from catchjax import networks, ppo, replay, sampling
from catchjax.baselines.common import SearchTrace, uniform_rows
from catchjax.benchmarks.tasks import TaskArrays
from catchjax.errors import CatchjaxError


@dataclasses.dataclass(frozen=True)
class CatchConfig:
    budget: int = 50  # networks evaluated (search epochs + initial random ones)
    n_initial: int = 5  # random networks that seed the history (paper Fig. 2)
    candidates: int = 100  # M
    z_dim: int = 10
    hidden: int = 64
    beta_kl: float = 0.1
    learning_rate: float = 1e-3
    updates_per_epoch: int = 4
    ppo_clip: float = 0.2
    per_alpha: float = 0.6
    per_beta0: float = 0.4  # annealed to 1 over the search
    per_fraction: float = 0.8  # PER batch = 80% of the memory
    epsilon_start: float = 0.5  # epsilon-greedy over the candidates, reset per task
    epsilon_end: float = 0.05
    context: str = "learned"  # "learned" | "zero" | "random"
    meta_trained: bool = False  # True for catch-meta: the search starts from a meta-trained agent
    meta_epochs: int = 25  # N_meta
    meta_budget: int = 20  # N_search: networks per meta-training search


@struct.dataclass
class History:
    actions: jnp.ndarray  # i32 [H, L]
    rewards: jnp.ndarray  # f32 [H]
    log_probs: jnp.ndarray  # f32 [H], under the policy that sampled them
    count: jnp.ndarray  # i32


def _networks(config: CatchConfig, L: int, K: int):
    hidden = (config.hidden, config.hidden)
    return (
        networks.ContextEncoder(config.z_dim, hidden),
        networks.Controller(L, K, hidden),
        networks.Evaluator(hidden),
    )


def init_params(config: CatchConfig, key, L: int, K: int):
    enc, ctrl, ev = _networks(config, L, K)
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
    return AgentState(params, optax.adam(config.learning_rate).init(params))


def catch_search(config: CatchConfig, key, task: TaskArrays, agent=None) -> SearchTrace:
    """One CATCH search on ``task``; ``agent`` = meta-trained start (None: from scratch)."""
    if config.meta_trained and agent is None:
        raise CatchjaxError("catch-meta needs a meta-trained agent (agent= / --init)")
    trace, _ = search_and_learn(config, key, task, agent)
    return trace


def search_and_learn(config: CatchConfig, key, task: TaskArrays, agent=None):
    """Algorithm 1 lines 3-12 on one task: returns (SearchTrace, the updated AgentState)."""
    L, _, K = task.prefix_mask.shape
    H = config.budget
    enc, ctrl, ev = _networks(config, L, K)
    k_init, k_first, k_loop = jax.random.split(key, 3)
    if agent is None:
        agent = init_agent(config, k_init, L, K)
    params, opt_state = agent.params, agent.opt_state
    optimizer = optax.adam(config.learning_rate)
    n_init = min(config.n_initial, H)
    n_epochs = H - n_init

    first_rows = uniform_rows(k_first, task.valid_rows, (n_init,))
    history = History(
        actions=jnp.zeros((H, L), jnp.int32).at[:n_init].set(task.row_actions[first_rows]),
        rewards=jnp.zeros(H).at[:n_init].set(task.reward[first_rows]),
        log_probs=jnp.zeros(H),  # random seeds have no policy log-prob; excluded from PPO
        count=jnp.asarray(n_init, jnp.int32),
    )
    memory = replay.init((jnp.zeros((L,), jnp.int32), jnp.zeros(())), H)
    for i in range(n_init):
        memory = replay.add(memory, (task.row_actions[first_rows[i]], task.reward[first_rows[i]]))
    batch = max(1, int(config.per_fraction * H))

    def encode(params, history, key):
        # The ablations never run the encoder (and give it no gradient).
        if config.context == "zero":
            return jnp.zeros(config.z_dim), jnp.zeros(())
        if config.context == "random":
            return jax.random.normal(key, (config.z_dim,)), jnp.zeros(())
        mask = jnp.arange(H) < history.count
        r = ppo.normalize(history.rewards, mask)
        onehot = jax.nn.one_hot(history.actions, K).reshape(H, L * K)
        ctx = jnp.concatenate([onehot, r[:, None]], axis=1)
        mu, var = enc.apply(params["encoder"], ctx, mask)
        return networks.sample_z(key, mu, var), networks.kl_to_prior(mu, var)

    def loss_fn(params, history, memory, key, beta):
        k_z, k_per = jax.random.split(key)
        z, kl = encode(params, history, k_z)
        # L_c: PPO on the evaluated (policy-sampled) networks, advantage = normalized reward
        filled = jnp.arange(H) < history.count
        from_policy = filled & (jnp.arange(H) >= n_init)
        adv = ppo.normalize(history.rewards, filled)
        logp = jax.vmap(
            lambda a: networks.controller_log_prob(ctrl, params["controller"], z, a,
                                                   task.prefix_mask)
        )(history.actions)
        l_c = ppo.clipped_surrogate_loss(logp, history.log_probs, adv, from_policy,
                                         config.ppo_clip)
        # L_e: Huber loss of the evaluator on a PER batch, targets = normalized rewards
        mean, std = ppo.masked_mean_std(history.rewards, filled)
        idx, (acts, rewards), weights = replay.sample(memory, k_per, batch,
                                                      config.per_alpha, beta)
        pred = jax.vmap(lambda a: ev.apply(params["evaluator"], jax.nn.one_hot(a, K), z))(acts)
        delta = pred - (rewards - mean) / std
        l_e = jnp.mean(weights * optax.huber_loss(delta))
        return l_c + l_e + config.beta_kl * kl, (idx, delta)

    def epoch(carry, n):
        params, opt_state, history, memory = carry
        k_z, k_cand, k_eps, k_pick, k_upd = jax.random.split(jax.random.fold_in(k_loop, n), 5)
        z, _ = encode(params, history, k_z)
        cands, logps = jax.vmap(
            lambda k: networks.controller_sample(ctrl, params["controller"], k, z,
                                                 task.prefix_mask)
        )(jax.random.split(k_cand, config.candidates))
        scores = jax.vmap(lambda a: ev.apply(params["evaluator"], jax.nn.one_hot(a, K), z))(cands)
        frac = n / jnp.maximum(n_epochs - 1, 1)
        eps = config.epsilon_start + (config.epsilon_end - config.epsilon_start) * frac
        pick = jnp.where(jax.random.uniform(k_eps) < eps,
                         jax.random.randint(k_pick, (), 0, config.candidates),
                         jnp.argmax(scores))
        actions = cands[pick]
        row = task.code_to_row[sampling.sequence_code(actions, K)]
        reward = task.reward[row]
        i = history.count
        history = History(
            actions=history.actions.at[i].set(actions),
            rewards=history.rewards.at[i].set(reward),
            log_probs=history.log_probs.at[i].set(logps[pick]),
            count=i + 1,
        )
        memory = replay.add(memory, (actions, reward))
        beta = replay.beta_schedule(config.per_beta0, n, n_epochs)

        def update(c, u):
            params, opt_state, memory = c
            grads, (idx, delta) = jax.grad(loss_fn, has_aux=True)(
                params, history, memory, jax.random.fold_in(k_upd, u), beta
            )
            updates, opt_state = optimizer.update(grads, opt_state)
            memory = replay.update_priorities(memory, idx, delta)
            return (optax.apply_updates(params, updates), opt_state, memory), None

        (params, opt_state, memory), _ = jax.lax.scan(
            update, (params, opt_state, memory), jnp.arange(config.updates_per_epoch)
        )
        return (params, opt_state, history, memory), (row, reward)

    (params, opt_state, _, _), (rows, rewards) = jax.lax.scan(
        epoch, (params, opt_state, history, memory), jnp.arange(n_epochs)
    )
    trace = SearchTrace(
        rows=jnp.concatenate([first_rows, rows]),
        rewards=jnp.concatenate([task.reward[first_rows], rewards]),
    )
    return trace, AgentState(params, opt_state)


def meta_train(config: CatchConfig, key, task: TaskArrays, pool_rewards):
    """Algorithm 1 lines 1-13: ``meta_epochs`` fresh searches of ``meta_budget`` networks,
    each on a task drawn uniformly from the pool, carrying the agent from one to the next.

    ``pool_rewards`` [P, n_archs]: the reward of every architecture on each pool task (same
    table and masks as ``task``). Returns (AgentState, rows [meta_epochs, meta_budget],
    pool task index per meta-epoch).
    """
    L, _, K = task.prefix_mask.shape
    search_config = dataclasses.replace(config, budget=config.meta_budget)
    k_init, k_loop = jax.random.split(key)
    agent = init_agent(config, k_init, L, K)

    def meta_epoch(agent, m):
        k_task, k_search = jax.random.split(jax.random.fold_in(k_loop, m))
        p = jax.random.randint(k_task, (), 0, pool_rewards.shape[0])
        trace, agent = search_and_learn(search_config, k_search,
                                        task.replace(reward=pool_rewards[p]), agent)
        return agent, (trace.rows, p)

    agent, (rows, picks) = jax.lax.scan(meta_epoch, agent, jnp.arange(config.meta_epochs))
    return agent, rows, picks
