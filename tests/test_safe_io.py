"""catchjax.safe_io: output folders are never half-written, and --overwrite never
deletes what catchjax did not write."""

import json
import os
import subprocess
import sys

import pytest

from catchjax import safe_io
from catchjax.errors import CatchjaxError
from catchjax.runs import agent as agents
from catchjax.store import reporting
from tests.helpers import SWEEP, _run


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
    assert (out.stat().st_mode & 0o777) == 0o777 & ~safe_io.current_umask()  # not mkdtemp's 0700
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
