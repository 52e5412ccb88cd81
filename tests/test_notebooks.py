"""Notebooks run top to bottom at their test size (code cells executed in order, as a
kernel would); each leaves what a reader is told to look at."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _healthy(ns: dict) -> None:
    assert ns["fit"].diagnostics()["rhat_max"] < 1.05


def _eight_schools(ns: dict) -> None:
    _healthy(ns)
    assert ns["c_fit"].diagnostics()["divergences"] > ns["m_fit"].diagnostics()["divergences"]


def _hierarchical(ns: dict) -> None:
    _healthy(ns)
    spread = ns["pred"]["y"].std(("chain", "draw")).values
    assert spread[1] > spread[0]  # the new group is less certain than a known one


def _retail(ns: dict) -> None:
    _healthy(ns)
    table = ns["pd"].DataFrame(ns["errors"])
    assert table["hierarchical"].mean() < table["own week only"].mean()


def _scaling(ns: dict) -> None:
    assert list(ns["table"].index) == ["plain", "GLM", "GLM + 2 threads"]


CHECKS = {"eight_schools.ipynb": _eight_schools, "hierarchical_regression.ipynb": _hierarchical,
          "retail_demand.ipynb": _retail, "scaling.ipynb": _scaling}


def test_every_notebook_is_checked() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CHECKS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_runs(name, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(NOTEBOOKS)
    nb = json.loads((NOTEBOOKS / name).read_text())
    namespace: dict = {"__name__": "__notebook__", "SIZE": "test"}
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert cells
    for cell in cells:
        exec(compile("".join(cell["source"]), name, "exec"), namespace)
    CHECKS[name](namespace)
