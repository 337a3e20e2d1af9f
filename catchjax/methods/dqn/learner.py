"""The edit-based DQN (paper 002 §4, SPEC §4): config, training loop, evaluation, search.

Ape-X's distributed actors, replay shards and learner become one Anakin-style jitted
loop (Hessel et al. 2021): every iteration ``n_envs`` vectorized environments act once
(epsilon-greedy with Ape-X's per-actor epsilons), their n-step transitions go into one
prioritized replay buffer, and the learner makes ``updates_per_iteration`` double-Q
updates on batches of ``batch_size`` — all inside ``lax.scan``, so a training run is one
compiled call and independent seeds are one vmapped call (``catchjax.runs.agent.train_many``).

Learning: double Q (van Hasselt et al. 2016) with dueling heads, 3-step returns with
partial-episode bootstrapping, Huber loss weighted by PER importance weights, target
network refreshed every ``target_period`` environment steps, Adam 5e-5 after global-norm
clipping at 40, PER capacity 25,000, alpha 0.6, beta 0.4, batch 256 (paper 002 §4).
New transitions enter the buffer at the largest priority so far (Schaul et al. 2016);
Ape-X computes them on the actors instead.

Evaluation (a cell of the paper's matrices): greedy episodes from random start
architectures; the first report metric (the test metric) of the architecture each episode
ends on.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from catchjax import optimizers, replay
from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import Ledger, Stepper
from catchjax.errors import CatchjaxError
from catchjax.methods.dqn import env as edit_env
from catchjax.methods.dqn import returns
from catchjax.methods.dqn.network import QNetwork, q_values
from catchjax.stepping import record_only, run_on_table, take_planned


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    # search (a sweep trial = one greedy episode of the trained agent, budget - 1 edits)
    budget: int = 11
    # training
    total_steps: int = 10_000_000  # environment steps (T); rounded up, see n_iterations
    n_envs: int = 256  # vectorized environments (Ape-X: 8 actors x 32)
    max_episode_steps: int = 10  # time limit in edits (any arch is <= 6 edits away)
    discount: float = 0.99
    n_step: int = 3
    batch_size: int = 256
    updates_per_iteration: int = 1
    learning_starts: int = 1_000  # transitions in the buffer before the first update
    learning_rate: float = 5e-5
    max_grad_norm: float = 40.0
    target_period: int = 8_192  # environment steps between target-network refreshes
    buffer_capacity: int = 25_000
    per_alpha: float = 0.6
    per_beta: float = 0.4
    epsilon_base: float = 0.4  # Ape-X: actor i explores with base^(1 + exponent*i/(N-1))
    epsilon_exponent: float = 7.0
    # network
    width: int = 256
    heads: int = 4
    layers: int = 2
    # training curve: greedy evaluations at eval_points + 1 equally spaced points
    eval_points: int = 20
    eval_episodes: int = 256

    def validate(self, task=None) -> None:
        ints = dict(budget=self.budget, total_steps=self.total_steps, n_envs=self.n_envs,
                    max_episode_steps=self.max_episode_steps, n_step=self.n_step,
                    batch_size=self.batch_size, buffer_capacity=self.buffer_capacity,
                    width=self.width, heads=self.heads, layers=self.layers,
                    eval_points=self.eval_points, eval_episodes=self.eval_episodes,
                    target_period=self.target_period)
        for name, v in ints.items():
            if not isinstance(v, int) or v < 1:
                raise CatchjaxError(f"dqn: {name} must be an integer >= 1, got {v!r}")
        for name in ("updates_per_iteration", "learning_starts"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise CatchjaxError(f"dqn: {name} must be an integer >= 0, got {v!r}")
        if self.buffer_capacity < self.batch_size:
            raise CatchjaxError(
                f"dqn: the replay capacity ({self.buffer_capacity}) is smaller than the batch "
                f"({self.batch_size}); raise buffer_capacity or lower batch_size")
        if self.n_envs > self.buffer_capacity:
            raise CatchjaxError(
                f"dqn: n_envs ({self.n_envs}) must not exceed buffer_capacity "
                f"({self.buffer_capacity}): one iteration's transitions must fit")
        if self.width % self.heads:
            raise CatchjaxError(f"dqn: width ({self.width}) must be a multiple of heads "
                                f"({self.heads})")
        finite = dict(discount=self.discount, learning_rate=self.learning_rate,
                      max_grad_norm=self.max_grad_norm, per_alpha=self.per_alpha,
                      per_beta=self.per_beta, epsilon_base=self.epsilon_base,
                      epsilon_exponent=self.epsilon_exponent)
        for name, v in finite.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise CatchjaxError(f"dqn: {name} must be a finite number, got {v!r}")
        if not 0 < self.discount <= 1:
            raise CatchjaxError(f"dqn: discount must be in (0, 1], got {self.discount}")
        if self.learning_rate <= 0 or self.max_grad_norm <= 0:
            raise CatchjaxError("dqn: learning_rate and max_grad_norm must be > 0")
        if not 0 <= self.per_alpha <= 1 or not 0 <= self.per_beta <= 1:
            raise CatchjaxError("dqn: per_alpha and per_beta must lie in [0, 1]")
        if not 0 <= self.epsilon_base <= 1 or self.epsilon_exponent < 0:
            raise CatchjaxError("dqn: epsilon_base must lie in [0, 1], epsilon_exponent >= 0")

    @property
    def iterations_per_point(self) -> int:
        """Loop iterations between two curve points: T is rounded up to a multiple of
        n_envs * eval_points environment steps."""
        return max(1, -(-self.total_steps // (self.n_envs * self.eval_points)))

    @property
    def trained_steps(self) -> int:
        return self.iterations_per_point * self.eval_points * self.n_envs

    def network(self) -> QNetwork:
        return QNetwork(self.width, self.heads, self.layers)


@struct.dataclass
class DQNAgent:
    """What a trained agent is: online and target parameters, optimizer state, and how
    many environment steps it has trained for."""

    params: dict
    target_params: dict
    opt_state: optax.OptState
    env_steps: jnp.ndarray  # i32


@struct.dataclass
class TrainState:
    agent: DQNAgent
    buffer: replay.ReplayBuffer
    envs: edit_env.EnvState  # leaves [n_envs]
    env_task: jnp.ndarray  # i32 [n_envs], pool task each environment's episode is on
    windows: returns.Window  # leaves [n_envs, n]
    visited: jnp.ndarray  # bool [n_archs], architectures whose reward the agent has seen
    steps: jnp.ndarray  # i32, environment steps in this run


def optimizer(config: DQNConfig):
    return optax.chain(optimizers.clip_by_global_norm(config.max_grad_norm),
                       optimizers.adam(config.learning_rate))


def init_agent(config: DQNConfig, key, L: int, K: int) -> DQNAgent:
    S = L * (K - 1)
    onehots = jnp.zeros((1 + S, L * K))
    params = config.network().init(key, onehots, jnp.ones((1 + S,), bool))
    return DQNAgent(params, params, optimizer(config).init(params), jnp.zeros((), jnp.int32))


def epsilons(config: DQNConfig) -> jnp.ndarray:
    """Ape-X's per-actor exploration rates, eps_i = base^(1 + exponent * i / (N - 1))."""
    i = jnp.arange(config.n_envs, dtype=jnp.float32)
    frac = i / max(config.n_envs - 1, 1)
    return config.epsilon_base ** (1.0 + config.epsilon_exponent * frac)


