"""Throughput of the edit-based DQN's Anakin loop against the same agent stepped one
environment at a time.

Anakin: ``--envs`` vectorized environments act, then one learner update on a batch of
``--batch``, all inside one compiled ``lax.scan`` (``catchjax.methods.dqn.learner.train``; the
paper's network: width 256, 2 layers, 4 heads). Reference: the same agent's compiled
single-environment step called from a Python loop, one environment step at a time, with
the same compiled learner update every ``--envs`` steps (the same replay ratio), the way
an actor/learner written step by step runs. Also times learner updates alone. Prints
environment steps/s, learner updates/s, the ratio, and the time 10^7 steps would take.

    python benchmarks/dqn_throughput.py [--benchmark synthetic-transnas-micro] [--steps 65536]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax

from catchjax import make_task
from catchjax.methods.dqn import learner


def timed(fn, *args):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default="synthetic-transnas-micro")
    p.add_argument("--task", default="class_object")
    p.add_argument("--steps", type=int, default=65_536, help="environment steps, Anakin run")
    p.add_argument("--ref-steps", type=int, default=512, help="environment steps, reference")
    p.add_argument("--envs", type=int, default=256)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--updates", type=int, default=50, help="learner updates timed alone")
    args = p.parse_args(argv)

    task = make_task(args.benchmark, args.task)
    rewards = task.arrays.reward[None]
    config = learner.DQNConfig(total_steps=args.steps, n_envs=args.envs, batch_size=args.batch,
                               width=args.width, eval_points=1, eval_episodes=8,
                               learning_starts=args.batch)
    config.validate(task)
    best = int(jax.numpy.argmax(task.arrays.reward))
    dev = jax.devices()[0].device_kind
    print(f"dqn on {args.benchmark}/{args.task}: width {config.width}, {config.layers} layers x "
          f"{config.heads} heads, {config.n_envs} envs, batch {config.batch_size}; device {dev}")

    # Anakin: the whole run is one compiled call (the two greedy evaluations it makes, of
    # 8 short episodes each, are included in the time)
    fn = jax.jit(lambda k: learner.train(config, k, task.arrays, rewards))
    t0 = time.perf_counter()
    compiled = fn.lower(jax.random.key(0)).compile()
    compile_s = time.perf_counter() - t0
    (_, info), run_s = timed(compiled, jax.random.key(1))
    steps = config.trained_steps
    updates = steps // config.n_envs * config.updates_per_iteration
    sps, ups = steps / run_s, updates / run_s
    print(f"anakin: {steps:,} env steps, {updates:,} updates in {run_s:.2f} s after a "
          f"{compile_s:.1f} s compile: {sps:,.0f} env steps/s, {ups:,.1f} updates/s; "
          f"10^7 steps would take {1e7 / sps / 60:.1f} min")
    print(f"  greedy test metric {float(info['test'][0]):.3f} before -> "
          f"{float(info['test'][-1]):.3f} after; {int(info['distinct'])} distinct archs queried "
          f"(table optimum of the reward: test {float(task.arrays.report[best, 0]):.3f})")

    # learner updates alone
    state = learner.init_train_state(config, jax.random.key(2), task.arrays, rewards)
    eps = learner.epsilons(config)
    warm = jax.jit(lambda s, k: jax.lax.scan(
        lambda c, kk: (learner._iteration(dataclasses.replace(config, updates_per_iteration=0),
                                          task.arrays, rewards, eps, c, kk)[0], None),
        s, jax.random.split(k, 8))[0])
    state = jax.block_until_ready(warm(state, jax.random.key(3)))  # fill the buffer a little

    def many_updates(agent, buffer, key):
        def one(c, k):
            a, b, loss = learner.learner_update(config, k, c[0], c[1], task.arrays)
            return (a, b), loss
        return jax.lax.scan(one, (agent, buffer), jax.random.split(key, args.updates))[0]

    upd = jax.jit(many_updates).lower(state.agent, state.buffer, jax.random.key(4)).compile()
    _, upd_s = timed(upd, state.agent, state.buffer, jax.random.key(5))
    print(f"learner alone: {args.updates / upd_s:,.1f} updates/s (batch {config.batch_size})")

    # reference: one environment at a time, the learner every n_envs steps
    one_env = dataclasses.replace(config, n_envs=1, updates_per_iteration=0)
    state1 = learner.init_train_state(one_env, jax.random.key(6), task.arrays, rewards)
    state1 = state1.replace(buffer=state.buffer)  # the same filled buffer to learn from
    eps1 = learner.epsilons(one_env)
    act = jax.jit(lambda s, k: learner._iteration(one_env, task.arrays, rewards, eps1, s, k)[0])
    learn = jax.jit(lambda a, b, k: learner.learner_update(config, k, a, b, task.arrays)[:2])
    state1 = jax.block_until_ready(act(state1, jax.random.key(7)))
    jax.block_until_ready(learn(state1.agent, state1.buffer, jax.random.key(8)))
    keys = jax.random.split(jax.random.key(9), args.ref_steps)
    t0 = time.perf_counter()
    n_learn = 0
    for i in range(args.ref_steps):
        state1 = act(state1, keys[i])
        if (i + 1) % config.n_envs == 0:
            agent, buffer = learn(state1.agent, state1.buffer, keys[i])
            state1 = state1.replace(agent=agent, buffer=buffer)
            n_learn += 1
    jax.block_until_ready(state1)
    ref_s = time.perf_counter() - t0
    ref_sps = args.ref_steps / ref_s
    print(f"one env at a time: {args.ref_steps} env steps, {n_learn} updates in {ref_s:.2f} s: "
          f"{ref_sps:,.1f} env steps/s; 10^7 steps would take {1e7 / ref_sps / 3600:.1f} h")
    print(f"anakin speed-up: {sps / ref_sps:,.0f}x (env steps/s at the same replay ratio)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
