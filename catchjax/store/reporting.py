"""Writing what a sweep produced: a tidy results table, summary.json, a one-screen summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from catchjax import safe_io
from catchjax.errors import CatchjaxError
from catchjax.store import folder

RESULT_FILES = {"results.csv", "results.parquet", "summary.json", "metrics.csv", "meta-agent",
                "fronts.csv"}
# From this many (trial, step) rows on, results.csv is also written as results.parquet:
# 500 trials x 50 steps x 7 methods is ~175k CSV rows, slow to parse and ~10x larger.
PARQUET_MIN_ROWS = 100_000


def check_out_dir(out: Path, overwrite: bool) -> Path:
    """Refuse an output folder that a sweep may not write (checked before any compile):
    an existing non-empty one without ``overwrite``, and with it anything but a results
    folder catchjax wrote (see :mod:`catchjax.safe_io`)."""
    return safe_io.check_output_dir(out, overwrite, owned=RESULT_FILES, marker="summary.json",
                                    what="results")


# rows of the results table built and written at a time: writing 50 M rows needs the
# memory of this many, not of all (benchmarks/results_memory.py measures the peak)
WRITE_CHUNK_ROWS = 65_536


LARGE_OUTPUT_BYTES = 1 << 30  # a sweep that would write more says so before it runs

# summary.json's compile_source, said after the compile seconds (a load from JAX's
# persistent compilation cache is not a compile: catchjax.runs.batched.compile_source)
COMPILE_NOTES = {"loaded": " (loaded from the compilation cache)",
                 "reused": " (compiled earlier in this process)"}


def output_estimate(task, rows: int) -> tuple[float, float]:
    """Bytes of results.csv and results.parquet for ``rows`` (trial, step) rows of
    ``task``: per row, the two architecture strings plus ~45 bytes of names and integers
    and ~12 per float32 number in the CSV (264 bytes a row measured on NB201 with three
    report metrics); ~16 bytes in Parquet (measured: benchmarks/results_memory.py)."""
    arch = task.table.arch_str
    sample = arch[:: max(1, len(arch) // 1000)]
    per_row = (2 * float(np.mean([len(a) for a in sample])) + 45
               + 12 * (2 + len(task.spec.report_metrics)))
    return rows * per_row, rows * 16.0


def _trial_chunks(result):
    step = max(1, WRITE_CHUNK_ROWS // max(result.budget, 1))
    for start in range(0, result.trials, step):
        yield start, min(start + step, result.trials)


def results_rows(result):
    """One dict per (trial, step): the query made and the best-by-reward so far (the
    rows of :func:`results_columns`, as Python values; numbers as the shortest text that
    reads back to the same value of their own precision, so a float32 reward is
    ``82.26224``, not its float64 widening ``82.26224517822266``), built a chunk of trials
    at a time."""
    for start, stop in _trial_chunks(result):
        cols = results_columns(result, start, stop)
        names = list(cols)
        for values in zip(*((cols[k].astype(str) if cols[k].dtype.kind == "f" else cols[k])
                            .tolist() for k in names)):
            yield dict(zip(names, values))


def results_columns(result, start: int = 0, stop: int | None = None) -> dict:
    """The per-step results table of trials ``start:stop`` (default: all) as columns
    (numpy arrays, trial-major): for each (trial, step) the query made (row, arch, reward)
    and the best-by-reward so far (best_reward, best_row, best_arch, best_<report
    metric>…)."""
    spec = result.task.spec
    arch = np.asarray(result.task.table.arch_str, dtype=object)
    stop = result.trials if stop is None else stop
    n, b = stop - start, result.budget
    # slice before converting: each chunk costs its own rows, not the whole result's
    rows = np.asarray(result.rows)[start:stop]
    rewards = np.asarray(result.rewards)[start:stop]  # float32 from tables: kept, not widened
    best_step = np.asarray(result.best_step)[start:stop]
    best_row = np.take_along_axis(rows, best_step, axis=1)
    best_reward = np.take_along_axis(rewards, best_step, axis=1)
    cols = {
        "method": np.full(n * b, result.method, dtype=object),
        "benchmark": np.full(n * b, spec.benchmark, dtype=object),
        "task": np.full(n * b, spec.task, dtype=object),
        "trial": np.repeat(np.arange(start, stop, dtype=np.int64), b),
        "step": np.tile(np.arange(1, b + 1, dtype=np.int64), n),
        "row": rows.reshape(-1).astype(np.int64),
        "arch": arch[rows.reshape(-1)],
        "reward": rewards.reshape(-1),
        "best_reward": best_reward.reshape(-1),
        "best_row": best_row.reshape(-1).astype(np.int64),
        "best_arch": arch[best_row.reshape(-1)],
    }
    best_report = np.asarray(np.asarray(result.task.arrays.report)[best_row])
    for j, m in enumerate(spec.report_metrics):
        cols[f"best_{m}"] = best_report[:, :, j].reshape(-1)
    return cols


def write_parquet(result, path: Path) -> None:
    """results.csv's table as Parquet (pyarrow), numbers in their own precision (float32
    table values stay float32), text columns dictionary-encoded, written a chunk of trials
    at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for start, stop in _trial_chunks(result):
            cols = results_columns(result, start, stop)
            table = pa.table({k: (pa.array(v.tolist()).dictionary_encode() if v.dtype == object
                                  else pa.array(v)) for k, v in cols.items()})
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def write_metrics(result, path: Path) -> None:
    """One row per (trial, search epoch) with the method's per-epoch metrics."""
    names = sorted(result.metrics)
    values = [np.asarray(result.metrics[n]) for n in names]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "trial", "epoch", *names])
        for i in range(result.trials):
            for e in range(values[0].shape[1]):
                writer.writerow([result.method, i, e + 1, *(float(v[i, e]) for v in values)])


