"""Tasks with several objectives (issue 35): the task keeps each objective minimized and
scaled, its true front, each trial its own weights; sweeps measure the found fronts."""

from __future__ import annotations

import csv
import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest

from catchjax import cli
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
