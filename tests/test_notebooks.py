"""The notebooks: their saved outputs read cleanly on any machine, and each runs top to
bottom at its test size (code cells executed in order, as a kernel would) and leaves
what a reader is told to look at."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: A path of the machine that ran a notebook: its directories, the venv, site-packages
#: (scripts/run_notebooks.py refuses to save outputs with one).
MACHINE_PATH = re.compile(r"/(work|root|tmp|home|usr|opt)/|site-packages|\.venv")


def _healthy(fit) -> None:
    numbers = fit.diagnostics()
    assert numbers["rhat_max"] < 1.05
    assert numbers["divergences"] == 0


def _same_elpd(comparison) -> None:
    """One model in several programs: LOO does not tell them apart (their expected log
    predictive densities differ by Monte Carlo error, under a point)."""
    assert (comparison["elpd_diff"] < 1).all(), comparison["elpd_diff"]


def _eight_schools(ns: dict) -> None:
    _healthy(ns["fit"])
    _healthy(ns["m_fit"])
    assert ns["prior"].prior_only and "prior_predictive" in ns["prior"].to_arviz().groups()
    # the centered program diverges in the funnel, and its advice names the term
    assert ns["c_fit"].diagnostics()["divergences"] > ns["m_fit"].diagnostics()["divergences"]
    assert any("sd_school" in message for message in ns["c_fit"].advice())
    assert len(ns["comparison"]) == 3
    _same_elpd(ns["comparison"])
    # a new school's effect is less certain than that of a school in the data
    spread = ns["effect"].std(("chain", "draw")).values
    assert spread[1] > spread[0]


def _hierarchical(ns: dict) -> None:
    _healthy(ns["fit"])
    prior = ns["prior"].diagnostics()  # the prior, sampled non-centered, samples well
    assert prior["rhat_max"] < 1.05 and prior["divergences"] == 0
    assert ns["covered"] >= 0.8  # about 95% of the 95% intervals cover the truth
    assert len(ns["comparison"]) == 3
    _same_elpd(ns["comparison"])
    spread = ns["spread"]
    assert spread[1] > spread[0]  # the new group is less certain than a known one


def _retail(ns: dict) -> None:
    _healthy(ns["fit"])
    assert ns["prior"].diagnostics()["rhat_max"] < 1.05
    # expected demand: narrow with months of history, wider with a week, widest with none
    width = ns["mu"].groupby("kind")["width (95% / 5%)"]
    assert width.max()["months"] < width.min()["one week"]
    assert width.max()["one week"] < width.min()["no history"]
    # the cold-start store's real days: sampling its effects covers more of them
    sample, zero = ns["coverage"].loc["sample"], ns["coverage"].loc["zero"]
    assert sample["mean interval width"] > zero["mean interval width"]
    assert sample["days inside the 90% interval"] >= zero["days inside the 90% interval"]
    assert ns["comparison"].index[0] == "varying slopes"


def _scaling(ns: dict) -> None:
    assert list(ns["table"].index) == ["plain", "GLM", "GLM + 2 threads"]
    assert (ns["table"]["ms per gradient"] > 0).all()
    # the likelihood statements the reader is shown
    code = {name: ns["likelihood"](model.stan_code()) for name, model in ns["models"].items()}
    assert "neg_binomial_2_log_glm" not in code["plain"] and "reduce_sum" not in code["plain"]
    assert "neg_binomial_2_log_glm" in code["GLM"] and "reduce_sum" not in code["GLM"]
    assert "reduce_sum" in code["GLM + 2 threads"]
    # the benchmark the reader is shown: 2 threads beat the plain program at both sizes
    assert (ns["measured"].loc["GLM + 2 threads"] > 1).all()


def _censored_demand(ns: dict) -> None:
    for fit in ns["fits"].values():
        _healthy(fit)
    assert "poisson_lccdf(y[right]" in ns["models"]["cens()"].stan_code()
    table = ns["table"]
    naive, censored = table.loc["sales as demand"], table.loc["cens()"]
    # sales taken for demand put the store levels low, and most intervals miss them;
    # censoring the stocked-out days removes the bias
    error = "mean error of the store levels (log)"
    assert naive[error] < -0.04 and abs(censored[error]) < abs(naive[error]) / 3
    covers = "stores whose 90% interval covers the truth"
    assert naive[covers] <= 8 and censored[covers] >= 14
    demand = "expected demand of an open day"
    truth = table.loc["truth", demand]
    assert abs(censored[demand] / truth - 1) < 0.03 < abs(naive[demand] / truth - 1)


CHECKS = {"eight_schools.ipynb": _eight_schools, "hierarchical_regression.ipynb": _hierarchical,
          "retail_demand.ipynb": _retail, "scaling.ipynb": _scaling,
          "censored_demand.ipynb": _censored_demand}


def test_every_notebook_is_checked() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CHECKS)


def _text(output: dict) -> str:
    """What an output shows as text: a stream's text, a traceback, or its text data."""
    if output["output_type"] == "stream":
        return "".join(output["text"])
    if output["output_type"] == "error":
        return "\n".join(output["traceback"])
    return "\n".join("".join(value) for kind, value in output.get("data", {}).items()
                     if kind.startswith(("text/", "application/json")))


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_saved_outputs_are_clean(name) -> None:
    """The committed notebook was executed top to bottom, and its outputs hold no
    warning, log line or progress bar (nothing on stderr), no error, no path of the
    machine that ran it, and at least one plot."""
    nb = json.loads((NOTEBOOKS / name).read_text())
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))
    images = 0
    for number, cell in enumerate(cells, 1):
        for output in cell["outputs"]:
            text = _text(output)
            assert output.get("name") != "stderr", f"cell [{number}] wrote to stderr: {text}"
            assert output["output_type"] != "error", f"cell [{number}] failed: {text}"
            found = MACHINE_PATH.search(text)
            assert not found, f"cell [{number}] names a path ({found.group()}): {text}"
            images += "image/png" in output.get("data", {})
    assert images, "no plot saved"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_runs(name, monkeypatch):
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    monkeypatch.chdir(NOTEBOOKS)
    nb = json.loads((NOTEBOOKS / name).read_text())
    namespace: dict = {"__name__": "__notebook__", "SIZE": "test"}
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert cells
    try:
        for cell in cells:
            exec(compile("".join(cell["source"]), name, "exec"), namespace)
        CHECKS[name](namespace)
    finally:
        plt.close("all")