def write_fronts(result, path: Path) -> None:
    """A multi-objective sweep's found fronts: per trial, the evaluated networks no other
    network of that trial dominates in the reported columns (the first step each was
    found at), and whether each is on the table's true front."""
    from catchjax.benchmarks import pareto

    spec, task = result.task.spec, result.task
    directions = [o.direction for o in spec.objectives]
    report = np.asarray(task.arrays.report)  # float32: written as their shortest text
    on_front = np.zeros(len(report), bool)
    on_front[task.front] = True
    arch = task.table.arch_str
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trial", "step", "row", "arch", *spec.report_metrics, "on_true_front"])
        for t in range(result.trials):
            rows, first = np.unique(result.rows[t], return_index=True)
            keep = pareto.nondominated(pareto.as_minimization(report[rows].astype(np.float64),
                                                              directions))
            for r, step in sorted(zip(rows[keep], first[keep]), key=lambda x: x[1]):
                w.writerow([t, int(step) + 1, int(r), arch[r],
                            *(str(v) for v in report[r]), bool(on_front[r])])


def has_pyarrow() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def check_parquet(parquet: bool | None) -> None:
    """``parquet=True`` needs pyarrow (the ``parquet`` extra): said before anything runs."""
    if parquet and not has_pyarrow():
        raise CatchjaxError("results.parquet needs pyarrow, which is not installed: pip "
                            "install 'catchjax[parquet]' (or leave out --parquet)")


def write_results(result, out, overwrite: bool = False, parquet: bool | None = None) -> Path:
    """Write ``results.csv``, ``summary.json`` and (for methods with per-epoch metrics)
    ``metrics.csv`` into ``out``, plus ``results.parquet`` when ``parquet`` (None: when
    the table has at least :data:`PARQUET_MIN_ROWS` rows and pyarrow is installed). A
    temporary folder is filled first, then moved into place, so a failure never leaves
    half a result and old results are replaced only by complete new ones."""
    check_parquet(parquet)
    if parquet is None:
        parquet = result.trials * result.budget >= PARQUET_MIN_ROWS and has_pyarrow()

    def fill(tmp: Path):
        with open(tmp / "results.csv", "w", newline="") as f:
            rows = results_rows(result)
            first = next(rows)
            writer = csv.DictWriter(f, fieldnames=list(first))
            writer.writeheader()
            writer.writerow(first)
            writer.writerows(rows)
        if parquet:
            write_parquet(result, tmp / "results.parquet")
        if result.metrics:
            write_metrics(result, tmp / "metrics.csv")
        if result.task.spec.objectives:
            write_fronts(result, tmp / "fronts.csv")
        with open(tmp / "summary.json", "w") as f:
            f.write(strict_json(sealed(json.loads(strict_json(result.summary())))))

    return safe_io.write_dir(out, fill, overwrite=overwrite, owned=RESULT_FILES,
                             marker="summary.json", what="results")


