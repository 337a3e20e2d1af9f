"""Tasks with several objectives (issue 35): the task keeps each objective minimized and
scaled, its true front, each trial its own weights; sweeps measure the found fronts."""

from __future__ import annotations

import csv
import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest

from catchjax import cli, methods
from catchjax.benchmarks import pareto, tasks
from catchjax.errors import CatchjaxError
from catchjax.runs import sweeps

OBJECTIVES = ["cifar100_valid_acc_12:max", "cifar100_edgegpu_latency:min"]


@pytest.fixture(scope="module")
def mo_task():
    return tasks.make_task("synthetic-nb201", "cifar100", objectives=OBJECTIVES)


@pytest.fixture(scope="module")
def mo_sweep(mo_task):
    return sweeps.sweep("rea", mo_task, trials=40, budget=30, seed=0)


def test_objectives_are_minimized_scaled_and_reported_as_their_task_reports(mo_task):
    spec = mo_task.spec
    # accuracy is searched on the 12-epoch validation and reported on the 200-epoch test
    # (as the single-objective task), latency on its own column
    assert spec.report_metrics == ("cifar100_test_acc_200", "cifar100_edgegpu_latency")
    o = np.asarray(mo_task.arrays.objectives)
    assert o.shape == (mo_task.table.n_archs, 2) and o.min() == 0 and o.max() == 1
    acc = mo_task.table.columns["cifar100_valid_acc_12"]
    lat = mo_task.table.columns["cifar100_edgegpu_latency"]
    assert o[np.argmax(acc), 0] == 0 and o[np.argmin(lat), 1] == 0  # best = 0 (minimized)
    assert tasks.make_task("synthetic-nb201", "cifar100").arrays.objectives is None


def test_the_true_front_is_the_brute_force_front_of_the_reported_columns(mo_task):
    report = np.asarray(mo_task.arrays.report, np.float64)
    p = np.stack([-report[:, 0], report[:, 1]], 1)
    front = mo_task.front

    def dominates(a, b):  # [len(a), len(b)]: a_i dominates b_j
        return (np.all(a[:, None, :] <= b[None, :, :], axis=2)
                & np.any(a[:, None, :] < b[None, :, :], axis=2))

    # every row against the front: no row dominates a front row, and every other row is
    # dominated by a front row (then by the definition it is off the front)
    assert not dominates(p, p[front]).any()
    others = np.setdiff1d(np.arange(len(p)), front)
    assert dominates(p[front], p[others]).any(axis=0).all()


def test_a_weight_vector_ranks_by_its_objective():
    task = tasks.make_task("synthetic-nb201", "cifar100", objectives=OBJECTIVES)
    only_acc = tasks.scalarize(task.arrays, jnp.array([1.0, 0.0]), rho=0.0)
    np.testing.assert_array_equal(np.argsort(-np.asarray(only_acc.reward), kind="stable"),
                                  np.argsort(np.asarray(task.arrays.objectives)[:, 0],
                                             kind="stable"))


def test_each_trial_has_its_own_weights_and_equals_itself_alone(mo_task, mo_sweep):
    w = np.stack([np.asarray(sweeps.trial_weights(0, i, 2)) for i in range(40)])
    np.testing.assert_allclose(w.sum(axis=1), 1, rtol=1e-6)
    assert len(np.unique(np.round(w[:, 0], 6))) == 40
    for i in (0, 17):
        alone = sweeps.run_trial("rea", mo_task, seed=0, trial=i, budget=30)
        np.testing.assert_array_equal(alone.rows, mo_sweep.rows[i])
    # the search's own random numbers are those of the single-objective trial: the first
    # random networks are the same rows
    single = sweeps.sweep("rea", tasks.make_task("synthetic-nb201", "cifar100"), trials=2,
                          budget=30, seed=0)
    np.testing.assert_array_equal(single.rows[:, :10], mo_sweep.rows[:2, :10])


