"""The registry of search methods: name -> :class:`~catchjax.core.Method`.

Everything that takes a method by name (``catchjax.sweep``, the CLI, checkpoints,
experiments, reports) goes through this module, so adding a method is one module (its
config class and pure search function) plus one :func:`register` call.
"""

from __future__ import annotations

import dataclasses
import math
import typing

from catchjax import arguments
from catchjax.core import Learner, Method
from catchjax.errors import CatchjaxError
from catchjax.methods import baselines, catch, catch_meta, dqn
from catchjax.methods.baselines import bananas, local_search, nsga
from catchjax.methods.baselines.evolution import STEPPER as EVOLUTION_STEPPER
from catchjax.methods.baselines.random_search import STEPPER as RANDOM_STEPPER
from catchjax.methods.baselines.reinforce import STEPPER as REINFORCE_STEPPER

REGISTRY: dict[str, Method] = {}
ALIASES = arguments.ALIASES


def register(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry (a name may be registered once unless ``replace``)."""
    if method.name in REGISTRY and not replace:
        raise CatchjaxError(f"a method named {method.name!r} is already registered")
    fields = {f.name for f in dataclasses.fields(method.config)}
    if "budget" not in fields or not hasattr(method.config, "validate"):
        raise CatchjaxError(
            f"method {method.name!r}: its config must be a dataclass with a budget field and "
            f"a validate(task) method"
        )
    unknown = set(method.preset) - fields
    if unknown:
        raise CatchjaxError(f"method {method.name!r}: preset fields {sorted(unknown)} unknown")
    unknown = set(method.defaults) - fields
    if unknown or set(method.defaults) & set(method.preset) or "budget" in method.defaults:
        raise CatchjaxError(f"method {method.name!r}: its defaults {dict(method.defaults)} name "
                            f"unknown, preset or budget fields")
    for other in REGISTRY.values():
        apart = any(k in other.preset and other.preset[k] != v for k, v in method.preset.items())
        if other.config is method.config and other.name != method.name and not apart:
            raise CatchjaxError(
                f"method {method.name!r} and {other.name!r} share the config class "
                f"{method.config.__name__} and no preset tells their configs apart; give "
                f"{method.name!r} its own config class or a distinguishing preset"
            )
    REGISTRY[method.name] = method
    return method


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


CATCH_LEARNER = Learner(init=catch.init_agent, train=catch_meta.train,
                        shape_fields=("z_dim", "hidden"), curve=catch_meta.train_curve,
                        fresh=catch_meta.fresh_agent,
                        curve_unit="meta-training queries",
                        curve_metric="test metric after adaptation",
                        curve_scored_by="the target's test metric of the best-by-reward "
                        "network of adaptation searches of {budget} networks", agents=20,
                        trained_fields=tuple(f for f in catch.META_SETTINGS
                                             if f != "reset_optimizer"))

register(Method("random", baselines.RandomSearchConfig, baselines.random_search,
                stepper=RANDOM_STEPPER, family="baseline",
                help="random search without replacement"))
register(Method("rea", baselines.EvolutionConfig, baselines.regularized_evolution,
                stepper=EVOLUTION_STEPPER, family="baseline",
                help="regularized evolution"))
register(Method("ls", local_search.LocalSearchConfig, stepper=local_search.STEPPER,
                family="baseline",
                help="local search with random restarts (White et al. 2020)"))
register(Method("bananas", bananas.BananasConfig, bananas.bananas, stepper=bananas.STEPPER,
                family="baseline",
                help="BANANAS-style search: an MLP ensemble's predictions pick mutations "
                     "of the best networks (White et al. 2021)"))
register(Method("nsga", nsga.NSGAConfig, nsga.nsga, stepper=nsga.STEPPER, family="baseline",
                help="NSGA-II-style evolution keeping a front (several objectives only)"))
register(Method("reinforce", baselines.ReinforceConfig, baselines.reinforce,
                stepper=REINFORCE_STEPPER, family="baseline",
                help="REINFORCE with an EMA baseline"))
# CATCH (paper §4.2, §5). The meta-trained methods adapt an agent meta-trained with the
# same context (paper §5: "the agents are still meta-trained ... before they are plugged
# in for adaptation"); the catch-sfs* methods search from scratch. The meta-trained ones
# optimize PPO as published (Schulman et al. 2017, the paper's [43]: the clipped
# surrogate plus an entropy bonus, here 0.5): without the bonus the meta-trained
# controller collapses onto one or two cells (experiments/results/catch_adaptation.md,
# where 0.5 was chosen on the search objective); --set entropy_coef=0 is the literal Eq. 2.
# With the bonus the controller stays near uniform; the candidates are drawn at a
# temperature going from 1 to 0.2 over each search, so they concentrate on what the
# controller prefers as the search goes on (issue 32 item 2, chosen on the search objective
# in experiments/results/catch_adaptation_20agents; --set temperature_end=none: no schedule).
META_DEFAULTS = {"entropy_coef": 0.5, "temperature_end": 0.2}
for _name, _context, _help in (
    ("catch-meta", "learned", "CATCH adapting a meta-trained agent (--init, or meta-trains first)"),
    ("catch-zero", "zero", "CATCH-meta's ablation: meta-trained and adapted with z = 0"),
    ("catch-random", "random", "CATCH-meta's ablation: meta-trained and adapted with z ~ N(0, I)"),
    ("catch-oracle", "oracle", "CATCH-meta's upper bound: z is the task itself (a fixed "
     "projection of its whole reward table), which no real search knows"),
):
    register(Method(_name, catch.CatchConfig, catch.catch_search,
                    preset={"context": _context, "meta_trained": True}, learner=CATCH_LEARNER,
                    stepper=catch.STEPPER, family="catch", help=_help,
                    defaults=META_DEFAULTS))
for _name, _context, _help in (
    ("catch-sfs", "learned", "CATCH searching from scratch"),
    ("catch-sfs-zero", "zero", "CATCH from scratch with z = 0"),
    ("catch-sfs-random", "random", "CATCH from scratch with z ~ N(0, I)"),
):
    register(Method(_name, catch.CatchConfig, catch.catch_search,
                    preset={"context": _context, "meta_trained": False}, family="catch",
                    stepper=catch.STEPPER, ignores=catch.META_SETTINGS,
                    help=_help))
DQN_LEARNER = Learner(init=dqn.init_agent, train=dqn.train,
                      shape_fields=("width", "heads", "layers"), trains_on="task",
                      curve=dqn.learner.train_curve, fresh=dqn.learner.fresh_agent,
                      curve_unit="training steps",
                      curve_metric="greedy test metric",
                      curve_scored_by="the target's test metric of the architecture greedy "
                      "episodes end on")
# The edit-based DQN (paper 002): trained on a task (or transferred, catchjax.studies.transfer),
# a sweep trial is one greedy episode of the trained agent.
register(Method("dqn", dqn.DQNConfig, dqn.dqn_search, learner=DQN_LEARNER,
                stepper=dqn.learner.STEPPER, family="dqn",
                help="edit-based DQN agent (paper 002): a greedy episode of a trained agent "
                     "(--init, or trains on the task first)"))


def names() -> list[str]:
    return list(REGISTRY)


def canonical_name(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in REGISTRY:
        raise CatchjaxError(f"unknown method {name!r}; methods: {', '.join(REGISTRY)}")
    return name


def get(name: str) -> Method:
    return REGISTRY[canonical_name(name)]


def setting_names(name: str) -> list[str]:
    """The config fields of method ``name`` that it reads (not those it ignores)."""
    m = get(name)
    return [f.name for f in dataclasses.fields(m.config) if f.name not in m.ignores]


def setting_docs(name: str) -> dict[str, str]:
    """Each setting's description: the comment on its line in the config class, or the
    comment lines right above it (how the config classes document their fields)."""
    import inspect
    import io
    import tokenize

    lines = inspect.getsource(get(name).config).splitlines()
    comments = {}  # line number -> comment text
    for tok in tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    docs = {}
    for field in setting_names(name):
        at = next((i for i, line in enumerate(lines, 1)
                   if line.strip().startswith(f"{field}:")), None)
        if at is None:
            continue
        text = [comments[at]] if at in comments else []
        j = at - 1
        while at not in comments and j in comments and lines[j - 1].strip().startswith("#"):
            text.insert(0, comments[j])  # no comment on the line: the block above it
            j -= 1
        docs[field] = " ".join(text)
    return docs


def setting_defaults(name: str) -> dict:
    """Each config field's default for method ``name``: its config class's, with the
    method's own defaults over them (catch-meta's entropy bonus)."""
    m = get(name)
    out = {f.name: f.default for f in dataclasses.fields(m.config)}
    return {**out, **m.defaults}


def default_budget(name: str) -> int:
    """The budget of method ``name``'s config when none is given (50 for most; the DQN's
    greedy episode: 11)."""
    return next(f.default for f in dataclasses.fields(get(name).config) if f.name == "budget")


def make_config(name: str, budget: int | None = None, *, saved: bool = False, **overrides):
    """The frozen config of method ``name`` with its defaults, ``budget`` (default: the
    method's own, :func:`default_budget`) and overrides.

    ``overrides`` may be typed values or the strings a user typed (``--set k=v``): strings
    are parsed by the field's declared type (:func:`parse_value`). A setting the method
    does not read (e.g. meta-training settings for ``catch-sfs``) is refused unless it has
    its default value, or ``saved``: a config read back from a file keeps what it holds.
    """
    method = get(name)
    fields = {f.name: f for f in dataclasses.fields(method.config)}
    unknown = set(overrides) - set(fields)
    if unknown:
        raise CatchjaxError(
            f"method {name!r} has no setting {', '.join(sorted(unknown))}; settings: "
            f"{', '.join(sorted(setting_names(name)))}"
        )
    hints = typing.get_type_hints(method.config)
    values = {k: parse_value(name, k, hints[k], v) for k, v in overrides.items()}
    unused = sorted(k for k in values if k in method.ignores and values[k] != fields[k].default)
    values = {**method.defaults, **values}
    if unused and not saved:
        others = [m.name for m in REGISTRY.values()
                  if m.config is method.config and not set(unused) & set(m.ignores)]
        raise CatchjaxError(
            f"method {name!r} does not use the setting(s) {', '.join(unused)}"
            + (f" (they belong to {', '.join(others)})" if others else ""))
    budget = parse_value(name, "budget", hints["budget"],
                         default_budget(name) if budget is None else budget)
    for k, v in method.preset.items():
        if k in values and values[k] != v:
            raise CatchjaxError(
                f"method {name!r} fixes {k}={v!r}; {k}={values[k]!r} is another method "
                f"({', '.join(m.name for m in REGISTRY.values() if m.config is method.config)})"
            )
        values[k] = v
    return method.config(budget=budget, **values)


_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def parse_value(method: str, field: str, kind, value):
    """A setting's value as its declared type; strings are parsed, bad values refused."""
    where = f"setting {field} of {method}"
    args = typing.get_args(kind)
    if type(None) in args and len(args) == 2:  # "X | None": none, or a value of X
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none",
                                                                                  "null")):
            return None
        kind = next(a for a in args if a is not type(None))
    if kind is bool:
        if isinstance(value, str):
            if value.strip().lower() in _TRUE:
                return True
            if value.strip().lower() in _FALSE:
                return False
        elif isinstance(value, (bool, int)) and value in (0, 1):
            return bool(value)
        raise CatchjaxError(f"{where} is true or false (yes/no, 1/0), got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise CatchjaxError(f"{where} is an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise CatchjaxError(f"{where} is an integer, got {value!r}") from None
    if kind is float:
        if isinstance(value, bool):
            raise CatchjaxError(f"{where} is a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise CatchjaxError(f"{where} is a number, got {value!r}") from None
        if not math.isfinite(number):
            raise CatchjaxError(f"{where} must be a finite number, got {value!r}")
        return number
    if kind is str:
        return str(value)
    return value


def method_of(config) -> Method:
    """The registered method whose config class and preset ``config`` has."""
    for method in REGISTRY.values():
        if method.matches(config):
            return method
    raise CatchjaxError(f"{type(config).__name__} is not the config of a known method")


def method_name(config) -> str:
    return method_of(config).name


def search_function(config):
    return method_of(config).search


def build(method, budget=None, **settings):
    """The config of a run: from a method name (its defaults, ``budget`` or its own, and
    ``settings``, typed or as typed on the command line), or from a config of a registered
    method (its own budget unless ``budget`` is given; ``settings`` override fields). A
    config with nothing to change is returned as it is. The one place a run's config is
    built; :func:`resolve` also validates it."""
    if "budget" in settings:
        raise CatchjaxError("the budget is the budget argument (--budget), not a setting")
    if isinstance(method, str):
        return make_config(method, budget, **settings)
    if not dataclasses.is_dataclass(method) or isinstance(method, type):
        raise CatchjaxError(f"method must be a method name ({', '.join(REGISTRY)}) or a "
                            f"method's config, got {method!r}")
    m = method_of(method)
    if budget is None and not settings:
        return method
    fields = {f.name: getattr(method, f.name) for f in dataclasses.fields(method)}
    fields.pop("budget")
    return make_config(m.name, method.budget if budget is None else budget,
                       **{**fields, **settings})


def restore(name: str, saved: dict):
    """The config a file recorded (a checkpoint's, a search's): ``saved`` holds every
    field, budget included, and keeps settings the method does not read. Settings added
    after the file was written take the values that reproduce its run
    (:func:`with_added_settings`), not today's defaults."""
    saved = with_added_settings(get(name).config, saved)
    return make_config(name, saved.pop("budget"), saved=True, **saved)


def with_added_settings(config_class, saved: dict) -> dict:
    """``saved`` (a config as a file recorded it) with the settings its config class added
    later (``ADDED_SETTINGS``: name -> the value that reproduces older runs) filled in
    where the file has none."""
    return {**getattr(config_class, "ADDED_SETTINGS", {}), **saved}


def resolve(method, task, *, budget=None, agent=None, **settings):
    """:func:`build`, :func:`specialize`, then :func:`validate`: the config a run uses,
    checked against the task (and the agent it starts from) before anything compiles."""
    config = specialize(build(method, budget, **settings), task)
    validate(config, task, agent)
    return config


def specialize(config, task):
    """``config`` with its task-dependent defaults made concrete: a config class may
    define ``for_task(task) -> config`` (e.g. BANANAS' ``encoding="auto"`` becomes the
    path encoding on cell spaces), so the config a run records is the one it ran."""
    for_task = getattr(config, "for_task", None)
    return config if for_task is None else for_task(task)


def check_objectives(method, task) -> None:
    """A task with several objectives gives each trial its own weighting of them; a
    method whose trials are episodes of one agent trained on the task's reward (the DQN)
    would search one objective only: refused."""
    m = get(method) if isinstance(method, str) else method_of(method)
    if getattr(getattr(task, "spec", None), "objectives", ()) and m.learner is not None \
            and m.learner.trains_on == "task":
        raise CatchjaxError(
            f"{m.name} trains one agent on the task's reward and its trials are that "
            f"agent's episodes: it cannot give each trial its own weighting of several "
            f"objectives. Use a search method (random, rea, nsga, ls, bananas, reinforce, "
            f"catch-sfs, catch-meta)")


def validate(config, task, agent=None) -> None:
    """Reject a config (and agent) that cannot run on ``task``, before anything compiles."""
    method = method_of(config)
    check_objectives(config, task)
    learner = method.learner
    if agent is None and learner is not None and learner.requires_agent:
        raise CatchjaxError(
            f"{method.name} adapts a meta-trained agent: pass agent= (catchjax.runs.agent.train / "
            f"load_agent), or on the command line --init CHECKPOINT (without --init, "
            f"`catchjax sweep --method {method.name}` meta-trains one first)"
        )
    if agent is not None and learner is None:
        raise CatchjaxError(f"method {method.name!r} does not start from an agent")
    if isinstance(config.budget, bool) or not isinstance(config.budget, int) or config.budget <= 0:
        raise CatchjaxError(f"budget must be a positive integer, got {config.budget!r}")
    config.validate(task)
    if agent is not None:
        check_agent_fits(method, config, task, agent)


def check_agent_fits(method: Method, config, task, agent) -> None:
    """The agent's pytree has the structure, shapes and dtypes a fresh one would have."""
    import jax

    from catchjax.core import TrainedAgent

    if isinstance(agent, TrainedAgent):
        raise CatchjaxError(
            f"agent= takes the trained state (a TrainedAgent's .agent), or use "
            f"catchjax.runs.agent.load_agent / train's result as sweep(..., agent=trained.agent); "
            f"got the whole {method.name} TrainedAgent"
        )
    L, _, K = task.arrays.prefix_mask.shape
    expected = jax.eval_shape(lambda: method.learner.init(config, jax.random.key(0), L, K))
    shape = [(x.shape, x.dtype) for x in jax.tree.leaves(expected)]
    got = [(getattr(x, "shape", None), getattr(x, "dtype", None))
           for x in jax.tree.leaves(agent)]
    if jax.tree.structure(expected) != jax.tree.structure(agent) or shape != got:
        fields = ", ".join(f"{k}={getattr(config, k)}" for k in method.learner.shape_fields)
        raise CatchjaxError(
            f"the agent's networks do not fit this config ({fields}) and the {L} x {K} space "
            f"of {task.name}: an incompatible config"
        )
