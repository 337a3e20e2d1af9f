"""What a fresh Python process pays before catchjax computes anything: importing numpy,
ml_dtypes, jax and catchjax, each in its own new process (so nothing is already loaded),
CPU seconds (user + system) of the child, best and median of ``--repeats``.

Every CLI call, every worker process of a shared search (ask/tell, optuna) and every
subprocess of the test suite pays this. pyproject.toml excludes ml_dtypes 0.7.0 because
its import alone took 1.1-1.6 s here (0.15-0.25 s for 0.5.4 and 0.6.0); run this after a
new ml_dtypes or jax release to see whether the exclusion can go.

    python benchmarks/import_time.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import statistics
import subprocess
import sys

# each step imports what the one before did, plus one more layer
STEPS = [("numpy", "import numpy"),
         ("ml_dtypes", "import ml_dtypes"),
         ("jax", "import jax"),
         ("jax + a device", "import jax; jax.devices()"),
         ("catchjax (API)", "import catchjax, jax; jax.devices()"),
         ("catchjax ask/tell", "import catchjax.asktell.search, jax; jax.devices()")]


def child_cpu(code: str) -> float:
    """CPU seconds a new interpreter spends running ``code``."""
    before = os.times()
    subprocess.run([sys.executable, "-c", code], check=True)
    after = os.times()
    return (after.children_user - before.children_user) + \
        (after.children_system - before.children_system)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    versions = {p: md.version(p) for p in ("numpy", "ml_dtypes", "jax", "jaxlib")}
    print(", ".join(f"{p} {v}" for p, v in versions.items()))
    base = statistics.median(child_cpu("pass") for _ in range(args.repeats))
    print(f"{'interpreter alone':22s} median {base:5.2f} s CPU")
    for name, code in STEPS:
        times = sorted(child_cpu(code) for _ in range(args.repeats))
        print(f"{name:22s} median {statistics.median(times):5.2f} s CPU, best "
              f"{times[0]:5.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
