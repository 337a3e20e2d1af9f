"""Search spaces of one's own: named categorical decisions, declared as data (issue 22).

A space is a dict of decisions, each a list of choices (JSON scalars), in the order the
methods decide them, with optional forbidden combinations::

    {"decisions": {"layers": [1, 2, 3], "width": [32, 64, 128, 256],
                   "activation": ["relu", "tanh"]},
     "forbid": [{"layers": 3, "width": 256}]}

(a plain ``{"layers": [...], ...}`` is the same without ``forbid``). Decisions may have
different numbers of choices: the space is ``L`` decisions of ``K`` = the largest number of
choices, and choice ``j`` of a decision with fewer than ``j + 1`` choices is never valid,
so every method proposes only declared configurations — CATCH's controller through its
per-step masks (:func:`catchjax.benchmarks.spaces.prefix_masks`), evolution and local
search through the neighbour table, random search through the list of valid rows. The
space's name carries a digest of its declaration, so an agent trained on one declared space
is never adapted on another of the same shape.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import numbers

import numpy as np

from catchjax.benchmarks.spaces import SearchSpace
from catchjax.errors import CatchjaxError

# K**L: the code table and CATCH's prefix masks have this many entries; beyond it the
# space does not fit a compiled search (declare fewer decisions or choices)
MAX_CODES = 1 << 22
PREFIX = "categorical:"


def normalize(spec) -> dict:
    """``{"decisions": {name: [choices]}, "forbid": [{name: value}, ...]}``, checked."""
    if not isinstance(spec, dict) or not spec:
        raise CatchjaxError(f"a declared space is a dict of decisions, e.g. {{\"width\": [32, "
                            f"64], \"layers\": [1, 2]}}, got {spec!r}")
    if "decisions" in spec:
        unknown = set(spec) - {"decisions", "forbid"}
        if unknown:
            raise CatchjaxError(f"a declared space has 'decisions' and 'forbid', not "
                                f"{sorted(unknown)}")
        decisions, forbid = spec["decisions"], spec.get("forbid", [])
    else:
        decisions, forbid = spec, []
    if not isinstance(decisions, dict) or not decisions:
        raise CatchjaxError("a declared space needs at least one decision")
    out = {}
    for name, choices in decisions.items():
        if not isinstance(name, str) or not name.strip() or "=" in name or "," in name:
            raise CatchjaxError(f"decision names are non-empty text without '=' or ',', got "
                                f"{name!r}")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise CatchjaxError(f"decision {name!r}: its choices are a non-empty list, got "
                                f"{choices!r}")
        for c in choices:
            scalar = isinstance(c, (str, bool)) or (
                isinstance(c, numbers.Real) and np.isfinite(float(c)))
            if not scalar:
                raise CatchjaxError(f"decision {name!r}: choices are text, numbers or true/"
                                    f"false, got {c!r}")
        keys = [json.dumps(c) for c in choices]
        if len(set(keys)) != len(keys):
            raise CatchjaxError(f"decision {name!r} lists a choice twice: {list(choices)}")
        texts = [_text(c) for c in choices]  # how a proposal's arch string names them
        alike = sorted({t for t in texts if texts.count(t) > 1})
        if alike:
            same = [c for c in choices if _text(c) in alike]
            raise CatchjaxError(
                f"decision {name!r}: the choices {', '.join(map(repr, same))} print alike in "
                f"an arch string ({name}={alike[0]}), so a result told by arch could not say "
                f"which; make them distinct (e.g. all numbers or all text)")
        if any("," in t for t in texts):
            raise CatchjaxError(f"decision {name!r}: a choice may not contain ',' (it "
                                f"separates the decisions of an arch string): {texts}")
        out[name] = list(choices)
    if not isinstance(forbid, (list, tuple)):
        raise CatchjaxError(f"'forbid' is a list of combinations, got {forbid!r}")
    rules = []
    for rule in forbid:
        if not isinstance(rule, dict) or not rule:
            raise CatchjaxError(f"each forbidden combination is a dict {{decision: choice}}, "
                                f"got {rule!r}")
        for k, v in rule.items():
            if k not in out:
                raise CatchjaxError(f"forbidden combination {rule}: no decision {k!r} "
                                    f"(decisions: {', '.join(out)})")
            if json.dumps(v) not in [json.dumps(c) for c in out[k]]:
                raise CatchjaxError(f"forbidden combination {rule}: {v!r} is not a choice of "
                                    f"{k!r} ({out[k]})")
        rules.append(dict(rule))
    L, K = len(out), max(len(c) for c in out.values())
    if K < 2:
        raise CatchjaxError("every decision of this space has one choice: nothing to search")
    if K**L > MAX_CODES:
        raise CatchjaxError(
            f"{L} decisions of up to {K} choices make {K**L:,} codes, more than a compiled "
            f"search holds ({MAX_CODES:,}); declare fewer decisions or choices (or merge "
            f"decisions that go together into one)")
    return {"decisions": out, "forbid": rules}


def space_name(spec: dict) -> str:
    text = json.dumps(normalize(spec))
    return f"categorical-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def build(spec) -> tuple[SearchSpace, np.ndarray, dict]:
    """The space, its valid rows ``[n, L]`` (lexicographic) and the normalized spec."""
    spec = normalize(spec)
    names = list(spec["decisions"])
    choices = [spec["decisions"][n] for n in names]
    L, K = len(names), max(len(c) for c in choices)
    rows = np.asarray(list(itertools.product(*(range(len(c)) for c in choices))), np.int32)
    for rule in spec["forbid"]:
        hit = np.ones(len(rows), bool)
        for k, v in rule.items():
            i = names.index(k)
            hit &= rows[:, i] == [json.dumps(c) for c in choices[i]].index(json.dumps(v))
        rows = rows[~hit]
    if len(rows) == 0:
        raise CatchjaxError("every configuration of this space is forbidden")
    valid = {tuple(r) for r in rows.tolist()}

    def to_str(a) -> str:
        return ",".join(f"{n}={_text(choices[i][a[i]])}" for i, n in enumerate(names))

    def from_str(arch: str) -> np.ndarray:
        parts = dict(p.split("=", 1) for p in arch.split(","))
        if list(parts) != names:
            raise ValueError(arch)
        return np.asarray([[_text(c) for c in choices[i]].index(parts[n])
                           for i, n in enumerate(names)], np.int32)

    def bad_rows(actions: np.ndarray) -> np.ndarray:
        return np.asarray([tuple(r) not in valid for r in np.asarray(actions).tolist()])

    space = SearchSpace(space_name(spec), L, K, tuple(str(i) for i in range(K)), to_str,
                        from_str, bad_rows, lambda n: rows)
    return space, rows, spec


def configuration(spec: dict, actions) -> dict:
    """One action sequence as ``{decision: chosen value}``."""
    spec = normalize(spec)
    return {n: spec["decisions"][n][int(a)] for n, a in zip(spec["decisions"], actions)}


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)
