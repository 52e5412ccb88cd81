"""The plots: each returns a Figure drawing what it says, labelled with the fit's names.

Tests that compile and sample are marked slow one by one; the ppc tests on hand-made
InferenceData (a stand-in fit without a model) run in the fast suite."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace

import arviz as az
import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
from stanbhm import plots
from stanbhm.datasets import eight_schools, varying_slopes


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


@pytest.mark.slow
def test_funnel_marks_the_divergent_draws(schools) -> None:
    fig = plots.funnel(schools, "school")
    ax = fig.axes[0]
    draws, divergent = ax.collections
    count = schools.diagnostics()["divergences"]
    assert len(divergent.get_offsets()) == count > 0
    assert len(draws.get_offsets()) + count == 2000
    assert ax.get_xlabel() == "r_school[A]" and ax.get_ylabel() == "log sd_school"


@pytest.mark.slow
def test_forest_labels_the_levels(schools) -> None:
    fig = plots.forest(schools, "school")
    labels = " ".join(t.get_text() for ax in fig.axes for t in ax.get_yticklabels())
    assert "coef_school[A]" in labels  # ArviZ names the variable once, then the levels
    for school in "BCDEFGH":
        assert f"[{school}]" in labels


@pytest.mark.slow
def test_trace_shows_the_hyperparameters(schools) -> None:
    fig = plots.trace(schools)
    titles = {ax.get_title() for ax in fig.axes}
    assert titles == {"Intercept", "sd_school"}


@pytest.mark.slow
def test_ppc_overlays_replicates_and_plots_observed_against_predicted(schools) -> None:
    fig = plots.ppc(schools)
    assert len(fig.axes) == 2
    left, right = fig.axes
    assert len(left.get_lines()) >= 100
    points = right.get_lines()[0].get_xydata()
    np.testing.assert_array_equal(points[:, 0], [28, 8, -3, 7, -1, 1, 18, 12])
    rep = schools.to_arviz().posterior_predictive["y_rep"]
    np.testing.assert_allclose(points[:, 1], rep.mean(("chain", "draw")).values)
    low, high = _interval_lines(right)
    np.testing.assert_allclose(low, rep.quantile(0.05, ("chain", "draw")).values)
    np.testing.assert_allclose(high, rep.quantile(0.95, ("chain", "draw")).values)
    assert right.get_xlabel() == "observed"
    assert fig._suptitle.get_text() == "posterior predictive check"


def _interval_lines(ax) -> tuple[np.ndarray, np.ndarray]:
    """The lower and upper ends of the vertical interval lines on `ax` (one collection)."""
    (lines,) = ax.collections
    segments = np.array(lines.get_segments())
    np.testing.assert_array_equal(segments[:, 0, 0], segments[:, 1, 0])  # vertical
    return segments[:, 0, 1], segments[:, 1, 1]


def _draws(fit) -> np.ndarray:
    """The fit's replicated outcome per draw, (draws, rows)."""
    rep = fit.to_arviz().posterior_predictive["y_rep"].values
    return rep.reshape(-1, rep.shape[-1])


def _mean_outside_interval(draws: np.ndarray) -> int:
    """Rows whose predictive mean lies outside their 5-95% interval: the rows for which
    the old ppc passed matplotlib a negative error length."""
    mean = draws.mean(axis=0)
    low, high = np.quantile(draws, [0.05, 0.95], axis=0)
    return int(((mean < low) | (mean > high)).sum())


@pytest.fixture(scope="module")
def voters() -> pd.DataFrame:
    """400 people in 20 states: whether each voted, by age (strongly: the oldest and
    youngest have predictive probabilities near 1 and 0, whose 0/1 draws put the mean
    outside the 5-95% interval), and a sparse count of visits (mostly 0)."""
    rng = np.random.default_rng(20240611)
    rows = 400
    state = rng.integers(0, 20, rows)
    age = rng.uniform(18, 90, rows)
    z = (age - age.mean()) / age.std()
    effect = rng.normal(0, 1, 20)
    p = 1 / (1 + np.exp(-(0.3 + 2.5 * z + effect[state])))
    return pd.DataFrame({
        "voted": rng.binomial(1, p),
        "age": age,
        "state": [f"S{s:02d}" for s in state],
        "visits": rng.poisson(np.exp(-1.0 + 0.8 * z + 0.5 * effect[state])),
    })


