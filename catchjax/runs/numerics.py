"""One floating-point program per run, whatever the number of runs beside it.

A sweep vmaps its trials, so every array a trial touches gains a leading axis whose size
is the number of trials in the call (the chunk size, or the trials per device). On CPU,
XLA hands a reduction over more than about a thousand rows to YNNPACK, which sums in
another order than XLA's own loops; a vmapped reduction crosses that size when the batch
grows, so trial ``i`` of a 500-trial call and trial ``i`` of a 63-trial call summed the
same numbers in different orders. One ulp is enough for CATCH: its controller samples
from the perturbed logits, and 444 of 500 trials chose other networks (measured at the
default settings on synthetic NB201). With YNNPACK's fusions turned off for the programs
catchjax compiles, a trial computes the same bits whatever the chunk size; the other half
is :mod:`catchjax.runs.batched`'s rule of at least two trials per device in a sweep (XLA
compiles a batch of one without its batch axis, and then arranges Adam's arithmetic
differently). A different device count is covered by how the methods are written, not
by an option: XLA rewrites a division by a value shared across an axis into a
multiplication by its reciprocal only where it sees the sharing, which differed between
the one-device and the partitioned program, so catchjax's code multiplies by explicit
reciprocals (``catchjax.optimizers``, ``catchjax.ppo``, the DQN's attention). Not covered:
a search stepped without a batch axis (ask/tell; ``run_trial`` runs the sweep's program).
Cost and effect: ``benchmarks/numerics.py``.

Only CPU compiles get the option (it is a CPU flag; GPU and TPU compilers are left as
they are). If the installed jaxlib no longer knows the flag, compiles go on without it
and a warning says that results may depend on the batch size.

Speed, not bits: on CPU, JAX lowers each Threefry hash (every ``fold_in``, ``split`` and
draw of ``jax.random``) as a loop of five rounds, to compile faster; a vmapped search
hashes a few times per step, and each of those loops ran as its own sequence of tiny
kernels, a third of a local-search sweep. Importing this module lowers Threefry on CPU
as JAX lowers it on GPU and TPU, unrolled (JAX's own rule; integer arithmetic, so the
same bits: ``dev/trace_hashes.py`` unchanged, ``tests/test_numerics.py``). It holds for
the whole process. Cost and effect: ``docs/performance.md``.
"""

from __future__ import annotations

import functools
import warnings

import jax

from catchjax.store import provenance

__all__ = ["compiler_options", "jit"]

# an empty list of fusion types: no YNNPACK fusions (reductions, dots, elementwise)
_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


@functools.cache
def _cpu_options_supported() -> bool:
    try:
        jax.jit(lambda x: x + 1, compiler_options=_CPU_OPTIONS).lower(1.0).compile()
    except Exception as exc:  # noqa: BLE001 — any refusal means: compile without it
        warnings.warn(
            f"this jaxlib does not take the XLA option {next(iter(_CPU_OPTIONS))} ({exc}); "
            "catchjax compiles without it, so on CPU a trial's floating point may depend "
            "on how many trials share its call (chunk size, device count)", stacklevel=3)
        return False
    return True


def compiler_options(platform: str | None = None) -> dict | None:
    """The options catchjax compiles with on ``platform`` (default: JAX's default
    backend): YNNPACK's fusions off on CPU, nothing elsewhere."""
    platform = platform or jax.default_backend()
    if platform == "cpu" and _cpu_options_supported():
        return dict(_CPU_OPTIONS)
    return None


provenance.set_compiler_options(compiler_options)  # recorded in summaries and manifests


def _unroll_threefry_on_cpu() -> bool:
    """Lower ``jax.random``'s Threefry hash on CPU with JAX's unrolled rule (the one GPU
    and TPU use) instead of its rolled loop. Same bits; returns whether it took effect
    (a JAX without the rule keeps its own lowering, only slower)."""
    try:
        from jax._src.random.threefry2x32 import _threefry2x32_lowering_rule as unrolled
        from jax.extend.random import threefry2x32_p
        from jax.interpreters import mlir

        mlir.register_lowering(threefry2x32_p, unrolled, platform="cpu")
    except (ImportError, AttributeError):
        return False
    return True


UNROLLED_THREEFRY = _unroll_threefry_on_cpu()


def jit(fn, platform: str | None = None, **kwargs):
    """``jax.jit(fn, **kwargs)`` with :func:`compiler_options`."""
    return jax.jit(fn, compiler_options=compiler_options(platform), **kwargs)
