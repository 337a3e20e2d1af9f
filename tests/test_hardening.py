"""Bad input and faults, as a careless user or an adversary would make them: nothing may
delete files catchjax did not write, read past a buffer, or silently run the wrong
experiment; errors come before anything compiles, in the user's words."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from catchjax import agent as agents
from catchjax import catch, cli, reporting, safe_io, sweeps
from catchjax.benchmarks import importers, safe_pickle, tables, tasks
from catchjax.errors import CatchjaxError
from tests import official_layouts as layouts

SWEEP = ["sweep", "--method", "random", "--benchmark", "synthetic-transnas-micro", "--task",
         "jigsaw", "--trials", "3", "--budget", "5", "--no-progress"]


def _run(*args):
    return cli.main(list(args))


@pytest.fixture
def no_compile(monkeypatch):
    """Fail the test if anything is compiled or trained: errors must come first."""

    def refuse(*a, **k):
        raise AssertionError("compiled before the bad input was refused")

    monkeypatch.setattr(sweeps, "_compiled", refuse)
    monkeypatch.setattr(agents, "train", refuse)


# -- data loss --------------------------------------------------------------------------


def test_overwrite_of_the_current_folder_deletes_nothing(tmp_path, monkeypatch, capsys,
                                                         no_compile):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "thesis.tex").write_text("years of work")
    for out in (".", "", str(tmp_path), str(tmp_path.parent)):
        assert _run(*SWEEP, "--out", out, "--overwrite") == 2
        assert "refusing" in capsys.readouterr().err or out == ""
    assert (tmp_path / "thesis.tex").read_text() == "years of work"


def test_overwrite_refuses_root_and_home(tmp_path, monkeypatch, capsys, no_compile):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _run(*SWEEP, "--out", str(tmp_path), "--overwrite") == 2
    assert "home folder" in capsys.readouterr().err
    assert _run(*SWEEP, "--out", "/", "--overwrite") == 2
    assert "root of the file system" in capsys.readouterr().err


def test_overwrite_refuses_a_folder_with_foreign_files(tmp_path, capsys, no_compile):
    out = tmp_path / "thesis_dir"
    out.mkdir()
    (out / "chapter1.tex").write_text("keep me")
    (out / "summary.json").write_text("{}")  # even next to a catchjax-looking file
    assert _run(*SWEEP, "--out", str(out), "--overwrite") == 2
    assert "did not write (chapter1.tex)" in capsys.readouterr().err
    assert (out / "chapter1.tex").read_text() == "keep me"
    with pytest.raises(CatchjaxError, match="did not write"):
        agents.save_agent(out, None, overwrite=True)
    assert _run("meta-train", "--benchmark", "synthetic-nb201", "--task", "cifar10",
                "--out", str(out), "--overwrite") == 2
    assert sorted(p.name for p in out.iterdir()) == ["chapter1.tex", "summary.json"]


def test_old_results_survive_a_failed_rewrite(tmp_path, monkeypatch):
    out = tmp_path / "o"
    assert _run(*SWEEP, "--out", str(out)) == 0
    before = (out / "summary.json").read_text()

    def broken(result):
        yield from ()
        raise OSError("disk full")

    monkeypatch.setattr(reporting, "results_rows", broken)
    assert _run(*SWEEP, "--out", str(out), "--seed", "4", "--overwrite") == 1
    assert (out / "summary.json").read_text() == before
    # no temp folders left; the computed trials wait in .o.partial for the rerun
    assert sorted(p.name for p in tmp_path.iterdir()) == [".o.partial", "o"]
    monkeypatch.undo()
    assert _run(*SWEEP, "--out", str(out), "--seed", "4", "--overwrite") == 0
    assert json.loads((out / "summary.json").read_text())["trials_run"] == 0  # all reused
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_overwrite_needs_catchjax_s_record_not_its_file_names(tmp_path, capsys, no_compile):
    """A user's own folder with files named like catchjax's is not replaced, nor is a
    file a user put inside a results folder (issue 21)."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.json").write_text('{"my": "summary"}')
    (out / "results.csv").write_text("my,results\n")
    assert _run(*SWEEP, "--out", str(out), "--overwrite") == 2
    assert "no record that catchjax wrote" in capsys.readouterr().err
    assert (out / "results.csv").read_text() == "my,results\n"