def select_actions(key, q, mask, epsilon):
    """Epsilon-greedy over the allowed actions; ``q``, ``mask`` [B, A], ``epsilon`` [B]."""
    k_explore, k_random = jax.random.split(key)
    greedy = jnp.argmax(q, axis=-1)
    random = jax.random.categorical(k_random, jnp.where(mask, 0.0, -jnp.inf), axis=-1)
    explore = jax.random.uniform(k_explore, epsilon.shape) < epsilon
    return jnp.where(explore, random, greedy).astype(jnp.int32)


def td_errors(config: DQNConfig, params, target_params, items: returns.NStepItem,
              task: TaskArrays):
    """Double-Q TD errors of a batch: the online network picks the bootstrap action, the
    target network values it (rlax.double_q_learning)."""
    import rlax  # here, not at the top: it imports distrax and TFP (~0.4 s a process)

    net = config.network()
    both = q_values(net, params, jnp.concatenate([items.row, items.boot_row]), task)
    q_tm1, q_select = jnp.split(both, 2)
    q_value = q_values(net, target_params, items.boot_row, task)
    return jax.vmap(rlax.double_q_learning)(q_tm1, items.action, items.ret, items.discount,
                                           q_value, jax.lax.stop_gradient(q_select))


def learner_update(config: DQNConfig, key, agent: DQNAgent, buffer, task: TaskArrays):
    """One prioritized double-Q update on a batch; returns (agent, buffer, loss)."""
    idx, items, weights = replay.sample(buffer, key, config.batch_size, config.per_alpha,
                                        config.per_beta)

    import rlax

    def loss_fn(params):
        td = td_errors(config, params, agent.target_params, items, task)
        return jnp.mean(weights * rlax.huber_loss(td, 1.0)), td

    (loss, td), grads = jax.value_and_grad(loss_fn, has_aux=True)(agent.params)
    updates, opt_state = optimizer(config).update(grads, agent.opt_state, agent.params)
    params = optax.apply_updates(agent.params, updates)
    buffer = replay.update_priorities(buffer, idx, td)
    return agent.replace(params=params, opt_state=opt_state), buffer, loss


