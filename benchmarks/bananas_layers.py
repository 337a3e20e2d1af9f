"""BANANAS' small layers on this CPU: XLA's batched matrix product against a product
broadcast and summed, at the shapes a BANANAS sweep trains.

A sweep fits trials x members MLPs at once (500 x 5 in a 500-trial call); each hidden
layer is a [rows, 20] x [20, 20] product per MLP, and its training step also needs the
input gradient (dy @ W^T) and the weight gradient (h^T @ dy). XLA's CPU runtime runs a
batched product as one small matrix kernel per MLP. The alternative computes each output
as a sum over the inputs of a broadcast product, one fused loop over every MLP: with the
MLP axis first, as vmap lays it out, or last, where the vector units run across MLPs (a
layout the search would have to arrange). Prints microseconds per operation for each,
then one whole ensemble fit (``bananas.fit_ensemble``, 100 trials, 200 Adam steps) per
row count for scale. docs/performance.md has what was measured and what it decided.

    python benchmarks/bananas_layers.py [--mlps 2500] [--rows 16 32 48] [--repeats 100]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from catchjax.methods.baselines import bananas
from catchjax.runs import numerics
from catchjax.store import provenance


def _per_call(fn, *args, repeats: int) -> float:
    """Microseconds per call of ``fn`` compiled as catchjax compiles (best of 3 batches)."""
    run = numerics.jit(fn).lower(*args).compile()
    jax.block_until_ready(run(*args))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            out = run(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best * 1e6


# each product three ways; h [B, n, k], W [B, k, j], dy [B, n, j] (B = MLPs, first)
FORMS = {
    "forward h @ W": (
        lambda h, w, dy: h @ w,
        lambda h, w, dy: jnp.sum(h[..., :, :, None] * w[:, None], axis=-2),
        # MLP axis last: h [n, k, B], W [k, j, B]
        lambda h, w, dy: jnp.sum(h[:, :, None] * w[None], axis=1)),
    "input grad dy @ W^T": (
        lambda h, w, dy: dy @ jnp.swapaxes(w, -1, -2),
        lambda h, w, dy: jnp.sum(dy[..., :, None, :] * w[:, None], axis=-1),
        lambda h, w, dy: jnp.sum(dy[:, None] * w[None], axis=2)),
    "weight grad h^T @ dy": (
        lambda h, w, dy: jnp.swapaxes(h, -1, -2) @ dy,
        lambda h, w, dy: jnp.sum(h[..., :, :, None] * dy[..., :, None, :], axis=-3),
        lambda h, w, dy: jnp.sum(h[:, :, None] * dy[:, None], axis=0)),
}


def _fit_seconds(rows: int, trials: int = 100) -> float:
    config = bananas.BananasConfig(encoding="path")
    keys = jax.random.split(jax.random.key(0), trials)
    actions = jax.random.randint(jax.random.key(1), (trials, rows, 6), 0, 5)
    x = jax.vmap(lambda a: bananas.encode(config, a, 5))(actions)
    y = jax.random.normal(jax.random.key(2), (trials, rows))
    mask = jnp.ones((trials, rows))
    fit = jax.vmap(lambda k, x, y, m: bananas.fit_ensemble(config, k, x, y, m))
    return _per_call(fit, keys, x, y, mask, repeats=1) / 1e6


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mlps", type=int, default=2500, help="MLPs at once (trials x members)")
    p.add_argument("--rows", type=int, nargs="+", default=[16, 32, 48])
    p.add_argument("--width", type=int, default=20)
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--no-fit", action="store_true", help="leave out the whole-fit timings")
    args = p.parse_args(argv)
    if args.mlps < 1 or args.width < 1 or args.repeats < 1 or min(args.rows) < 1:
        p.error("--mlps, --rows, --width and --repeats must be at least 1")

    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}, host CPU: "
          f"{provenance.describe_cpu(provenance.host_cpu())}; {args.mlps} MLPs, width "
          f"{args.width}; us per operation (per MLP in brackets)")
    print(f"{'rows':>4s}  {'operation':22s} {'batched dot':>16s} {'sum, MLPs first':>18s} "
          f"{'sum, MLPs last':>18s}")
    b, d = args.mlps, args.width
    for n in args.rows:
        k = jax.random.split(jax.random.key(n), 3)
        h, w = jax.random.normal(k[0], (b, n, d)), jax.random.normal(k[1], (b, d, d))
        dy = jax.random.normal(k[2], (b, n, d))
        last = [jnp.moveaxis(a, 0, -1) for a in (h, w, dy)]
        for name, (dot, first_sum, last_sum) in FORMS.items():
            want = dot(h, w, dy)  # the three forms compute the same product
            for got in (first_sum(h, w, dy), jnp.moveaxis(last_sum(*last), -1, 0)):
                if not jnp.allclose(got, want, rtol=1e-4, atol=1e-4):
                    raise AssertionError(f"{name}: the forms disagree")
            times = [_per_call(dot, h, w, dy, repeats=args.repeats),
                     _per_call(first_sum, h, w, dy, repeats=args.repeats),
                     _per_call(last_sum, *last, repeats=args.repeats)]
            cells = [f"{t:9.0f} ({t / b:4.2f})" for t in times]
            print(f"{n:4d}  {name:22s} {cells[0]:>16s} {cells[1]:>18s} {cells[2]:>18s}")
    if not args.no_fit:
        for n in args.rows:
            print(f"fit_ensemble, 100 trials x 5 members, {n} rows: {_fit_seconds(n):.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
