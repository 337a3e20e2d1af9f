"""Shared fixtures. Compiled sweeps are session-scoped so each compiles once."""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import shutil
import tempfile
from pathlib import Path

# The suite compiles far more than it computes: XLA's CPU backend without LLVM's
# optimization passes compiles about 30% faster (test_catch.py + test_catch_parts.py:
# 81 s -> 58 s on 2 cores) and computes the same things, a little slower. Set before JAX
# starts its backend; subprocesses inherit it. Equality across shapes and devices is still
# checked with full optimization by the tests whose subprocesses set their own XLA_FLAGS
# (test_distributed, the sharding test of test_baselines; test_dqn's, which compares
# within a tolerance, keeps this level).
#
# XLA's older (non-MLIR) fusion emitters compile the suite's programs in about half the
# time (backend compile summed over both workers: 442 s -> 201 s; suite wall 482 s ->
# 331 s on 2 cores). They do not keep CATCH's same-bits-whatever-the-chunk guarantee at
# its default sizes, so the tests of that guarantee compile with the emitters users get
# (the `users_compiler` fixture below); so do the subprocess tests that set XLA_FLAGS.
os.environ.setdefault("CATCHJAX_TEST_USERS_XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0",
     "--xla_cpu_use_fusion_emitters=false"]).strip()


import pytest

from catchjax.benchmarks import tables, tasks
from catchjax.runs import agent as agents
from catchjax.runs import sweeps

# Python's cycle collector runs a young-generation pass every 700 new container objects,
# and tracing JAX programs makes millions: test_catch_parts.py + test_transfer.py in one
# process ran 3,555-3,567 collections taking 7.4-8.0 s of ~115 s of CPU; with a threshold
# of 10,000, 213 taking 2.6 s, and the same peak memory (1.9 GB; 2-core AMD EPYC,
# 2026-12-07). Cycles are still collected, only in larger batches. The suite's processes
# only: catchjax does not change a user's collector.
gc.set_threshold(10_000, 10, 10)

# The CLI turns JAX's persistent compilation cache on; tests must not write into the
# user's cache folder (test_cli checks that cache in a subprocess of its own). The whole
# session -- both xdist workers and every CLI subprocess -- shares one fresh folder instead:
# the suite compiles the same small programs in many processes (8 ask/tell workers, CLI
# calls), and a program compiled once loads in the others. The controller makes it before
# the workers start (they inherit the variable) and removes it at exit. Where the variable
# is set already (.ci/run sets it to a folder kept between CI runs), that folder is used.
# The cache keeps every compilation, not only those over the 0.5 s a user's cache keeps: the
# suite's programs compile with the unoptimized backend above, nearly all of them in under
# 0.5 s, and loading them is still faster (test_catch_parts.py in one process, cache filled
# by an earlier run, 2-core AMD EPYC: CPU 41-50 s with the 0.5 s threshold, 35-36 s with 0;
# backend compile 13-20 s -> 8 s; tracing and lowering, ~20 s, no cache saves).
os.environ.setdefault("CATCHJAX_COMPILE_CACHE_MIN_SECONDS", "0")
if "PYTEST_XDIST_WORKER" not in os.environ and "CATCHJAX_COMPILE_CACHE" not in os.environ:
    _SESSION_CACHE = tempfile.mkdtemp(prefix="catchjax-test-compile-cache-")
    os.environ["CATCHJAX_COMPILE_CACHE"] = _SESSION_CACHE
    atexit.register(shutil.rmtree, _SESSION_CACHE, ignore_errors=True)
# ... from each test process's first compile on: the Python API turns the cache on before
# its first sweep or training, but tests call jitted functions directly long before that
# (test_catch_parts.py: 282 of its programs compiled before, none of them cached).
from catchjax.runs import compile_cache  # noqa: E402

compile_cache.use_default()

HERE = Path(__file__).resolve().parent
# CI sets CATCHJAX_DATA=../shared/data; a developer checkout has ../shared beside it too.
_CANDIDATES = [os.environ.get("CATCHJAX_DATA"), str(HERE.parent.parent / "shared" / "data")]


