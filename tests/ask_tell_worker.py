"""A worker of the ask/tell stress test (tests/test_ask_tell_workers.py): opens its own
handle on one search folder and asks and tells in a random order, writing what each
call returned to its log only after the call returned (so the log is what the worker
was promised). Run as ``python ask_tell_worker.py STATE_DIR SEED N_OPS LOG``."""

import os
import random
import sys

from catchjax.asktell.search import AskTell


def reward_of(i: int) -> float:
    return i / 1000.0


def main(state_dir, seed, n_ops, log_path):
    rng = random.Random(seed)
    search = AskTell.load(state_dir)
    mine = []
    with open(log_path, "a") as log:
        for _ in range(n_ops):
            if mine and rng.random() < 0.5:
                take = mine[:rng.randint(1, len(mine))]
                search.tell(take, [reward_of(i) for i in take])
                lines = [f"T {i}" for i in take]
                mine = mine[len(take):]
            else:
                got = search.ask(rng.randint(1, 3))
                lines = [f"A {p['id']} {p['arch']}" for p in got]
                mine += [p["id"] for p in got]
            log.write("".join(line + "\n" for line in lines))
            log.flush()
            os.fsync(log.fileno())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
