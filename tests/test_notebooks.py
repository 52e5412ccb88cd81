"""Notebooks run top to bottom (code cells executed in order, as a kernel would)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch, eight_schools_df):
    matplotlib.use("Agg")
    monkeypatch.chdir(NOTEBOOKS)
    nb = json.loads(path.read_text())
    namespace: dict = {"__name__": "__notebook__"}
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert cells
    for cell in cells:
        exec(compile("".join(cell["source"]), f"{path.name}", "exec"), namespace)
    assert namespace["fit"].diagnostics()["rhat_max"] < 1.05
