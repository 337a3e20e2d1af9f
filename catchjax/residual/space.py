"""The residual-block backbone space (CATCH paper §4.3) as 8 decisions of 5 choices.

The paper lists the decisions (base channel in {48, 56, 64, 72}, depth in {15, 20, 25,
30} blocks, 4 or 5 stages, the number of blocks in each stage, how the channels are
distributed over the blocks) and leaves the encoding to its appendix, which we do not
have. Ours:

| decision | choices (index: meaning)                                                     |
|----------|------------------------------------------------------------------------------|
| 0        | base channel: 0: 48, 1: 56, 2: 64, 3: 72                                     |
| 1        | depth: 0: 15, 1: 20, 2: 25, 3: 30 residual blocks                            |
| 2        | stages: 0: 4, 1: 5                                                           |
| 3..6     | blocks of stages 1..4: j -> round(g_j * remaining / stages left),            |
|          | g = (0.5, 0.75, 1, 1.5, 2); the last stage takes the remainder; 0 = padding  |
|          | for the decisions past the second-to-last stage                              |
| 7        | channel schedule, width of stage i = base * m_i: 0: 2^i (ResNet), 1: 2^max(0,|
|          | i-1) (late doubling), 2: 2^min(i,2) (doubling capped at 4x), 3: 1.5^i, 4:    |
|          | 2^(i//2) (every other stage)                                                 |

Why this encoding: relative block counts (a share of what is left) let five choices
cover every depth, and sampling stage by stage under masks keeps each stage at >= 1
block and makes the blocks sum to the chosen depth; a choice that would give the same
count as a smaller choice index is masked, so each network has exactly one code. With 8
decisions of 5 choices the space's codes (5^8 = 390,625) fit the same prefix-mask and
code-to-row arrays the table spaces use, so every method (random search, evolution,
REINFORCE, CATCH, the edit DQN) runs on it unchanged. There are 37,320 networks.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from catchjax.benchmarks.spaces import SearchSpace

BASE_CHANNELS = (48, 56, 64, 72)
DEPTHS = (15, 20, 25, 30)
STAGES = (4, 5)
SHARES = (0.5, 0.75, 1.0, 1.5, 2.0)
SCHEDULES = ("double", "late-double", "capped-double", "x1.5", "every-other")
N_DECISIONS, N_CHOICES = 8, 5


def stage_multipliers(schedule: int, stages: int) -> tuple[float, ...]:
    rules = (
        lambda i: 2.0**i,
        lambda i: 2.0 ** max(0, i - 1),
        lambda i: 2.0 ** min(i, 2),
        lambda i: 1.5**i,
        lambda i: 2.0 ** (i // 2),
    )
    return tuple(rules[schedule](i) for i in range(stages))


def block_choices(remaining: int, stages_left: int) -> list[int]:
    """Block counts the five share choices give a stage (None: masked): >= 1 block, leave
    >= 1 for each later stage, and no repeat of a smaller choice's count."""
    out, seen = [], set()
    for g in SHARES:
        b = int(np.floor(g * remaining / stages_left + 0.5))
        ok = 1 <= b <= remaining - (stages_left - 1) and b not in seen
        out.append(b if ok else None)
        if ok:
            seen.add(b)
    return out


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    """A decoded network: what the model builder needs."""

    base_channels: int
    depth: int
    blocks: tuple[int, ...]  # per stage, sum = depth
    widths: tuple[int, ...]  # channels per stage (before any width_scale)
    schedule: str

    def describe(self) -> dict:
        return dataclasses.asdict(self)


def decode(actions) -> ResNetSpec:
    """Action sequence -> :class:`ResNetSpec` (ValueError for a sequence outside the space)."""
    a = [int(x) for x in actions]
    if len(a) != N_DECISIONS or any(not 0 <= x < N_CHOICES for x in a):
        raise ValueError(f"expected {N_DECISIONS} choices in 0..{N_CHOICES - 1}, got {a}")
    if a[0] >= len(BASE_CHANNELS) or a[1] >= len(DEPTHS) or a[2] >= len(STAGES):
        raise ValueError(f"choice out of range in {a}")
    base, depth, stages = BASE_CHANNELS[a[0]], DEPTHS[a[1]], STAGES[a[2]]
    blocks, remaining = [], depth
    for i in range(4):
        stages_left = stages - i
        if stages_left <= 1:
            if a[3 + i] != 0:
                raise ValueError(f"decision {3 + i} is padding for {stages} stages, got {a}")
            continue
        b = block_choices(remaining, stages_left)[a[3 + i]]
        if b is None:
            raise ValueError(f"decision {3 + i} choice {a[3 + i]} is masked in {a}")
        blocks.append(b)
        remaining -= b
    blocks.append(remaining)
    widths = tuple(int(8 * round(base * m / 8)) for m in stage_multipliers(a[7], stages))
    return ResNetSpec(base, depth, tuple(blocks), widths, SCHEDULES[a[7]])


def _enumerate() -> np.ndarray:
    out = []
    for c, d, s, sched in itertools.product(range(4), range(4), range(2), range(5)):
        depth, stages = DEPTHS[d], STAGES[s]

        def walk(i, remaining, prefix, stages=stages):
            if stages - i <= 1:
                yield prefix + [0] * (4 - i)
                return
            for j, b in enumerate(block_choices(remaining, stages - i)):
                if b is not None:
                    yield from walk(i + 1, remaining - b, prefix + [j])

        for blocks in walk(0, depth, []):
            out.append([c, d, s, *blocks, sched])
    return np.asarray(out, dtype=np.int32)


def spec_str(spec: ResNetSpec) -> str:
    """The arch string: ``res-BASE-dDEPTH-B1.B2...-SCHEDULE``."""
    return (f"res-{spec.base_channels}-d{spec.depth}-"
            f"{'.'.join(map(str, spec.blocks))}-{spec.schedule}")


def _to_str(a) -> str:
    return spec_str(decode(a))


_BY_STRING: dict[str, int] = {}


def _from_str(arch: str) -> np.ndarray:
    if not _BY_STRING:
        _BY_STRING.update({_to_str(row): i for i, row in enumerate(ENUMERATION)})
    if arch not in _BY_STRING:
        raise ValueError(arch)
    return ENUMERATION[_BY_STRING[arch]].copy()


def _bad_rows(actions: np.ndarray) -> np.ndarray:
    bad = np.zeros(len(actions), bool)
    for i, row in enumerate(actions):
        try:
            decode(row)
        except ValueError:
            bad[i] = True
    return bad


ENUMERATION = _enumerate()
RESIDUAL = SearchSpace("residual", N_DECISIONS, N_CHOICES, tuple(str(i) for i in range(5)),
                       _to_str, _from_str, _bad_rows, lambda n: ENUMERATION)


def encode_spec(spec: ResNetSpec) -> np.ndarray:
    """:class:`ResNetSpec` -> its action sequence."""
    return RESIDUAL.from_str(spec_str(spec))
