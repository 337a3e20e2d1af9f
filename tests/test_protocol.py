"""The method protocol: a method registered from outside the package (a few lines here)
runs through `catchjax sweep`, `catchjax train`, checkpoints and reports untouched."""

import csv
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from catchjax import cli, methods
from catchjax.benchmarks import tables, tasks
from catchjax.core import Learner, Ledger, Method, SearchTrace
from catchjax.errors import CatchjaxError
from catchjax.runs import agent as agents
from catchjax.runs import sweeps


@dataclasses.dataclass(frozen=True)
class RepeatConfig:
    budget: int = 50
    offset: int = 0  # evaluate the searchable architecture number `offset`, every step

    def validate(self, task):
        if not 0 <= self.offset < task.n_searchable:
            raise CatchjaxError(f"offset must be in 0..{task.n_searchable - 1}")


@dataclasses.dataclass(frozen=True)
class FavouriteConfig(RepeatConfig):
    pass


def repeat_search(config, key, task, agent=None):
    """Always evaluate one architecture: the `offset`-th, or the agent's favourite."""
    row = task.valid_rows[config.offset] if agent is None else agent["row"]
    rows = jnp.full((config.budget,), row, jnp.int32)
    return SearchTrace(rows=rows, rewards=task.reward[rows])


def favourite_init(config, key, L, K):
    return {"row": jnp.zeros((), jnp.int32)}


def favourite_train(config, key, task, pool_rewards):
    """The architecture with the best mean reward over the pool."""
    return {"row": jnp.argmax(pool_rewards.mean(axis=0)).astype(jnp.int32)}, {}


@pytest.fixture
def toy_methods():
    first = methods.register(Method("toy-repeat", RepeatConfig, repeat_search))
    best = methods.register(Method("toy-favourite", FavouriteConfig, repeat_search,
                                   learner=Learner(favourite_init, favourite_train)))
    yield first, best
    methods.unregister("toy-repeat")
    methods.unregister("toy-favourite")


def test_toy_method_runs_through_the_cli_and_reports(toy_methods, tmp_path, syn_nb201):
    out = tmp_path / "toy"
    assert cli.main(["sweep", "--method", "toy-repeat", "--benchmark", "synthetic-nb201",
                     "--task", "cifar10", "--trials", "3", "--budget", "4", "--set", "offset=7",
                     "--out", str(out), "--no-progress"]) == 0
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert {int(r["row"]) for r in rows} == {int(syn_nb201.arrays.valid_rows[7])}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "toy-repeat" and summary["config"]["offset"] == 7
    assert not (out / "metrics.csv").exists()  # the toy has no per-epoch metrics
    # the config validates itself before anything compiles
    assert cli.main(["sweep", "--method", "toy-repeat", "--benchmark", "synthetic-nb201",
                     "--task", "cifar10", "--set", "offset=-1", "--out", str(tmp_path / "x"),
                     "--no-progress"]) == 2
    assert not (tmp_path / "x").exists()


