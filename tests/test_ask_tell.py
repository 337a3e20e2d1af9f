"""Ask/tell (catchjax.asktell.search): the same steps as the table sweeps, saved after every
step, a file protocol for the command line, and clear refusals of bad results."""

from __future__ import annotations

import csv
import dataclasses
import json

import jax
import numpy as np
import pytest

from catchjax import cli, methods
from catchjax.asktell import saved
from catchjax.asktell.search import AskTell, space_domain, task_domain
from catchjax.benchmarks import tasks
from catchjax.core import TrainedAgent
from catchjax.errors import CatchjaxError
from catchjax.methods import catch, dqn
from catchjax.runs import sweeps
from catchjax.store import folder

BUDGET = 8
SETTINGS = {
    "random": {},
    "rea": {"population": 4},
    "reinforce": {},
    "ls": {"n_initial": 3},
    "bananas": {"n_initial": 3, "batch": 2, "ensemble": 2, "layers": 1, "width": 8,
                "train_steps": 5, "candidates": 8, "parents": 2, "random_candidates": 2},
    "catch-sfs": {"candidates": 6, "n_initial": 3, "hidden": 16, "updates_per_epoch": 2},
    "catch-meta": {"candidates": 6, "n_initial": 3, "hidden": 16, "updates_per_epoch": 2},
    "dqn": {"width": 16, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def micro():
    return tasks.make_task("synthetic-transnas-micro", "jigsaw")


def agent_for(name, task):
    """An untrained agent of the right shapes: the steps do not care whether it learned,
    and the sweep gets the same one."""
    m = methods.get(name)
    if m.learner is None:
        return None
    config = methods.make_config(name, BUDGET, **SETTINGS[name])
    L, _, K = task.arrays.prefix_mask.shape
    init = catch.init_agent if name.startswith("catch") else dqn.init_agent
    state = init(config, jax.random.key(11), L, K)
    return TrainedAgent(state, config, "synthetic-transnas-micro", "jigsaw", [], 0, L, K,
                        method=name, space=task.space.name)


def raw(x):
    x = jax.numpy.asarray(x)
    return np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key) else x)


def drive(search, reward, k=1, reload=None):
    """Ask k at a time until the search stops; answer from the table. ``reload``: read
    the search back from its folder before every tell (a trainer that crashed)."""
    rows = []
    while True:
        proposals = search.ask(k)
        if not proposals:
            return rows, search
        got = [search.domain.arrays.code_to_row[int(search.domain.space.encode(
            np.asarray(p["actions"])))] for p in proposals]
        rows += [int(r) for r in got]
        if reload is not None:
            search = reload(search)
        search.tell([p["id"] for p in proposals], [float(reward[r]) for r in got])


@pytest.mark.parametrize("name", list(SETTINGS))
def test_ask_tell_with_table_rewards_is_the_table_sweep(name, micro):
    agent = agent_for(name, micro)
    trace = sweeps.run_trial(name, micro, seed=3, trial=2, budget=BUDGET,
                             agent=None if agent is None else agent.agent, **SETTINGS[name])
    search = AskTell.start(name, task_domain(micro), budget=BUDGET, seed=3, trial=2,
                           agent=agent, **SETTINGS[name])
    rows, search = drive(search, np.asarray(micro.arrays.reward))
    expected = list(trace.rows)
    if name == "dqn":  # a stopped greedy episode stays put; ask/tell ends at the stop
        expected = expected[:len(rows)]
        assert len(set(expected)) == len(rows)
    assert rows == expected
    assert search.ready() == 0 and not search.pending


