"""What catchjax's compiler options (catchjax/runs/numerics.py) cost and what they buy, on CPU.

Each configuration runs in its own process: ``with`` = catchjax as shipped (YNNPACK's
fusions off, sweeps >= 2 trials per device), ``without`` = the same code compiling with
XLA's defaults. The timing processes alternate between the two, --rounds times, and
each figure is the best over all of them of --repeats calls after a compiling one (one
order would favour whichever runs while the machine is quieter): a CATCH sweep (--trials
x 50, default settings), a REA sweep of the same shape, a BANANAS sweep of
--bananas-trials, and a CATCH meta-training of --agents agents (``train_many``, default
settings: 25 meta-epochs of 20 networks). Then how many of the
CATCH sweep's trials come out bit-identical when the same sweep runs as calls of --chunk
trials, as calls of 2, and on two CPU devices instead of one (a child process with
``--xla_force_host_platform_device_count=2``). Prints a table and the ratios, and writes
them as JSON.

    python benchmarks/numerics.py --out benchmarks/results/numerics_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np


def _quiet_options():
    """Compile with XLA's defaults (the ``without`` configuration)."""
    from catchjax.runs import numerics

    numerics.compiler_options = lambda platform=None: None


def _best(fn, repeats):
    fn()  # compiles (or loads from the cache)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def child(mode: str, args) -> dict:
    if mode == "without":
        _quiet_options()
    import jax

    import catchjax
    from catchjax.runs import agent

    task = catchjax.make_task("synthetic-nb201", "cifar10")

    def rows(method, trials, **kw):
        return np.asarray(catchjax.sweep(method, task, trials=trials, budget=50, seed=0,
                                         **kw).rows)

    out = {"mode": mode, "device": jax.devices()[0].device_kind,
           "devices": jax.device_count()}
    if args.timing:
        out["seconds"] = {
            f"catch-sfs sweep {args.trials}x50": _best(lambda: rows("catch-sfs", args.trials),
                                                       args.repeats),
            f"rea sweep {args.trials}x50": _best(lambda: rows("rea", args.trials), args.repeats),
            f"bananas sweep {args.bananas_trials}x50": _best(
                lambda: rows("bananas", args.bananas_trials), args.repeats),
            f"catch-meta train_many {args.agents} agents": _best(
                lambda: jax.block_until_ready([a.agent for a in agent.train_many(
                    "catch-meta", task, seeds=range(args.agents))]), args.repeats),
        }
    if not args.invariance:
        return out
    whole = rows("catch-sfs", args.trials)
    np.save(args.scratch + f"-{mode}-{jax.device_count()}.npy", whole)
    if jax.device_count() == 1:
        out["equal trials"] = {
            f"calls of {args.chunk}": int(sum(np.array_equal(a, b) for a, b in zip(
                whole, rows("catch-sfs", args.trials, chunk_size=args.chunk)))),
            "calls of 2": int(sum(np.array_equal(a, b) for a, b in zip(
                whole, rows("catch-sfs", args.trials, chunk_size=2)))),
        }
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=500)
    p.add_argument("--bananas-trials", type=int, default=100)
    p.add_argument("--agents", type=int, default=5)
    p.add_argument("--chunk", type=int, default=63)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default=None, help="write the figures here as JSON")
    p.add_argument("--child", choices=("with", "without"), help=argparse.SUPPRESS)
    p.add_argument("--timing", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--invariance", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--scratch", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args)))
        return 0

    import tempfile

    scratch = os.path.join(tempfile.mkdtemp(prefix="catchjax-numerics-"), "rows")
    base = [sys.executable, __file__, "--scratch", scratch, "--trials", str(args.trials),
            "--bananas-trials", str(args.bananas_trials), "--agents", str(args.agents),
            "--chunk", str(args.chunk), "--repeats", str(args.repeats)]

    def run(mode, devices, *flags):
        env = dict(os.environ)
        if devices == 2:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                                " --xla_force_host_platform_device_count=2").strip()
        done = subprocess.run(base + ["--child", mode, *flags], env=env, capture_output=True,
                              text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    results = {}
    for _ in range(args.rounds):
        for mode in ("with", "without"):
            out = run(mode, 1, "--timing")
            best = results.setdefault(mode, {**out, "seconds": {}})["seconds"]
            for name, sec in out["seconds"].items():
                best[name] = min(best.get(name, float("inf")), sec)
    for mode in ("with", "without"):
        results[mode]["equal trials"] = run(mode, 1, "--invariance")["equal trials"]
        run(mode, 2, "--invariance")
        one = np.load(f"{scratch}-{mode}-1.npy")
        two = np.load(f"{scratch}-{mode}-2.npy")
        results[mode]["equal trials"]["2 devices"] = int(
            sum(np.array_equal(a, b) for a, b in zip(one, two)))

    w, wo = results["with"], results["without"]
    print(f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), "
          f"best of {args.rounds} x {args.repeats} runs after compiling, alternating")
    print(f"{'':40s} {'with':>9s} {'without':>9s} {'ratio':>7s}")
    for name, sec in w["seconds"].items():
        print(f"{name:40s} {sec:8.2f}s {wo['seconds'][name]:8.2f}s "
              f"{sec / wo['seconds'][name]:7.2f}")
    n = args.trials
    for name in w["equal trials"]:
        print(f"CATCH trials equal to one call of {n}, {name:16s}: with {w['equal trials'][name]}"
              f"/{n}, without {wo['equal trials'][name]}/{n}")
    if args.out:
        record = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                  "rounds": args.rounds, "repeats": args.repeats, "with": w, "without": wo}
        with open(args.out, "w") as f:
            json.dump(record, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
