"""Build every table of `catchjax data get` from the pinned public files and compare it,
array by array, with a folder of reference tables (e.g. ../shared/data).

    python dev/check_public_sources.py --against ../shared/data            # downloads
    python dev/check_public_sources.py --against ../shared/data --from FOLDER

Prints one line per table: arrays equal (dtype, shape, values, NaN positions, order) and
whether the files are byte-identical; exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from catchjax.benchmarks import download, public_sources


def same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", required=True, help="folder of reference tables")
    ap.add_argument("--from", dest="source_folder", help="source files downloaded by hand")
    args = ap.parse_args(argv)
    failed = 0
    with tempfile.TemporaryDirectory() as out:
        built = download.get(["all"], out, args.source_folder, log=lambda line: None)
        for path, table in zip(built, public_sources.TABLES.values()):
            ref_path = Path(args.against) / table.filename
            with np.load(path) as mine, np.load(ref_path) as ref:
                differ = [k for k in ref.files if k not in mine.files or not same(mine[k], ref[k])]
                extra = [k for k in mine.files if k not in ref.files]
                n_arrays = len(ref.files)
            identical = path.read_bytes() == ref_path.read_bytes()
            failed += bool(differ or extra)
            print(f"{table.filename:24s} {n_arrays - len(differ)}/{n_arrays} arrays equal"
                  f"{'; differ: ' + ', '.join(differ) if differ else ''}"
                  f"{'; not in the reference: ' + ', '.join(extra) if extra else ''}"
                  f"; files {'byte-identical' if identical else 'differ in bytes'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
