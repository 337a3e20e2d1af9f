"""A transfer study's results: the stage files each training run leaves
(``stages/*.npz``), and what is computed from them — the zero-shot / fine-tune / retrain
cells (mean ± std, bootstrap CI, spread across seeds), training curves and all-to-all
crossovers — written as ``cells.csv``, ``curves.csv``, ``crossover.csv`` and figures.
:mod:`catchjax.studies.transfer` runs the study; ``spec`` below is its ``StudySpec``.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import jax
import numpy as np

from catchjax import safe_io
from catchjax.errors import CatchjaxError

REGIMES = ("zero-shot", "fine-tune", "retrain")


def stage_file(out: Path, stage: str) -> Path:
    return out / "stages" / f"{stage}.npz"


def save_stage(out: Path, stage: str, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    safe_io.atomic_write_bytes(stage_file(out, stage), buf.getvalue())


def load_stage(out, stage: str) -> dict | None:
    """A finished stage's arrays (None if it has not run): ``scratch__SOURCE`` or
    ``SOURCE__to__TARGET``; ``steps`` [P+1], ``test`` [seeds, P+1, episodes] (the target's
    test metric where each greedy episode ended), ``distinct`` [seeds] (architectures the
    run queried), ``seconds``, ``compile_seconds``, ``seeds``."""
    f = stage_file(Path(out), stage)
    if not f.exists():
        return None
    import zipfile

    try:
        with np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise CatchjaxError(f"{f} is damaged or cut short ({type(exc).__name__}: {exc}); "
                            f"delete that file and run the same command again to recompute "
                            f"only that stage") from None
    missing = {"steps", "test", "seconds"} - set(arrays)
    if missing:
        raise CatchjaxError(f"{f} lacks {', '.join(sorted(missing))}: damaged or from another "
                            f"catchjax; delete it and run the same command again to recompute "
                            f"only that stage")
    return arrays


def curve_arrays(info, seconds, compile_seconds, seeds):
    return {"steps": np.asarray(info["steps"])[0], "test": np.asarray(info["test_episodes"]),
            "distinct": np.asarray(info["distinct"]), "seconds": np.float64(seconds),
            "compile_seconds": np.float64(compile_seconds), "seeds": np.asarray(seeds)}


# -- analysis ---------------------------------------------------------------------------


def smooth(curve: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what there is so far)."""
    c = np.cumsum(np.asarray(curve, np.float64), axis=-1)
    n = curve.shape[-1]
    idx = np.arange(n)
    lo = np.maximum(idx - window, -1)
    upper = c[..., idx]
    lower = np.where(lo >= 0, c[..., np.maximum(lo, 0)], 0.0)
    return (upper - lower) / (idx - lo)


def crossover_steps(transferred: np.ndarray, scratch: np.ndarray, steps: np.ndarray,
                    window: int, exclude_self: bool = False) -> np.ndarray:
    """All-to-all crossover: for run i of ``transferred`` [N, P] and run j of ``scratch``
    [M, P] (mean test metric per curve point), the first step at which smoothed run i
    reaches smoothed run j's final value; NaN where it never does. Returns [N, M] (pairs
    i == j dropped, as NaN, with ``exclude_self``)."""
    a, b = smooth(transferred, window), smooth(scratch, window)
    ref = b[:, -1]
    reached = a[:, None, :] >= ref[None, :, None]  # [N, M, P]
    first = np.argmax(reached, axis=-1)
    out = np.where(reached.any(axis=-1), steps[first].astype(np.float64), np.nan)
    if exclude_self:
        n = min(out.shape)
        out[np.arange(n), np.arange(n)] = np.nan
    return out


def _cell(values: np.ndarray, seed: int = 0) -> dict:
    """mean ± std and bootstrap 95% CI over episodes and seeds, plus the spread across
    seeds (std of the per-seed means): values [N seeds, E episodes]."""
    from catchjax.runs.analysis import bootstrap_ci

    flat = values.reshape(-1)
    lo, hi = bootstrap_ci(flat, seed=seed)
    per_seed = values.mean(axis=1)
    return {"mean": float(flat.mean()), "std": float(flat.std()), "ci_low": lo, "ci_high": hi,
            "seed_std": float(per_seed.std()), "n_seeds": int(values.shape[0]),
            "n_episodes": int(values.shape[1])}


