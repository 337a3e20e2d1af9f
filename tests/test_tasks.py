"""catchjax.benchmarks.tasks: rewards, report metrics and the latency-aware reward."""


import numpy as np

from catchjax.benchmarks import tables, tasks


def test_latency_reward_prefers_better_and_faster_for_any_sign():
    table = tables.load_table("synthetic-transnas-micro")
    cost = tasks.CostObjective("room_layout__time_elapsed", target=3500.0, weight=-0.05)
    task = tasks.make_task("synthetic-transnas-micro", "room_layout", cost=cost, table=table)
    p = table.column("room_layout__valid_neg_loss").astype(np.float64)
    lat = table.column("room_layout__time_elapsed").astype(np.float64)
    r = np.asarray(task.arrays.reward, np.float64)
    assert (p < 0).all()  # neg_loss: the case that used to reward the slowest network
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(p), (2, 20000))
    dominates = (p[i] >= p[j]) & (lat[i] <= lat[j])
    assert dominates.sum() > 1000
    assert np.all(r[i][dominates] >= r[j][dominates] - 1e-6)
    # with the same P, the faster network gets the higher reward
    k = np.argsort(lat)
    same_p = tasks.make_task("synthetic-transnas-micro", "room_layout", cost=cost,
                             table=tables.Table(table.benchmark, table.space, table.actions,
                                                table.arch_str,
                                                {**table.columns, "p": np.full(len(p), -0.7)},
                                                table.source), reward="p", report="p")
    assert np.all(np.diff(np.asarray(same_p.arrays.reward)[k]) <= 0)