def greedy_episodes(config: DQNConfig, params, key, task: TaskArrays, n: int, max_steps: int):
    """``n`` greedy episodes from random starts; returns the rows visited, [n, max_steps +
    1] (an episode that stopped stays on its last architecture)."""
    net = config.network()
    rows = jax.vmap(lambda k: edit_env.reset(k, task).row)(jax.random.split(key, n))
    done = jnp.zeros((n,), bool)

    def move(carry, _):
        rows, done = carry
        q = q_values(net, params, rows, task)
        a = jnp.argmax(q, axis=-1)
        target = task.neighbors[rows, jnp.maximum(a - 1, 0)]
        done = done | (a == edit_env.STOP) | (target < 0)
        rows = jnp.where(done, rows, target)
        return (rows, done), rows

    _, path = jax.lax.scan(move, (rows, done), None, length=max_steps)
    return jnp.concatenate([rows[None], path]).T


def evaluate(config: DQNConfig, params, key, task: TaskArrays, n: int | None = None):
    """Greedy episodes (time limit: ``max_episode_steps``); per episode the final
    architecture's first report metric (test) and its reward (validation)."""
    n = n or config.eval_episodes
    final = greedy_episodes(config, params, key, task, n, config.max_episode_steps)[:, -1]
    return task.report[final, 0], task.reward[final]


