"""A BANANAS-style predictor search (White, Neiswanger & Savani, AAAI 2021), compiled whole.

After ``n_initial`` distinct random networks, each round:

1. trains an ensemble of ``ensemble`` small MLPs (vmapped over members, each from its own
   initialization) on every evaluated network's encoding and reward — ``train_steps``
   full-batch Adam steps on the mean absolute error of the standardized rewards, inside
   the compiled search, so a sweep of 500 trials stays one call;
2. makes candidates: ``candidates`` mutations of the ``parents`` best networks so far
   (``edits`` random one-decision changes each) and ``random_candidates`` random networks;
3. scores them by the acquisition over the ensemble's predictions — independent Thompson
   sampling (``"its"``: a draw from N(mean, std) per candidate, as BANANAS) or an upper
   confidence bound (``"ucb"``: mean + ``beta`` std) — and proposes the ``batch`` best
   that were never evaluated (a random unevaluated network if too few are left).

Encodings: the path encoding (BANANAS §4) for the 4-node cells of NAS-Bench-201 and
TransNAS-Bench-101 micro — one feature per sequence of operations along a path from the
input node to the output node, set when the cell has that path with no ``none`` edge on
it; elsewhere one-hot operations per decision. ``encoding="auto"`` picks by the space.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from flax import struct

from catchjax import optimizers
from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import Ledger, SearchTrace, Stepper, unevaluated_row
from catchjax.errors import CatchjaxError
from catchjax.methods.baselines.random_search import distinct_indices
from catchjax.stepping import run_on_table, take_planned

ACQUISITIONS = ("its", "ucb")
ENCODINGS = ("auto", "path", "onehot")
# Spaces whose 6 decisions are the operations on the edges (0->1, 0->2, 1->2, 0->3, 1->3,
# 2->3) of a 4-node cell, operation 0 being "none" (catchjax.benchmarks.spaces).
CELL_SPACES = ("nb201", "transnas-micro")
CELL_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))  # edges of each input->output path


@dataclasses.dataclass(frozen=True)
class BananasConfig:
    budget: int = 50
    n_initial: int = 10  # distinct random networks before the first prediction
    batch: int = 5  # proposals per round (one ensemble fit per round)
    ensemble: int = 5  # MLPs in the ensemble (BANANAS: 5)
    layers: int = 3  # hidden layers of each MLP
    width: int = 20  # units per hidden layer (BANANAS: 20)
    train_steps: int = 200  # full-batch Adam steps per fit
    learning_rate: float = 0.01
    candidates: int = 100  # mutations of the best networks per round (BANANAS: 100)
    parents: int = 10  # how many of the best networks are mutated
    edits: int = 1  # one-decision changes per mutation
    random_candidates: int = 10  # uniformly random candidates on top of the mutations
    acquisition: str = "its"  # "its" (independent Thompson sampling) or "ucb"
    beta: float = 1.0  # UCB's weight on the ensemble's standard deviation
    encoding: str = "auto"  # "path" (4-node cells), "onehot", or "auto": path where it can

    def for_task(self, task) -> BananasConfig:
        """``encoding="auto"`` made concrete for ``task``'s space."""
        if self.encoding != "auto":
            return self
        path = task.space.name in CELL_SPACES
        return dataclasses.replace(self, encoding="path" if path else "onehot")

    def validate(self, task) -> None:
        counts = {"n_initial": self.n_initial, "batch": self.batch, "ensemble": self.ensemble,
                  "layers": self.layers, "width": self.width, "candidates": self.candidates,
                  "parents": self.parents, "edits": self.edits}
        low = [f"{k}={v!r}" for k, v in counts.items() if isinstance(v, bool) or v < 1]
        low += [f"{k}={v!r}" for k, v in (("train_steps", self.train_steps),
                                          ("random_candidates", self.random_candidates))
                if isinstance(v, bool) or v < 0]
        if low:
            raise CatchjaxError(f"bananas: {', '.join(low)} out of range (train_steps and "
                                f"random_candidates >= 0, the other counts >= 1)")
        if not 0 < self.learning_rate < float("inf") or not 0 <= self.beta < float("inf"):
            raise CatchjaxError(f"bananas needs a finite learning_rate > 0 and beta >= 0, got "
                                f"{self.learning_rate} and {self.beta}")
        if self.acquisition not in ACQUISITIONS:
            raise CatchjaxError(f"bananas' acquisition is one of {', '.join(ACQUISITIONS)}, "
                                f"got {self.acquisition!r}")
        if self.encoding not in ENCODINGS:
            raise CatchjaxError(f"bananas' encoding is one of {', '.join(ENCODINGS)}, got "
                                f"{self.encoding!r}")
        if self.encoding == "path" and task.space.name not in CELL_SPACES:
            raise CatchjaxError(
                f"the path encoding is for the 4-node cells of {' and '.join(CELL_SPACES)}; "
                f"{task.name} is the {task.space.name} space: use encoding=onehot (or auto)")
        if self.budget > task.n_searchable:
            raise CatchjaxError(
                f"bananas never evaluates a network twice, so it cannot make {self.budget} "
                f"queries on {task.name}, which has only {task.n_searchable} searchable "
                f"networks; lower the budget")


