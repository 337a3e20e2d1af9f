"""Search spaces as sequences of categorical decisions (SPEC §1).

An architecture is a sequence of ``n_decisions`` actions, each in ``range(n_choices)``.
Its *code* is that sequence read as a base-``n_choices`` number (first action most
significant), so a table maps code -> row with one gather.

| space          | decisions x choices | archs  | action meaning                              |
|----------------|---------------------|--------|---------------------------------------------|
| nb201          | 6 x 5               | 15,625 | op per edge (0->1, 0->2, 1->2, 0->3, 1->3, 2->3) |
| transnas-micro | 6 x 4               | 4,096  | op per edge, same edge order                |
| transnas-macro | 6 x 5               | 3,256  | module code 1..4 per layer, 0 = end/padding |

Which sequences are valid is decided by the table (the rows it holds), not here: the
space only says which sequences *can* be valid, how to write them as the benchmark's
own arch strings, and (for the macro space) the official enumeration order.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import numpy as np

from catchjax.errors import CatchjaxError

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
MICRO_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")
# Macro module codes: 0 ends the network (and pads the rest), 1..4 as in TransNAS-Bench-101.
MACRO_CODES = ("end", "plain", "downsample", "double_channels", "downsample_double_channels")


# -- per-space facts: arch-string formats, structural rules, enumeration orders ----------


def _nb201_to_str(a) -> str:
    n = [NB201_OPS[i] for i in a]
    return f"|{n[0]}~0|+|{n[1]}~0|{n[2]}~1|+|{n[3]}~0|{n[4]}~1|{n[5]}~2|"


def _nb201_from_str(arch: str) -> np.ndarray:
    nodes = arch.split("+")
    tokens = [t for node in nodes for t in node.split("|") if t]
    expected_inputs = [0, 0, 1, 0, 1, 2]
    if len(nodes) != 3 or len(tokens) != 6:
        raise ValueError
    ops = []
    for tok, want in zip(tokens, expected_inputs):
        name, src = tok.split("~")
        if int(src) != want:
            raise ValueError
        ops.append(NB201_OPS.index(name))
    return np.asarray(ops, dtype=np.int32)


def _micro_to_str(a) -> str:
    return f"64-41414-{a[0]}_{a[1]}{a[2]}_{a[3]}{a[4]}{a[5]}"


def _micro_from_str(arch: str) -> np.ndarray:
    prefix, cell = arch.rsplit("-", 1)
    digits = cell.replace("_", "")
    if prefix != "64-41414" or len(digits) != 6 or cell.count("_") != 2:
        raise ValueError
    return np.asarray([int(c) for c in digits], dtype=np.int32)


def _macro_to_str(a) -> str:
    return "64-" + "".join(str(x) for x in a if x != 0) + "-basic"


def _macro_from_str(arch: str) -> np.ndarray:
    head, body, tail = arch.split("-")
    if head != "64" or tail != "basic" or not 4 <= len(body) <= 6:
        raise ValueError
    codes = [int(c) for c in body] + [0] * (6 - len(body))
    return np.asarray(codes, dtype=np.int32)


def _macro_bad_rows(actions: np.ndarray) -> np.ndarray:
    """1..4 modules then only padding (code 0); depth 4..6."""
    is_end = actions == 0
    after_end = np.cumsum(is_end, axis=1) > 0
    return np.any(after_end & ~is_end, axis=1) | np.any(is_end[:, :4], axis=1)


def _macro_enumeration(n_decisions: int) -> np.ndarray:
    """The TransNAS-Bench-101 API order: depth 4, 5, 6; then number of downsampling modules
    1..3; then channel doublings 1..4; then the positions of each, in
    ``itertools.combinations`` order."""
    archs = []
    for depth in (4, 5, 6):
        for n_down in (1, 2, 3):
            for n_double in (1, 2, 3, 4):
                for down in itertools.combinations(range(depth), n_down):
                    for double in itertools.combinations(range(depth), n_double):
                        codes = [1 + (i in down) + 2 * (i in double) for i in range(depth)]
                        archs.append(codes + [0] * (n_decisions - depth))
    return np.asarray(archs, dtype=np.int32)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A fixed-length sequence of categorical decisions, with its benchmark's conventions."""

    name: str
    n_decisions: int
    n_choices: int
    choice_names: tuple[str, ...]
    # the benchmark's arch strings: actions -> str, str -> actions (ValueError if malformed)
    format_arch: Callable = dataclasses.field(repr=False, compare=False, default=None)
    parse_arch: Callable = dataclasses.field(repr=False, compare=False, default=None)
    # rows that break a structural rule of the space (None: every sequence is structural)
    bad_rows: Callable | None = dataclasses.field(repr=False, compare=False, default=None)
    # the benchmark's own enumeration order (None: lexicographic by code)
    enumeration: Callable | None = dataclasses.field(repr=False, compare=False, default=None)

    @property
    def n_codes(self) -> int:
        return self.n_choices**self.n_decisions

    # -- codes ------------------------------------------------------------------------
    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Actions ``[..., L]`` -> int64 codes ``[...]`` (base-K, first action most significant)."""
        actions = np.asarray(actions, dtype=np.int64)
        weights = self.n_choices ** np.arange(self.n_decisions - 1, -1, -1, dtype=np.int64)
        return actions @ weights

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes ``[...]`` -> actions ``[..., L]`` (int32)."""
        codes = np.asarray(codes, dtype=np.int64)
        weights = self.n_choices ** np.arange(self.n_decisions - 1, -1, -1, dtype=np.int64)
        return ((codes[..., None] // weights) % self.n_choices).astype(np.int32)

    # -- structure ----------------------------------------------------------------------
    def check_actions(self, actions: np.ndarray, where: str) -> None:
        """Raise if any row of ``actions`` cannot be an architecture of this space."""
        actions = np.asarray(actions)
        if actions.ndim != 2 or actions.shape[1] != self.n_decisions:
            raise CatchjaxError(
                f"{where}: expected an ops array of shape [n, {self.n_decisions}] for the "
                f"{self.name} space, got shape {actions.shape}"
            )
        bad = (actions < 0) | (actions >= self.n_choices)
        if self.bad_rows is not None:
            bad = bad | self.bad_rows(actions)[:, None]
        if bad.any():
            row = int(np.argwhere(bad)[0, 0])
            raise CatchjaxError(
                f"{where}: row {row} has ops {actions[row].tolist()}, which is not an "
                f"architecture of the {self.name} space (choices 0..{self.n_choices - 1})"
            )

    def enumerate(self) -> np.ndarray:
        """All architectures of the space, ``[n_archs, L]`` int32, in the canonical order.

        NB201 and micro: lexicographic (NB201's official order is data-defined, so tables
        carry their own rows). Macro: the TransNAS-Bench-101 API order.
        """
        if self.enumeration is None:
            return self.decode(np.arange(self.n_codes))
        return self.enumeration(self.n_decisions)

    # -- strings ------------------------------------------------------------------------
    def to_str(self, actions) -> str:
        """One action sequence -> the benchmark's arch string."""
        return self.format_arch([int(x) for x in actions])

    def from_str(self, arch: str) -> np.ndarray:
        """The benchmark's arch string -> action sequence (int32 ``[L]``)."""
        try:
            ops = self.parse_arch(arch)
            self.check_actions(ops[None], "arch string")
            return ops
        except (ValueError, IndexError, AttributeError, CatchjaxError):
            raise CatchjaxError(
                f"{arch!r} is not an architecture string of the {self.name} space "
                f"(example: {self.to_str(self.enumerate()[1])!r})"
            ) from None


NB201 = SearchSpace("nb201", 6, 5, NB201_OPS, _nb201_to_str, _nb201_from_str)
TRANSNAS_MICRO = SearchSpace("transnas-micro", 6, 4, MICRO_OPS, _micro_to_str, _micro_from_str)
TRANSNAS_MACRO = SearchSpace("transnas-macro", 6, 5, MACRO_CODES, _macro_to_str,
                             _macro_from_str, _macro_bad_rows, _macro_enumeration)
SPACES = {s.name: s for s in (NB201, TRANSNAS_MICRO, TRANSNAS_MACRO)}


def prefix_masks(space: SearchSpace, actions: np.ndarray) -> np.ndarray:
    """Per-step validity masks from the set of architectures a task may choose.

    Returns bool ``[L, K**(L-1), K]``: ``mask[t, p, a]`` is True iff some allowed
    architecture starts with the prefix whose base-K code is ``p`` (``t`` actions long)
    followed by ``a``. Sampling step by step under these masks can only ever produce
    allowed architectures, and can produce every one of them.
    """
    L, K = space.n_decisions, space.n_choices
    actions = np.asarray(actions, dtype=np.int64)
    mask = np.zeros((L, K ** (L - 1), K), dtype=bool)
    prefix = np.zeros(len(actions), dtype=np.int64)
    for t in range(L):
        mask[t, prefix, actions[:, t]] = True
        prefix = prefix * K + actions[:, t]
    return mask


def neighbour_table(space: SearchSpace, actions: np.ndarray, code_to_row: np.ndarray) -> np.ndarray:
    """Rows that differ from each row in exactly one decision, ``[n, L*(K-1)]``, -1 = none.

    Slot ``t*(K-1) + j`` holds the neighbour that changes decision ``t`` to the ``j``-th
    other choice. Used by evolution's mutation and by the edit-based agent.
    """
    L, K = space.n_decisions, space.n_choices
    actions = np.asarray(actions, dtype=np.int64)
    codes = space.encode(actions)
    out = np.full((len(actions), L * (K - 1)), -1, dtype=np.int32)
    for t in range(L):
        place = K ** (L - 1 - t)
        for j in range(K - 1):
            new = (actions[:, t] + 1 + j) % K
            out[:, t * (K - 1) + j] = code_to_row[codes + (new - actions[:, t]) * place]
    return out
