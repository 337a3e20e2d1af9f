"""The paper-reproduction script runs end to end on a tiny synthetic setting."""

import csv
import json

import numpy as np
import pytest

from experiments import nb201_catch
from tests.conftest import requires_real_data


def test_nb201_catch_script_writes_tables_and_plots(tmp_path):
    out = tmp_path / "exp"
    rc = nb201_catch.main([
        "--benchmark", "synthetic-nb201", "--datasets", "cifar100", "--methods", "catch-meta",
        "random", "--trials", "6", "--budget", "10", "--set", "candidates=8", "--set",
        "hidden=16", "--set", "meta_epochs=2", "--set", "meta_budget=8", "--out", str(out),
        "--no-progress", "--agents", "2",
    ])
    assert rc == 0
    for name in ("results.csv", "curves.csv", "summary.md", "summary.json", "fig3_sorted.png",
                 "fig5_ablation.png"):
        assert (out / name).stat().st_size > 0
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 6
    assert "| catch-meta |" in (out / "summary.md").read_text()
    assert (out / "meta-agent-cifar100" / "catchjax.json").exists()
    # what each of the meta-trained agents learned (issue 19)
    with open(out / "agents.csv") as f:
        agents = list(csv.DictReader(f))
    assert [int(a["agent_seed"]) for a in agents] == [0, 1]
    assert sum(int(a["trials"]) for a in agents) == 6
    assert all(float(a["first_rank_median"]) >= 1 and float(a["z_separation"]) >= 0
               for a in agents if int(a["trials"]))
    assert (out / "agents.png").stat().st_size > 0
    run = json.loads((out / "summary.json").read_text())["runs"]["catch-meta/cifar100"]
    assert run["agents"] == 2 and len(run["agent_means"]) == 2
    # hit and top-3 rates with intervals over trials and over agents (issue 32)
    for kind in ("best", "top3"):
        r = run["rates"][kind]
        assert len(r["agent_rates"]) == 2 and r["ci_agents"][0] <= r["ci_agents"][1]
        assert r["ci_trials"][0] <= r["rate"] <= r["ci_trials"][1]
    assert all(0 <= float(a["top3"]) <= 1 for a in agents if int(a["trials"]))


def test_agent_diagnostics_rank_under_the_targets_reward(syn_nb201):
    from experiments import agent_diagnostics

    ranks = agent_diagnostics.target_ranks(syn_nb201)
    reward = syn_nb201.arrays.reward.__array__()
    ok = syn_nb201.searchable
    assert not ranks[~ok].any() and ranks[ok].min() == 1
    for row in np.random.default_rng(0).choice(np.flatnonzero(ok), 20):
        assert ranks[row] == 1 + np.sum(reward[ok] > reward[row])


def test_nb201_study_runs_both_protocols_into_their_folders(tmp_path):
    out = tmp_path / "both"
    assert nb201_catch.main([
        "--benchmark", "synthetic-nb201", "--datasets", "cifar10", "--methods", "random", "ls",
        "--trials", "4", "--budget", "8", "--protocols", "nats", "catch-fig3",
        "--out", str(out), "--no-progress"]) == 0
    for protocol, reward in (("nats", "cifar10_valid_valid_acc_12"),
                             ("catch-fig3", "cifar10_valid_valid_acc_200")):
        summary = json.loads((out / protocol / "summary.json").read_text())
        run = summary["runs"]["ls/cifar10"]
        assert run["reward_metric"] == reward and run["task_spec"]["protocol"] == protocol
        assert f"protocol {protocol} (cifar10: reward {reward}" in (
            out / protocol / "summary.md").read_text()


