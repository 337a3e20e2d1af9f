"""The transfer study (paper 002 §3-4): reward shaping, task relations, regimes, crossover,
resuming an interrupted study, and the errors a wrong study gets before anything trains."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from catchjax import cli
from catchjax.errors import CatchjaxError
from catchjax.methods.dqn import DQNConfig
from catchjax.studies import shaping, task_relations, transfer

TINY = DQNConfig(n_envs=32, batch_size=32, width=16, heads=2, layers=1, learning_starts=32,
                 buffer_capacity=512, target_period=256)
SPEC = transfer.StudySpec("dqn", "synthetic-transnas-micro", ("class_object", "room_layout"),
                          steps=640, seeds=(0, 1), gammas=(("room_layout", 0.5),),
                          eval_points=10, eval_episodes=16)


# -- shaping and task relations ---------------------------------------------------------


def test_spread_sweep_finds_the_analytic_optimum_for_uniform_rewards():
    # u ~ U(0, 1): Var(u^g) = 1/(2g+1) - 1/(g+1)^2; its maximum on a fine grid against
    # the sweep over a dense, evenly spaced sample (20,000 midpoints: the spread within
    # 1e-4 of the analytic one, the same best gamma as 200,000 at a tenth of the 15 s)
    u = (np.arange(20_000) + 0.5) / 20_000
    g = np.linspace(0.05, 3, 2951)
    var = 1 / (2 * g + 1) - 1 / (g + 1) ** 2
    want = g[np.argmax(var)]
    _, spread, best = shaping.spread_sweep(u * 100, g, "percent")
    assert best == pytest.approx(want, abs=2e-3)
    np.testing.assert_allclose(spread, np.sqrt(var), rtol=1e-3)


def test_gamma_below_one_spreads_low_rewards():
    low = np.linspace(0.05, 0.3, 1000) * 100  # mIoU-like: concentrated low in the range
    _, _, best = shaping.spread_sweep(low, np.linspace(0.1, 3, 291), "percent")
    assert best < 1


@pytest.mark.parametrize("values,how,match", [
    (np.array([10.0, 120.0]), "percent", "does not map into"),
    (np.array([-0.7, -0.5]), "none", "does not map into"),
    (np.array([0.1, 0.5]), "log", "must be one of"),
])
def test_normalization_refuses_what_leaves_the_unit_interval(values, how, match):
    with pytest.raises(CatchjaxError, match=match):
        shaping.normalize(values, how)


def test_negative_metrics_normalize_by_range():
    u = shaping.normalize(np.array([-0.8, -0.6, -0.5]), "minmax")
    np.testing.assert_allclose(u, [0.0, 2 / 3, 1.0])
    assert shaping.default_normalization("room_layout__valid_neg_loss") == "minmax"
    assert shaping.default_normalization("segmentsemantic__valid_mIoU") == "percent"
    assert shaping.default_normalization("autoencoder__valid_ssim") == "none"


@pytest.mark.parametrize("gammas", [[0.0, 1.0], [-1.0], [np.nan], []])
def test_bad_gammas_are_refused(gammas):
    with pytest.raises(CatchjaxError, match="gamma"):
        shaping.spread_sweep(np.array([10.0, 20.0]), gammas)


def _tau_by_hand(x, y):
    """Kendall tau-b from pair counts (no ties in x; ties in y counted)."""
    n = len(x)
    conc = disc = ty = 0
    for i in range(n):
        for j in range(i + 1, n):
            s = np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
            if y[i] == y[j]:
                ty += 1
            elif s > 0:
                conc += 1
            else:
                disc += 1
    n0 = n * (n - 1) / 2
    return (conc - disc) / np.sqrt(n0 * (n0 - ty))


def test_kendall_matrix_equals_pair_counting():
    rng = np.random.default_rng(0)
    a = rng.normal(size=40)
    b = a + rng.normal(size=40)
    c = np.round(rng.normal(size=40), 1)  # with ties
    m = shaping.kendall_matrix({"a": a, "b": b, "c": c})
    assert m[0, 1] == pytest.approx(_tau_by_hand(a, b))
    assert m[0, 2] == pytest.approx(_tau_by_hand(a, c))
    np.testing.assert_allclose(m, m.T)
    np.testing.assert_allclose(np.diag(m), 1.0)


def test_tasks_command_writes_matrix_and_sweep(tmp_path, capsys):
    assert cli.main(["tasks", "--benchmark", "synthetic-transnas-micro",
                     "--out", str(tmp_path / "rel")]) == 0
    text = capsys.readouterr().out
    assert "Kendall tau" in text and "segmentsemantic" in text
    summary = json.loads((tmp_path / "rel" / "tasks.json").read_text())
    assert len(summary["kendall"]) == 7
    for f in ("kendall.csv", "kendall.png", "gamma_spread.csv", "gamma_spread.png"):
        assert (tmp_path / "rel" / f).stat().st_size > 0
    # a second run into the same folder needs --overwrite
    assert cli.main(["tasks", "--benchmark", "synthetic-transnas-micro",
                     "--out", str(tmp_path / "rel")]) == 2
    res = task_relations.compute("synthetic-transnas-micro")
    assert res["gamma"]["room_layout"]["normalization"] == "minmax"


# -- crossover --------------------------------------------------------------------------


def test_smoothing_is_a_trailing_moving_average():
    np.testing.assert_allclose(transfer.smooth(np.array([[2.0, 4.0, 6.0, 8.0]]), 2),
                               [[2.0, 3.0, 5.0, 7.0]])


def test_crossover_all_to_all_by_hand():
    steps = np.array([0, 10, 20, 30])
    transferred = np.array([[1.0, 5.0, 5.0, 5.0],   # reaches 4 at step 10, 3 at step 10
                            [0.0, 0.0, 0.0, 3.5]])  # reaches 3 at 30, never 4
    scratch = np.array([[0.0, 1.0, 2.0, 4.0],
                        [0.0, 1.0, 2.0, 3.0]])
    out = transfer.crossover_steps(transferred, scratch, steps, window=1)
    np.testing.assert_array_equal(out, [[10, 10], [np.nan, 30]])
    self_pairs = transfer.crossover_steps(scratch, scratch, steps, window=1, exclude_self=True)
    assert np.isnan(self_pairs[0, 0]) and np.isnan(self_pairs[1, 1])
    assert self_pairs[0, 1] == 30 and np.isnan(self_pairs[1, 0])


# -- the study: regimes, resume, errors ---------------------------------------------------


@pytest.fixture(scope="session")
def finished_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "full"
    result = transfer.run_study(SPEC, TINY, out, log=lambda *_: None)
    return out, result


def test_study_cells_follow_the_regimes(finished_study):
    out, result = finished_study
    cells = {(c["regime"], c["source"], c["target"]): c for c in result["cells"]}
    # the diagonal is the scratch run; zero-shot has no diagonal
    assert ("zero-shot", "class_object", "class_object") not in cells
    for regime in ("fine-tune", "retrain"):
        assert cells[(regime, "room_layout", "room_layout")]["kind"] == "scratch"
    scratch = transfer.load_stage(out, "scratch__room_layout")
    moved = transfer.load_stage(out, "class_object__to__room_layout")
    assert scratch["test"].shape == (2, 11, 16)  # seeds, curve points, episodes
    c = cells[("zero-shot", "class_object", "room_layout")]
    assert c["mean"] == pytest.approx(moved["test"][:, 0].mean())
    c = cells[("fine-tune", "class_object", "room_layout")]
    assert c["mean"] == pytest.approx(moved["test"][:, 1].mean())  # 0.1 T = point 1 of 10
    c = cells[("retrain", "class_object", "room_layout")]
    assert c["mean"] == pytest.approx(moved["test"][:, -1].mean())
    assert c["n_seeds"] == 2 and c["n_episodes"] == 16
    assert c["ci_low"] <= c["mean"] <= c["ci_high"]
    # the source agents are kept as ordinary agent checkpoints (usable with sweep --init)
    assert (out / "agents" / "class_object" / "seed1" / "catchjax.json").exists()
    for f in ("cells.csv", "curves.csv", "crossover.csv", "summary.json",
              "matrix_zero-shot.png", "matrix_fine-tune.png", "matrix_retrain.png",
              "curves.png", "crossover.png"):
        assert (out / f).stat().st_size > 0


def test_report_shows_the_study_matrices_from_its_files(finished_study, tmp_path):
    """`catchjax report STUDY` rebuilds the matrices from cells.csv (nothing retrained):
    the same numbers as the study's own analysis, and the heatmaps."""
    from catchjax import cli
    from catchjax.studies import report as runs_report

    out, result = finished_study
    assert cli.main(["report", str(out), "--out", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "report.md").read_text()
    saved = runs_report.load_run(out).result  # cells.csv keeps 6 significant digits
    assert len(saved["cells"]) == len(result["cells"])
    for a, b in zip(saved["cells"], result["cells"]):
        assert (a["regime"], a["source"], a["target"]) == (b["regime"], b["source"], b["target"])
        assert a["mean"] == pytest.approx(b["mean"], rel=1e-5)
    for regime in transfer.REGIMES:
        assert transfer.format_matrix(saved, SPEC, regime) in text
    for f in ("matrix_zero-shot.png", "matrix_retrain.png", "curves.png", "crossover.png"):
        assert (tmp_path / "r" / "transfer" / "full" / f).stat().st_size > 0


@pytest.mark.slow  # two processes compile the whole study (~2 min); the multi-process
# sweep and seed sharding are tested in test_distributed and test_dqn
def test_two_processes_run_the_same_study(finished_study, tmp_path):
    """jax.distributed with two local CPU processes, one seed each: process 0 writes the
    same study folder as one process (the other writes nothing), and the agents are the
    one-process agents up to the rounding of another per-device batch (see test_dqn)."""
    import os
    import socket
    import subprocess
    import sys
    import textwrap

    from catchjax.benchmarks import tasks
    from catchjax.store import checkpoints

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "two"
    script = textwrap.dedent(f"""
        import sys
        from catchjax.runs import distributed
        distributed.initialize("127.0.0.1:{port}", 2, int(sys.argv[1]), timeout=60)
        from catchjax.studies import transfer
        from tests.test_transfer import SPEC, TINY
        transfer.run_study(SPEC, TINY, r"{out}", log=lambda *_: None)
        print("finished")
    """)
    env = dict(os.environ, CATCHJAX_COMPILE_CACHE="off")
    root = str(transfer.__file__).rsplit("/catchjax/", 1)[0]
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)], env=env, cwd=root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in (0, 1)]
    for p in procs:
        stdout, err = p.communicate(timeout=600)
        assert p.returncode == 0 and "finished" in stdout, err[-2000:]
    one, _ = finished_study
    assert sorted(f.name for f in out.iterdir()) == sorted(f.name for f in one.iterdir())
    assert sorted(f.name for f in (out / "stages").iterdir()) == \
        sorted(f.name for f in (one / "stages").iterdir())
    task = tasks.make_task("synthetic-transnas-micro", "class_object")
    for seed in SPEC.seeds:
        a, b = (checkpoints.load_agent(d / "agents" / "class_object" / f"seed{seed}", task,
                                       method="dqn").agent.params for d in (one, out))
        diff = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                   for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
        assert diff < 1e-3
    st = transfer.load_stage(out, "class_object__to__room_layout")
    assert st["test"].shape == transfer.load_stage(one, "class_object__to__room_layout")[
        "test"].shape