def test_toy_agent_trains_checkpoints_and_adapts(toy_methods, tmp_path, syn_nb201, capsys):
    ck = tmp_path / "agent"
    assert cli.main(["train", "--method", "toy-favourite", "--benchmark", "synthetic-nb201",
                     "--task", "cifar10", "--out", str(ck)]) == 0
    manifest = json.loads((ck / "catchjax.json").read_text())
    assert manifest["method"] == "toy-favourite" and manifest["space"] == "nb201"
    assert manifest["pool"] == tables.training_pool("synthetic-nb201", "cifar10")
    pool = agents.pool_rewards(syn_nb201, manifest["pool"])
    best = int(np.argmax(pool.mean(axis=0)))
    restored = agents.load_agent(ck, syn_nb201)
    assert int(restored.agent["row"]) == best and restored.method == "toy-favourite"
    out = tmp_path / "adapt"
    assert cli.main(["sweep", "--method", "toy-favourite", "--benchmark", "synthetic-nb201",
                     "--task", "cifar10", "--trials", "2", "--budget", "3", "--init", str(ck),
                     "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "toy-favourite" and summary["init"] == "../agent"  # run-relative
    assert (out / summary["init"]).resolve() == ck.resolve()
    with open(out / "results.csv") as f:
        assert {int(r["row"]) for r in csv.DictReader(f)} == {best}
    # without an agent the method refuses to run; a checkpoint of another method is refused
    with pytest.raises(CatchjaxError, match="toy-favourite adapts"):
        sweeps.sweep("toy-favourite", syn_nb201, trials=2, budget=3)
    with pytest.raises(CatchjaxError, match="holds a toy-favourite agent"):
        agents.load_agent(ck, syn_nb201, method="catch-meta")


def test_checkpoint_of_another_space_of_the_same_shape_is_refused(toy_methods, tmp_path,
                                                                  syn_nb201):
    trained = agents.train("toy-favourite", syn_nb201, FavouriteConfig())
    ck = agents.save_agent(tmp_path / "a", trained)
    macro = tasks.make_task("synthetic-transnas-macro", "class_scene")  # also 6 x 5
    with pytest.raises(CatchjaxError, match="nb201 space.*transnas-macro space"):
        agents.load_agent(ck, macro)


def test_a_bit_flip_in_the_state_is_refused(toy_methods, tmp_path, syn_nb201):
    trained = agents.train("toy-favourite", syn_nb201, FavouriteConfig())
    ck = agents.save_agent(tmp_path / "a", trained)
    files = sorted(f for f in (ck / "state").rglob("*") if f.is_file() and f.stat().st_size)
    data = bytearray(files[-1].read_bytes())
    data[len(data) // 2] ^= 0x01
    files[-1].write_bytes(bytes(data))
    with pytest.raises(CatchjaxError, match="checksum"):
        agents.load_agent(ck, syn_nb201)


def test_an_edited_manifest_is_refused(toy_methods, tmp_path, syn_nb201):
    trained = agents.train("toy-favourite", syn_nb201, FavouriteConfig())
    ck = agents.save_agent(tmp_path / "a", trained)
    agents.load_agent(ck, syn_nb201)  # intact: loads
    manifest = json.loads((ck / "catchjax.json").read_text())
    manifest["config"]["offset"] = 3  # a setting that changes no shape
    (ck / "catchjax.json").write_text(json.dumps(manifest))
    with pytest.raises(CatchjaxError, match="changed after it was written"):
        agents.load_agent(ck, syn_nb201)


def test_registry_refuses_bad_entries_and_settings(toy_methods):
    with pytest.raises(CatchjaxError, match="already registered"):
        methods.register(Method("toy-repeat", RepeatConfig, repeat_search))
    with pytest.raises(CatchjaxError, match="no preset tells their configs apart"):
        methods.register(Method("toy-again", RepeatConfig, repeat_search))
    with pytest.raises(CatchjaxError, match="fixes context='zero'"):
        methods.make_config("catch-zero", context="learned")
    assert methods.make_config("random", replace="no").replace is False
    assert methods.make_config("random", replace="yes").replace is True
    for bad in ("2.5", "abc"):
        with pytest.raises(CatchjaxError, match="integer"):
            methods.make_config("rea", population=bad)
    with pytest.raises(CatchjaxError, match="finite"):
        methods.make_config("reinforce", learning_rate="inf")
    with pytest.raises(CatchjaxError, match="true or false"):
        methods.make_config("random", replace="maybe")


def test_every_registered_method_maps_back_from_its_config():
    for name in methods.names():
        assert methods.method_name(methods.make_config(name)) == name


def test_trained_agent_state_is_a_pytree_the_learner_shapes(toy_methods, syn_nb201):
    trained = agents.train("toy-favourite", syn_nb201, FavouriteConfig())
    expected = jax.eval_shape(lambda: favourite_init(None, None, 6, 5))
    assert jax.tree.structure(expected) == jax.tree.structure(trained.agent)


@dataclasses.dataclass(frozen=True)
class GreedyConfig:
    budget: int = 50

    def validate(self, task):
        pass


@struct.dataclass
class GreedyState:
    ledger: Ledger
    best: jnp.ndarray  # row of the best reward told so far


def greedy_start(config, key, task, agent):
    return GreedyState(Ledger.empty(config.budget), task.valid_rows[0])


def greedy_ask(config, state, task, k, seeding):
    """Propose the searchable networks in order, skipping none: the steps only."""
    rows = task.valid_rows[state.ledger.n_asked + jnp.arange(k)]
    return rows, state.replace(ledger=state.ledger.asked(rows)), {}


def greedy_tell(config, state, task, ids, rewards, seeding):
    ledger = state.ledger.told(ids, rewards)
    best = ledger.rows[jnp.nanargmax(ledger.rewards)]
    return state.replace(ledger=ledger, best=best), {}


def test_a_method_given_only_its_steps_gets_a_sweep_and_ask_tell(syn_nb201):
    """No search function, no first/ready: the defaults make the table search (the steps
    with the table answering) and an ask/tell search out of start/ask/tell."""
    from catchjax.asktell.search import AskTell, task_domain
    from catchjax.core import Stepper

    methods.register(Method("toy-steps", GreedyConfig,
                            stepper=Stepper(greedy_start, greedy_ask, greedy_tell)))
    try:
        result = sweeps.sweep("toy-steps", syn_nb201, trials=2, budget=6)
        valid = np.asarray(syn_nb201.arrays.valid_rows)
        assert result.rows.tolist() == [valid[:6].tolist()] * 2
        search = AskTell.start("toy-steps", task_domain(syn_nb201), budget=6)
        got = search.ask(3)  # the default ready: one after another, up to the budget
        assert [p["id"] for p in got] == [0, 1, 2]
        search.tell([0, 1, 2], [0.1, 0.3, 0.2])
        assert int(search.state.best) == int(valid[1]) and search.ready() == 3
        with pytest.raises(CatchjaxError, match="needs a search function or a stepper"):
            Method("toy-nothing", GreedyConfig)
    finally:
        methods.unregister("toy-steps")
