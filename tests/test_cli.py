import csv
import json

import pytest

from catchjax import cli


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
    from tests import official_layouts as layouts

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
    import os
    import subprocess
    import sys

    env = dict(os.environ, CATCHJAX_COMPILE_CACHE=str(tmp_path / "cache"))

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
    assert (tmp_path / "first" / "results.csv").read_bytes() == \
        (tmp_path / "second" / "results.csv").read_bytes() == \
        (tmp_path / "off" / "results.csv").read_bytes()
    assert off["mean"] == second["mean"]