def test_a_tell_after_a_crash_continues_identically(micro, tmp_path):
    """A search reloaded from disk before every tell (a crashed trainer) ends in the same
    state as one kept in memory, for a method whose tell learns (REINFORCE) and CATCH."""
    reward = np.asarray(micro.arrays.reward)
    for name, budget in (("reinforce", BUDGET), ("catch-sfs", BUDGET)):  # reuses compiled steps
        a = AskTell.start(name, task_domain(micro), budget=budget, seed=5, **SETTINGS[name])
        rows_a, a = drive(a, reward, k=2)
        b = AskTell.start(name, task_domain(micro), budget=budget, seed=5,
                          state_dir=tmp_path / name, **SETTINGS[name])
        rows_b, b = drive(b, reward, k=2, reload=lambda s: AskTell.load(s.state_dir))
        assert rows_a == rows_b and len(rows_a) == budget
        for x, y in zip(jax.tree.leaves(a.state),
                        jax.tree.leaves(AskTell.load(b.state_dir).state)):
            np.testing.assert_array_equal(raw(x), raw(y))


def test_a_folder_saved_leaf_by_leaf_continues_identically_and_is_packed_from_then_on(
        micro, tmp_path, monkeypatch):
    """A CATCH search folder of the second format (its state one Orbax array per leaf, as
    catchjax wrote it before the state was packed) loads and continues as a search kept in
    memory; its next write is the current format, one array per dtype."""
    reward, name = np.asarray(micro.arrays.reward), "catch-sfs"
    a = AskTell.start(name, task_domain(micro), budget=BUDGET, seed=5, **SETTINGS[name])
    rows_a, a = drive(a, reward, k=2)
    path = tmp_path / "old"
    monkeypatch.setattr(saved, "FORMAT", 2)
    b = AskTell.start(name, task_domain(micro), budget=BUDGET, seed=5, state_dir=path,
                      **SETTINGS[name])
    first = b.ask(2)
    rows_b = [int(b.domain.arrays.code_to_row[int(b.domain.space.encode(
        np.asarray(p["actions"])))]) for p in first]
    b.tell([p["id"] for p in first], [float(reward[r]) for r in rows_b])
    meta = saved.read_manifest(path)
    assert meta["format"] == 2
    leaves = folder.restore_state(path / meta["state_dir"], folder.abstract_of(b.state), "x")
    assert len(jax.tree.leaves(leaves)) == len(jax.tree.leaves(b.state)) > 20
    monkeypatch.undo()
    rest, b = drive(AskTell.load(path), reward, k=2, reload=lambda s: AskTell.load(s.state_dir))
    assert rows_b + rest == rows_a
    assert saved.read_manifest(path)["format"] == saved.FORMAT == 3
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(AskTell.load(path).state)):
        np.testing.assert_array_equal(raw(x), raw(y))


def test_loading_a_table_search_again_does_not_trace_its_start_again(micro, tmp_path,
                                                                     monkeypatch):
    """A worker that reloads before every step (as above) learns the state's shapes once:
    a table domain is built anew at each load, and the shapes are kept by its name and
    architectures, not by the object (each miss traced the method's start, an agent too)."""
    AskTell.start("reinforce", task_domain(micro), budget=BUDGET, seed=0,
                  state_dir=tmp_path / "s")
    first = AskTell.load(tmp_path / "s")
    traced = []  # what the load traces for shapes (JAX traces other small things too)
    real = jax.eval_shape
    monkeypatch.setattr(jax, "eval_shape",
                        lambda f, *a: traced.append(getattr(f, "__qualname__", "")) or
                        real(f, *a))
    again = AskTell.load(tmp_path / "s")
    assert again.domain is not first.domain
    assert not [q for q in traced if "_state_shapes" in q], traced


