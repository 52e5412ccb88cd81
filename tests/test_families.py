"""Compile and sample every family on simulated data: the truth is recovered.

Each model has about twenty parameters; with seeded data the number of true values
inside their central 90% intervals must be what a calibrated posterior gives
(Binomial(k, 0.9): fewer than k - 6 would happen with probability < 0.001).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import stanbhm as sb
from stanbhm.datasets import wide_regression

pytestmark = pytest.mark.slow
G = 15


def simulate(family: str, seed: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = 600
    g = rng.integers(0, G, size=n)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    intercept, b = (0.3, np.array([0.5, -0.4])) if family != "gaussian" else (
        2.0, np.array([1.0, -0.5]))
    sd = 0.6
    r = rng.normal(0, sd, size=G)
    eta = intercept + b[0] * x + b[1] * z + r[g]
    df = pd.DataFrame({"x": x, "z": z, "g": [f"g{k:02d}" for k in g]})
    # X is centered in the program; b_Intercept is the intercept at x = 0, as simulated.
    truth = {"b_Intercept": np.array([intercept]), "b": b, "sd_g": np.array([sd]), "r_g": r}
    if family == "gaussian":
        df["y"] = eta + rng.normal(0, 1.2, size=n)
        truth["sigma"] = np.array([1.2])
    elif family == "student_t":
        df["y"] = eta + 1.2 * rng.standard_t(5, size=n)
        truth["sigma"] = np.array([1.2])
    elif family == "bernoulli":
        df["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    elif family == "binomial":
        df["n"] = rng.integers(3, 12, size=n)
        df["y"] = rng.binomial(df["n"], 1 / (1 + np.exp(-eta)))
    elif family == "poisson":
        df["y"] = rng.poisson(np.exp(eta))
    elif family == "negbinomial":
        phi = 4.0
        mu = np.exp(eta)
        df["y"] = rng.negative_binomial(phi, phi / (phi + mu))
        truth["phi"] = np.array([phi])
    elif family == "lognormal":
        df["y"] = np.exp(eta + rng.normal(0, 0.5, size=n))
        truth["sigma"] = np.array([0.5])
    elif family == "gamma":
        shape = 5.0
        df["y"] = rng.gamma(shape, np.exp(eta) / shape)
        truth["shape"] = np.array([shape])
    return df, truth


FORMULAS = {
    "binomial": "y | trials(n) ~ x + z + (1 | g)",
}


@pytest.mark.parametrize("family", list(sb.FAMILIES))
def test_truth_inside_90_percent_intervals(family):
    df, truth = simulate(family, seed=sum(map(ord, family)))
    formula = FORMULAS.get(family, "y ~ x + z + (1 | g)")
    model = sb.Model(formula, df, family=family, parameterization="noncentered")
    fit = model.fit(chains=4, parallel_chains=4, seed=5, iter_warmup=500, iter_sampling=500)
    inside = total = 0
    for name, values in truth.items():
        draws = fit.cmdstan.stan_variable(name).reshape(2000, -1)
        lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
        inside += int(np.sum((values >= lo) & (values <= hi)))
        total += len(values)
    # P(X < k) for X ~ Binomial(total, 0.9) below 1e-3 sets the bar.
    k = int(stats.binom.ppf(1e-3, total, 0.9))
    assert inside >= k, f"{family}: {inside} of {total} true values inside (need {k})"
    assert fit.diagnostics()["rhat_max"] < 1.05


def test_horseshoe_on_a_wide_regression():
    """100 rows x 500 predictors, 3 of them non-zero: the signals stand out, the rest shrink."""
    df, beta = wide_regression(seed=3)
    formula = "y ~ " + " + ".join(df.columns[:-1])
    model = sb.Model(formula, df, priors={"b": "horseshoe(df=1, scale_global=0.0025)"})
    assert "regularized horseshoe(df=1, scale_global=0.0025" in model.stan_code()
    fit = model.fit(chains=2, parallel_chains=2, seed=11, iter_warmup=500, iter_sampling=500,
                    adapt_delta=0.95)
    b = fit.cmdstan.stan_variable("b")
    lo, hi = np.quantile(b, [0.05, 0.95], axis=0)
    for j in (0, 1, 2):
        assert lo[j] <= beta[j] <= hi[j] and not lo[j] <= 0 <= hi[j]
    null = np.abs(np.median(b[:, 3:], axis=0))
    assert np.median(null) < 0.02 and null.max() < 0.5


def test_correlated_term_reports_labelled_correlations():
    """Centered (one multi_normal_cholesky over an array of row vectors) and labelled."""
    rng = np.random.default_rng(8)
    groups, n = 30, 900
    g = rng.integers(0, groups, size=n)
    x = rng.normal(size=n)
    cov = np.array([[0.8**2, 0.6 * 0.8 * 0.5], [0.6 * 0.8 * 0.5, 0.5**2]])
    effects = rng.multivariate_normal([0, 0], cov, size=groups)
    y = 1 + 0.5 * x + effects[g, 0] + effects[g, 1] * x + rng.normal(0, 0.5, size=n)
    df = pd.DataFrame({"y": y, "x": x, "g": [f"g{k:02d}" for k in g]})
    model = sb.Model("y ~ x + (1 + x | g)", df, parameterization="centered")
    fit = model.fit(chains=4, parallel_chains=4, seed=3, iter_warmup=500, iter_sampling=500)
    idata = fit.to_arviz()
    post = idata.posterior
    cor = idata.internals["Cor_g"]  # the whole matrix; the posterior holds its one pair
    assert cor.dims == ("chain", "draw", "g_effect", "g_effect_bis")
    assert list(cor.coords["g_effect"].values) == ["Intercept", "x"]
    np.testing.assert_allclose(cor.sel(g_effect="x", g_effect_bis="x").values, 1.0)
    rho = post["cor_g"].sel(g_effect_pair="Intercept, x").values.ravel()
    lo, hi = np.quantile(rho, [0.05, 0.95])
    assert lo < 0.6 < hi
    coef = post["coef_g"]
    assert coef.dims == ("chain", "draw", "g", "g_effect")
    total = coef.sel(g_effect="x").mean(("chain", "draw")).values
    assert np.corrcoef(total, 0.5 + effects[np.argsort([f"g{k:02d}" for k in range(groups)]),
                                            1])[0, 1] > 0.8
    assert fit.diagnostics()["rhat_max"] < 1.05


def test_known_standard_errors_fill_the_sd_placeholder_of_the_family_row() -> None:
    """A family that accepts se() names its rows' sd as ``{sigma}`` in every template, so
    the likelihood fills in the standard errors by the template, never by replacing text."""
    for family in sb.FAMILIES.values():
        templates = (*family.args, family.rng, family.mean)
        if family.allows_se:
            assert any("{sigma}" in t for t in family.args), family.name
            assert "{sigma}" in family.rng, family.name
        assert not any("sigma" in t.replace("{sigma}", "") for t in templates
                       if family.allows_se), family.name
