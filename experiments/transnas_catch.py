"""CATCH's NB201 study (paper §4.2) on TransNAS-Bench-101 micro, leave-one-task-out: each
of the seven tasks is the target once, meta-training on the other six tasks' validation
metric. Autoencoder's Kendall tau with the other tasks is 0.02-0.34 (paper 002, Fig. 1),
so copying the pool's favourite cell cannot win there: adaptation has to show.

    CATCHJAX_DATA=../shared/data python experiments/transnas_catch.py --out runs/transnas_catch

Same outputs and options as ``experiments/nb201_catch.py`` (which this calls); reward =
the task's validation metric, report = its test metric (room_layout: neg_loss).
"""

from __future__ import annotations

from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments import nb201_catch  # noqa: E402

TASKS = ("class_scene", "class_object", "jigsaw", "room_layout", "segmentsemantic", "normal",
         "autoencoder")


def main(argv=None):
    argv = list(argv or [])
    defaults = {"--benchmark": ["transnas-micro"], "--datasets": list(TASKS),
                "--out": ["runs/transnas_catch"]}
    for flag, value in defaults.items():
        if flag not in argv:
            argv = [flag, *value, *argv]
    return nb201_catch.main(argv)


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