SMALL = dict(chains=2, iter_warmup=200, iter_sampling=200, show_progress=False, seed=5,
             advice=False)


@pytest.fixture(scope="module")
def voted(voters):
    return sb.Model("voted ~ scale(age) + (1 | state)", voters, family="bernoulli").fit(**SMALL)


@pytest.fixture(scope="module")
def visits(voters):
    return sb.Model("visits ~ scale(age) + (1 | state)", voters, family="poisson").fit(**SMALL)


@pytest.mark.slow
def test_ppc_of_a_bernoulli_fit_counts_the_zeros_and_ones(voters, voted) -> None:
    draws = _draws(voted)
    assert _mean_outside_interval(draws) > 0  # the rows that made the old ppc raise
    fig = plots.ppc(voted)
    assert len(fig.axes) == 1  # a row's 0/1 draws have no interval worth a panel
    (ax,) = fig.axes
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == list(np.bincount(voters["voted"], minlength=2))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]
    ones = draws.sum(axis=1)
    replicated = np.stack([len(voters) - ones, ones], axis=1)
    medians = ax.get_lines()[0].get_xydata()
    np.testing.assert_allclose(medians[:, 0], [0, 1])
    np.testing.assert_allclose(medians[:, 1], np.median(replicated, axis=0))
    low, high = _interval_lines(ax)
    np.testing.assert_allclose(low, np.quantile(replicated, 0.05, axis=0))
    np.testing.assert_allclose(high, np.quantile(replicated, 0.95, axis=0))
    assert ax.get_xlabel() == "voted"
    assert fig._suptitle.get_text() == "posterior predictive check"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["posterior predictive (median, 90%)", "observed"]


@pytest.mark.slow
def test_ppc_of_a_sparse_poisson_fit_draws_bars_and_rows(voters, visits) -> None:
    draws = _draws(visits)
    assert _mean_outside_interval(draws) > 0
    fig = plots.ppc(visits)
    assert len(fig.axes) == 2
    bars, rows = fig.axes
    y = voters["visits"].to_numpy()
    top = int(y.max())
    tail = (draws > top).sum(axis=1)
    assert tail.any()  # some draws go past the largest count: the pooled bar shows
    heights = [patch.get_height() for patch in bars.patches]
    assert heights == [*np.bincount(y), 0]
    labels = [t.get_text() for t in bars.get_xticklabels()]
    assert labels == [*map(str, range(top + 1)), f"≥{top + 1}"]
    medians = bars.get_lines()[0].get_xydata()[:, 1]
    assert medians[0] == np.median((draws == 0).sum(axis=1))
    assert medians[-1] == np.median(tail)
    points = rows.get_lines()[0].get_xydata()
    assert np.all(np.abs(points[:, 0] - y) <= 0.25)  # spread sideways, not moved off
    np.testing.assert_allclose(points[:, 1], draws.mean(axis=0))
    low, high = _interval_lines(rows)
    assert np.all(low <= high)
    np.testing.assert_allclose(high, np.quantile(draws, 0.95, axis=0))


@pytest.mark.slow
def test_ppc_of_a_prior_fit_says_prior_predictive(voters, voted) -> None:
    prior = voted.model.fit(prior_only=True, **SMALL)
    fig = plots.ppc(prior)  # the fit says it holds prior draws
    assert fig._suptitle.get_text() == "prior predictive check"
    (ax,) = fig.axes
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["prior predictive (median, 90%)", "observed"]
    assert [patch.get_height() for patch in ax.patches] == list(np.bincount(voters["voted"]))
    rep = prior.to_arviz().prior_predictive["y_rep"].values.reshape(-1, len(voters))
    ones = np.median(rep.sum(axis=1))
    np.testing.assert_allclose(ax.get_lines()[0].get_xydata()[:, 1], [len(voters) - ones, ones])


@pytest.mark.slow
def test_ppc_labels_prior_predictive_draws(voted, schools) -> None:
    with pytest.raises(ValueError, match=r"no prior predictive draws.*pass group='posterior'"):
        plots.ppc(voted, group="prior")
    with pytest.raises(ValueError, match="group must be 'posterior' or 'prior'"):
        plots.ppc(voted, group="predictions")
    # the discrete check's own legend, and ArviZ's density overlay's
    for fit, shown in ((voted, "prior predictive (median, 90%)"),
                       (schools, "Prior predictive")):
        idata = fit.to_arviz()
        prior = az.InferenceData(prior_predictive=idata.posterior_predictive,
                                 observed_data=idata.observed_data)
        stand_in = SimpleNamespace(model=fit.model, to_arviz=lambda prior=prior: prior)
        fig = plots.ppc(stand_in, group="prior")
        assert fig._suptitle.get_text() == "prior predictive check"
        legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert shown in legend
        with pytest.raises(ValueError, match="no posterior predictive draws"):
            plots.ppc(stand_in)


