"""Latency measured on the current device, and the latency-aware reward (CATCH §4.3).

LAT(m) = the median wall time of the compiled forward pass of the built model for one
input shape, after warm-up runs, cached per (architecture, input shape, width scale,
device). R = P * (LAT / T)^w with w = -0.05 (MnasNet's objective, the paper's w): see
:func:`catchjax.benchmarks.tasks.latency_aware_reward`.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp

from catchjax.benchmarks.tasks import latency_aware_reward
from catchjax.residual.model import build
from catchjax.residual.space import ResNetSpec, spec_str

_CACHE: dict[tuple, float] = {}

__all__ = ["latency_aware_reward", "measure_latency"]


def measure_latency(spec: ResNetSpec, input_shape=(8, 8, 1), *, batch: int = 1,
                    n_classes: int = 10, width_scale: float = 1.0, warmup: int = 3,
                    repeats: int = 15, built=None) -> float:
    """Median seconds of one compiled forward pass (``batch`` inputs of ``input_shape``).

    Compilation and ``warmup`` runs are excluded; each timed run waits for the result
    (``block_until_ready``). Cached per architecture, shape, width scale and device.
    ``built``: the (model, params) already built for it (the weights do not change the
    time of a dense forward pass).
    """
    device = jax.devices()[0]
    key = (spec_str(spec), tuple(input_shape), batch, n_classes, width_scale,
           device.platform, device.device_kind)
    if key in _CACHE:
        return _CACHE[key]
    model, params = built or build(spec, n_classes, input_shape, width_scale=width_scale)
    forward = jax.jit(model.apply)
    x = jnp.zeros((batch, *input_shape))
    for _ in range(warmup):
        jax.block_until_ready(forward(params, x))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(forward(params, x))
        times.append(time.perf_counter() - t)
    _CACHE[key] = statistics.median(times)
    return _CACHE[key]