DIGEST = "summary_sha256"


def summary_digest(summary: dict) -> str:
    """SHA-256 of a summary's content (keys sorted), without its own digest field: a
    summary edited after it was written no longer matches (``catchjax report`` says so)."""
    return folder.manifest_digest(summary, field=DIGEST)


def sealed(summary: dict) -> dict:
    return {**summary, DIGEST: summary_digest(summary)}


def strict_json(obj) -> str:
    """JSON that any parser reads: NaN and infinities become null (RFC 8259 has neither)."""
    return json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False)


def _finite(x):
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, tuple):
        return list(x)
    return str(x)


def format_summary(s: dict) -> str:
    lo, hi = s["ci95"]
    lines = [
        f"{s['method']} on {s['benchmark']}/{s['task']}: {s['trials']} trials x {s['budget']} "
        f"evaluations, seed {s['seed']}",
        f"  reward: {s['reward_metric']}   report: {s['report_metric']}",
        f"  final {s['report_metric']}: {s['mean']:.3f} +- {s['std']:.3f} "
        f"(95% CI {lo:.3f} .. {hi:.3f})",
        f"  found the table's best ({s['table_best']:.3f}) in {s['best_hits']} of {s['trials']} "
        f"trials",
    ]
    if str(s["benchmark"]).startswith("synthetic-"):  # numbers that read like real ones
        lines.insert(1, f"  {s['benchmark']} is a synthetic table: seeded made-up numbers "
                        f"shaped like the real benchmark's, not its results")
    if s.get("agents", 1) > 1:
        means = ", ".join(f"{m:.3f}" for m in s["agent_means"])
        lines.append(f"  across {s['agents']} trained agents (trials shared round-robin): "
                     f"spread +- {s['agent_spread']:.3f} (std of their means {means})")
    for m, v in s["report_means"].items():
        if m != s["report_metric"]:
            lines.append(f"  mean {m}: {v:.3f}")
    if "pareto" in s:  # several objectives: how much of the true front the trials found
        p = s["pareto"]
        names = " vs ".join(f"{o['report'] or o['column']} ({o['direction']})"
                            for o in p["objectives"])
        lo, hi = p["hv_ratio"]["ci95"]
        lines.append(f"  Pareto front of {names}: {p['front_size']} networks")
        lines.append(f"  per trial: hypervolume {p['hv_ratio']['mean']:.3f} of the true "
                     f"front's (95% CI {lo:.3f} .. {hi:.3f}), "
                     f"{p['fraction_found']['mean']:.1%} of its networks found, "
                     f"additive epsilon {p['epsilon']['mean']:.3f}")
        u = p["union"]
        lines.append(f"  all trials together: hypervolume {u['hv_ratio']:.3f}, "
                     f"{u['fraction_found']:.0%} of the front, epsilon {u['epsilon']:.3f} "
                     f"(units: the true front spans 0..1 in each objective)")
    tps = s["trials_per_second"]
    source = COMPILE_NOTES.get(str(s.get("compile_source")), "")
    lines.append(
        f"  compile {s['compile_seconds']:.2f} s{source}, run {s['wall_seconds']:.3f} s"
        + (f" ({tps:,.0f} trials/s)" if tps else "")
        + f" on {s['device']}"
    )
    return "\n".join(lines)