def test_a_parallel_ask_of_a_collapsed_catch_agent_proposes_different_networks(micro):
    """A near-deterministic controller (every candidate the same cell, as after the
    paper's meta-training) still gives k different networks to k workers: the first is
    the controller's cell, the others are searchable networks not proposed before."""
    agent = agent_for("catch-meta", micro)
    params = jax.tree.map(lambda x: x, agent.agent.params)  # a copy to edit
    layers = params["controller"]["params"]["MLP_0"]
    last = sorted(layers)[-1]  # the output layer: [L * K] logits
    K = micro.arrays.prefix_mask.shape[2]
    layers[last]["bias"] = layers[last]["bias"].at[::K].set(50.0)  # choice 0 everywhere
    agent = dataclasses.replace(agent, agent=agent.agent.replace(params=params))
    search = AskTell.start("catch-meta", task_domain(micro), budget=BUDGET, seed=1,
                           agent=agent, **SETTINGS["catch-meta"])
    seeds = search.ask(3)
    search.tell([p["id"] for p in seeds], [0.1, 0.2, 0.3])
    batch = search.ask(5)
    rows = [int(micro.arrays.code_to_row[int(search.domain.space.encode(
        np.asarray(p["actions"])))]) for p in batch]
    assert len(set(rows)) == 5
    assert all(np.asarray(micro.searchable)[r] for r in rows)
    assert list(batch[0]["actions"]) == [0] * len(batch[0]["actions"])


def test_proposals_in_parallel_wait_for_what_the_method_needs(micro):
    search = AskTell.start("rea", task_domain(micro), budget=BUDGET, seed=0, population=4)
    first = search.ask(8)
    assert [p["id"] for p in first] == [0, 1, 2, 3]  # the initial population only
    assert search.ask(3) == [] and "rewards of proposals [0, 1, 2, 3]" in search.why_not_more()
    search.tell([2, 0, 1, 3], [0.1, 0.2, 0.3, 0.4])  # any order
    assert [p["id"] for p in search.ask(3)] == [4, 5, 6]  # asynchronous workers
    assert len(search.ask(5)) == 1 and "budget of 8" in search.why_not_more()


def test_bad_results_are_refused_and_the_saved_state_is_unchanged(micro, tmp_path):
    folder = tmp_path / "s"
    search = AskTell.start("reinforce", task_domain(micro), budget=BUDGET, seed=0,
                           state_dir=folder)
    ids = [p["id"] for p in search.ask(3)]
    search.tell([ids[0]], [0.5])
    saved = (folder / "catchjax-search.json").read_bytes()
    bad = [
        (([7], [0.1]), "never asked"),
        (([ids[0]], [0.2]), "told already"),
        (([ids[1]], [float("nan")]), "finite"),
        (([ids[1]], [float("inf")]), "finite"),
        (([ids[1], ids[2]], [0.1]), "2 proposals but 1 rewards"),
        (([ids[1], ids[1]], [0.1, 0.2]), "twice"),
        (([ids[1]], ["abc"]), "not a number"),
    ]
    for (i, r), words in bad:
        with pytest.raises(CatchjaxError, match=words):
            search.tell(i, r)
    with pytest.raises(CatchjaxError, match="never asked"):
        search.tell(archs=["64-41414-0_00_000"], rewards=[0.1])
    arch = search.log[ids[1]]["arch"]
    with pytest.raises(CatchjaxError, match="names arch"):
        search.tell([ids[2]], [0.1], archs=[arch])
    assert (folder / "catchjax-search.json").read_bytes() == saved
    assert AskTell.load(folder).pending == ids[1:]
    # a result named by its arch finds the pending proposal
    search.tell(archs=[arch], rewards=[0.3])
    assert AskTell.load(folder).pending == [ids[2]]


def test_search_folders_of_another_kind_or_damaged_are_refused(micro, tmp_path):
    folder = tmp_path / "s"
    AskTell.start("random", task_domain(micro), budget=4, state_dir=folder).ask(2)
    with pytest.raises(CatchjaxError, match="holds a random search"):
        AskTell.load(folder, method="rea")
    with pytest.raises(CatchjaxError, match="not residual"):
        AskTell.load(folder, space="residual")
    with pytest.raises(CatchjaxError, match="already exists"):
        AskTell.start("random", task_domain(micro), budget=4, state_dir=folder)
    # a crash between setting the old folder aside and moving the new one in
    aside = tmp_path / ".s.catchjax-old-1-x"
    aside.mkdir()
    folder.rename(aside / "s")
    with pytest.raises(CatchjaxError, match="set aside.*mv"):
        AskTell.load(folder)
    (aside / "s").rename(folder)
    meta = json.loads((folder / "catchjax-search.json").read_text())
    meta["proposals"][0]["arch"] = "x"
    (folder / "catchjax-search.json").write_text(json.dumps(meta))
    with pytest.raises(CatchjaxError, match="changed after it was written"):
        AskTell.load(folder)
    (folder / "catchjax-search.json").unlink()
    with pytest.raises(CatchjaxError, match="not a complete"):
        AskTell.load(folder)


