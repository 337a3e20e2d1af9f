"""The Colab notebook runs top to bottom (tiny sizes, synthetic table, CPU kernel)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "catchjax_colab.ipynb"


def _run(tmp_path, monkeypatch, **env):
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[test]' for nbformat")
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[test]' for nbclient")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    return client, nb


@pytest.mark.slow  # a fresh kernel compiles everything again; `pytest -m slow` runs it
def test_notebook_executes_with_small_sizes(tmp_path, monkeypatch):
    client, nb = _run(tmp_path, monkeypatch, CATCHJAX_NB_TRIALS="6", CATCHJAX_NB_BUDGET="8",
                      CATCHJAX_NB_META_EPOCHS="2", CATCHJAX_NB_DATA="",
                      CATCHJAX_NB_METHODS="random,rea", CATCHJAX_NB_OUT=str(tmp_path / "o"),
                      CATCHJAX_DATA="", CATCHJAX_COMPILE_CACHE="off")
    client.execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert "synthetic NAS-Bench-201-shaped table" in text
    assert "trials/s) on cpu" in text and "catch-meta:" in text
    assert "running on CPU: 1 x cpu (one device" in text and "| jaxlib " in text
    assert "REA on 4 simulated CPU devices (cpu x4): 6 of 6 trials equal" in text
    report = (tmp_path / "o" / "report" / "comparison.csv").read_text()
    for method in ("random", "rea", "catch-meta"):
        assert f"\n{tmp_path / 'o' / method}," in report
    assert (tmp_path / "o" / "meta-agent" / "catchjax.json").exists()


def test_notebook_names_missing_data(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[test]' for nbclient")
    client, _ = _run(tmp_path, monkeypatch, CATCHJAX_NB_DATA=str(tmp_path / "nothing"),
                     CATCHJAX_NB_OUT=str(tmp_path / "o"), CATCHJAX_COMPILE_CACHE="off")
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="has no nb201.npz"):
        client.execute()
    assert not (tmp_path / "o").exists()
