"""A benchmark table on the host: named metric columns over the architectures of a space,
and its validating constructor :func:`make_table`."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

import numpy as np

from catchjax.benchmarks import spaces
from catchjax.errors import CatchjaxError


@dataclasses.dataclass(frozen=True, eq=False)
class Table:
    """A benchmark table on the host (NumPy). Row ``i`` is architecture ``actions[i]``."""

    benchmark: str
    space: spaces.SearchSpace
    actions: np.ndarray  # int32 [n, L]
    arch_str: np.ndarray  # str [n]
    columns: Mapping[str, np.ndarray]  # float32 [n] each
    source: str

    @property
    def n_archs(self) -> int:
        return len(self.actions)

    def column(self, name: str) -> np.ndarray:
        if name not in self.columns:
            raise CatchjaxError(
                f"benchmark {self.benchmark!r} has no metric {name!r}; available: "
                f"{', '.join(sorted(self.columns))}"
            )
        return self.columns[name]

    @functools.cached_property
    def code_to_row(self) -> np.ndarray:
        """int32 ``[K**L]``: the row of each action-sequence code, -1 where there is none."""
        table = np.full(self.space.n_codes, -1, dtype=np.int32)
        table[self.space.encode(self.actions)] = np.arange(self.n_archs, dtype=np.int32)
        return table

    def row_of(self, arch: str) -> int:
        row = int(self.code_to_row[self.space.encode(self.space.from_str(arch))])
        if row < 0:
            raise CatchjaxError(f"architecture {arch!r} is not in benchmark {self.benchmark!r}")
        return row


def make_table(benchmark: str, space, actions, columns, arch_str=None, source="") -> Table:
    """Build a :class:`Table`, checking shapes, values and uniqueness of the rows."""
    where = source or benchmark
    actions = np.asarray(actions)
    if not np.issubdtype(actions.dtype, np.integer):
        raise CatchjaxError(f"{where}: 'ops' must be an integer array, got dtype {actions.dtype}")
    space.check_actions(actions, where)
    actions = actions.astype(np.int32)
    n = len(actions)
    if n == 0:
        raise CatchjaxError(f"{where}: the table has no rows (no architectures)")
    codes = space.encode(actions)
    if len(np.unique(codes)) != n:
        _, first, counts = np.unique(codes, return_index=True, return_counts=True)
        dup = int(first[np.argmax(counts > 1)])
        raise CatchjaxError(f"{where}: architecture {actions[dup].tolist()} appears more than once")
    out = {}
    for name, values in columns.items():
        values = np.asarray(values)
        if values.shape != (n,):
            raise CatchjaxError(
                f"{where}: column {name!r} has shape {values.shape}, expected ({n},) "
                f"(one value per row of 'ops')"
            )
        if values.dtype.kind not in "fiu":
            raise CatchjaxError(f"{where}: column {name!r} is not numeric (dtype {values.dtype})")
        with np.errstate(over="ignore"):  # values beyond float32 are refused just below
            out[name] = values.astype(np.float32)
        infinite = np.flatnonzero(np.isinf(out[name]))
        if len(infinite):
            rows = ", ".join(map(str, infinite[:5])) + (" ..." if len(infinite) > 5 else "")
            beyond = values.dtype.kind == "f" and not np.isinf(values).any()
            raise CatchjaxError(
                f"{where}: column {name!r} has {len(infinite)} infinite value(s) (rows {rows}"
                f"{', beyond float32' if beyond else ''}"
                f"); no metric is infinite, and a search would rank such a row best or worst. "
                f"Write NaN for a missing value"
            )
        if not np.isfinite(out[name]).any():
            raise CatchjaxError(
                f"{where}: column {name!r} has no finite value (all NaN or infinite); the "
                f"file is damaged or was exported wrongly"
            )
    expected = np.asarray([space.to_str(a) for a in actions])
    if arch_str is not None:
        arch_str = np.asarray(arch_str).astype(str)
        if arch_str.shape != (n,):
            raise CatchjaxError(f"{where}: 'arch_str' has shape {arch_str.shape}, expected ({n},)")
        bad = np.flatnonzero(arch_str != expected)
        if len(bad):
            i = int(bad[0])
            raise CatchjaxError(
                f"{where}: row {i} has arch_str {arch_str[i]!r} but ops {actions[i].tolist()} "
                f"(= {expected[i]!r}); the file is inconsistent"
            )
    return Table(benchmark, space, actions, expected, out, source)
