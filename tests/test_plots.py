"""The plots: each returns a Figure drawing what it says, labelled with the fit's names."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import stanbhm as sb
from stanbhm import plots
from stanbhm.datasets import eight_schools, varying_slopes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def schools():
    model = sb.Model("y | se(sigma) ~ 1 + (1 | school)", eight_schools(),
                     parameterization="centered", rewrites="none")
    return model.fit(chains=2, seed=11, show_progress=False, advice=False)


@pytest.fixture(scope="module")
def slopes():
    df, _ = varying_slopes(seed=2, rows=300, groups=8)
    model = sb.Model("y ~ x + (1 + x | g)", df, rewrites="none")
    return model.fit(chains=2, iter_warmup=300, iter_sampling=200, seed=3, show_progress=False,
                     advice=False)


def test_funnel_marks_the_divergent_draws(schools) -> None:
    fig = plots.funnel(schools, "school")
    ax = fig.axes[0]
    draws, divergent = ax.collections
    count = schools.diagnostics()["divergences"]
    assert len(divergent.get_offsets()) == count > 0
    assert len(draws.get_offsets()) + count == 2000
    assert ax.get_xlabel() == "r_school[A]" and ax.get_ylabel() == "log sd_school"


def test_forest_labels_the_levels(schools) -> None:
    fig = plots.forest(schools, "school")
    labels = " ".join(t.get_text() for ax in fig.axes for t in ax.get_yticklabels())
    assert "coef_school[A]" in labels  # ArviZ names the variable once, then the levels
    for school in "BCDEFGH":
        assert f"[{school}]" in labels


def test_trace_shows_the_hyperparameters(schools) -> None:
    fig = plots.trace(schools)
    titles = {ax.get_title() for ax in fig.axes}
    assert titles == {"Intercept", "sd_school"}


def test_ppc_overlays_replicates_and_plots_observed_against_predicted(schools) -> None:
    fig = plots.ppc(schools)
    left, right = fig.axes[:2]
    assert len(left.get_lines()) >= 100
    points = right.get_lines()[0].get_xydata()
    np.testing.assert_array_equal(points[:, 0], [28, 8, -3, 7, -1, 1, 18, 12])
    rep = schools.to_arviz().posterior_predictive["y_rep"].mean(("chain", "draw")).values
    np.testing.assert_allclose(points[:, 1], rep)
    assert right.get_xlabel() == "observed"


def test_correlations_show_the_posterior_mean_matrix(slopes) -> None:
    fig = plots.correlations(slopes, "g")
    ax = fig.axes[0]
    shown = ax.get_images()[0].get_array()
    mean = slopes.to_arviz().posterior["Cor_g"].mean(("chain", "draw")).values
    np.testing.assert_allclose(shown, mean)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Intercept", "x"]
    with pytest.raises(ValueError, match=r"^'h' is not a group term of this model"):
        plots.correlations(slopes, "h")
