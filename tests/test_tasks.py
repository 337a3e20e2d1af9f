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


def test_a_protocols_columns_are_the_ones_it_names():
    """Issue 19: 'catch-fig3' = the paper's Fig. 3 axis, each dataset's own 200-epoch
    validation accuracy as reward and reported value; 'nats' = the default columns; the
    meta-training pool stays the other datasets' 12-epoch validation accuracy."""
    import pytest

    from catchjax.errors import CatchjaxError
    from catchjax.runs import agent as agents

    own = {"cifar10": "cifar10_valid_valid_acc_200", "cifar100": "cifar100_valid_acc_200",
           "imagenet16-120": "imagenet16_valid_acc_200"}
    for dataset, column in own.items():
        fig3 = tasks.make_task("synthetic-nb201", dataset, protocol="catch-fig3")
        assert fig3.spec.reward_metric == fig3.spec.report_metrics[0] == column
        assert fig3.spec.protocol == "catch-fig3"
        np.testing.assert_array_equal(np.asarray(fig3.arrays.reward)[fig3.searchable],
                                      fig3.table.column(column)[fig3.searchable])
        nats = tasks.make_task("synthetic-nb201", dataset, protocol="nats")
        default = tasks.make_task("synthetic-nb201", dataset)
        assert (nats.spec.reward_metric, nats.spec.report_metrics) == (
            default.spec.reward_metric, default.spec.report_metrics)
        pool = agents.leave_out_pool(fig3)
        assert pool == agents.leave_out_pool(default)
        assert all(c.endswith("_12") for c in pool) and not agents.target_columns(fig3) & set(pool)
    with pytest.raises(CatchjaxError, match="no protocol 'fig9'; protocols: nats, catch-fig3"):
        tasks.make_task("synthetic-nb201", "cifar10", protocol="fig9")
    with pytest.raises(CatchjaxError, match="no protocol"):
        tasks.make_task("synthetic-transnas-micro", "jigsaw", protocol="catch-fig3")
    with pytest.raises(CatchjaxError, match="name one"):
        tasks.make_task("synthetic-nb201", reward="cifar10_test_acc_12",
                        report="cifar10_test_acc_200", protocol="catch-fig3")