def analyze(out: Path, spec, config, ft_point: int, task_objs=None) -> dict:
    """Cells of the three matrices, curves and crossovers from the stage files (each
    read once)."""
    from catchjax.runs.analysis import bootstrap_ci

    runs = {(s, s): load_stage(out, f"scratch__{s}") for s in spec.tasks}
    runs.update({(s, t): load_stage(out, f"{s}__to__{t}")
                 for s in spec.tasks for t in spec.tasks if s != t})
    cells, curves, cross = [], [], []
    for (s, t), st in runs.items():
        if s == t:  # the diagonal: the scratch run, in the regimes that train on the target
            for regime in ("fine-tune", "retrain"):
                cells.append({"regime": regime, "source": s, "target": s, "kind": "scratch",
                              **_cell(st["test"][:, -1])})
        else:
            for regime, p in (("zero-shot", 0), ("fine-tune", ft_point), ("retrain", -1)):
                cells.append({"regime": regime, "source": s, "target": t, "kind": "transfer",
                              **_cell(st["test"][:, p])})
    for (s, t), st in runs.items():
        # seconds per step of one agent in this stage's vmapped run
        per_step = float(st["seconds"]) / len(st["seeds"]) / max(float(st["steps"][-1]), 1)
        mean_curve = st["test"].mean(axis=-1)  # [N, P]
        for i, sd in enumerate(st["seeds"]):
            for j, step in enumerate(st["steps"]):
                curves.append({"source": s, "target": t, "seed": int(sd), "step": int(step),
                               "test": float(mean_curve[i, j])})
        ref = runs[(t, t)]["test"].mean(axis=-1)
        pairs = crossover_steps(mean_curve, ref, st["steps"], spec.smoothing,
                                exclude_self=(s == t))
        finite = pairs[np.isfinite(pairs)]
        lo, hi = bootstrap_ci(finite) if finite.size else (np.nan, np.nan)
        mean = float(finite.mean()) if finite.size else float("nan")
        cross.append({"source": s, "target": t, "kind": "scratch" if s == t else "transfer",
                      "mean_steps": mean, "ci_low_steps": lo, "ci_high_steps": hi,
                      "mean_seconds": mean * per_step,
                      "ci_low_seconds": lo * per_step, "ci_high_seconds": hi * per_step,
                      "pairs_reached": int(finite.size),
                      "pairs": int(pairs.size - (min(pairs.shape) if s == t else 0))})
    first = runs[(spec.tasks[0], spec.tasks[0])]
    return {"cells": cells, "curves": curves, "crossover": cross,
            "fine_tune_step": int(first["steps"][ft_point]),
            "trained_steps": int(first["steps"][-1])}


def _csv(rows: list[dict]) -> bytes:
    if not rows:
        return b""
    cols = list(rows[0])
    lines = [",".join(cols)]
    for r in rows:
        lines.append(",".join(f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c])
                              for c in cols))
    return ("\n".join(lines) + "\n").encode()


def write_results(out: Path, result: dict, spec, config) -> None:
    for name in ("cells", "curves", "crossover"):
        safe_io.atomic_write_bytes(out / f"{name}.csv", _csv(result[name]))
    summary = {"spec": dataclasses.asdict(spec), "config": dataclasses.asdict(config),
               "fine_tune_step": result["fine_tune_step"],
               "trained_steps": result["trained_steps"],
               "device": jax.devices()[0].device_kind}
    safe_io.atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    from catchjax.studies import transfer_plots

    transfer_plots.plot_all(out, result, spec)


def format_matrix(result: dict, spec, regime: str) -> str:
    """One regime's source x target matrix as text: mean±std [CI]."""
    cells = {(c["source"], c["target"]): c for c in result["cells"] if c["regime"] == regime}
    w = 30
    lines = [f"{regime}: rows = source, columns = target",
             " " * 16 + "".join(f"{t[:w]:>{w}s}" for t in spec.tasks)]
    for s in spec.tasks:
        row = f"{s[:15]:16s}"
        for t in spec.tasks:
            c = cells.get((s, t))
            txt = ("N/A" if c is None else
                   f"{c['mean']:.3f}±{c['std']:.3f} [{c['ci_low']:.3f},{c['ci_high']:.3f}]")
            row += f"{txt:>{w}s}"
        lines.append(row)
    return "\n".join(lines)