def encode(config: BananasConfig, actions: jnp.ndarray, n_choices: int) -> jnp.ndarray:
    """Features ``[..., F]`` of networks given as decisions ``[..., L]``."""
    if config.encoding == "auto":
        raise CatchjaxError("encoding='auto' is made concrete by catchjax.methods.resolve "
                            "(BananasConfig.for_task) before a search runs")
    if config.encoding == "onehot":
        one = jax.nn.one_hot(actions, n_choices)
        return one.reshape(*actions.shape[:-1], -1)
    ops = n_choices - 1  # operations other than "none"
    features = []
    for path in CELL_PATHS:
        on = jnp.all(actions[..., list(path)] > 0, axis=-1)
        index = 0
        for edge in path:
            index = index * ops + (actions[..., edge] - 1)
        features.append(jnp.where(on[..., None],
                                  jax.nn.one_hot(jnp.maximum(index, 0), ops ** len(path)), 0.0))
    # paths of one length share features (the sequence of operations is what counts)
    by_length = {}
    for path, f in zip(CELL_PATHS, features):
        by_length[len(path)] = jnp.maximum(by_length.get(len(path), 0.0), f)
    return jnp.concatenate([by_length[n] for n in sorted(by_length)], axis=-1)


def _init_mlp(config: BananasConfig, key, n_features: int):
    sizes = [n_features] + [config.width] * config.layers + [1]
    keys = jax.random.split(key, len(sizes) - 1)
    return [(jax.random.normal(k, (a, b)) / jnp.sqrt(a), jnp.zeros((b,)))
            for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def _mlp(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return (x @ w + b)[..., 0]


def fit_ensemble(config: BananasConfig, key, x, y, mask):
    """The ensemble's parameters (a leading member axis) after ``train_steps`` Adam steps
    on the mean absolute error over the points where ``mask``; ``y`` standardized."""
    opt = optimizers.adam(config.learning_rate)

    def loss(params):
        return jnp.sum(jnp.abs(_mlp(params, x) - y) * mask) / jnp.maximum(mask.sum(), 1)

    def fit(k):
        params = _init_mlp(config, k, x.shape[-1])

        def step(carry, _):
            params, opt_state = carry
            updates, opt_state = opt.update(jax.grad(loss)(params), opt_state)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None,
                                      length=config.train_steps)
        return params

    return jax.vmap(fit)(jax.random.split(key, config.ensemble))


def fit_sizes(config: BananasConfig) -> tuple[int, ...]:
    """How many of the ledger's rows a round's fit looks at: the least of these that is
    at least the number asked (every told network is among them). A fit costs about a
    third less on 16 rows than on 50 (2-core CPU), so a search does not pay for its whole
    budget from the first round: steps of 16 up to 64, then about x1.5, then the budget."""
    sizes, n = [], 16
    while n < config.budget:
        sizes.append(n)
        n = n + 16 if n < 64 else 16 * -(-(n * 3 // 2) // 16)
    return (*sizes, config.budget)


def fit_told(config: BananasConfig, key, x, y, told, n_asked):
    """:func:`fit_ensemble` on the first ``fit_sizes`` rows that hold every told one.
    In a sweep all trials are at the same round and ``n_asked`` is the same unbatched
    number, so vmap keeps the ``switch`` a branch and only one size is computed."""
    sizes = fit_sizes(config)

    def first(n, key, x, y, told):
        return fit_ensemble(config, key, x[:n], y[:n], told[:n])

    which = jnp.sum(jnp.asarray(sizes[:-1]) < n_asked)
    return jax.lax.switch(which, [functools.partial(first, n) for n in sizes], key, x, y, told)


def predict(params, x):
    """``[members, N]``: each member's prediction for the points ``x`` ``[N, F]``."""
    return jax.vmap(_mlp, in_axes=(0, None))(params, x)


def acquisition(config: BananasConfig, key, predictions):
    """A score per candidate from the ensemble's predictions ``[members, C]``."""
    mean, std = predictions.mean(0), predictions.std(0)
    if config.acquisition == "ucb":
        return mean + config.beta * std
    return mean + std * jax.random.normal(key, mean.shape)  # independent Thompson sampling


def standardize(rewards, mask):
    n = jnp.maximum(mask.sum(), 1)
    mean = jnp.sum(jnp.where(mask, rewards, 0.0)) / n
    std = jnp.sqrt(jnp.sum(jnp.where(mask, (rewards - mean) ** 2, 0.0)) / n)
    return jnp.where(mask, (rewards - mean) / jnp.maximum(std, 1e-6), 0.0)


@struct.dataclass
class BananasState:
    ledger: Ledger
    init_rows: jnp.ndarray  # i32 [n_initial], distinct random networks, drawn up front
    key: jnp.ndarray
    asked: jnp.ndarray  # bool [n_archs]
    plan: jnp.ndarray  # i32 [batch], this round's proposals
    taken: jnp.ndarray  # i32, how many of the plan were asked (batch: none left)


def n_initial(config: BananasConfig) -> int:
    return min(config.n_initial, config.budget)


def start(config: BananasConfig, key, task: TaskArrays, agent=None) -> BananasState:
    k_init, key = jax.random.split(key)
    init_rows = task.valid_rows[distinct_indices(k_init, task.valid_rows.shape[0],
                                                 n_initial(config))]
    return BananasState(Ledger.empty(config.budget), init_rows, key,
                        jnp.zeros((task.neighbors.shape[0],), bool),
                        jnp.zeros((config.batch,), jnp.int32),
                        jnp.asarray(config.batch, jnp.int32))


def mutate(config: BananasConfig, key, task: TaskArrays, rows):
    """Each row changed in ``edits`` random decisions (one-edit neighbours in turn)."""
    for k in jax.random.split(key, config.edits):
        nbrs = task.neighbors[rows]
        ok = nbrs >= 0
        slot = jax.random.categorical(k, jnp.where(ok, 0.0, -jnp.inf))
        rows = jnp.where(ok.any(-1), jnp.take_along_axis(nbrs, slot[:, None], 1)[:, 0], rows)
    return rows


def plan_round(config: BananasConfig, state: BananasState, task: TaskArrays):
    """The next ``batch`` proposals from everything told so far."""
    ledger = state.ledger
    k_fit, k_par, k_mut, k_rand, k_acq, k_fill = jax.random.split(
        jax.random.fold_in(state.key, ledger.n_asked), 6)
    K = task.prefix_mask.shape[2]
    told = (ledger.rows >= 0) & ~jnp.isnan(ledger.rewards)
    x = encode(config, task.row_actions[jnp.maximum(ledger.rows, 0)], K)
    params = fit_told(config, k_fit, x, standardize(ledger.rewards, told), told, ledger.n_asked)

    n_par = min(config.parents, config.budget)
    _, best = jax.lax.top_k(jnp.where(told, ledger.rewards, -jnp.inf), n_par)
    n_best = jnp.minimum(told.sum(), n_par)
    parents = ledger.rows[best[jax.random.randint(k_par, (config.candidates,), 0, n_best)]]
    rows = jnp.concatenate([
        mutate(config, k_mut, task, parents),
        task.valid_rows[jax.random.randint(k_rand, (config.random_candidates,), 0,
                                           task.valid_rows.shape[0])]])
    score = acquisition(config, k_acq, predict(params, encode(config, task.row_actions[rows], K)))
    score = jnp.where(state.asked[rows], -jnp.inf, score)

    def pick(carry, k):
        score, asked = carry
        j = jnp.argmax(score)
        fallback = unevaluated_row(k, task.valid_rows, asked)  # the budget leaves one
        row = jnp.where(score[j] > -jnp.inf, rows[j], fallback)
        return (jnp.where(rows == row, -jnp.inf, score), asked.at[row].set(True)), row

    _, plan = jax.lax.scan(pick, (score, state.asked), jax.random.split(k_fill, config.batch))
    return plan


def ask(config, state: BananasState, task, k: int, seeding: bool):
    if seeding:
        rows, state = take_planned(state, state.init_rows, k)
        return rows, state.replace(asked=state.asked.at[rows].set(True)), {}
    # a new round once the last plan is used up (ready() waits for all its rewards)
    state = jax.lax.cond(state.taken >= config.batch,
                         lambda s: s.replace(plan=plan_round(config, s, task),
                                             taken=jnp.zeros((), jnp.int32)),
                         lambda s: s, state)
    rows = jax.lax.dynamic_slice(state.plan, (state.taken,), (k,))
    return rows, state.replace(asked=state.asked.at[rows].set(True), taken=state.taken + k,
                               ledger=state.ledger.asked(rows)), {}


def tell(config, state: BananasState, task, ids, rewards, seeding: bool):
    return state.replace(ledger=state.ledger.told(ids, rewards)), {}


def ready(config: BananasConfig, state: BananasState) -> int:
    """The initial networks together; then a round's plan, which may be asked while its
    other proposals are evaluated; a new round once every reward is told."""
    asked, told, n0 = int(state.ledger.n_asked), int(state.ledger.n_told), n_initial(config)
    left = config.budget - asked
    if asked < n0:
        return n0 - asked
    if int(state.taken) < config.batch:
        return min(config.batch - int(state.taken), left)
    return min(config.batch, left) if told == asked else 0


STEPPER = Stepper(start=start, ask=ask, tell=tell, first=n_initial, ready=ready)


def bananas(config: BananasConfig, key, task: TaskArrays, agent=None) -> SearchTrace:
    return run_on_table(STEPPER, config, key, task, per_step=config.batch)[0]
