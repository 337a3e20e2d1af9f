"""The types every search method shares: what a search returns, what a method is, and what
a method that learns across tasks hands on (the protocol behind ``catchjax.methods``).

A *method* (cf. optax's ``GradientTransformation``: a named bundle of pure functions) is

* a frozen config dataclass with a ``budget`` field and ``validate(task)``, which raises a
  :class:`~catchjax.errors.CatchjaxError` for settings that cannot run on ``task``, before
  anything is compiled;
* a pure ``search(config, key, task_arrays, agent) -> SearchTrace`` that jit and vmap
  take as is (``agent`` is None for methods that do not start from a trained agent);
* for methods that learn across tasks, a :class:`Learner`: ``init`` and ``train`` of the
  agent whose state ``search`` starts from;
* a :class:`Stepper`: the same search cut into ``start`` / ``ask`` / ``tell`` steps. The
  table ``search`` is those steps with the table answering every ask
  (:func:`catchjax.stepping.run_on_table`), and :mod:`catchjax.asktell.search` runs the very
  same steps against rewards that come from outside (real training).

The sweep driver, the CLI, checkpoints, experiments and reports only use this protocol,
so a new method is one module plus one :func:`catchjax.methods.register` call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Protocol

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class SearchTrace:
    """The ``budget`` table queries of one search trial, in the order they were made.

    ``metrics`` holds per-epoch diagnostics of methods that have them (CATCH: its losses,
    controller entropy, distinct candidates, epsilon), each ``[n_epochs]``; empty for
    methods without.
    """

    rows: jnp.ndarray  # i32 [budget], table row of each evaluated architecture
    rewards: jnp.ndarray  # f32 [budget], the reward each query returned
    metrics: dict = struct.field(default_factory=dict)


def uniform_rows(key, valid_rows: jnp.ndarray, shape) -> jnp.ndarray:
    """Rows drawn uniformly (with replacement) from the searchable architectures."""
    idx = jax.random.randint(key, shape, 0, valid_rows.shape[0])
    return valid_rows[idx]


def unevaluated_row(key, valid_rows: jnp.ndarray, asked, needed=True) -> jnp.ndarray:
    """A row drawn uniformly from the searchable rows not ``asked`` yet (``asked``: bool
    [n_archs], or a function of a row that says whether it was asked; at least one must be
    left). Rejection sampling: redraw while the draw was asked, exactly uniform over the
    rest and, while few are asked, one draw instead of a random number per searchable row.

    Where ``needed`` is false the caller will not use the row: the first draw is returned
    as is. Vmapped, the loop redraws while any trial's draw was asked, so a search that
    uses the row only now and then (a restart) stops the others from holding it up."""
    def was_asked(row):
        return (asked(row) if callable(asked) else asked[row]) & needed

    def draw(k):
        return valid_rows[jax.random.randint(k, (), 0, valid_rows.shape[0])]

    def again(carry):
        k, _ = carry
        k, sub = jax.random.split(k)
        return k, draw(sub)

    k, sub = jax.random.split(key)
    return jax.lax.while_loop(lambda c: was_asked(c[1]), again, (k, draw(sub)))[1]


@struct.dataclass
class Ledger:
    """What every ask/tell search state records: the proposals in the order they were
    asked (their ids are positions here) and the rewards told for them."""

    rows: jnp.ndarray  # i32 [budget], row of each proposal (-1: not asked yet)
    rewards: jnp.ndarray  # f32 [budget], NaN until told
    n_asked: jnp.ndarray  # i32
    n_told: jnp.ndarray  # i32

    @classmethod
    def empty(cls, budget: int) -> Ledger:
        return cls(rows=jnp.full((budget,), -1, jnp.int32), rewards=jnp.full((budget,), jnp.nan),
                   n_asked=jnp.zeros((), jnp.int32), n_told=jnp.zeros((), jnp.int32))

    def asked(self, rows) -> Ledger:
        """Record ``rows`` [k] as the next k proposals."""
        rows = jnp.asarray(rows, jnp.int32)
        return self.replace(rows=jax.lax.dynamic_update_slice(self.rows, rows, (self.n_asked,)),
                            n_asked=self.n_asked + rows.shape[0])

    def told(self, ids, rewards) -> Ledger:
        """Record the rewards of proposals ``ids`` [k] (in the order told)."""
        return self.replace(rewards=self.rewards.at[ids].set(rewards),
                            n_told=self.n_told + ids.shape[0])


class SearchFn(Protocol):
    """``search(config, key, task_arrays, agent) -> SearchTrace``: one trial, pure."""

    def __call__(self, config, key, task, agent=None) -> SearchTrace: ...


class StartFn(Protocol):
    def __call__(self, config, key, task, agent): ...


class AskFn(Protocol):
    def __call__(self, config, state, task, k: int, seeding: bool): ...


class TellFn(Protocol):
    def __call__(self, config, state, task, ids, rewards, seeding: bool): ...


@dataclasses.dataclass(frozen=True)
class Stepper:
    """A search as ask/tell steps: the pure functions a method's ``search`` is made of.

    * ``start(config, key, task_arrays, agent) -> state``: a pytree with a ``ledger``
      (:class:`Ledger`); nothing is evaluated yet.
    * ``ask(config, state, task_arrays, k, seeding) -> (rows [k], state, info)``: the next
      ``k`` proposals (``k`` and ``seeding`` static). ``seeding`` is True for the first
      ``first(config)`` proposals (random seeds, the initial population, ...), which a
      method makes without feedback; ``info``: per-proposal diagnostics, each ``[k]``.
    * ``tell(config, state, task_arrays, ids [k], rewards [k], seeding) -> (state, info)``:
      learn from the rewards of proposals ``ids`` in that order.
    * ``first(config) -> int``: how many proposals are seeds.
    * ``ready(config, state) -> int`` (host side, NumPy): how many proposals may be asked
      now before some must be told (e.g. evolution needs its whole initial population's
      rewards before it mutates). Beyond the first batch, methods take asks while earlier
      proposals are still being evaluated (asynchronous workers, as in Real et al.'s
      evolution); with one proposal at a time the steps are the table search exactly.

    ``task_arrays.reward`` is never read by ``ask`` and ``tell``: the rewards are what
    ``tell`` is given.
    """

    start: StartFn
    ask: AskFn
    tell: TellFn
    first: Callable[[object], int] = lambda config: 0  # no seeds
    # one proposal after another until the budget is spent
    ready: Callable[[object, object], int] = (
        lambda config, state: config.budget - int(state.ledger.n_asked))


@dataclasses.dataclass(frozen=True)
class Learner:
    """How a method that starts from a trained agent makes one.

    * ``init(config, key, n_decisions, n_choices) -> state``: a fresh agent (a pytree);
      also gives the shapes a checkpoint is restored into.
    * ``train(config, key, task_arrays, pool_rewards, agent=None) -> (state, info)``:
      trains on the pool, ``pool_rewards`` ``[P, n_archs]`` being the reward of every
      architecture on each training task (same table and masks as ``task_arrays``), from
      scratch or, given ``agent``, from that agent's state (transfer: source-trained
      parameters as the start of training on a target); ``info`` is a pytree of
      diagnostics. Pure, so jit (and vmap over seeds) take it as is.
    * ``shape_fields``: config fields that fix the shapes of the state; a checkpoint
      refuses overrides of them.
    * ``requires_agent``: the search cannot run without a trained agent.
    * ``trains_on``: ``"pool"`` (CATCH: meta-trained on other tasks, leaving the target
      out) or ``"task"`` (the DQN: trained on the task it is given, its shaped reward by
      default; transfer is the study's job).
    * ``curve(config, key, task_arrays, rewards, agent, steps, points, episodes) ->
      (state, info)``: train for about ``steps`` table queries from ``agent`` (None:
      fresh) and evaluate on ``task_arrays`` at ``points + 1`` equally spaced points
      (the first before training), ``episodes`` evaluations each: ``info["steps"]``
      [points + 1], ``info["test_episodes"]`` [points + 1, episodes] (the test metric each
      evaluation ends on), ``info["distinct"]`` (architectures queried). What the
      transfer study (:mod:`catchjax.studies.transfer`) needs; None if the method has none.
    * ``fresh(config, key, task_arrays) -> state``: the agent ``curve`` starts from when
      given none (same key), so that a study runs its scratch stages as transfers from
      fresh agents through one compiled program; needed with ``curve``.
    * ``curve_unit``, ``curve_metric``, ``curve_scored_by``: how plots and reports name a
      curve's x axis (what ``steps`` counts), its y axis, and how a curve point is scored
      (``{budget}`` is replaced by the config's budget), so they need not know the method.
    * ``trained_fields``: config fields that say how the agent was trained (CATCH: the
      meta-training settings); a checkpoint keeps them and refuses other values.
    * ``agents``: how many agents a search trains when it is given none (``sweep``
      without ``--init``), one per seed, the trials shared among them, so that one
      training seed does not decide the answer (CATCH: 5; the DQN: 1).
    """

    init: Callable
    train: Callable
    shape_fields: tuple[str, ...] = ()
    requires_agent: bool = True
    trains_on: str = "pool"
    curve: Callable | None = None
    fresh: Callable | None = None
    curve_unit: str = "training steps"
    curve_metric: str = "test metric"
    curve_scored_by: str = "the target's test metric of what the agent's evaluations end on"
    trained_fields: tuple[str, ...] = ()
    agents: int = 1


@dataclasses.dataclass(frozen=True)
class Method:
    """A search method as the sweep driver, the CLI and checkpoints see it."""

    name: str
    config: type  # frozen dataclass with ``budget`` and ``validate(task)``
    # (config, key, TaskArrays, agent) -> SearchTrace; default: the stepper's steps with
    # the table answering (catchjax.stepping.run_on_table)
    search: SearchFn | None = None
    preset: Mapping = dataclasses.field(default_factory=dict)  # config fields the name fixes
    learner: Learner | None = None
    stepper: Stepper | None = None  # the search as ask/tell steps
    family: str = ""  # methods of one family are compared in one ablation plot
    help: str = ""
    # config fields this method does not read (CATCH from scratch: the meta-training
    # settings): not listed among its settings, refused when set to another value
    ignores: tuple[str, ...] = ()
    # the method's own defaults of config fields, over the config class's (catch-meta:
    # PPO's entropy bonus on); a user may change them, and unlike ``preset`` they do not
    # tell methods apart
    defaults: Mapping = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.search is None:
            if self.stepper is None:
                from catchjax.errors import CatchjaxError

                raise CatchjaxError(f"method {self.name!r} needs a search function or a "
                                    f"stepper (its search as ask/tell steps)")
            object.__setattr__(self, "search", _stepper_search(self.stepper))

    def matches(self, config) -> bool:
        """Whether ``config`` is a config of this method (its class and its preset)."""
        return type(config) is self.config and all(
            getattr(config, k) == v for k, v in self.preset.items()
        )


def _stepper_search(stepper: Stepper) -> SearchFn:
    """A method's table search from its steps (every built-in method's search is this)."""

    def search(config, key, task, agent=None) -> SearchTrace:
        return run_on_table(stepper, config, key, task, agent)[0]

    return search


def run_on_table(stepper: Stepper, config, key, task, agent=None, per_step: int = 1):
    """All ``config.budget`` proposals of a search, each answered by ``task.reward``.

    After the seeds, ``per_step`` proposals are asked and told together (a method that
    plans a batch per round, such as BANANAS; the last round may be smaller).
    Returns ``(SearchTrace, final state)``; the trace's ``metrics`` are the per-proposal
    ``info`` of the proposals after the seeds (``[budget - first]`` each).
    """
    state = stepper.start(config, key, task, agent)
    n0 = stepper.first(config)
    rows0 = jnp.zeros((0,), jnp.int32)
    if n0 > 0:
        rows0, state, _ = stepper.ask(config, state, task, n0, True)
        state, _ = stepper.tell(config, state, task, jnp.arange(n0), task.reward[rows0], True)
    n_rest = config.budget - n0
    if n_rest == 0:
        return SearchTrace(rows=rows0, rewards=task.reward[rows0]), state

    def step(state, first_id, k):
        rows, state, ask_info = stepper.ask(config, state, task, k, False)
        reward = task.reward[rows]
        state, tell_info = stepper.tell(config, state, task, first_id + jnp.arange(k), reward,
                                        False)
        return state, (rows, reward, {**ask_info, **tell_info})

    rounds, rest = divmod(n_rest, per_step)
    state, (rows, rewards, metrics) = jax.lax.scan(
        lambda state, i: step(state, i, per_step), state, n0 + per_step * jnp.arange(rounds))
    rows, rewards = rows.reshape(-1), rewards.reshape(-1)
    metrics = {k: v.reshape(-1, *v.shape[2:]) for k, v in metrics.items()}  # rounds x k
    if rest:  # a last, smaller round
        state, (r, w, m) = step(state, n0 + rounds * per_step, rest)
        rows, rewards = jnp.concatenate([rows, r]), jnp.concatenate([rewards, w])
        metrics = {k: jnp.concatenate([metrics[k], m[k]]) for k in metrics}
    trace = SearchTrace(rows=jnp.concatenate([rows0, rows]),
                        rewards=jnp.concatenate([task.reward[rows0], rewards]), metrics=metrics)
    return trace, state


@dataclasses.dataclass
class TrainedAgent:
    """A trained agent on the host: its state and what it was trained for."""

    agent: object  # the learner's state pytree
    config: object
    benchmark: str
    target_task: str
    pool: list[str]  # the reward columns it was trained on
    seed: int
    n_decisions: int
    n_choices: int
    seconds: float = 0.0
    compile_seconds: float = 0.0
    # what compile_seconds measured (catchjax.runs.batched.compile_source): "compiled",
    # "loaded" from the persistent compilation cache, or "reused" (0 s, compiled earlier
    # in the same process); "" for an agent restored or built without compiling a training
    compile_source: str = ""
    method: str | None = None  # the registered method the agent is for (required)
    space: str = ""
    # the task protocol of the target it was trained for (NB201: "nats", "catch-fig3")
    protocol: str | None = None

    def __post_init__(self):
        if not isinstance(self.method, str) or not self.method:
            from catchjax.errors import CatchjaxError

            raise CatchjaxError("a TrainedAgent needs method= (the method it was trained "
                                "for, e.g. 'catch-meta' or 'dqn')")
