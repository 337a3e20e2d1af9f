"""catchjax.runs.progress: resumable sweeps' chunk files."""


import pytest

from catchjax.errors import CatchjaxError
from catchjax.runs import sweeps


def test_progress_file_is_written_atomically(syn_nb201, tmp_path):
    progress = tmp_path / "p"
    sweeps.sweep("random", syn_nb201, trials=4, budget=5, chunk_size=2, progress_dir=progress)
    assert sorted(p.name for p in (progress / "chunks").iterdir()) == ["000000.npz",
                                                                       "000001.npz"]
    (progress / "chunks" / "000001.npz").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(CatchjaxError, match="cannot read sweep progress"):
        sweeps.sweep("random", syn_nb201, trials=4, budget=5, chunk_size=2,
                     progress_dir=progress)