def test_file_protocol_round_trips(micro, tmp_path, capsys):
    """catchjax ask -> proposals.json -> a trainer's results.csv -> catchjax tell, from a
    job that never imports catchjax; the same proposals as the Python API."""
    state, out = tmp_path / "search", tmp_path / "proposals.json"
    reward = np.asarray(micro.arrays.reward)
    domain = task_domain(micro)
    space = "table:synthetic-transnas-micro/jigsaw"
    args = ["ask", "--state", str(state), "-k", "3", "--out", str(out)]
    assert cli.main([*args, "--method", "rea", "--space", space, "--budget", "6",
                     "--set", "population=3", "--seed", "1"]) == 0
    asked = json.loads(out.read_text())["proposals"]
    again = tmp_path / "pending.json"  # the trainer lost its list: ask for it again
    assert cli.main(["ask", "--state", str(state), "--pending", "--out", str(again)]) == 0
    assert json.loads(again.read_text())["proposals"] == asked
    step = 0
    while doc := json.loads(out.read_text()):
        if not doc["proposals"]:
            assert "budget of 6" in doc["note"]
            break
        results = tmp_path / f"results{step}.csv"
        with open(results, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "arch", "reward", "accuracy"])
            for p in doc["proposals"]:
                row = domain.space.encode(np.asarray(p["actions"]))
                r = float(reward[domain.arrays.code_to_row[int(row)]])
                w.writerow([p["id"], p["arch"], repr(r), 100 * r])
        assert cli.main(["tell", "--state", str(state), str(results)]) == 0
        assert cli.main(args) == 0
        step += 1
    assert step == 2
    api = AskTell.start("rea", domain, budget=6, seed=1, population=3)
    rows, api = drive(api, reward, k=3)
    saved = AskTell.load(state)
    assert [p["arch"] for p in saved.log] == [p["arch"] for p in api.log]
    assert [p["reward"] for p in saved.log] == [p["reward"] for p in api.log]
    assert saved.log[0]["extras"]["accuracy"] == pytest.approx(100 * saved.log[0]["reward"])
    # a results file with a wrong column, or an --out catchjax did not write: clear errors
    bad = tmp_path / "bad.csv"
    bad.write_text("id,score\n0,1\n")
    assert cli.main(["tell", "--state", str(state), str(bad)]) == 2
    assert "needs a 'reward' column" in capsys.readouterr().err
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "notes"}')
    assert cli.main(["ask", "--state", str(state), "--out", str(mine)]) == 2
    assert mine.read_text() == '{"my": "notes"}'


def test_residual_space_searches_and_every_sequence_builds_its_depth():
    from catchjax import sampling
    from catchjax.residual import decode, model, space

    for row in space.ENUMERATION:  # the whole space: blocks sum to the depth
        spec = decode(row)
        assert sum(spec.blocks) == spec.depth and min(spec.blocks) >= 1
        assert len(spec.blocks) == len(spec.widths)
    domain = space_domain("residual")
    keys = jax.random.split(jax.random.key(0), 12)
    seqs = jax.vmap(lambda k: sampling.sample_sequence(
        k, lambda t, _: jax.numpy.zeros(space.N_CHOICES), domain.arrays.prefix_mask)[0])(keys)
    depths = set()
    for actions in np.asarray(seqs):
        spec = decode(actions)  # masked sampling only yields networks of the space
        shapes = jax.eval_shape(lambda s=spec: model.ResNet(s, 10, 0.25).init(
            jax.random.key(0), jax.numpy.zeros((1, 8, 8, 1))))
        assert model.count_blocks(shapes) == spec.depth
        depths.add(spec.depth)
    assert len(depths) > 1
    search = AskTell.start("catch-sfs", "residual", budget=6, seed=0, candidates=4,
                           n_initial=2, hidden=8)
    proposals = search.ask(2)
    assert all(p["spec"]["depth"] == sum(p["spec"]["blocks"]) for p in proposals)