def test_a_user_file_inside_a_results_folder_is_never_deleted(tmp_path, capsys):
    out = tmp_path / "o"
    assert _run(*SWEEP, "--out", str(out)) == 0
    record = json.loads((out / safe_io.RECORD).read_text())
    assert record["what"] == "results" and "summary.json" in record["files"]
    assert (out.stat().st_mode & 0o777) == 0o777 & ~safe_io._umask()  # not mkdtemp's 0700
    (out / "notes").mkdir()
    (out / "notes" / "todo.txt").write_text("mine")
    assert _run(*SWEEP, "--out", str(out), "--overwrite") == 2
    assert "did not write (notes, notes/todo.txt)" in capsys.readouterr().err
    (out / "notes" / "todo.txt").unlink()
    (out / "notes").rmdir()
    link = tmp_path / "latest"
    link.symlink_to(out)
    assert _run(*SWEEP, "--out", str(link), "--seed", "5", "--overwrite") == 0
    assert link.is_symlink() and link.resolve() == out.resolve()
    assert json.loads((out / "summary.json").read_text())["seed"] == 5


def test_leftovers_of_a_killed_writer_are_cleaned(tmp_path):
    out = tmp_path / "o"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".o.{safe_io.TMP_TAG}-{dead}-abc"
    stale.mkdir()
    (stale / "results.csv").write_text("half")
    mine = tmp_path / f".o.{safe_io.TMP_TAG}-{os.getppid()}-abc"  # a live process's
    mine.mkdir()
    assert _run(*SWEEP, "--out", str(out)) == 0
    assert not stale.exists() and mine.exists()


def test_data_import_never_replaces_silently_and_checks_companions(tmp_path, capsys, data_dir):
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "nb201.npz").write_bytes((data_dir / "nb201.npz").read_bytes())
    small = tmp_path / "nb201_hw.npz"
    with np.load(data_dir / "nb201_hw.npz") as d:
        np.savez(small, **{k: d[k][:100] for k in d.files})
    # a 100-row hardware table cannot sit beside the 15,625-row main table
    assert _run("data", "import", str(small), "--to", str(dest)) == 2
    assert "not the 15625" in capsys.readouterr().err
    assert not (dest / "nb201_hw.npz").exists()
    # the same file again: refused without --overwrite, accepted with it
    same = tmp_path / "nb201.npz"
    same.write_bytes((data_dir / "nb201.npz").read_bytes())
    assert _run("data", "import", str(same), "--to", str(dest)) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert _run("data", "import", str(same), "--to", str(dest), "--overwrite") == 0