def test_transferred_agents_start_from_the_source_parameters(finished_study):
    """Zero-shot = the source agent on the target: its evaluation differs from a fresh
    agent's on the same target (curve point 0 of the scratch run)."""
    out, _ = finished_study
    moved = transfer.load_stage(out, "class_object__to__room_layout")
    scratch = transfer.load_stage(out, "scratch__room_layout")
    assert not np.array_equal(moved["test"][:, 0], scratch["test"][:, 0])


def test_killed_study_resumes_to_the_identical_result(finished_study, tmp_path):
    out_full, full = finished_study
    out = tmp_path / "resumed"
    assert transfer.run_study(SPEC, TINY, out, stop_after=1, log=lambda *_: None) == {}
    assert transfer.load_stage(out, "scratch__class_object") is not None
    assert transfer.load_stage(out, "scratch__room_layout") is None
    assert transfer.run_study(SPEC, TINY, out, stop_after=2, log=lambda *_: None) == {}
    again = transfer.run_study(SPEC, TINY, out, log=lambda *_: None)
    for name in ("scratch__class_object", "scratch__room_layout",
                 "class_object__to__room_layout", "room_layout__to__class_object"):
        a, b = transfer.load_stage(out_full, name), transfer.load_stage(out, name)
        np.testing.assert_array_equal(a["test"], b["test"])
    assert [c["mean"] for c in again["cells"]] == [c["mean"] for c in full["cells"]]