def test_the_summary_measures_the_found_fronts(mo_sweep):
    p = mo_sweep.summary()["pareto"]
    assert p["front_size"] == len(mo_sweep.task.front)
    assert 0 < p["hv_ratio"]["mean"] < 1 and p["hv_ratio"]["ci95"][0] <= p["hv_ratio"]["mean"]
    assert np.all(np.diff(p["hv_ratio_by_evaluation"]) >= 0)
    u = p["union"]
    assert u["hv_ratio"] >= p["hv_ratio"]["mean"]
    assert u["fraction_found"] >= p["fraction_found"]["mean"]
    random = sweeps.sweep("random", mo_sweep.task, trials=40, budget=30, seed=0)
    assert random.summary()["pareto"]["hv_ratio"]["mean"] < p["hv_ratio"]["mean"]


def test_the_command_line_writes_fronts_and_measures(tmp_path, capsys):
    out = tmp_path / "mo"
    assert cli.main(["sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task",
                     "cifar100", "--objectives", "edgegpu-latency", "--trials", "8",
                     "--budget", "20", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Pareto front of cifar100_test_acc_200 (max) vs cifar100_edgegpu_latency (min)" \
        in printed
    summary = json.loads((out / "summary.json").read_text())
    assert [o["column"] for o in summary["pareto"]["objectives"]] == [
        "cifar100_valid_acc_12", "cifar100_edgegpu_latency"]
    with open(out / "fronts.csv") as f:
        rows = list(csv.DictReader(f))
    assert {int(r["trial"]) for r in rows} == set(range(8))
    for t in range(8):  # each trial's listed networks are its non-dominated ones
        mine = [r for r in rows if int(r["trial"]) == t]
        p = np.array([[-float(r["cifar100_test_acc_200"]), float(r["cifar100_edgegpu_latency"])]
                      for r in mine])
        assert pareto.nondominated(p).all()


@pytest.mark.parametrize("extra,match", [
    (["--objective", "cifar100_valid_acc_12:max"], "at least two objectives"),
    (["--objective", "cifar100_valid_acc_12:up", "--objective", "x:min"], "COLUMN:max"),
    (["--objectives", "gpu-speed"], "DEVICE-latency or DEVICE-energy"),
    (["--objectives", "edgegpu-latency", "--gamma", "0.5"], "go with one objective"),
    (["--objective", "cifar100_valid_acc_12:max", "--objective", "nope:min"], "no metric"),
    (["--objectives", "edgegpu-latency", "--method", "dqn"], "its own weighting"),
])
def test_bad_objectives_are_refused_before_anything_compiles(tmp_path, capsys, no_compile,
                                                             extra, match):
    rc = cli.main(["sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task",
                   "cifar100", "--trials", "4", "--out", str(tmp_path / "x"), *extra])
    assert rc == 2 and match in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_hardware_presets_are_for_nb201_tasks():
    with pytest.raises(CatchjaxError, match="NB201's tasks"):
        tasks.hardware_objectives("synthetic-transnas-micro", "jigsaw", "edgegpu-latency")
    objs = tasks.hardware_objectives("nb201", "imagenet16-120", "fpga-energy", "catch-fig3")
    assert [o.column for o in objs] == ["imagenet16_valid_acc_200", "imagenet16_fpga_energy"]


def test_progress_of_a_single_objective_sweep_records_its_task_as_before(mo_task, syn_nb201):
    """Saved progress of a sweep from before objectives existed still resumes: its task
    record has no objectives field, and a single-objective task's record has none."""
    from catchjax.runs import progress

    config = sweeps.methods.build("rea", 10)
    one = progress.fingerprint("rea", config, syn_nb201, 0, 4, 4, None)["task"]
    assert "objectives" not in one
    many = progress.fingerprint("rea", config, mo_task, 0, 4, 4, None)["task"]
    assert [o["direction"] for o in many["objectives"]] == ["max", "min"]


def test_the_report_of_multi_objective_runs_tables_and_draws_the_fronts(tmp_path, capsys):
    runs = []
    for method in ("rea", "random"):
        out = tmp_path / method
        assert cli.main(["sweep", "--method", method, "--benchmark", "synthetic-nb201",
                         "--task", "cifar100", "--objectives", "edgegpu-latency", "--trials",
                         "8", "--budget", "20", "--out", str(out)]) == 0
        runs.append(str(out))
    report = tmp_path / "report"
    assert cli.main(["report", *runs, "--out", str(report)]) == 0
    text = (report / "report.md").read_text()
    assert "Pareto front of CIFAR-100 test accuracy" in text and "| rea | 8 × 20 |" in text
    for name in ("pareto_hypervolume", "pareto_fronts"):
        for fmt in ("png", "pdf", "svg"):
            assert (report / f"{name}.{fmt}").stat().st_size > 0
    pdf = (report / "pareto_fronts.pdf").read_bytes()
    assert b"/Type3" not in pdf and b"/FontFile2" in pdf  # TrueType fonts embedded


def test_unmeasured_hardware_costs_are_named_and_masked_only_when_asked():
    """HW-NAS-Bench marks networks a device could not run with latency -1 (Edge TPU:
    4,699 of NB201's 15,625); read as a latency, -1 would be the fastest network and the
    whole front."""
    from catchjax.benchmarks import tables

    table = tables.load_table("synthetic-nb201")
    lat = table.columns["cifar100_edgegpu_latency"].copy()
    lat[:100] = -1.0
    table = dataclasses.replace(table, columns={**table.columns,
                                                "cifar100_edgegpu_latency": lat})
    with pytest.raises(CatchjaxError, match="missing for 100 of 15625.*-1.*--mask-nan"):
        tasks.make_task("synthetic-nb201", "cifar100", objectives=OBJECTIVES, table=table)
    task = tasks.make_task("synthetic-nb201", "cifar100", objectives=OBJECTIVES, table=table,
                           mask_nan=True)
    assert task.n_searchable == 15625 - 100 and not np.isin(np.arange(100), task.front).any()
    lat[:100] = np.nan  # unmeasured as NaN: the summary's measures stay finite too
    table = dataclasses.replace(table, columns={**table.columns,
                                                "cifar100_edgegpu_latency": lat})
    task = tasks.make_task("synthetic-nb201", "cifar100", objectives=OBJECTIVES, table=table,
                           mask_nan=True)
    p = sweeps.sweep("random", task, trials=4, budget=10, seed=0).summary()["pareto"]
    assert np.isfinite([p["hv_ratio"]["mean"], p["epsilon"]["mean"]]).all()


# -- ask/tell: a tell gives one value per objective ------------------------------------


def _goals(task):
    """The task's objectives for ask/tell, with the table's ranges over its searchable
    rows (then ask/tell scales told values as the task scales its columns)."""
    out, ok = [], np.asarray(task.searchable)
    for text in OBJECTIVES:
        name, direction = text.split(":")
        col = np.asarray(task.table.column(name), np.float64)[ok]
        out.append((name, direction, float(col.min()), float(col.max())))
    return out


def _drive_with_values(search, task):
    """Ask one at a time until the search stops; tell each network's table values."""
    names, rows = [g[0] for g in _goals(task)], []
    while proposals := search.ask(1):
        row = int(search.domain.arrays.code_to_row[int(search.domain.space.encode(
            np.asarray(proposals[0]["actions"])))])
        rows.append(row)
        search.tell([proposals[0]["id"]],
                    [{n: float(task.table.column(n)[row]) for n in names}])
    return rows


def test_ask_tell_with_one_value_per_objective_is_the_sweeps_trial(mo_task, mo_sweep,
                                                                   tmp_path):
    """Told the table's values with the table's ranges declared, an ask/tell search of
    trial t scalarizes them with trial t's weights: it is trial t of the sweep. Saved, it
    keeps its objectives, weights and every told value."""
    from catchjax.asktell.domains import task_domain
    from catchjax.asktell.search import AskTell

    domain = task_domain(mo_task)
    for trial in (0, 5):
        folder = tmp_path / "t5" if trial == 5 else None  # one saved (each step writes it)
        search = AskTell.start("rea", domain, budget=30, seed=0, trial=trial,
                               objectives=_goals(mo_task), state_dir=folder)
        assert _drive_with_values(search, mo_task) == list(np.asarray(mo_sweep.rows[trial]))
        np.testing.assert_array_equal(np.float32(search.weights),
                                      np.asarray(sweeps.trial_weights(0, trial, 2)))
    again = AskTell.load(tmp_path / "t5")
    assert again.objectives == search.objectives and again.weights == search.weights
    told = np.array([[p["values"][g[0]] for g in _goals(mo_task)] for p in again.log])
    front = again.front()
    expected = pareto.front_rows(told, ["max", "min"])
    assert sorted(p["id"] for p in front) == sorted(again.log[i]["id"] for i in expected)
    row = again.history()[0]
    assert {"value_cifar100_valid_acc_12", "value_cifar100_edgegpu_latency"} <= set(row)


def test_bad_objectives_and_values_of_an_ask_tell_search_are_refused(tmp_path):
    from catchjax.asktell.search import AskTell

    for objectives, match in ((["acc:max:0:1"], "at least two"),
                              (["acc:max:1:0", "lat:min:0:1"], "must be below high"),
                              (["acc:max:0:1", "acc:min:0:1"], "must differ"),
                              (["reward:max:0:1", "lat:min:0:1"], "a name other than"),
                              (["acc:best:0:1", "lat:min:0:1"], "'max' or 'min'"),
                              (["acc:max:0:nan", "lat:min:0:1"], "finite numbers"),
                              ("acc:max:0:1", "must be a list")):
        with pytest.raises(CatchjaxError, match=match):
            AskTell.start("random", "nb201", budget=4, objectives=objectives,
                          state_dir=tmp_path / "s")
        assert not (tmp_path / "s").exists()
    search = AskTell.start("random", "nb201", budget=4, state_dir=tmp_path / "s",
                           objectives=["acc:max:0:100", "lat:min:0:20"])
    ids = [p["id"] for p in search.ask(2)]
    for results, match in (([0.9, 0.8], "one value per objective"),
                           ([{"acc": 90}, {"acc": 80}], "objectives are"),
                           ([(90, float("nan")), (80, 3)], "finite"),
                           ([(90, 2)], "2 proposals but 1 rewards")):
        with pytest.raises(CatchjaxError, match=match):
            search.tell(ids, results)
    assert AskTell.load(tmp_path / "s").pending == ids  # nothing was told
    search.tell(ids, [(90, 2.0), {"lat": 1.0, "acc": 95}])  # values outside LOW..HIGH: fine
    assert [p["values"] for p in search.log] == [{"acc": 90.0, "lat": 2.0},
                                                 {"acc": 95.0, "lat": 1.0}]
    assert [p["id"] for p in search.front()] == [ids[1]]  # it dominates the first
    with pytest.raises(CatchjaxError, match="started with other arguments: objectives"):
        AskTell.open(tmp_path / "s", objectives=["acc:max:0:100", "lat:min:0:30"])


def test_the_command_line_asks_and_tells_one_column_per_objective(tmp_path, capsys):
    state, props = tmp_path / "search", tmp_path / "p.json"
    goals = ["--objective", "acc:max:0:100", "--objective", "lat_ms:min:0:20"]
    assert cli.main(["ask", "--state", str(state), "--method", "rea", "--space", "nb201",
                     "--budget", "12", "-k", "3", "--out", str(props), *goals]) == 0
    ids = [p["id"] for p in json.loads(props.read_text())["proposals"]]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,reward\n" + "".join(f"{i},0.5\n" for i in ids))
    assert cli.main(["tell", "--state", str(state), str(wrong)]) == 2
    assert "needs the columns 'acc', 'lat_ms' (one per objective)" in capsys.readouterr().err
    good = tmp_path / "r.csv"
    good.write_text("id,acc,lat_ms,gpu\n" + "".join(
        f"{i},{90 - i},{5 - i},a100\n" for i in ids))  # a trade-off: all on the front
    assert cli.main(["tell", "--state", str(state), str(good)]) == 0
    assert "front so far: 3 of the told networks" in capsys.readouterr().out
    log = json.loads((state / "catchjax-search.json").read_text())["proposals"]
    assert log[0]["values"] == {"acc": 90.0, "lat_ms": 5.0}
    assert log[0]["extras"] == {"gpu": "a100"}


# -- nsga: a population that keeps the front --------------------------------------------


def _ranks_by_peeling(points):
    """Non-domination ranks by repeatedly removing the non-dominated points (pareto's
    brute-force check), and NSGA-II's crowding distance by sorting each rank."""
    n, d = points.shape
    rank, left, k = np.full(n, -1), np.arange(n), 0
    while left.size:
        front = left[pareto.nondominated(points[left])]
        rank[front], left, k = k, np.setdiff1d(left, front), k + 1
    crowd, span = np.zeros(n), points.max(0) - points.min(0)
    for r in range(k):
        members = np.flatnonzero(rank == r)
        for j in range(d):
            order = members[np.lexsort((members, points[members, j]))]
            crowd[order[[0, -1]]] = np.inf
            for a, i, b in zip(order[:-2], order[1:-1], order[2:]):
                crowd[i] += (points[b, j] - points[a, j]) / span[j]
    return rank, crowd


def test_nsga_ranks_and_crowds_as_nsga_ii_and_keeps_the_front(mo_task):
    from catchjax.core import run_on_table
    from catchjax.methods.baselines import nsga

    rng = np.random.default_rng(0)
    for n, d in ((9, 2), (21, 2), (15, 3)):
        pts = np.round(rng.random((n, d)), 1).astype(np.float32)  # ties on purpose
        rank, crowd = nsga.rank_and_crowding(jnp.asarray(pts), jnp.ones(n, bool))
        want_rank, want_crowd = _ranks_by_peeling(pts.astype(np.float64))
        np.testing.assert_array_equal(np.asarray(rank), want_rank)
        np.testing.assert_allclose(np.asarray(crowd), want_crowd, rtol=1e-5)
    # after a search, every evaluated network no other evaluated network dominates is in
    # the population (the front is kept; it is smaller than the population here)
    config = methods.build("nsga", 40, population=20)
    for trial in range(3):
        trace, state = run_on_table(nsga.STEPPER, config, sweeps.trial_key(0, trial),
                                    mo_task.arrays)
        rows = np.asarray(trace.rows)
        objectives = np.asarray(mo_task.arrays.objectives)[rows]
        front = set(rows[pareto.nondominated(objectives)].tolist())
        assert len(front) <= 20 and front <= set(np.asarray(state.pop_rows).tolist())
    res = sweeps.sweep(config, mo_task, trials=4, seed=0)
    assert res.pareto_summary()["pareto"]["union"]["hv_ratio"] > 0


def test_nsga_needs_a_table_with_several_objectives(syn_nb201):
    from catchjax.asktell.search import AskTell

    with pytest.raises(CatchjaxError, match="several objectives"):
        sweeps.sweep("nsga", syn_nb201, trials=2, budget=10)
    with pytest.raises(CatchjaxError, match="several objectives"):
        AskTell.start("nsga", "nb201", budget=10, objectives=["a:max:0:1", "b:min:0:1"])
