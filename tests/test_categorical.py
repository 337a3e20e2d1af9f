"""Declared spaces (issue 22): decisions with different numbers of choices and forbidden
combinations, searched by every method through ask/tell and the command line."""

import json

import numpy as np
import pytest

from catchjax import cli
from catchjax.asktell.search import AskTell, categorical_domain
from catchjax.benchmarks import categorical
from catchjax.errors import CatchjaxError

SPEC = {"decisions": {"layers": [1, 2, 3], "width": [32, 64, 128, 256],
                      "activation": ["relu", "tanh"]},
        "forbid": [{"layers": 3, "width": 256}]}
SETTINGS = {"random": {}, "rea": {"population": 4}, "ls": {"n_initial": 3},
            "reinforce": {}, "catch-sfs": {"n_initial": 3, "candidates": 8, "hidden": 16},
            "bananas": {"n_initial": 4, "batch": 2, "ensemble": 2, "train_steps": 10,
                        "candidates": 8, "parents": 2, "random_candidates": 2}}


def score(config):
    return -abs(config["layers"] - 2) - abs(np.log2(config["width"]) - 6) + 0.5 * (
        config["activation"] == "tanh")


def test_a_declared_space_holds_exactly_its_allowed_configurations():
    domain = categorical_domain(SPEC)
    assert (domain.space.n_decisions, domain.space.n_choices) == (3, 4)
    configs = [domain.describe(r)["config"] for r in range(len(domain.actions))]
    assert len(configs) == 3 * 4 * 2 - 2  # layers=3 with width=256, either activation
    assert {"layers": 3, "width": 256, "activation": "relu"} not in configs
    assert all(c["activation"] in ("relu", "tanh") for c in configs)
    # the string form round-trips; another declaration is another space
    row = domain.actions[5]
    assert list(domain.space.from_str(domain.space.to_str(row))) == list(row)
    other = categorical_domain({**SPEC, "forbid": []})
    assert other.space.name != domain.space.name and len(other.actions) == 24
    # a plain dict of decisions is a space without forbidden combinations
    assert categorical_domain(SPEC["decisions"]).space.name == other.space.name


@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_method_searches_a_declared_space_through_ask_tell(name, tmp_path):
    search = AskTell.start(name, SPEC, budget=10, seed=1, state_dir=tmp_path / "s",
                           **SETTINGS[name])
    seen = []
    while proposals := search.ask(2):
        for p in proposals:
            c = p["config"]
            assert set(c) == {"layers", "width", "activation"}
            assert not (c["layers"] == 3 and c["width"] == 256)
            assert c["activation"] in ("relu", "tanh")  # never a padded choice
            seen.append(p["arch"])
        if len(seen) <= 2:
            search = AskTell.load(tmp_path / "s")  # the space is rebuilt from the manifest
        search.tell([p["id"] for p in proposals], [score(p["config"]) for p in proposals])
    assert len(seen) == 10 and not search.pending
    best = search.best()  # the told rewards stay with their configurations
    assert best["reward"] == pytest.approx(score(categorical.configuration(SPEC,
                                                                           best["actions"])))


def test_bad_declarations_are_refused_with_the_reason():
    for spec, words in [
        ({}, "dict of decisions"),
        ({"a": []}, "non-empty list"),
        ({"a": [1, 1]}, "twice"),
        ({"a": [1], "b": [2]}, "one choice"),
        ({"a": [None, 1]}, "text, numbers"),
        ({"a=b": [1, 2]}, "without '='"),
        ({"decisions": {"a": [1, 2]}, "forbid": [{"c": 1}]}, "no decision 'c'"),
        ({"decisions": {"a": [1, 2]}, "forbid": [{"a": 3}]}, "not a choice"),
        ({"decisions": {"a": [1, 2]}, "forbid": [{"a": 1}, {"a": 2}]}, "every configuration"),
        ({f"d{i}": list(range(10)) for i in range(8)}, "more than a compiled search holds"),
    ]:
        with pytest.raises(CatchjaxError, match=words):
            categorical_domain(spec)


def test_the_command_line_searches_a_space_declared_in_a_file(tmp_path, capsys):
    spec_file = tmp_path / "space.json"
    spec_file.write_text(json.dumps(SPEC))
    state, props, results = tmp_path / "s", tmp_path / "p.json", tmp_path / "r.csv"
    assert cli.main(["ask", "--state", str(state), "--method", "rea", "--space",
                     str(spec_file), "--budget", "6", "--set", "population=3", "-k", "3",
                     "--out", str(props)]) == 0
    proposals = json.loads(props.read_text())["proposals"]
    assert len(proposals) == 3 and all("config" in p for p in proposals)
    results.write_text("id,reward\n" + "".join(f"{p['id']},{score(p['config'])}\n"
                                               for p in proposals))
    assert cli.main(["tell", "--state", str(state), str(results)]) == 0
    # continuing names the same file (or nothing)
    assert cli.main(["ask", "--state", str(state), "--space", str(spec_file),
                     "--out", str(props)]) == 0
    assert json.loads(props.read_text())["proposals"][0]["id"] == 3


def test_choices_an_arch_string_could_not_tell_apart_are_refused():
    """1 and "1" both print as w=1; "a,b" would split into two decisions."""
    with pytest.raises(CatchjaxError, match=r"choices 1, '1' print alike .*w=1"):
        categorical_domain({"w": [1, "1"], "x": [0, 1]})
    with pytest.raises(CatchjaxError, match="may not contain ','"):
        categorical_domain({"w": ["a,b", "c"]})
    space = categorical_domain({"w": [1, 2.5, "wide"], "x": [True, False]}).space
    for row in space.enumerate():
        assert list(space.from_str(space.to_str(row))) == list(row)  # arch strings round-trip


def test_a_space_file_nested_too_deep_is_refused_in_one_line(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CatchjaxError, match="nests its lists or objects too deep"):
        categorical_domain(str(deep))