def test_a_different_study_in_the_same_folder_is_refused(finished_study):
    out, _ = finished_study
    import dataclasses

    other = dataclasses.replace(SPEC, steps=1280)
    with pytest.raises(CatchjaxError, match="another transfer study.*steps"):
        transfer.run_study(other, TINY, out)


def test_overwrite_keeps_the_old_study_until_the_new_one_is_complete(finished_study,
                                                                    tmp_path):
    import shutil

    one, _ = finished_study
    out = tmp_path / "study"
    shutil.copytree(one, out)
    old_cells = (out / "cells.csv").read_bytes()
    assert transfer.run_study(SPEC, TINY, out, overwrite=True, stop_after=1,
                              log=lambda *_: None) == {}  # killed after one stage
    aside = list(tmp_path.glob(".study.replaced-*"))
    assert len(aside) == 1 and (aside[0] / "cells.csv").read_bytes() == old_cells
    transfer.run_study(SPEC, TINY, out, log=lambda *_: None)  # the new study resumes
    assert not list(tmp_path.glob(".study.replaced-*"))
    assert (out / "cells.csv").read_bytes() == old_cells  # same study, same result


def test_a_killed_overwrite_says_where_the_old_study_was_set_aside(finished_study, tmp_path):
    import dataclasses
    import shutil

    one, _ = finished_study
    out = tmp_path / "study"
    shutil.copytree(one, out)
    other = dataclasses.replace(SPEC, steps=1280)
    assert transfer.run_study(other, TINY, out, overwrite=True, stop_after=0,
                              log=lambda *_: None) == {}  # killed before its first stage
    aside = list(tmp_path.glob(".study.replaced-*"))
    with pytest.raises(CatchjaxError, match=f"This study is in {aside[0]}.*mv {out} "):
        transfer.run_study(SPEC, TINY, out, log=lambda *_: None)


