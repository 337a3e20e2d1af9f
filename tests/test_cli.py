"""The `catchjax` command line: arguments checked first, one-line errors, the commands' outputs."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from catchjax import cli, methods
from catchjax.benchmarks import tables
from catchjax.cli import sweep as cli_sweep
from catchjax.runs import sweeps
from tests import official_layouts as layouts
from tests.helpers import SWEEP


def _run(*args):
    return cli.main(list(args))


def test_sweep_writes_table_and_summary(tmp_path, capsys):
    out = tmp_path / "rea"
    rc = _run("sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task", "cifar10",
              "--trials", "8", "--budget", "12", "--seed", "1", "--out", str(out), "--no-progress")
    assert rc == 0
    printed = capsys.readouterr().out
    assert "rea on synthetic-nb201/cifar10" in printed and "95% CI" in printed
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 * 12
    assert {"trial", "step", "best_reward", "best_cifar10_test_acc_200"} <= set(rows[0])
    # best-so-far never decreases within a trial
    for i in range(8):
        best = [float(r["best_reward"]) for r in rows if int(r["trial"]) == i]
        assert best == sorted(best)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reward_metric"] == "cifar10_valid_valid_acc_12"
    assert summary["report_metric"] == "cifar10_test_acc_200"
    assert summary["trials"] == 8 and summary["budget"] == 12
    final = [float(r["best_cifar10_test_acc_200"]) for r in rows if int(r["step"]) == 12]
    assert summary["mean"] == pytest.approx(sum(final) / 8, rel=1e-6)


def test_existing_out_is_not_overwritten_without_flag(tmp_path, capsys):
    out = tmp_path / "o"
    args = ["sweep", "--method", "random", "--benchmark", "synthetic-transnas-micro", "--task",
            "jigsaw", "--trials", "3", "--budget", "5", "--out", str(out), "--no-progress"]
    assert _run(*args) == 0
    before = (out / "summary.json").read_text()
    assert _run(*args, "--seed", "9") == 2
    assert "already holds results" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == before
    assert _run(*args, "--seed", "9", "--overwrite") == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 9


def test_bad_input_gives_clear_errors(tmp_path, capsys):
    assert _run("sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task", "c10",
                "--out", str(tmp_path / "x"), "--trials", "2") == 2
    assert "tasks: cifar10, cifar100, imagenet16-120" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run("sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task", "cifar10",
             "--out", str(tmp_path / "x"), "--budget", "0")
    assert "positive integer" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_custom_reward_report_and_settings(tmp_path):
    out = tmp_path / "c"
    rc = _run("sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task", "cifar100",
              "--reward", "cifar100_valid_acc_200", "--report", "cifar100_test_acc_12",
              "--set", "population=5", "--trials", "4", "--budget", "10", "--out", str(out),
              "--no-progress")
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["reward_metric"] == "cifar100_valid_acc_200"
    assert s["report_metric"] == "cifar100_test_acc_12"
    assert s["config"]["population"] == 5


def test_data_import_and_list(tmp_path, capsys, monkeypatch):

    src = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    layouts.torch_save_zip(layouts.nb201_pth_dict(), src)
    monkeypatch.setenv("CATCHJAX_DATA", str(tmp_path / "data"))
    assert _run("data", "import", str(src)) == 0
    assert _run("data", "list") == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "data" / "nb201.npz") in out


def test_persistent_compile_cache_makes_the_second_call_compile_faster(tmp_path):
    """Two CLI processes with the same sweep: the second loads the compiled function from
    $CATCHJAX_COMPILE_CACHE (same results, a fraction of the compile time); with
    --no-compile-cache nothing is written there."""
    import subprocess
    import sys

    env = dict(os.environ, CATCHJAX_COMPILE_CACHE=str(tmp_path / "cache"))
    # compiled as a user's would be: conftest's unoptimized backend and older emitters
    # compile this sweep so fast that loading it is no longer a fraction of compiling it
    from tests.conftest import users_xla_flags

    env["XLA_FLAGS"] = users_xla_flags()

    def run(out, *extra):
        cmd = [sys.executable, "-m", "catchjax.cli", *extra, "sweep", "--method", "reinforce",
               "--benchmark", "synthetic-nb201", "--task", "cifar10", "--trials", "20",
               "--budget", "30", "--no-progress", "--out", str(tmp_path / out)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads((tmp_path / out / "summary.json").read_text())

    off = run("off", "--no-compile-cache")
    assert not (tmp_path / "cache").exists()
    first, second = run("first"), run("second")
    assert any((tmp_path / "cache").iterdir())
    assert second["compile_seconds"] < 0.5 * first["compile_seconds"], (first, second)
    # and each summary says which of the two its seconds were
    assert (off["compile_source"], first["compile_source"], second["compile_source"]) == \
        ("compiled", "compiled", "loaded")
    # the Python API finds the CLI's compilation in the same default folder
    api = subprocess.run(
        [sys.executable, "-c", "import catchjax; s = catchjax.sweep('reinforce', catchjax."
         "make_task('synthetic-nb201', 'cifar10'), trials=20, budget=30).summary(); "
         "print(s['compile_source'], s['compile_seconds'])"],
        env=env, capture_output=True, text=True, timeout=300, check=True)
    assert api.stdout.split()[-2] == "loaded", api.stdout
    assert float(api.stdout.split()[-1]) < 0.5 * first["compile_seconds"], api.stdout
    assert (tmp_path / "first" / "results.csv").read_bytes() == \
        (tmp_path / "second" / "results.csv").read_bytes() == \
        (tmp_path / "off" / "results.csv").read_bytes()
    assert off["mean"] == second["mean"]


def test_the_python_api_takes_the_default_compile_cache_unless_told_otherwise(tmp_path,
                                                                            monkeypatch):
    """use_default (called before the API's first compile): the CLI's folder, unless JAX
    already has the user's folder or CATCHJAX_COMPILE_CACHE is off; decided once."""
    from catchjax.runs import compile_cache

    enabled = []
    monkeypatch.setattr(compile_cache, "enable", enabled.append)
    for env, users, want in [(str(tmp_path / "c"), None, [tmp_path / "c"]),
                             (str(tmp_path / "c"), "/theirs", []), ("off", None, [])]:
        enabled.clear()
        monkeypatch.setattr(compile_cache, "_DEFAULT_CHECKED", False)
        monkeypatch.setenv("CATCHJAX_COMPILE_CACHE", env)
        monkeypatch.setattr(compile_cache, "_jax_cache_dir", lambda u=users: u)
        compile_cache.use_default()
        compile_cache.use_default()  # decided once per process
        assert enabled == want


def test_the_cache_keeps_compilations_above_a_threshold_the_user_can_set(tmp_path, capsys,
                                                                         monkeypatch,
                                                                         no_compile):
    """CATCHJAX_COMPILE_CACHE_MIN_SECONDS: 0.5 s unless set; a value that is not a number
    of seconds >= 0 is one line naming the variable, before anything compiles."""
    from catchjax.errors import CatchjaxError
    from catchjax.runs import compile_cache

    monkeypatch.delenv("CATCHJAX_COMPILE_CACHE_MIN_SECONDS", raising=False)
    assert compile_cache.min_seconds() == 0.5
    for value, want in [("0", 0.0), (" 2.5 ", 2.5)]:
        monkeypatch.setenv("CATCHJAX_COMPILE_CACHE_MIN_SECONDS", value)
        assert compile_cache.min_seconds() == want
    for value in ["soon", "-1", "inf", "nan"]:
        monkeypatch.setenv("CATCHJAX_COMPILE_CACHE_MIN_SECONDS", value)
        with pytest.raises(CatchjaxError, match="CATCHJAX_COMPILE_CACHE_MIN_SECONDS"):
            compile_cache.min_seconds()
    monkeypatch.setattr(compile_cache, "_DEFAULT_CHECKED", False)
    monkeypatch.setenv("CATCHJAX_COMPILE_CACHE", str(tmp_path / "cache"))
    assert _run("sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task",
                "cifar10", "--trials", "2", "--budget", "12", "--no-progress", "--out",
                str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "CATCHJAX_COMPILE_CACHE_MIN_SECONDS='nan' is not a number of seconds" in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "cache").exists()


def test_data_list_validates_what_it_lists(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CATCHJAX_DATA", str(tmp_path))
    np.savez(tmp_path / "transnas101_micro.npz", ops=np.zeros((0, 6), np.int8))
    assert _run("data", "list") == 1
    assert "BROKEN" in capsys.readouterr().out and "no rows" in str(
        tables.available(tmp_path, check=True)["transnas-micro"])
    ops = np.asarray([[0, 1, 2, 3, 0, 1]], np.int8)
    np.savez(tmp_path / "transnas101_micro.npz", ops=ops, jigsaw__valid_top1=[np.nan])
    assert "no finite value" in tables.available(tmp_path, check=True)["transnas-micro"]


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


@pytest.mark.parametrize("flag,value,words", [
    ("--seed", "-1", "seed must be in 0.."), ("--seed", str(2**31), "seed must be in 0.."),
    ("--trials", str(3 * 10**9), "at most"),
    ("--trials", str(2**31 - 1), "GB of results in memory"),
    ("--budget", str(10**9), "GB of results in memory"),
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
    for module in ("catchjax", "catchjax.cli"):  # `python -m` is the same command
        run = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True,
                             text=True)
        assert run.returncode == 0 and run.stdout.startswith("catchjax "), run.stderr


def test_argument_errors_come_before_jax_is_imported(tmp_path):
    """A typo in a method, benchmark, task or protocol name, a bad seed or a taken output
    folder: one line, exit 2, and JAX never imported (a tenth of a second, not 1.5 s)."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("x")
    sweep = ["sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task", "cifar10",
             "--out", str(tmp_path / "new")]
    cases = [(["--method", "reaa"], "unknown method 'reaa'"),
             (["--benchmark", "nb2"], "unknown benchmark 'nb2'"),
             (["--task", "c10"], "has no task 'c10'"),
             (["--protocol", "paper"], "has no protocol 'paper'"),
             (["--seed", "-1"], "seed must be in 0.."),
             (["--out", str(tmp_path / "taken")], "already holds results")]
    code = ("import sys, json\nfrom catchjax import cli\nout = []\n"
            "for extra in json.loads(sys.argv[1]):\n"
            "    out.append(cli.main(sys.argv[2:] + extra))\n"
            "print(json.dumps([out, 'jax' in sys.modules]))\n")
    done = subprocess.run([sys.executable, "-c", code, json.dumps([c for c, _ in cases]), *sweep],
                          capture_output=True, text=True, check=True)
    codes, imported = json.loads(done.stdout.splitlines()[-1])
    assert codes == [2] * len(cases) and not imported
    lines = done.stderr.strip().splitlines()
    assert len(lines) == len(cases)
    for line, (_, words) in zip(lines, cases):
        assert words in line, line
    train = ["train", "--method", "catch-meta", "--benchmark", "nb201x", "--task", "cifar10",
             "--out", str(tmp_path / "agent")]
    done = subprocess.run([sys.executable, "-c", code, json.dumps([[]]), *train],
                          capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.splitlines()[-1]) == [[2], False]


def test_the_light_method_list_is_the_registry():
    from catchjax import arguments, methods

    assert methods.names()[:len(arguments.BUILTIN_METHODS)] == list(arguments.BUILTIN_METHODS)
    assert methods.ALIASES is arguments.ALIASES


def test_one_version_and_typing_marker(capsys):
    """The version has one source (catchjax.__version__, read by pyproject's dynamic
    version) and the package is marked as typed (PEP 561)."""
    import importlib.metadata
    from pathlib import Path

    import catchjax

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(catchjax.__file__).resolve().parent
    project = tomllib.loads((root.parent / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert importlib.metadata.version("catchjax") == catchjax.__version__
    with pytest.raises(SystemExit):
        _run("--version")
    assert capsys.readouterr().out.strip() == f"catchjax {catchjax.__version__}"
    assert (root / "py.typed").exists()
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["catchjax"]


def test_licence_declared_once_and_shipped():
    """The licence is one SPDX expression in pyproject (PEP 639), the installed metadata
    carries it, and the LICENSE file it ships names the same licence."""
    import importlib.metadata
    from pathlib import Path

    import catchjax

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(catchjax.__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert importlib.metadata.metadata("catchjax")["License-Expression"] == "Apache-2.0"
    text = (root / "LICENSE").read_text()
    assert "Apache License, Version 2.0" in text and "SPDX identifier:\nApache-2.0" in text


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sweep", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "default: 500" in text and "(default: 50)" in text and "default: 0" in text
    with pytest.raises(SystemExit):
        cli.main(["ask", "--help"])
    assert "(default 120)" in capsys.readouterr().out


def test_summary_records_the_command_revision_and_time(tmp_path):
    out = tmp_path / "o"
    assert _run("sweep", "--method", "random", "--benchmark", "synthetic-nb201", "--task",
                "cifar10", "--trials", "2", "--budget", "4", "--no-progress", "--out",
                str(out)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"].startswith("catchjax sweep --method random")
    assert summary["command"].endswith(f"--out {out}")
    assert summary["written_at"].endswith("Z") and "source_revision" in summary


@pytest.mark.parametrize("revision", ["abc1234", None])  # a git checkout, an installed copy
def test_the_same_command_again_finds_its_run_done(tmp_path, capsys, monkeypatch, revision):
    monkeypatch.setattr(cli_sweep, "_revision", lambda: revision)
    out = tmp_path / "o"
    args = ["sweep", "--method", "random", "--benchmark", "synthetic-nb201", "--task", "cifar10",
            "--trials", "3", "--budget", "4", "--no-progress", "--out", str(out)]
    assert _run(*args) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    compiled = sweeps._compiled
    monkeypatch.setattr(sweeps, "_compiled", None)  # nothing may compile the second time
    assert _run(*args) == 0
    printed = capsys.readouterr().out
    assert "already holds this run" in printed and "final cifar10_test_acc_200" in printed
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # anything else is refused as before: another revision, an edited summary, a dirty tree
    monkeypatch.setattr(cli_sweep, "_revision", lambda: "def5678")
    assert _run(*args) == 2 and "already holds results" in capsys.readouterr().err
    monkeypatch.setattr(cli_sweep, "_revision", lambda: revision)
    summary = json.loads((out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps({**summary, "mean": 0.0}))
    assert _run(*args) == 2 and "already holds results" in capsys.readouterr().err
    monkeypatch.setattr(sweeps, "_compiled", compiled)
    monkeypatch.setattr(cli_sweep, "_revision", lambda: "abc1234-dirty")  # edited code: run again
    dirty = [a if a != str(out) else str(tmp_path / "d") for a in args]
    assert _run(*dirty) == 0
    assert _run(*dirty) == 2 and "already holds results" in capsys.readouterr().err


def test_the_table_files_a_run_read_are_fingerprinted(tmp_path, monkeypatch):
    """summary.json's table_sha256 (and the same-run check) follows the bytes of the
    benchmark's files: another import of the table is another run."""
    from catchjax.benchmarks import tables as tables_mod

    assert tables_mod.table_digest("synthetic-nb201") is None
    assert tables_mod.table_digest("nb201", tmp_path) is None  # no table there
    (tmp_path / "nb201.npz").write_bytes(b"one")
    first = tables_mod.table_digest("nb201", tmp_path)
    (tmp_path / "nb201.npz").write_bytes(b"two")
    second = tables_mod.table_digest("nb201", tmp_path)
    (tmp_path / "nb201_hw.npz").write_bytes(b"hw")  # a companion file counts too
    third = tables_mod.table_digest("nb201", tmp_path)
    assert len({first, second, third}) == 3
    monkeypatch.setenv("CATCHJAX_DATA", str(tmp_path))
    assert tables_mod.table_digest("nb201") == third


def test_a_budget_spent_on_warm_up_draws_alone_is_said_before_compiling(tmp_path, capsys,
                                                                        monkeypatch):
    """REA with --budget 2 (its population is 10) would run random draws without a word."""
    def refuse(*a, **k):
        raise AssertionError("compiled")

    monkeypatch.setattr(sweeps, "_compiled", refuse)
    assert _run("sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task",
                "cifar10", "--trials", "2", "--budget", "2", "--no-progress", "--out",
                str(tmp_path / "o")) == 1  # stopped where it would compile
    out, err = capsys.readouterr()
    assert "AssertionError: compiled" in err
    assert "rea makes its first 10 proposals at random" in out and "budget above 10" in out
    from catchjax.store import reporting

    summary = {"method": "rea", "benchmark": "synthetic-nb201", "task": "cifar10", "trials": 2,
               "budget": 12, "seed": 0, "reward_metric": "r", "report_metric": "t",
               "mean": 94.8, "std": 0.1, "ci95": [94.7, 94.9], "table_best": 96.4,
               "best_hits": 0, "report_means": {}, "trials_per_second": 1.0,
               "compile_seconds": 1.0, "wall_seconds": 1.0, "device": "cpu x1"}
    assert "synthetic table: seeded made-up numbers" in reporting.format_summary(summary)
    real = reporting.format_summary({**summary, "benchmark": "nb201"})
    assert "synthetic" not in real
    for method, budget in (("rea", 11), ("random", 2), ("catch-sfs", 20)):
        assert sweeps.warmup_note(method, methods.build(method, budget)) is None
    assert "first 10" in sweeps.warmup_note("ls", methods.build("ls", 10))


def test_a_new_ask_tell_search_spent_on_warm_up_says_so_once(tmp_path, capsys):
    """`catchjax ask` too: the first ask of a search whose budget is all warm-up says so,
    once; later asks of the same search do not repeat it."""
    state = str(tmp_path / "s")
    assert _run("ask", "--state", state, "--method", "rea", "--space", "nb201",
                "--budget", "2", "-k", "1", "--out", str(tmp_path / "p.json")) == 0
    assert "rea makes its first 10 proposals at random" in capsys.readouterr().err
    assert _run("ask", "--state", state, "-k", "1", "--out", str(tmp_path / "p.json")) == 0
    assert "at random" not in capsys.readouterr().err
    assert _run("ask", "--state", str(tmp_path / "t"), "--method", "rea", "--space", "nb201",
                "--budget", "12", "-k", "1", "--out", str(tmp_path / "q.json")) == 0
    assert "at random" not in capsys.readouterr().err


def test_a_folder_holding_another_run_says_what_it_holds(tmp_path, capsys):
    out = str(tmp_path / "o")
    assert _run("sweep", "--method", "random", "--benchmark", "synthetic-nb201", "--task",
                "cifar10", "--trials", "2", "--budget", "4", "--no-progress", "--out", out) == 0
    capsys.readouterr()
    assert _run("sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task",
                "cifar10", "--trials", "2", "--budget", "12", "--no-progress", "--out", out) == 2
    err = capsys.readouterr().err
    assert "already holds results (a random run on synthetic-nb201/cifar10, 2 trials, " \
           "written 20" in err and "--overwrite" in err


def test_the_only_pre_release_is_pinned_to_one_dated_build():
    """Issue 33, item 7: no stable TensorFlow Probability imports on jax 0.10, so distrax's
    nightly is pinned exactly (never 'whatever nightly is newest'), and it is what runs."""
    import importlib.metadata
    import re
    from pathlib import Path

    import catchjax

    tomllib = pytest.importorskip("tomllib")
    root = Path(catchjax.__file__).resolve().parent.parent
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    pre = [d for d in deps if re.search(r"(dev|a|b|rc)\d", d) or "nightly" in d]
    assert len(pre) == 1 and re.fullmatch(r"tfp-nightly==0\.\d+\.0\.dev(\d{8})", pre[0]), pre
    assert importlib.metadata.version("tfp-nightly") == pre[0].split("==")[1]