def test_latency_is_measured_once_per_arch_and_rewards_trade_it_off():
    from catchjax.residual import latency, space

    spec = space.decode(space.ENUMERATION[0])
    first = latency.measure_latency(spec, width_scale=0.1, repeats=3)
    assert first > 0 and latency.measure_latency(spec, width_scale=0.1, repeats=3) == first
    r = latency.latency_aware_reward([0.9, 0.9, -0.5, -0.5], [1.0, 2.0, 1.0, 2.0], 1.0)
    assert r[0] == pytest.approx(0.9) and r[1] == pytest.approx(0.9 * 2 ** -0.05)
    assert r[1] < r[0] and r[3] < r[2]  # slower is worse, for negative P too


def test_history_is_a_table_and_repr_is_short(micro, tmp_path):
    """Issue 22, item 4: history() has the same keys in every row (extras as columns) and
    is the same after a reload; repr is one short line, not the state's arrays."""
    search = AskTell.start("random", task_domain(micro), budget=BUDGET, seed=0,
                           state_dir=tmp_path / "s")
    asked = search.ask(3)
    search.tell([p["id"] for p in asked[:2]], [0.5, 0.25],
                extras=[{"epochs": 3}, {"loss": 1.5}])
    rows = search.history()
    assert [r["id"] for r in rows] == [0, 1, 2]
    assert all(list(r) == list(rows[0]) for r in rows)
    assert list(rows[0])[-2:] == ["extra_epochs", "extra_loss"]
    assert (rows[0]["extra_epochs"], rows[1]["extra_loss"], rows[2]["reward"]) == (3, 1.5, None)
    assert rows[0]["actions"] == " ".join(map(str, asked[0]["actions"]))
    assert AskTell.load(tmp_path / "s").history() == rows
    text = repr(search)
    assert len(text) < 200 and "asked 3, told 2, best 0.5 (id 0)" in text


def test_catchjax_ask_and_tell_go_through_the_registry_in_at_most_three_calls(tmp_path, capsys):
    """Ask/tell is not a second path to the methods: a command resolves its method and
    config through the registry's own entry points (get, resolve / restore), not by
    rebuilding what they do call by call."""
    import sys

    registry = methods.__file__

    def count(*argv):
        calls = []

        def profile(frame, event, arg):
            if event == "call" and frame.f_code.co_filename == registry and \
                    frame.f_back is not None and frame.f_back.f_code.co_filename != registry:
                calls.append(frame.f_code.co_name)

        sys.setprofile(profile)
        try:
            assert cli.main(list(argv)) == 0
        finally:
            sys.setprofile(None)
        return calls

    state = str(tmp_path / "s")
    first = count("ask", "--state", state, "--method", "rea", "--space", "nb201", "--budget",
                  "6", "-k", "2", "--out", str(tmp_path / "p.json"))
    assert len(first) <= 3, first
    again = count("ask", "--state", state, "--method", "rea", "-k", "1",
                  "--out", str(tmp_path / "p.json"))
    assert len(again) <= 3, again
    (tmp_path / "r.csv").write_text("id,reward\n0,0.5\n1,0.25\n")
    told = count("tell", "--state", state, str(tmp_path / "r.csv"))
    assert len(told) <= 3, told
    assert AskTell.load(state).best()["reward"] == 0.5
