"""Registry of search methods: a name -> (config dataclass, pure search function)."""

from __future__ import annotations

import dataclasses

from catchjax import baselines, catch
from catchjax.benchmarks.tasks import Task
from catchjax.errors import CatchjaxError

METHODS = {
    "random": (baselines.RandomSearchConfig, baselines.random_search),
    "rea": (baselines.EvolutionConfig, baselines.regularized_evolution),
    "reinforce": (baselines.ReinforceConfig, baselines.reinforce),
    # CATCH from scratch (no meta-training yet) and its context ablations, paper §4.2
    "catch-sfs": (catch.CatchConfig, catch.catch_search),
    "catch-zero": (catch.CatchConfig, catch.catch_search),
    "catch-random": (catch.CatchConfig, catch.catch_search),
    "catch-meta": (catch.CatchConfig, catch.catch_search),  # adapts a meta-trained agent
}
CATCH_CONTEXT = {"catch-sfs": "learned", "catch-zero": "zero", "catch-random": "random"}
ALIASES = {"rs": "random", "random-search": "random", "evolution": "rea"}


def canonical_name(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in METHODS:
        raise CatchjaxError(f"unknown method {name!r}; methods: {', '.join(METHODS)}")
    return name


def make_config(name: str, budget: int = 50, **overrides):
    """The frozen config of method ``name`` with its defaults, ``budget`` and overrides."""
    cls, _ = METHODS[canonical_name(name)]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(overrides) - fields
    if unknown:
        raise CatchjaxError(
            f"method {name!r} has no setting {', '.join(sorted(unknown))}; settings: "
            f"{', '.join(sorted(fields))}"
        )
    if name in CATCH_CONTEXT:
        overrides.setdefault("context", CATCH_CONTEXT[name])
    if name == "catch-meta":
        overrides["meta_trained"] = True
    return cls(budget=budget, **overrides)


def method_name(config) -> str:
    if isinstance(config, catch.CatchConfig):
        if config.meta_trained:
            return "catch-meta"
        return {v: k for k, v in CATCH_CONTEXT.items()}[config.context]
    for name, (cls, _) in METHODS.items():
        if type(config) is cls:
            return name
    raise CatchjaxError(f"{type(config).__name__} is not the config of a known method")


def search_function(config):
    return METHODS[method_name(config)][1]


def validate(config, task: Task, agent=None) -> None:
    """Reject a config that cannot run on ``task``, before anything is compiled."""
    if isinstance(config, catch.CatchConfig) and config.meta_trained and agent is None:
        raise CatchjaxError(
            "catch-meta adapts a meta-trained agent: pass agent= (catchjax.agent.meta_train / "
            "load_agent), or on the command line --init CHECKPOINT (without --init, "
            "`catchjax sweep --method catch-meta` meta-trains one first)"
        )
    if agent is not None and not (isinstance(config, catch.CatchConfig) and config.meta_trained):
        raise CatchjaxError(f"method {method_name(config)!r} does not start from an agent")
    if agent is not None:
        import jax

        L, _, K = task.arrays.prefix_mask.shape
        expected = jax.eval_shape(lambda: catch.init_agent(config, jax.random.key(0), L, K))
        shape = [(x.shape, x.dtype) for x in jax.tree.leaves(expected)]
        got = [(x.shape, x.dtype) for x in jax.tree.leaves(agent)]
        if jax.tree.structure(expected) != jax.tree.structure(agent) or shape != got:
            raise CatchjaxError(
                f"the agent's networks do not fit this config (z_dim={config.z_dim}, "
                f"hidden={config.hidden}) and the {L} x {K} space of {task.name}: an "
                f"incompatible config"
            )
    if not isinstance(config.budget, int) or config.budget <= 0:
        raise CatchjaxError(f"budget must be a positive integer, got {config.budget!r}")
    if isinstance(config, baselines.RandomSearchConfig) and not config.replace:
        if config.budget > task.n_searchable:
            raise CatchjaxError(
                f"random search without replacement cannot evaluate {config.budget} distinct "
                f"architectures: {task.name} has only {task.n_searchable}; lower the budget "
                f"or sample with replacement (replace=True)"
            )
    if isinstance(config, baselines.EvolutionConfig):
        if config.population < 1 or config.sample_size < 1:
            raise CatchjaxError(
                f"evolution needs population >= 1 and sample_size >= 1, got "
                f"{config.population} and {config.sample_size}"
            )
    if isinstance(config, catch.CatchConfig):
        if config.candidates < 1 or config.z_dim < 1 or config.hidden < 1:
            raise CatchjaxError(
                f"CATCH needs candidates (M) >= 1, z_dim >= 1 and hidden >= 1, got "
                f"{config.candidates}, {config.z_dim}, {config.hidden}"
            )
        if config.context not in CATCH_CONTEXT.values():
            raise CatchjaxError(
                f"context must be one of {sorted(CATCH_CONTEXT.values())}, got {config.context!r}"
            )
        if not 1 <= config.n_initial <= min(config.budget, config.meta_budget):
            raise CatchjaxError(
                f"n_initial must be in 1..budget (and <= meta_budget), got {config.n_initial}"
            )
        if config.meta_epochs < 1 or config.meta_budget < 1:
            raise CatchjaxError(
                f"meta_epochs and meta_budget must be >= 1, got {config.meta_epochs}, "
                f"{config.meta_budget}"
            )
    if isinstance(config, baselines.ReinforceConfig):
        if not config.learning_rate > 0 or not 0 <= config.baseline_momentum < 1:
            raise CatchjaxError(
                f"REINFORCE needs learning_rate > 0 and 0 <= baseline_momentum < 1, got "
                f"{config.learning_rate} and {config.baseline_momentum}"
            )