def test_a_foreign_folder_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(CatchjaxError, match="already holds"):
        transfer.run_study(SPEC, TINY, tmp_path)
    with pytest.raises(CatchjaxError, match="did not write"):
        transfer.run_study(SPEC, TINY, tmp_path, overwrite=True)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize("change,match", [
    (dict(tasks=("class_object", "nope")), "unknown task"),
    (dict(tasks=("class_object",)), "at least two"),
    (dict(steps=0), "T must be >= 1"),
    (dict(seeds=()), "at least one seed"),
    (dict(gammas=(("room_layout", 0.0),)), "finite and > 0"),
    (dict(gammas=(("jigsaw", 0.5),)), "not one of the study"),
    (dict(fine_tune_fraction=0.15), "fine-tune point"),
    (dict(method="rea"), "no such learner"),
    (dict(method="catch-sfs"), "no such learner"),
    (dict(eval_points=0), "eval_points"),
])
def test_bad_studies_fail_before_training(tmp_path, change, match):
    import dataclasses

    spec = dataclasses.replace(SPEC, **change)
    with pytest.raises(CatchjaxError, match=match):
        transfer.run_study(spec, TINY, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_bad_agent_settings_fail_before_training(tmp_path):
    import dataclasses

    with pytest.raises(CatchjaxError, match="smaller than the batch"):
        transfer.run_study(SPEC, dataclasses.replace(TINY, buffer_capacity=8), tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_transfer_command_line(finished_study, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["transfer", "--benchmark", "synthetic-transnas-micro", "--tasks",
            "class_object,room_layout", "--steps", "640", "--seeds", "2", "--gamma",
            "room_layout=0.5", "--eval-points", "10", "--eval-episodes", "16", "--out", str(out)]
    for k in ("n_envs=32", "batch_size=32", "width=16", "heads=2", "layers=1",
              "learning_starts=32", "buffer_capacity=512", "target_period=256",
            "budget=11"):  # = TINY: the study's compiled stages are reused
        argv += ["--set", k]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "zero-shot: rows = source" in text and "retrain" in text
    # the same study as the library call: identical cells
    full_out, _ = finished_study
    a = (full_out / "cells.csv").read_text()
    assert (out / "cells.csv").read_text() == a
    with pytest.raises(SystemExit) as exc:  # argparse refuses T <= 0
        cli.main(argv[:-2] + ["--steps", "0", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    assert not (tmp_path / "x").exists()


def test_a_scratch_run_is_a_transfer_from_the_fresh_agent(syn_nb201):
    """The study runs scratch stages through its transfer program, given
    ``Learner.fresh``'s agent: for the DQN that agent, with the optimizer state and target
    network a transfer resets, is the state a run from scratch starts in, leaf for leaf."""
    from catchjax.methods.dqn import learner

    key, arrays = jax.random.key(7), syn_nb201.arrays
    pool = arrays.reward[None]
    fresh = learner.fresh_agent(TINY, key, arrays)
    k_state = jax.random.split(key, 3)[0]
    scratch = learner.init_train_state(TINY, k_state, arrays, pool, None)
    given = learner.init_train_state(TINY, k_state, arrays, pool, fresh)
    leaves = jax.tree.leaves(jax.tree.map(np.array_equal, scratch, given))
    assert leaves and all(leaves)
    other = learner.fresh_agent(TINY, jax.random.key(8), arrays)
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, fresh.params, other.params)))


def test_catch_transfers_through_the_same_study(tmp_path):
    """The regimes are written once: CATCH (meta-training on one task, evaluated by
    adaptation searches) runs through the same study, and its zero-shot cell is the
    source agent adapting on the target."""
    from catchjax.methods.catch import CatchConfig

    cfg = CatchConfig(meta_trained=True, budget=8, n_initial=3, candidates=8, hidden=16,
                      z_dim=4, meta_budget=8, updates_per_epoch=1)
    spec = transfer.StudySpec("catch-meta", "synthetic-transnas-micro",
                              ("class_object", "room_layout"), steps=160, seeds=(0, 1),
                              eval_points=10, eval_episodes=4)
    result = transfer.run_study(spec, cfg, tmp_path / "catch", log=lambda *_: None)
    st = transfer.load_stage(tmp_path / "catch", "scratch__class_object")
    np.testing.assert_array_equal(st["steps"], np.arange(11) * 16)  # 2 meta-epochs of 8
    assert st["test"].shape == (2, 11, 4)
    assert 8 <= int(st["distinct"].min()) <= 160
    kinds = {(c["regime"], c["source"], c["target"]) for c in result["cells"]}
    assert ("zero-shot", "room_layout", "class_object") in kinds
    assert (tmp_path / "catch" / "agents" / "room_layout" / "seed0" / "catchjax.json").exists()


def test_a_cut_short_stage_file_and_stray_arguments_are_clear_errors(finished_study, tmp_path,
                                                                     capsys):
    import shutil

    one, _ = finished_study
    out = tmp_path / "study"
    shutil.copytree(one, out)
    stage = out / "stages" / "scratch__class_object.npz"
    stage.write_bytes(stage.read_bytes()[: stage.stat().st_size // 2])
    with pytest.raises(CatchjaxError, match="cut short.*delete that file"):
        transfer.run_study(SPEC, TINY, out, log=lambda *_: None)
    base = ["transfer", "--benchmark", "synthetic-transnas-micro", "--tasks",
            "class_object,room_layout", "--steps", "640", "--out", str(tmp_path / "x")]
    assert cli.main([*base, "--gamma", "jigsaw=0.5"]) == 2
    assert "jigsaw, which is not among --tasks" in capsys.readouterr().err
    assert cli.main([*base, "--seeds", "2000000000"]) == 2
    assert "at most 1024" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
