"""catchjax.store.reporting: results.csv, summary.json and the printed summary."""

import json

import numpy as np

from catchjax.benchmarks import tables, tasks
from catchjax.runs import sweeps
from catchjax.store import reporting


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