def real_data_dir() -> Path | None:
    for c in _CANDIDATES:
        if c and (Path(c) / "nb201.npz").exists():
            return Path(c)
    return None


requires_real_data = pytest.mark.skipif(
    real_data_dir() is None,
    reason="real tables not found: set CATCHJAX_DATA to a folder with nb201.npz, "
    "transnas101_micro.npz and transnas101_macro.npz (e.g. ../shared/data)",
)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = real_data_dir()
    if d is None:
        pytest.skip("real tables not found (set CATCHJAX_DATA)")
    return d


@pytest.fixture(scope="session")
def syn_nb201():
    return tasks.make_task("synthetic-nb201", "cifar10")


@pytest.fixture(scope="session")
def syn_macro():
    return tasks.make_task("synthetic-transnas-macro", "class_scene")


@pytest.fixture(scope="session")
def real_nb201(data_dir):
    return tasks.make_task("nb201", "cifar10", table=tables.load_table("nb201", data_dir))


def users_xla_flags() -> str:
    """XLA_FLAGS as they were before the suite added its own (recorded above, inherited by
    subprocesses): for a subprocess that must compile as a user's does."""
    return os.environ["CATCHJAX_TEST_USERS_XLA_FLAGS"]


@pytest.fixture(scope="session")
def users_compiler():
    """A context manager: what catchjax compiles inside it uses XLA's default fusion
    emitters, as a user's compiles do (the suite turns them off to compile faster; with
    them off, CATCH at its default sizes does depend on the chunk size)."""
    from catchjax.runs import numerics

    @contextlib.contextmanager
    def use():
        suite = numerics._CPU_OPTIONS
        numerics._CPU_OPTIONS = {**suite, "xla_cpu_use_fusion_emitters": True}
        try:
            yield
        finally:
            numerics._CPU_OPTIONS = suite

    return use


@pytest.fixture
def no_compile(monkeypatch):
    """Fail the test if anything is compiled or trained: errors must come first."""

    def refuse(*a, **k):
        raise AssertionError("compiled before the bad input was refused")

    monkeypatch.setattr(sweeps, "_compiled", refuse)
    monkeypatch.setattr(agents, "train", refuse)


# Heaviest test files first: the two xdist workers take whole files in this order
# (pyproject's --no-loadscope-reorder; xdist's default hands files out by their number of
# tests, which left one worker running the last long files alone for a minute), so
# starting with the long ones keeps one worker from finishing a long file alone at the
# end. Seconds per file, setup included, from one run of the suite on the 2-core AMD EPYC
# CI machine, 2026-12-07 (sixteenth session). Order inside a file and which tests run are
# unchanged; a file not listed goes last.
FILE_SECONDS = {"test_transfer.py": 75, "test_context_family.py": 67, "test_catch.py": 64,
                "test_baselines.py": 63, "test_dqn.py": 60, "test_experiments.py": 57,
                "test_ask_tell.py": 56, "test_distributed.py": 49, "test_optuna.py": 49,
                "test_ask_tell_workers.py": 47, "test_batched.py": 37,
                "test_several_agents.py": 34, "test_cli.py": 31, "test_catch_parts.py": 31,
                "test_catch_meta.py": 24, "test_agent.py": 23, "test_report.py": 22,
                "test_objectives.py": 21, "test_bananas.py": 20, "test_meta_ask_tell.py": 20,
                "test_categorical.py": 16, "test_data_get.py": 14, "test_networks.py": 9,
                "test_local_search.py": 8, "test_notebook.py": 4, "test_methods.py": 4,
                "test_layout.py": 3, "test_replay.py": 3, "test_analysis.py": 3,
                "test_tables.py": 2, "test_provenance.py": 2, "test_stepping.py": 2,
                "test_optimizers.py": 2}


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: -FILE_SECONDS.get(item.path.name, 0))  # stable sort
