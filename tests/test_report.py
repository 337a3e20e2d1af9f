"""`catchjax report`: comparison tables and plots from saved runs, never recomputed; and
the Parquet copy of a large results table."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from catchjax import cli, sweep
from catchjax.benchmarks import tasks
from catchjax.errors import CatchjaxError
from catchjax.runs import sweeps
from catchjax.store import reporting
from catchjax.studies import report as runs_report


@pytest.fixture(scope="session")
def saved_runs(tmp_path_factory):
    """Three saved sweeps: rea and random on cifar10 (rea also as Parquet), rea on cifar100."""
    root = tmp_path_factory.mktemp("runs")
    c10 = tasks.make_task("synthetic-nb201", "cifar10")
    c100 = tasks.make_task("synthetic-nb201", "cifar100")
    runs = {}
    for name, method, task, parquet in (("rea", "rea", c10, True), ("rs", "random", c10, False),
                                        ("rea100", "rea", c100, False)):
        res = sweep(method, task, trials=12, budget=10, seed=3)
        runs[name] = reporting.write_results(res, root / name, parquet=parquet)
    return runs


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_parquet_holds_the_same_table_as_the_csv(saved_runs):
    rows = _csv_rows(saved_runs["rea"] / "results.csv")
    table = pq.read_table(saved_runs["rea"] / "results.parquet").to_pylist()
    assert len(table) == len(rows) == 12 * 10
    for a, b in zip(rows, table):
        assert list(a) == list(b)
        for k in a:
            # numbers in their own precision: float32 values, text that reads back to them
            assert (np.float32(a[k]) == np.float32(b[k])) if isinstance(b[k], float) \
                else (a[k] == str(b[k]))
    assert pq.read_schema(saved_runs["rea"] / "results.parquet").field("reward").type == "float"
    for r in rows:  # the shortest float32 text, not a float64 widening (82.26224517822266)
        assert r["reward"] == str(np.float32(r["reward"]))
    assert not (saved_runs["rs"] / "results.parquet").exists()  # small: CSV only


def test_report_rows_are_the_summaries_it_read(saved_runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert cli.main(["report", str(saved_runs["rea"]), str(saved_runs["rs"]),
                     "--out", str(out)]) == 0
    table = {r["method"]: r for r in _csv_rows(out / "comparison.csv")}
    assert set(table) == {"rea", "random"}
    for name in ("rea", "rs"):
        s = json.loads((saved_runs[name] / "summary.json").read_text())
        row = table[s["method"]]
        assert row["run"] == str(saved_runs[name])
        for k in ("mean", "std", "table_best", "compile_seconds", "wall_seconds"):
            assert float(row[k]) == s[k]
        assert [float(row["ci_low"]), float(row["ci_high"])] == s["ci95"]
        for k in ("trials", "budget", "seed", "best_hits"):
            assert int(row[k]) == s[k]
    text = (out / "report.md").read_text()
    assert str(saved_runs["rea"]) in text and str(saved_runs["rs"]) in text
    assert (out / "fig3_sorted.png").stat().st_size > 0
    assert (out / "best_so_far.png").stat().st_size > 0
    assert str(saved_runs["rs"]) in capsys.readouterr().out  # says which runs it used


def test_a_summary_says_what_its_compile_seconds_measured(saved_runs, tmp_path):
    """compile_seconds is a compile, a load from the persistent compilation cache (test_cli
    checks that one) or 0 for a program compiled earlier in the process; summary.json, the
    one-screen summary and report.md say which."""
    first = json.loads((saved_runs["rea"] / "summary.json").read_text())
    assert first["compile_source"] in ("compiled", "loaded") and first["compile_seconds"] > 0
    res = sweep("rea", tasks.make_task("synthetic-nb201", "cifar10"), trials=12, budget=10,
                seed=3)  # saved_runs["rea"] again, in the process that compiled it
    again = res.summary()
    assert again["compile_source"] == "reused" and again["compile_seconds"] == 0
    assert "compile 0.00 s (compiled earlier in this process)" in \
        reporting.format_summary(again)
    assert "(loaded from" not in reporting.format_summary({**first, "compile_source": "compiled"})
    reporting.write_results(res, tmp_path / "again")
    assert cli.main(["report", str(tmp_path / "again"), "--out", str(tmp_path / "r")]) == 0
    row = next(line for line in (tmp_path / "r" / "report.md").read_text().splitlines()
               if line.startswith("| rea"))
    assert "| 0 (reused) |" in row, row


def test_report_figures_for_a_paper(saved_runs, tmp_path):
    """Issue 22, item 5: PNG, PDF and SVG of each figure, a regret view, the metric's
    display name on the axes and in the table's heading, the table's best drawn."""
    out = tmp_path / "paper"
    assert cli.main(["report", str(saved_runs["rea"]), str(saved_runs["rs"]),
                     "--out", str(out)]) == 0
    for name in runs_report.FIGURES:
        for fmt in runs_report.FIGURE_FORMATS:
            assert (out / f"{name}.{fmt}").stat().st_size > 0
    svg = (out / "best_so_far.svg").read_text()
    assert "CIFAR-10 test accuracy, 200 epochs" in svg and "table's best" in svg  # wrapped
    assert "regret" in (out / "regret.svg").read_text()
    text = (out / "report.md").read_text()
    assert "CIFAR-10 test accuracy, 200 epochs (%) of the chosen network" in text


def test_metric_display_names():
    from catchjax.benchmarks.names import display_name

    assert display_name("cifar10_valid_valid_acc_12") == (
        "CIFAR-10 (train/valid split) validation accuracy, 12 epochs (%)")
    assert display_name("imagenet16_valid_acc_200") == (
        "ImageNet16-120 validation accuracy, 200 epochs (%)")
    assert display_name("cifar100_raspi4_latency") == "Raspberry Pi 4 latency (ms), CIFAR-100"
    assert display_name("segmentsemantic__test_mIoU") == "segmentsemantic test mIoU (%)"
    assert display_name("room_layout__valid_neg_loss") == (
        "room_layout validation negative L2 loss")
    assert display_name("my_own_column") == "my_own_column"  # unknown: as it is


def test_data_list_names_the_columns(capsys):
    assert cli.main(["data", "list", "--columns"]) in (0, 1)  # 1: a real table is broken
    out = capsys.readouterr().out
    assert "jigsaw__valid_top1" in out and "jigsaw validation top-1 accuracy (%)" in out


def test_report_reads_the_per_trial_curves(saved_runs):
    run = runs_report.load_run(saved_runs["rs"])
    rows = _csv_rows(saved_runs["rs"] / "results.csv")
    col = f"best_{run.summary['report_metric']}"
    assert run.curves[4, 6] == float(next(r[col] for r in rows
                                          if r["trial"] == "4" and r["step"] == "7"))
    assert np.isclose(run.finals.mean(), run.summary["mean"])


def test_runs_of_different_tasks_are_not_mixed_unless_asked(saved_runs, tmp_path, capsys):
    argv = ["report", str(saved_runs["rea"]), str(saved_runs["rea100"]), "--out"]
    assert cli.main(argv + [str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "different benchmarks, tasks" in err and "--mix" in err
    assert not (tmp_path / "r").exists()
    assert cli.main(argv + [str(tmp_path / "m"), "--mix"]) == 0
    text = (tmp_path / "m" / "report.md").read_text()
    assert "synthetic-nb201 / cifar10 " in text and "synthetic-nb201 / cifar100 " in text


def test_incomplete_or_mismatched_runs_are_named(saved_runs, tmp_path):
    import shutil

    cut = tmp_path / "cut"
    shutil.copytree(saved_runs["rs"], cut)
    lines = (cut / "results.csv").read_text().splitlines()
    (cut / "results.csv").write_text("\n".join(lines[:-5]) + "\n")
    with pytest.raises(CatchjaxError, match="incomplete"):
        runs_report.build([cut], tmp_path / "out")
    mixed = tmp_path / "mixed"
    shutil.copytree(saved_runs["rs"], mixed)
    shutil.copy(saved_runs["rea"] / "results.csv", mixed / "results.csv")
    with pytest.raises(CatchjaxError, match="disagree"):
        runs_report.build([mixed], tmp_path / "out")
    with pytest.raises(CatchjaxError, match="neither a sweep"):
        runs_report.build([tmp_path], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_damaged_or_edited_run_files_are_named_not_tracebacks(saved_runs, tmp_path):
    """A cut-short results.csv, a summary.json of the wrong shape or edited after it was
    written, a garbled study table: one clear error each (issue 21)."""
    import shutil

    def copy(name):
        folder = tmp_path / name
        shutil.copytree(saved_runs["rs"], folder)
        return folder

    short = copy("short")
    lines = (short / "results.csv").read_text().splitlines()
    lines[3] = lines[3].split(",")[0]  # a line with fewer fields
    (short / "results.csv").write_text("\n".join(lines) + "\n")
    ids = copy("ids")
    (ids / "results.csv").write_text("trial\n0\n1\n")
    edited = copy("edited")
    summary = json.loads((edited / "summary.json").read_text())
    summary["std"] = summary["std"] / 2  # a tighter spread than the run had
    (edited / "summary.json").write_text(json.dumps(summary))
    strings = copy("strings")
    (strings / "summary.json").write_text(json.dumps({k: str(v) for k, v in summary.items()}))
    number = copy("number")
    (number / "summary.json").write_text("3")
    for folder, words in [(short, "line 4 is cut short"), (ids, "lacks the columns"),
                          (edited, "changed after catchjax wrote it"),
                          (strings, "do not have the values"), (number, "not the object")]:
        with pytest.raises(CatchjaxError, match=words):
            runs_report.load_run(folder)
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.json").write_text('{"kind": "catchjax transfer study"}')
    with pytest.raises(CatchjaxError, match="no study spec"):
        runs_report.load_run(study)
    (study / "study.json").write_text('{"spec": {}}')
    for name in ("cells", "curves", "crossover"):
        (study / f"{name}.csv").write_text("source,target\nx\n")
    with pytest.raises(CatchjaxError, match="cells.csv is damaged"):
        runs_report.load_run(study)


def test_results_are_written_a_chunk_at_a_time_with_the_same_bytes(saved_runs, tmp_path,
                                                                   monkeypatch):
    """Issue 22, item 3: the table is built and written WRITE_CHUNK_ROWS rows at a time
    (bounded memory); the files are the same as when written in one piece."""
    from catchjax.benchmarks import tasks as tasks_mod

    task = tasks_mod.make_task("synthetic-nb201", "cifar10")
    res = sweep("rea", task, trials=12, budget=10, seed=3)
    whole = reporting.write_results(res, tmp_path / "whole", parquet=True)
    monkeypatch.setattr(reporting, "WRITE_CHUNK_ROWS", 25)  # 2 trials a chunk, 6 chunks
    chunked = reporting.write_results(res, tmp_path / "chunked", parquet=True)
    assert (whole / "results.csv").read_bytes() == (chunked / "results.csv").read_bytes()
    assert (pq.read_table(whole / "results.parquet").to_pylist()
            == pq.read_table(chunked / "results.parquet").to_pylist())
    assert pq.ParquetFile(chunked / "results.parquet").metadata.num_row_groups == 6


def test_a_large_run_says_so_before_it_compiles(monkeypatch):
    from catchjax import methods
    from catchjax.benchmarks import tasks as tasks_mod
    from catchjax.runs import sweeps

    task = tasks_mod.make_task("synthetic-nb201", "cifar10")
    config = methods.build("rea", 20_000)
    notes = sweeps.size_notes("rea", config, task, trials=10)
    assert len(notes) == 1 and "more than the 15,625 searchable networks" in notes[0]
    assert sweeps.size_notes("rea", methods.build("rea", 50), task, trials=500) == []
    monkeypatch.setattr(reporting, "LARGE_OUTPUT_BYTES", 1000)
    (note,) = sweeps.size_notes("rea", methods.build("rea", 50), task, trials=500)
    assert "25,000 result rows" in note and "GB" in note
    said = []

    def refuse(*a, **k):
        raise AssertionError("compiled")

    monkeypatch.setattr(sweeps, "_compiled", refuse)
    with pytest.raises(AssertionError, match="compiled"):
        sweeps.sweep("rea", task, trials=500, budget=50, log=said.append)
    assert said and "25,000 result rows" in said[0]  # said before anything compiled


def test_report_compares_each_run_with_the_first(saved_runs, tmp_path):
    """Issue 22: a statistical comparison in the report — the difference of the means
    against the best run, its 95% interval (Welch) and a Mann-Whitney p."""
    from scipy.stats import mannwhitneyu

    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 5.0, 6.0])
    diff, lo, hi, p = runs_report.compare(a, b)
    se = np.sqrt(a.var(ddof=1) / 4 + b.var(ddof=1) / 4)
    assert diff == 1.75 and (lo, hi) == pytest.approx((1.75 - 1.96 * se, 1.75 + 1.96 * se))
    assert p == pytest.approx(mannwhitneyu(b, a).pvalue)
    assert runs_report.compare(np.ones(5), np.ones(5))[3] == 1.0  # all equal: no difference
    out = tmp_path / "cmp"
    assert cli.main(["report", str(saved_runs["rea"]), str(saved_runs["rs"]),
                     "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "vs the best by mean: difference [95% CI], Mann-Whitney U p" in text
    assert "(the first: the best by mean)" in text and ", p = " in text


def test_without_pyarrow_results_are_csv_and_parquet_is_refused_first(saved_runs, tmp_path,
                                                                      monkeypatch, capsys):
    """pyarrow is the optional `parquet` extra: without it a large run writes results.csv
    only, `--parquet` is refused before anything compiles, and a report reads the CSV of
    a run that has a results.parquet."""
    monkeypatch.setattr(reporting, "has_pyarrow", lambda: False)
    monkeypatch.setattr(reporting, "PARQUET_MIN_ROWS", 10)
    res = sweep("random", tasks.make_task("synthetic-nb201", "cifar10"), trials=3, budget=5)
    out = reporting.write_results(res, tmp_path / "csv-only")
    assert (out / "results.csv").exists() and not (out / "results.parquet").exists()
    with pytest.raises(CatchjaxError, match=r"pip install 'catchjax\[parquet\]'"):
        reporting.write_results(res, tmp_path / "p", parquet=True)
    monkeypatch.setattr(sweeps, "_compiled", None)  # refused before anything compiles
    assert cli.main(["sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task",
                     "cifar10", "--trials", "2", "--parquet", "--out", str(tmp_path / "q")]) == 2
    assert "needs pyarrow" in capsys.readouterr().err
    run = runs_report.load_run(saved_runs["rea"])  # has a results.parquet: its CSV is read
    assert run.curves.shape == (12, 10)


def test_report_names_its_test_reward_seed_and_interval(saved_runs, tmp_path):
    """Issue 33, item 5: a reader of report.md learns which test, against which row, on
    which searched reward and seed, without opening the summaries."""
    out = tmp_path / "words"
    assert cli.main(["report", str(saved_runs["rea"]), str(saved_runs["rs"]),
                     "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "two-sided Mann-Whitney U test" in text and "compares each later row" in text
    assert "synthetic NAS-Bench-201 (made-up numbers), CIFAR-10: CIFAR-10 test" in text
    rea = json.loads((saved_runs["rea"] / "summary.json").read_text())
    row = next(line for line in text.splitlines() if line.startswith("| rea |"))
    assert f"(`{rea['reward_metric']}`)" in row and f"| {rea['seed']} | 12 × 10 |" in row
    assert "95% CI of each row: percentile bootstrap" in text
    table = {r["method"]: r for r in _csv_rows(out / "comparison.csv")}
    assert table["rea"]["reward_metric"] == rea["reward_metric"]


def test_figures_embed_truetype_fonts_and_titles_in_words(saved_runs, tmp_path):
    out = tmp_path / "fonts"
    assert cli.main(["report", str(saved_runs["rea"]), str(saved_runs["rs"]),
                     "--out", str(out)]) == 0
    for name in runs_report.FIGURES:
        pdf = (out / f"{name}.pdf").read_bytes()
        assert b"/Type3" not in pdf and b"/FontFile2" in pdf  # Type 42: TrueType embedded
        svg = (out / f"{name}.svg").read_text()
        assert "synthetic NAS-Bench-201 (made-up numbers)," in svg  # wrapped to the panel
        assert "synthetic-nb201 / cifar10" not in svg


def test_quantile_band_covers_the_true_quantile_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    n, reps = 50, 2000
    q = np.arange(1, n + 1) / (n + 1)
    truth = -np.log1p(-q)  # quantiles of Exp(1)
    covered = np.zeros(n)
    for _ in range(reps):
        lo, hi = runs_report.quantile_band(rng.exponential(size=n))
        covered += (lo <= truth) & (truth <= hi)
    rate = covered / reps
    assert rate[5:-5].min() > 0.92 and rate.mean() > 0.93  # >= 95% up to discreteness
    lo, hi = runs_report.quantile_band(np.arange(10.0))
    assert (lo <= np.arange(10.0)).all() and (np.arange(10.0) <= hi).all()
