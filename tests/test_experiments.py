"""The paper-reproduction script runs end to end on a tiny synthetic setting."""

import csv

from experiments import nb201_catch


def test_nb201_catch_script_writes_tables_and_plots(tmp_path):
    out = tmp_path / "exp"
    rc = nb201_catch.main([
        "--benchmark", "synthetic-nb201", "--datasets", "cifar100", "--methods", "catch-meta",
        "random", "--trials", "6", "--budget", "10", "--set", "candidates=8", "--set",
        "hidden=16", "--set", "meta_epochs=2", "--set", "meta_budget=8", "--out", str(out),
        "--no-progress",
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