def test_transnas_ranks_script_ranks_the_best_found_network(tmp_path):
    import numpy as np

    from catchjax.benchmarks import tasks
    from experiments import transnas_ranks

    out = tmp_path / "ranks"
    assert transnas_ranks.main([
        "--benchmark", "synthetic-transnas-micro", "--tasks", "jigsaw", "--methods", "random",
        "ls", "--trials", "5", "--budget", "12", "--out", str(out), "--no-progress"]) == 0
    for name in ("ranks.csv", "curves.csv", "summary.md", "summary.json", "ranks.png"):
        assert (out / name).stat().st_size > 0
    with open(out / "curves.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 12
    # the rank is that of the best reward so far among the searchable networks: by hand
    task = tasks.make_task("synthetic-transnas-micro", "jigsaw")
    reward = np.asarray(task.arrays.reward)[task.searchable]
    rewards = np.asarray([[reward[5], reward[7], reward[3]]])
    expected = [1 + int((reward > r).sum()) for r in np.maximum.accumulate(rewards[0])]
    got = transnas_ranks.best_so_far_ranks(rewards, reward, np.ones(len(reward), bool))
    assert got[0].tolist() == expected
    assert "| ls |" in (out / "summary.md").read_text()


@pytest.mark.slow  # an experiment script end to end (CI time); -m slow runs it
def test_catch_adaptation_script_measures_a_variant_on_two_targets(tmp_path):
    from experiments import catch_adaptation

    out = tmp_path / "adapt"
    rc = catch_adaptation.main([
        "--benchmark", "synthetic-nb201", "--targets", "cifar100", "imagenet16-120",
        "--variants", "meta-batch 2", "--trials", "4", "--budget", "8", "--agents", "2",
        "--set", "candidates=8", "--set", "hidden=8", "--set", "meta_epochs=2",
        "--set", "meta_budget=8", "--set", "updates_per_epoch=1", "--out", str(out)])
    assert rc == 0
    records = json.loads((out / "adaptation.json").read_text())
    assert [(r["variant"], r["target"]) for r in records] == [
        ("meta-batch 2", "cifar100"), ("meta-batch 2", "imagenet16-120")]
    for r in records:
        assert r["settings"] == {"meta_batch": 2} and r["z_between_targets"] > 0
        assert r["distinct"] >= 1 and r["entropy_first"] > 0
        assert len(r["entropy_curve"]) == 8 - 5  # one per search epoch after the seeds
        lo, hi = r["objective_trial_ci"]
        assert lo <= r["objective_mean"] <= hi
    assert (out / "entropy.png").stat().st_size > 0
    text = (out / "adaptation.md").read_text()
    assert "cifar100_valid_acc_12" in text and text.count("| meta-batch 2 |") == 2


@pytest.mark.slow  # end to end over every stage; `pytest -m slow` runs it
def test_transnas_transfer_script_writes_the_study_and_baselines(tmp_path):
    from experiments import transnas_transfer

    out = tmp_path / "transfer"
    rc = transnas_transfer.main([
        "--synthetic", "--spaces", "micro", "--steps", "640", "--seeds", "1", "--trials", "3",
        "--tasks", "class_object", "segmentsemantic", "--eval-episodes", "8",
        "--baselines", "random",
        "--out", str(out), "--set", "width=16", "heads=2", "layers=1", "n_envs=32",
        "batch_size=32", "learning_starts=32", "buffer_capacity=512",
        "--catch-steps", "0",  # the CATCH study: test_transfer.py runs one
    ])
    assert rc == 0
    text = (out / "transfer.md").read_text()
    for part in ("### zero-shot", "### fine-tune", "### retrain", "### Crossover",
                 "| random |", "Kendall tau"):
        assert part in text
    assert (out / "study_micro" / "cells.csv").stat().st_size > 0
    assert "CATCH study" not in text


def test_performance_suite_writes_its_figures(tmp_path):
    """benchmarks/run_all.py (tiny): one row per method and trial count, with the ratio to
    the sequential reference and XLA's memory figure; the scaling plot."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "run_all.py"
    spec = importlib.util.spec_from_file_location("run_all", path)
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    assert run_all.main(["--methods", "random,rea", "--trials", "1,7", "--budget", "6",
                         "--repeats", "1", "--ref-trials", "3", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "run_all.json").read_text())
    assert [(r["method"], r["trials"]) for r in record["rows"]] == [
        ("random", 1), ("random", 7), ("rea", 1), ("rea", 7)]
    for r in record["rows"]:
        assert r["run_seconds"] > 0 and r["xla_bytes"]["total"] > 0
        # each row's first sweep is a new shape: compiled here, or loaded from the cache
        assert r["compile_source"] in ("compiled", "loaded")
        seq = record["sequential"][r["method"]]["seconds_per_trial"]
        assert r["speedup_vs_sequential"] == seq * r["trials"] / r["run_seconds"]
    assert (tmp_path / "scaling.png").stat().st_size > 0


@pytest.mark.slow  # trains real networks (CI time); ask/tell resume is in test_ask_tell
def test_real_training_script_resumes_without_retraining(tmp_path):
    """The ask/tell experiment on digits at its smallest: it writes its table and plots,
    and a second run finds every search finished and every network trained already."""
    pytest.importorskip("sklearn", reason="experiments/real_training.py needs scikit-learn")
    from experiments import real_training

    out = tmp_path / "rt"
    args = ["--out", str(out), "--methods", "random", "--budget", "1", "--epochs", "1"]
    assert real_training.main(args) == 0
    first = (out / "results.csv").read_text()
    trained = json.loads((out / "evaluations.json").read_text())
    assert len(first.splitlines()) == 2 and len(trained) == 1
    assert (out / "pareto.png").exists() and (out / "best_so_far.png").exists()
    mtime = (out / "evaluations.json").stat().st_mtime_ns
    assert real_training.main(args) == 0
    assert (out / "results.csv").read_text() == first
    assert (out / "evaluations.json").stat().st_mtime_ns == mtime


def test_meta_real_training_tasks_never_hold_a_target_image():
    pytest.importorskip("sklearn", reason="the digits experiment needs scikit-learn")
    import jax

    from experiments import meta_real_training as mrt

    (mx, my, meta_idx), (tx, ty, target_idx) = mrt.halves()
    assert not set(meta_idx) & set(target_idx) and len(meta_idx) + len(target_idx) == 1797
    target_images = {x.tobytes() for x in tx}
    seen = set()
    for m in range(40):
        task = mrt.subset_tasks(m, jax.random.fold_in(jax.random.key(0), m))
        classes = task["classes"]
        assert 3 <= len(classes) <= 6 and len(set(classes)) == len(classes)
        seen.add(tuple(classes))
        (x, y), (vx, vy), _, n = mrt.task_data(task)
        assert n == len(classes) and set(np.concatenate([y, vy])) <= set(range(n))
        assert not {im.tobytes() for im in np.concatenate([x, vx])} & target_images
    assert len(seen) > 20  # a new task nearly every meta-epoch
    (x, y), _, (sx, sy), n = mrt.task_data({"target": "digits-rot90"})
    np.testing.assert_array_equal(x[0], np.rot90(tx[0], 1))
    assert n == 10 and len(sx) == len(tx) - 550


@pytest.mark.slow  # an end-to-end example; tests/test_categorical.py covers its machinery
def test_sklearn_space_example_tunes_a_model_in_a_declared_space(tmp_path):
    pytest.importorskip("sklearn", reason="the example needs scikit-learn")
    from experiments import sklearn_space

    out = tmp_path / "skl"
    assert sklearn_space.main(["--out", str(out), "--searches", "2", "--budget", "4",
                               "--methods", "random,rea"]) == 0
    text = (out / "summary.md").read_text()
    assert "| random |" in text and "| rea |" in text
    assert (out / "best_so_far.png").stat().st_size > 0


def test_optuna_head_to_head_script_writes_its_table(tmp_path):
    """experiments/optuna_samplers.py on a tiny synthetic setting: one row per search, the
    same best-by-reward rule on both sides, the summary and the figure."""
    pytest.importorskip("optuna", reason="pip install -e '.[optuna]'")
    from experiments import optuna_samplers

    out = tmp_path / "h2h"
    assert optuna_samplers.main(["--benchmark", "synthetic-nb201", "--tasks", "cifar10",
                                 "--budgets", "12", "--trials", "6", "--seeds", "3",
                                 "--methods", "random", "--samplers", "tpe", "random",
                                 "--out", str(out)]) == 0
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["random"] * 6 + ["tpe"] * 3 + ["random"] * 3
    assert all(float(r["final"]) <= float(r["table_best"]) for r in rows)
    text = (out / "summary.md").read_text()
    assert "| optuna | tpe | 3 |" in text and "| catchjax | random | 6 |" in text
    assert (out / "head_to_head.png").stat().st_size > 0
    # --merge: a later run adds its rows to the earlier run's and names both commands
    more = tmp_path / "more"
    assert optuna_samplers.main(["--benchmark", "synthetic-nb201", "--tasks", "cifar10",
                                 "--budgets", "12", "--trials", "6", "--methods", "rea",
                                 "--samplers", "--merge", str(out / "summary.json"),
                                 "--out", str(more)]) == 0
    both = json.loads((more / "summary.json").read_text())
    assert sorted((r["side"], r["method"]) for r in both["rows"]) == [
        ("catchjax", "random"), ("catchjax", "rea"), ("optuna", "random"), ("optuna", "tpe")]
    assert len(both["commands"]) == 2 and "--merge" in both["commands"][1]
    assert "| catchjax | rea | 6 |" in (more / "summary.md").read_text()


def test_a_stopped_head_to_head_keeps_the_searches_it_finished(tmp_path, monkeypatch):
    """GP studies can take hours: a run stopped inside a sampler keeps every finished
    method's and sampler's searches in results.csv."""
    pytest.importorskip("optuna", reason="pip install -e '.[optuna]'")
    from experiments import optuna_samplers

    real = optuna_samplers.optuna_search

    def stop_in_gp(task, sampler, *a, **k):
        if sampler == "gp":
            raise KeyboardInterrupt
        return real(task, sampler, *a, **k)

    monkeypatch.setattr(optuna_samplers, "optuna_search", stop_in_gp)
    out = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        optuna_samplers.main(["--benchmark", "synthetic-nb201", "--tasks", "cifar10",
                              "--budgets", "12", "--trials", "6", "--seeds", "2",
                              "--methods", "random", "--samplers", "random", "gp",
                              "--out", str(out)])
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["side"], r["method"]) for r in rows] == [("catchjax", "random")] * 6 + [
        ("optuna", "random")] * 2
    assert not (out / "summary.json").exists()


def test_context_family_script_compares_contexts_and_maps_z(tmp_path):
    from experiments import context_family

    out = tmp_path / "family"
    record = context_family.main([
        "--targets", "type0_a", "--variants", "random,catch-meta (beta 0.01)", "--trials", "4",
        "--budget", "6", "--agents", "2", "--meta-epochs", "1", "--meta-batch", "1",
        "--set", "candidates=4", "--set", "hidden=8", "--set", "z_dim=2", "--set",
        "meta_budget=6", "--set", "n_initial=3", "--set", "updates_per_epoch=1",
        "--out", str(out)])
    entry = record["results"]["type0_a"]["catch-meta (beta 0.01)"]
    assert len(entry["agent_means"]) == 2 and set(entry["z_ratio"]) == {5, 10, 20}
    assert record["results"]["type0_a"]["random"]["agent_ci"] is None
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 2 * 4
    for name in ("curves.csv", "agents.csv", "summary.md", "curves.png", "z_map.png"):
        assert (out / name).stat().st_size > 0
    assert "| catch-meta (beta 0.01) |" in (out / "summary.md").read_text()


@requires_real_data
def test_pareto_hw_study_measures_every_method_against_the_true_front(tmp_path):
    from experiments import pareto_hw

    records = pareto_hw.main([
        "--datasets", "cifar10", "--costs", "edgegpu-latency", "--methods", "random", "rea",
        "--budgets", "20", "--trials", "8", "--samplers", "nsga2", "--seeds", "2",
        "--out", str(tmp_path / "hw")])
    assert [r["method"] for r in records] == ["random", "rea", "optuna-nsga2"]
    for r in records:
        assert 0 <= r["hv_low"] <= r["hv"] <= r["hv_high"] <= 1 and r["front_size"] > 5
        assert r["union_hv"] >= r["hv"]
    for name in ("results.csv", "summary.md", "hypervolume.png", "report/pareto_fronts.png"):
        assert (tmp_path / "hw" / name).stat().st_size > 0
    # a method added later joins the earlier rows (--merge); a row it redoes is replaced
    more = pareto_hw.main([
        "--datasets", "cifar10", "--costs", "edgegpu-latency", "--methods", "nsga", "rea",
        "--budgets", "20", "--trials", "8", "--merge", str(tmp_path / "hw" / "results.csv"),
        "--out", str(tmp_path / "more")])
    assert [r["method"] for r in more] == ["random", "optuna-nsga2", "nsga", "rea"]
    summary = (tmp_path / "more" / "summary.md").read_text().splitlines()
    header = next(line for line in summary if line.startswith("| dataset"))
    assert header.endswith("| random | optuna-nsga2 | nsga | rea |")
    # no method: the summary rewritten from the file, with its budgets, not --budgets
    again = pareto_hw.main(["--datasets", "cifar10", "--costs", "edgegpu-latency", "--methods",
                            "--budgets", "50", "--merge", str(tmp_path / "more" / "results.csv"),
                            "--out", str(tmp_path / "again")])
    assert [r["method"] for r in again] == ["random", "optuna-nsga2", "nsga", "rea"]
    assert "## 20 evaluations" in (tmp_path / "again" / "summary.md").read_text()


def test_draws_are_compared_and_pooled_over_their_agents(tmp_path):
    """compare_draws: a row per method and draw with the rates each summary recorded, and
    the pooled rate = the mean of all the pooled draws' agents' own rates."""
    from experiments import compare_draws

    def summary(path, agent_rates):
        rate = {"rate": float(np.mean(agent_rates)), "ci_trials": [0.1, 0.9],
                "ci_agents": [0.2, 0.8], "agent_rates": agent_rates}
        runs = {f"{m}/{ds}": {"mean": 90.0 + i, "rates": {"best": rate, "top3": rate}}
                for m in compare_draws.METHODS
                for i, (ds, _, _) in enumerate(compare_draws.CLAIMS)}
        path.write_text(json.dumps({"runs": runs}))
        return path

    a = summary(tmp_path / "a.json", [0.0, 1.0])
    b = summary(tmp_path / "b.json", [1.0, 1.0])
    out = tmp_path / "draws.md"
    assert compare_draws.main(["--draw", f"A={a}", "--draw", f"B={b}", "--pool", "A", "B",
                               "--out", str(out)]) == 0
    text = out.read_text()
    assert "| catch-meta | A | 50% [10–90] (agents 20–80)" in text
    assert "| catch-meta | B | 100% [10–90]" in text
    assert "| catch-zero | 75% (agents" in text and "4 agents)" in text  # (0+1+1+1)/4
    with pytest.raises(SystemExit):
        compare_draws.main(["--draw", f"A={a}", "--pool", "C"])
    # --versus: each row minus one (method, draw), in points, over both rows' agents; a
    # draw holding only catch-meta (one KL weight, say) adds that row and no other
    only_meta = json.loads(b.read_text())
    only_meta["runs"] = {k: v for k, v in only_meta["runs"].items()
                         if k.startswith("catch-meta/")}
    (tmp_path / "m.json").write_text(json.dumps(only_meta))
    assert compare_draws.main(["--draw", f"A={a}", "--draw", f"M={tmp_path / 'm.json'}",
                               "--versus", "A:catch-meta", "--pool", "A", "M",
                               "--out", str(out), "--plot", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    text = out.read_text()
    assert "| catch-zero | M |" not in text and "| catch-meta | M | 100%" in text
    assert "| catch-meta | M | +50 [" in text  # 1.0 - mean(0, 1)
    # the same agents' rates (0 and 1): 0, and both resampled apart
    assert "| catch-zero | A | +0 [-100, +100]" in text
    assert "| catch-meta | A | +" not in text.split("minus catch-meta (A)")[1]  # not itself
    assert "| catch-zero | " not in text.split("pooled over A, M")[1]  # M lacks it
    assert "| catch-meta | 75% (agents" in text
    with pytest.raises(SystemExit):
        compare_draws.main(["--draw", f"M={tmp_path / 'm.json'}", "--versus", "M:catch-zero"])