def _iteration(config: DQNConfig, task: TaskArrays, pool_rewards, eps, state: TrainState, key):
    agent = state.agent
    k_act, k_env, k_task, k_learn = jax.random.split(key, 4)
    rows = state.envs.row
    q = q_values(config.network(), agent.params, rows, task)
    mask = jax.vmap(edit_env.action_mask, in_axes=(0, None))(rows, task)
    actions = select_actions(k_act, q, mask, eps)
    envs, tr = jax.vmap(edit_env.step, in_axes=(0, 0, 0, None, None, None, 0))(
        jax.random.split(k_env, config.n_envs), state.envs, actions, task, pool_rewards,
        config.max_episode_steps, state.env_task)
    ended = tr.terminal | tr.truncated
    new_task = jax.random.randint(k_task, (config.n_envs,), 0, pool_rewards.shape[0])
    env_task = jnp.where(ended, new_task, state.env_task)
    windows = jax.vmap(returns.push)(state.windows, tr)
    items, valid = jax.vmap(returns.oldest_target, in_axes=(0, None))(windows, config.discount)
    buffer = replay.add_batch(state.buffer, items, valid)
    visited = state.visited.at[tr.next_row].set(True)

    def learn(carry):
        agent, buffer = carry

        def one(c, k):
            a, b, loss = learner_update(config, k, c[0], c[1], task)
            return (a, b), loss

        (agent, buffer), losses = jax.lax.scan(
            one, (agent, buffer), jax.random.split(k_learn, config.updates_per_iteration))
        return agent, buffer, jnp.mean(losses)

    ready = (buffer.size >= max(config.learning_starts, config.batch_size)) & (
        config.updates_per_iteration > 0)
    agent, buffer, loss = jax.lax.cond(
        ready, learn, lambda c: (c[0], c[1], jnp.float32(jnp.nan)), (agent, buffer))
    steps = state.steps + config.n_envs
    refresh = (steps // config.target_period) > (state.steps // config.target_period)
    agent = agent.replace(
        target_params=jax.tree.map(lambda o, t: jnp.where(refresh, o, t), agent.params,
                                   agent.target_params),
        env_steps=agent.env_steps + config.n_envs)
    return TrainState(agent, buffer, envs, env_task, windows, visited, steps), loss


def _fresh(config: DQNConfig, key, task: TaskArrays) -> DQNAgent:
    """A new agent from :func:`init_train_state`'s ``key``."""
    L, _, K = task.prefix_mask.shape
    return init_agent(config, jax.random.split(key, 3)[0], L, K)


def init_train_state(config: DQNConfig, key, task: TaskArrays, pool_rewards,
                     agent: DQNAgent | None = None) -> TrainState:
    """A fresh run; ``agent`` given: start from its parameters (transfer: the paper
    initializes the new run with the trained parameters; optimizer and buffer are new)."""
    _, k_env, k_task = jax.random.split(key, 3)
    if agent is None:
        agent = _fresh(config, key, task)
    else:
        agent = agent.replace(opt_state=optimizer(config).init(agent.params))
    example = returns.NStepItem(*(jnp.zeros((), d) for d in
                                  (jnp.int32, jnp.int32, jnp.float32, jnp.float32, jnp.int32)))
    envs = jax.vmap(edit_env.reset, in_axes=(0, None))(
        jax.random.split(k_env, config.n_envs), task)
    windows = jax.vmap(lambda _: returns.empty_window(config.n_step))(jnp.arange(config.n_envs))
    return TrainState(
        agent=agent,
        buffer=replay.init(example, config.buffer_capacity),
        envs=envs,
        env_task=jax.random.randint(k_task, (config.n_envs,), 0, pool_rewards.shape[0]),
        windows=windows,
        visited=jnp.zeros(task.reward.shape, bool).at[envs.row].set(True),
        steps=jnp.zeros((), jnp.int32),
    )


def _state_key(key):
    """:func:`train`'s key for its starting state."""
    return jax.random.split(key, 3)[0]


def train(config: DQNConfig, key, task: TaskArrays, pool_rewards, agent: DQNAgent | None = None):
    """Train for ``config.trained_steps`` environment steps on the reward vectors
    ``pool_rewards`` [P, n_archs] (one per training task; each episode draws one), from
    ``agent``'s parameters or from scratch. Returns (agent, info): the training curve
    ("steps", "test", "reward": greedy evaluation on ``task`` at eval_points + 1 points,
    the first before any training, means over ``eval_episodes`` episodes;
    "test_episodes" [points, episodes] the test metric of each episode's final
    architecture), "loss" per segment and "distinct" (architectures whose reward the run
    saw: its number of distinct table queries).
    """
    _, k_loop, k_eval = jax.random.split(key, 3)
    state = init_train_state(config, _state_key(key), task, pool_rewards, agent)
    eps = epsilons(config)

    def point(params, p):
        return evaluate(config, params, jax.random.fold_in(k_eval, p), task)

    def segment(state, p):
        keys = jax.random.split(jax.random.fold_in(k_loop, p), config.iterations_per_point)
        state, losses = jax.lax.scan(
            lambda s, k: _iteration(config, task, pool_rewards, eps, s, k), state, keys)
        test, reward = point(state.agent.params, p + 1)
        return state, (test, reward, jnp.nanmean(losses))

    test0, reward0 = point(state.agent.params, 0)
    state, (test, reward, loss) = jax.lax.scan(segment, state, jnp.arange(config.eval_points))
    steps = jnp.arange(config.eval_points + 1) * config.iterations_per_point * config.n_envs
    test_episodes = jnp.concatenate([test0[None], test])
    info = {"steps": steps,
            "test": jnp.mean(test_episodes, axis=1),
            "test_episodes": test_episodes,
            "reward": jnp.mean(jnp.concatenate([reward0[None], reward]), axis=1),
            "loss": loss,
            "distinct": jnp.sum(state.visited)}
    return state.agent, info


@struct.dataclass
class SearchState:
    ledger: Ledger
    path: jnp.ndarray  # i32 [budget], the greedy episode, drawn up front (it reads no reward)


def start_search(config: DQNConfig, key, task: TaskArrays, agent: DQNAgent | None = None):
    if agent is None:
        raise CatchjaxError("dqn needs a trained agent (agent= / --init, or train first)")
    path = greedy_episodes(config, agent.params, key, task, 1, config.budget - 1)[0]
    return SearchState(Ledger.empty(config.budget), path)


def ask_path(config, state: SearchState, task, k: int, seeding: bool):
    return *take_planned(state, state.path, k), {}


def ready_path(config, state: SearchState) -> int:
    """Proposals left before the episode stops (a stopped episode stays where it is)."""
    path = np.asarray(state.path)
    moved = np.flatnonzero(path[1:] == path[:-1])
    length = int(moved[0]) + 1 if moved.size else len(path)
    return max(length - int(state.ledger.n_asked), 0)


STEPPER = Stepper(start=start_search, ask=ask_path, tell=record_only,
                  first=lambda config: config.budget, ready=ready_path)


def dqn_search(config: DQNConfig, key, task: TaskArrays, agent: DQNAgent | None = None):
    """One greedy episode of a trained agent from a random start: ``budget - 1`` edits at
    most (it may stop earlier and then stays). The trace's rows are the architectures on
    its path, so a sweep reports the best one it passed (for a hill-climbing agent, the
    one it ends on)."""
    return run_on_table(STEPPER, config, key, task, agent)[0]


def fresh_agent(config: DQNConfig, key, task: TaskArrays) -> DQNAgent:
    """The agent :func:`train` (and :func:`train_curve`) starts from when given none, for
    the same ``key``: given it as ``agent``, training computes the same bits (a fresh
    agent's optimizer state is the fresh one a transfer gets)."""
    return _fresh(config, _state_key(key), task)


def train_curve(config: DQNConfig, key, task: TaskArrays, rewards, agent, steps: int,
                points: int, episodes: int):
    """:attr:`catchjax.core.Learner.curve` of the DQN: :func:`train` for ``steps``
    environment steps (rounded up to whole curve segments) with ``points`` curve points
    of ``episodes`` greedy episodes."""
    config = dataclasses.replace(config, total_steps=steps, eval_points=points,
                                 eval_episodes=episodes)
    return train(config, key, task, rewards, agent)
