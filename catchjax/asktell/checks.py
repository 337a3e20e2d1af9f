"""What a caller hands an ask/tell search, checked before the search changes: rewards,
proposal ids, counts and the extras kept with a result; each refused with a clear error
rather than rounded, truncated or kept as something JSON cannot hold."""

from __future__ import annotations

import math
import numbers
import re

import numpy as np

from catchjax.errors import CatchjaxError

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def reward_value(value, what: str) -> float:
    """A reward as the state holds it (float32), or a clear error: booleans, text that is
    no number, NaN, inf and values beyond float32 are refused, never rounded to inf."""
    if isinstance(value, (bool, np.bool_)):
        raise CatchjaxError(f"{what}: the reward is {value!r}, a boolean; give a number")
    try:
        r = float(value)
    except (TypeError, ValueError):
        raise CatchjaxError(f"{what}: the reward {value!r} is not a number") from None
    if not math.isfinite(r):
        raise CatchjaxError(
            f"{what}: the reward is {value!r}; rewards must be finite. Report a failed "
            f"training run as a finite low reward (e.g. 0) rather than NaN or inf"
        )
    if abs(r) > _FLOAT32_MAX:
        raise CatchjaxError(
            f"{what}: the reward {value!r} does not fit the search's float32 rewards "
            f"(|reward| <= {_FLOAT32_MAX:.4g}); rescale the rewards"
        )
    return r


def proposal_id(value) -> int:
    """A proposal id: an integer, or text or a float holding one exactly ("2", 2.0); 2.7
    and booleans are refused, never truncated."""
    if isinstance(value, (bool, np.bool_)):
        raise CatchjaxError(f"proposal ids must be integers, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise CatchjaxError(f"proposal ids must be integers, got {value!r}")


def proposal_count(k) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or k < 1:
        raise CatchjaxError(f"k (how many proposals) must be an integer >= 1, got {k!r}")
    return int(k)


def extra_value(value, where: str):
    """A value kept with a result: JSON's own types; NumPy scalars as Python ones;
    non-finite floats as the strings "nan", "inf", "-inf" (the manifest stays JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else repr(value)
    raise CatchjaxError(f"{where} is a {type(value).__name__}; extras hold numbers, text, "
                        f"booleans or None")


def clean_extras(extras, n: int) -> list:
    if extras is None:
        return [None] * n
    if isinstance(extras, (str, bytes, dict)) or not hasattr(extras, "__len__"):
        raise CatchjaxError(f"extras must be a list of {n} dicts (one per result), got "
                            f"{type(extras).__name__}")
    extras = list(extras)
    if len(extras) != n:
        raise CatchjaxError(f"{n} results but {len(extras)} extras (one dict or None each)")
    out = []
    for i, e in enumerate(extras):
        if e is None:
            out.append(None)
            continue
        if not isinstance(e, dict):
            raise CatchjaxError(f"extras[{i}] is a {type(e).__name__}, not a dict")
        for key in e:
            if not isinstance(key, str):
                raise CatchjaxError(f"extras[{i}] has a key {key!r}; keys must be text")
        out.append({k: extra_value(v, f"extras[{i}][{k!r}]") for k, v in e.items()})
    return out


def as_asked(proposal: dict) -> dict:
    """A logged proposal as :meth:`AskTell.ask` hands it out (no reward, no timestamp)."""
    return {k: v for k, v in proposal.items() if k not in ("reward", "asked_at")}


def tell_ids(log: list, ids=None, archs=None) -> list[int]:
    """Proposal ids for a tell: ``ids`` as given (checked), or matched from ``archs`` (the
    oldest pending proposal of that arch) against the proposal ``log``."""
    if ids is None and archs is None:
        raise CatchjaxError("tell needs the proposal ids or their arch strings")
    if ids is not None:
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
            raise CatchjaxError(f"ids must be a list of proposal ids, got {ids!r}")
        ids = [proposal_id(i) for i in ids]
        if archs is not None:
            if len(archs) != len(ids):
                raise CatchjaxError(f"{len(ids)} ids but {len(archs)} archs")
            for i, arch in zip(ids, archs):
                if 0 <= i < len(log) and arch and arch != log[i]["arch"]:
                    raise CatchjaxError(
                        f"the result for proposal {i} names arch {arch!r}, but proposal "
                        f"{i} is {log[i]['arch']!r}"
                    )
        return ids
    out, taken = [], set()
    for arch in archs:
        match = [p["id"] for p in log if p["arch"] == arch and p["reward"] is None
                 and p["id"] not in taken]
        if not match:
            told = [p["id"] for p in log if p["arch"] == arch]
            raise CatchjaxError(
                f"arch {arch!r} was never asked" if not told else
                f"arch {arch!r} (proposal {told}) was told already; a repeated tell is "
                f"refused"
            )
        out.append(match[0])
        taken.add(match[0])
    return out


def check_tell(log: list, ids: list[int], n_rewards: int, extras) -> list:
    """Refuse a tell whose ids, rewards and extras do not pair up, that names a proposal
    twice, one never asked or one told already; the extras, checked (one each)."""
    n_asked = len(log)
    if n_rewards != len(ids):
        raise CatchjaxError(f"{len(ids)} proposals but {n_rewards} rewards")
    if not ids:
        raise CatchjaxError("tell needs at least one result")
    extras = clean_extras(extras, len(ids))
    if len(set(ids)) != len(ids):
        seen, twice = set(), []
        for i in ids:
            if i in seen and i not in twice:
                twice.append(i)
            seen.add(i)
        shown = ", ".join(map(str, twice[:10])) + (
            f" and {len(twice) - 10} more" if len(twice) > 10 else "")
        raise CatchjaxError(f"a proposal appears twice in one tell: {shown}")
    for i in ids:
        if not 0 <= i < n_asked:
            raise CatchjaxError(
                f"proposal {i} was never asked (asked: "
                f"{'0..' + str(n_asked - 1) if n_asked else 'none yet'})"
            )
        if log[i]["reward"] is not None:
            raise CatchjaxError(
                f"proposal {i} ({log[i]['arch']}) was told already (reward "
                f"{log[i]['reward']}); a repeated tell is refused"
            )
    return extras