def _hand_made(y: np.ndarray, draws: np.ndarray) -> SimpleNamespace:
    """A stand-in fit without a model: observed y and (chains, draws, rows) y_rep."""
    rows = [str(i) for i in range(len(y))]
    idata = az.from_dict(posterior_predictive={"y_rep": draws}, observed_data={"y": y},
                         coords={"row": rows, "obs_id": rows},
                         dims={"y_rep": ["row"], "y": ["obs_id"]})
    return SimpleNamespace(model=None, to_arviz=lambda: idata)


def test_ppc_of_skewed_continuous_draws_draws_every_interval() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(0, 1, 30)
    # 3% of each row's draws far out put its mean above its 95% quantile
    draws = rng.normal(0, 1, (2, 200, 30))
    draws[:, :6] += 100.0
    flat = draws.reshape(-1, 30)
    assert np.all(flat.mean(axis=0) > np.quantile(flat, 0.95, axis=0))
    fig = plots.ppc(_hand_made(y, draws))
    left, right = fig.axes
    assert len(left.get_lines()) >= 100
    low, high = _interval_lines(right)
    np.testing.assert_allclose(low, np.quantile(flat, 0.05, axis=0))
    np.testing.assert_allclose(high, np.quantile(flat, 0.95, axis=0))
    np.testing.assert_allclose(right.get_lines()[0].get_xydata()[:, 1], flat.mean(axis=0))


def test_ppc_of_wide_counts_shares_bars_and_pools_the_tail() -> None:
    rng = np.random.default_rng(4)
    y = np.append(rng.poisson(60, 199), 500)  # one outlying row
    draws = rng.poisson(60, (2, 100, 200)).astype(float)
    fig = plots.ppc(_hand_made(y.astype(float), draws))
    bars = fig.axes[0]
    labels = [t.get_text() for t in bars.get_xticklabels()]
    top = int(np.quantile(y, 0.99))  # the outlier does not stretch the range shown
    width = -(-(top + 1) // 30)
    assert width > 1 and len(labels) == top // width + 2
    assert labels[0] == f"0-{width - 1}" and labels[-1] == f"≥{(top // width + 1) * width}"
    heights = np.array([patch.get_height() for patch in bars.patches])
    assert heights.sum() == len(y) and heights[-1] == (y >= (top // width + 1) * width).sum()
    assert heights[-1] >= 1  # the outlier is in the pooled tail


def test_ppc_of_counts_leaves_overflowing_draws_out_and_says_so() -> None:
    """A prior predictive draw of a log-link count whose rng overflowed is NaN in every
    row (Stan writes the whole draw so); np.bincount refused it ("'list' argument must
    have no negative elements")."""
    rng = np.random.default_rng(5)
    y = rng.poisson(3, 50).astype(float)
    draws = rng.poisson(3, (2, 40, 50)).astype(float)
    draws[0, :7] = np.nan
    fig = plots.ppc(_hand_made(y, draws))
    bars = fig.axes[0]
    heights = np.array([patch.get_height() for patch in bars.patches])
    assert heights.sum() == len(y)
    labels = [text.get_text() for text in bars.get_legend().get_texts()]
    assert any("; 7 of 80 overflowing draws left out" in label for label in labels)
    draws[:] = np.nan
    with pytest.raises(ValueError, match=r"^every replicated draw overflowed"):
        plots.ppc(_hand_made(y, draws))


@pytest.mark.slow
def test_correlations_show_the_posterior_mean_matrix(slopes) -> None:
    fig = plots.correlations(slopes, "g")
    ax = fig.axes[0]
    shown = ax.get_images()[0].get_array()
    mean = slopes.to_arviz().internals["Cor_g"].mean(("chain", "draw")).values
    np.testing.assert_allclose(shown, mean)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Intercept", "x"]
    with pytest.raises(ValueError, match=r"^'h' is not a group term of this model"):
        plots.correlations(slopes, "h")