def test_data_list_validates_what_it_lists(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CATCHJAX_DATA", str(tmp_path))
    np.savez(tmp_path / "transnas101_micro.npz", ops=np.zeros((0, 6), np.int8))
    assert _run("data", "list") == 1
    assert "BROKEN" in capsys.readouterr().out and "no rows" in str(
        tables.available(tmp_path, check=True)["transnas-micro"])
    ops = np.asarray([[0, 1, 2, 3, 0, 1]], np.int8)
    np.savez(tmp_path / "transnas101_micro.npz", ops=ops, jigsaw__valid_top1=[np.nan])
    assert "no finite value" in tables.available(tmp_path, check=True)["transnas-micro"]


# -- memory safety of the importer ---------------------------------------------------------


class CraftedTensor(layouts.FakeTensor):
    """A tensor whose offset, size and stride say whatever an attacker wants."""

    def __init__(self, array, offset, size, stride):
        super().__init__(array)
        self.offset, self.size, self.stride = offset, size, stride

    def __reduce__(self):
        fn = sys.modules["torch._utils"]._rebuild_tensor_v2
        return fn, (layouts._StorageRef(self.array), self.offset, self.size, self.stride,
                    False, {})


@pytest.mark.parametrize("offset,size,stride,words", [
    (0, (4,), (1000,), "reaches element"),
    (0, (2, 2), (1, 10**12), "reaches element"),
    (3, (4,), (1,), "reaches element"),
    (10**6, (), (), "reaches element"),
    (-1, (2,), (1,), "negative"),
    (0, (2,), (-1,), "negative"),
    (0, (10**8, 10**8), (0, 0), "larger than any benchmark"),
    (0, (2,), (1, 1), "do not match"),
    (0, (2.5,), (1,), "must be integers"),
    (0, "ab", (1,), "must be tuples"),
])
@pytest.mark.parametrize("save", [layouts.torch_save_zip, layouts.torch_save_legacy])
def test_crafted_tensor_views_are_refused(tmp_path, offset, size, stride, words, save):
    path = tmp_path / "crafted.pth"
    save({"x": CraftedTensor(np.arange(4.0), offset, size, stride)}, path)
    with pytest.raises(CatchjaxError, match=words) as err:
        safe_pickle.load_torch_file(path)
    assert str(path) in str(err.value)


def test_a_valid_strided_view_still_loads(tmp_path):
    path = tmp_path / "ok.pth"
    layouts.torch_save_zip({"x": CraftedTensor(np.arange(6.0), 1, (2, 2), (2, 1))}, path)
    np.testing.assert_array_equal(safe_pickle.load_torch_file(path)["x"], [[1, 2], [3, 4]])


def test_storage_claiming_huge_sizes_is_refused(tmp_path):
    path = tmp_path / "legacy.pth"
    layouts.torch_save_legacy({"x": layouts.FakeTensor(np.arange(4.0))}, path)
    raw = path.read_bytes()
    size_at = raw.rindex((4).to_bytes(8, "little"))
    path.write_bytes(raw[:size_at] + (10**13).to_bytes(8, "little") + raw[size_at + 8:])
    with pytest.raises(CatchjaxError, match="claims 10,000,000,000,000 elements"):
        safe_pickle.load_torch_file(path)


def _pth(tmp_path, obj, name="NAS-Bench-201-v1_1-096897.pth"):
    path = tmp_path / name
    layouts.torch_save_zip(obj, path)
    return path


@pytest.mark.parametrize("kind,obj", [
    ("nb201-pth", {"meta_archs": layouts.NB201_ARCHS, "arch2infos": [1, 2, 3]}),
    ("nb201-pth", {"meta_archs": 5, "arch2infos": {}}),
    ("nb201-pth", {"meta_archs": layouts.NB201_ARCHS, "arch2infos": {0: {"less": []}}}),
    ("nb201-pth", {"meta_archs": layouts.NB201_ARCHS, "arch2infos": {0: {"full": 3,
                                                                          "less": 4}}}),
    ("nb201-pth", {"meta_archs": [1, 2], "arch2infos": {}}),
    ("transnas-pth", {"data": [], "metrics_dict": {}}),
    ("transnas-pth", {"data": {"micro": {"64-41414-3_33_333": []}}, "metrics_dict": {}}),
    ("transnas-pth", {"data": {"micro": {"64-41414-3_33_333": {"jigsaw": {"metrics": []}}}},
                      "metrics_dict": {}}),
    ("transnas-pth", {"data": {"macro": {5: {}}}, "metrics_dict": {}}),
])
def test_structurally_wrong_files_get_clear_errors(tmp_path, kind, obj):
    path = _pth(tmp_path, obj)
    with pytest.raises(CatchjaxError) as err:
        importers.import_benchmark(path, kind, tmp_path / "out")
    assert str(path) in str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_nats_folder_with_wrong_contents(tmp_path):
    import bz2
    import pickle

    folder = tmp_path / "nats"
    folder.mkdir()
    with bz2.open(folder / "000000.pickle.pbz2", "wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(CatchjaxError, match="not laid out like a nats-topology file"):
        importers.import_benchmark(folder, "auto", tmp_path / "out")


# -- silently wrong experiments ------------------------------------------------------------


def test_replace_no_means_no(tmp_path):
    out = tmp_path / "rs"
    assert _run(*SWEEP, "--out", str(out), "--set", "replace=no") == 0
    assert json.loads((out / "summary.json").read_text())["config"]["replace"] is False
    out2 = tmp_path / "rs2"
    assert _run(*SWEEP, "--out", str(out2), "--set", "replace=yes") == 0
    assert json.loads((out2 / "summary.json").read_text())["config"]["replace"] is True


@pytest.mark.parametrize("setting,words", [
    ("population=2.5", "integer"), ("population=abc", "integer"),
    ("replace=maybe", "true or false"), ("learning_rate=inf", "finite"),
    ("learning_rate=nan", "finite"), ("nonsense=1", "no setting nonsense"), ("=3", "NAME=VALUE"),
])
def test_settings_are_parsed_by_type(tmp_path, capsys, setting, words, no_compile):
    method = "reinforce" if "learning" in setting else "rea"
    if setting.startswith("replace"):
        method = "random"
    args = [a if a != "random" else method for a in SWEEP]
    try:
        rc = _run(*args, "--out", str(tmp_path / "x"), "--set", setting)
    except SystemExit as exc:  # argparse: malformed NAME=VALUE
        rc = exc.code
    assert rc == 2 and words in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("method,setting,words", [
    ("catch-sfs", dict(learning_rate=0.0), "learning_rate"),
    ("catch-sfs", dict(learning_rate=float("nan")), "learning_rate"),
    ("catch-sfs", dict(per_fraction=1.5), "per_fraction"),
    ("catch-sfs", dict(per_fraction=0.0), "per_fraction"),
    ("catch-sfs", dict(updates_per_epoch=0), "updates_per_epoch"),
    ("catch-sfs", dict(epsilon_start=1.5), "epsilon_start"),
    ("catch-sfs", dict(epsilon_end=-0.1), "epsilon_end"),
    ("catch-sfs", dict(ppo_clip=-1.0), "ppo_clip"),
    ("catch-sfs", dict(beta_kl=-0.1), "beta_kl"),
    ("reinforce", dict(learning_rate=float("inf")), "learning_rate"),
    ("reinforce", dict(baseline_momentum=1.0), "baseline_momentum"),
    ("rea", dict(population=0), "population"),
])
def test_meaningless_settings_are_refused_before_compiling(syn_nb201, method, setting, words,
                                                           no_compile):
    with pytest.raises(CatchjaxError, match=words):
        sweeps.sweep(method, syn_nb201, trials=2, budget=10, **setting)


def test_latency_reward_prefers_better_and_faster_for_any_sign():
    table = tables.load_table("synthetic-transnas-micro")
    cost = tasks.CostObjective("room_layout__time_elapsed", target=3500.0, weight=-0.05)
    task = tasks.make_task("synthetic-transnas-micro", "room_layout", cost=cost, table=table)
    p = table.column("room_layout__valid_neg_loss").astype(np.float64)
    lat = table.column("room_layout__time_elapsed").astype(np.float64)
    r = np.asarray(task.arrays.reward, np.float64)
    assert (p < 0).all()  # neg_loss: the case that used to reward the slowest network
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(p), (2, 20000))
    dominates = (p[i] >= p[j]) & (lat[i] <= lat[j])
    assert dominates.sum() > 1000
    assert np.all(r[i][dominates] >= r[j][dominates] - 1e-6)
    # with the same P, the faster network gets the higher reward
    k = np.argsort(lat)
    same_p = tasks.make_task("synthetic-transnas-micro", "room_layout", cost=cost,
                             table=tables.Table(table.benchmark, table.space, table.actions,
                                                table.arch_str,
                                                {**table.columns, "p": np.full(len(p), -0.7)},
                                                table.source), reward="p", report="p")
    assert np.all(np.diff(np.asarray(same_p.arrays.reward)[k]) <= 0)


@pytest.mark.parametrize("flag,value,words", [
    ("--cost-target", "0", "--cost-target"), ("--cost-target", "nan", "--cost-target"),
    ("--cost-weight", "nan", "--cost-weight"), ("--cost-weight", "0.5", "slower networks"),
])
def test_cost_objective_errors_name_the_flag(tmp_path, capsys, flag, value, words, no_compile):
    args = ["sweep", "--method", "random", "--benchmark", "synthetic-nb201", "--task",
            "cifar10", "--cost-metric", "cifar10_edgegpu_latency", "--out", str(tmp_path / "x")]
    if flag != "--cost-target":
        args += ["--cost-target", "5"]
    assert _run(*args, flag, value) == 2
    assert words in capsys.readouterr().err


def test_meta_training_pool_may_not_hold_the_target(syn_nb201):
    config = catch.CatchConfig(meta_trained=True)
    with pytest.raises(CatchjaxError, match="target's own columns.*cifar10_valid_valid_acc_12"):
        agents.meta_train(syn_nb201, config, pool=["cifar10_valid_valid_acc_12",
                                                   "cifar100_valid_acc_12"])
    with pytest.raises(CatchjaxError, match="no metric 'nope'"):
        agents.meta_train(syn_nb201, config, pool=["nope"])


# -- errors at the right moment, in the user's words ---------------------------------------


@pytest.mark.parametrize("flag,value,words", [
    ("--seed", "-1", "seed must be in 0.."), ("--seed", str(2**31), "seed must be in 0.."),
    ("--trials", str(3 * 10**9), "at most"),
])
def test_counts_and_seeds_are_checked_first(tmp_path, capsys, flag, value, words, no_compile):
    assert _run(*SWEEP, "--out", str(tmp_path / "x"), flag, value) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_trials_as_a_float_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _run(*SWEEP, "--out", str(tmp_path / "x"), "--trials", "3e9")
    assert "not an integer" in capsys.readouterr().err


def test_unwritable_outputs_fail_before_work(tmp_path, capsys, no_compile):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _run(*SWEEP, "--out", str(blocker / "out")) == 2
    assert "cannot write into" in capsys.readouterr().err
    assert _run("meta-train", "--benchmark", "synthetic-nb201", "--task", "cifar10",
                "--out", str(blocker / "agent")) == 2
    assert "cannot write into" in capsys.readouterr().err
    assert _run("train", "--method", "catch-meta", "--benchmark", "synthetic-nb201",
                "--task", "cifar10", "--seed", "-3", "--out", str(tmp_path / "a")) == 2


def test_ctrl_c_and_unexpected_errors_print_one_line(tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweeps, "sweep", interrupted)
    assert _run(*SWEEP, "--out", str(tmp_path / "x")) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err

    def bug(*a, **k):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(sweeps, "sweep", bug)
    assert _run(*SWEEP, "--out", str(tmp_path / "x")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ZeroDivisionError" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        _run(*SWEEP, "--out", str(tmp_path / "x"), "--debug")
    with pytest.raises(ZeroDivisionError):
        _run("--debug", *SWEEP, "--out", str(tmp_path / "x"))


def test_version_and_a_light_start(capsys):
    with pytest.raises(SystemExit) as exc:
        _run("--version")
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("catchjax ")
    code = ("import sys, catchjax.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('jax', 'scipy', 'flax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"  # `catchjax --help` never waits for jax or scipy


def test_summary_is_strict_json_and_resumed_speed_counts_only_new_trials(tmp_path):
    table = tables.load_table("synthetic-nb201")
    report = table.column("cifar10_test_acc_200").copy()
    report[::2] = np.nan
    t = tables.Table(table.benchmark, table.space, table.actions, table.arch_str,
                     {**table.columns, "half_nan": report}, table.source)
    task = tasks.make_task("synthetic-nb201", "cifar10", report="half_nan", table=t)
    progress = tmp_path / "p"
    sweeps.sweep("random", task, trials=6, budget=5, chunk_size=2, progress_dir=progress)
    result = sweeps.sweep("random", task, trials=6, budget=5, chunk_size=2,
                          progress_dir=progress)
    assert result.summary()["trials_run"] == 0
    out = reporting.write_results(result, tmp_path / "o")

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    summary = json.loads((out / "summary.json").read_text(), parse_constant=refuse)
    assert summary["trials_run"] == 0 and summary["trials_per_second"] in (None, 0.0)


def test_progress_file_is_written_atomically(syn_nb201, tmp_path):
    progress = tmp_path / "p"
    sweeps.sweep("random", syn_nb201, trials=4, budget=5, chunk_size=2, progress_dir=progress)
    assert sorted(p.name for p in (progress / "chunks").iterdir()) == ["000000.npz",
                                                                       "000001.npz"]
    (progress / "chunks" / "000001.npz").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(CatchjaxError, match="cannot read sweep progress"):
        sweeps.sweep("random", syn_nb201, trials=4, budget=5, chunk_size=2,
                     progress_dir=progress)


def test_the_python_api_checks_its_arguments_like_the_cli(tmp_path, no_compile, capsys):
    """Each was a raw traceback or accepted silently (issue 21's second probe); each is
    now one CatchjaxError naming the argument, before anything compiles."""
    import jax

    from catchjax import checkpoints, sweep

    task = tasks.make_task("synthetic-transnas-micro", "jigsaw")
    (tmp_path / "file").write_text("x")
    bad_sweeps = [
        (dict(method=None, task=task), "method must be"),
        (dict(method=123, task=task), "method must be"),
        (dict(method="random", task="nb201"), "task must be a Task"),
        (dict(method="random", task=None), "task must be a Task"),
        (dict(method="random", task=task, devices=[]), "devices is empty"),
        (dict(method="random", task=task, devices=["cpu"]), "must be jax devices"),
        (dict(method="random", task=task, chunk_size=0), "chunk_size"),
        (dict(method="random", task=task, chunk_size=2.5), "chunk_size"),
        (dict(method="random", task=task, progress_dir=tmp_path / "file"), "not a folder"),
        (dict(method="catch-meta", task=task, agent="agent.ckpt"), "do not fit"),
    ]
    for kwargs, words in bad_sweeps:
        with pytest.raises(CatchjaxError, match=words):
            sweep(trials=2, budget=5, **kwargs)
    bad_tasks = [(dict(report=123), "report must be"), (dict(report=[]), "at least one"),
                 (dict(reward=""), "reward must be"), (dict(gamma="2"), "gamma must be"),
                 (dict(cost="latency"), "CostObjective"), (dict(mask_nan="no"), "True or False"),
                 (dict(gamma_normalize="percent"), "goes with gamma")]
    for kwargs, words in bad_tasks:
        with pytest.raises(CatchjaxError, match=words):
            tasks.make_task("synthetic-transnas-micro", "jigsaw", **kwargs)
    with pytest.raises(CatchjaxError, match="checkpoint folder's path"):
        checkpoints.load_agent(None)
    with pytest.raises(CatchjaxError, match="saves a TrainedAgent"):
        checkpoints.save_agent(tmp_path / "a", {"params": 1})
    with pytest.raises(CatchjaxError, match=r"seeds \[1\] appear more than once"):
        agents.train_many("catch-meta", task, seeds=[0, 1, 1])
    with pytest.raises(CatchjaxError, match="candidates .* at most"):
        sweep("catch-sfs", task, trials=2, budget=5, candidates=10**9)
    for extra, words in [(["--gamma-normalize", "percent"], "goes with --gamma"),
                         (["--cost-weight", "-0.1"], "goes with --cost-metric")]:
        assert _run(*SWEEP, "--out", str(tmp_path / "o"), *extra) == 2
        assert words in capsys.readouterr().err
    assert _run(*SWEEP, "--out", str(tmp_path / "o"), "--set", "budget=5") == 2
    assert "not a --set setting" in capsys.readouterr().err
    assert jax.devices()  # the checks compiled nothing (no_compile)
