"""The fit as brms and lme4 print it: summary(), fixef(), ranef(), coef(), print()."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
from stanbhm.summary import COLUMNS, DIAGNOSTICS

FORMULA = "y ~ x + trt + (1 + x | g)"


def slopes_data() -> pd.DataFrame:
    """Ten groups, x far from 0 (mean about 5), so that 'at x = 0' and 'at the mean of x'
    differ by several sds."""
    rng = np.random.default_rng(5)
    n = 300
    g = rng.integers(0, 10, n)
    x = rng.normal(5, 1, size=n)
    y = 1 + rng.normal(0, 1, 10)[g] + (0.5 + rng.normal(0, 0.3, 10)[g]) * x \
        + rng.normal(0, 0.5, n)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{j}" for j in g],
                         "trt": np.where(np.arange(n) % 2, "b", "a")})


@pytest.fixture(scope="module")
def slopes_fit():
    model = sb.Model(FORMULA, slopes_data())
    return model.fit(chains=2, seed=3, show_progress=False, adapt_delta=0.95)


def test_model_prints_formula_family_rows_and_decisions(eight_schools_df):
    model = sb.Model("y | se(sigma) ~ 1 + (1 | school)", eight_schools_df)
    text = repr(model)
    assert text.splitlines()[:4] == [
        "stanbhm Model: y | se(sigma) ~ 1 + (1 | school)",
        "  family: gaussian (identity link)",
        "  rows: 8, 8 with an observed outcome",
        "  (Intercept | school): 8 levels, 1 effect",
    ]
    assert "    marginalization: effects of school integrated out" in text


@pytest.mark.slow
def test_summary_has_brms_tables_and_labels(slopes_fit):
    summary = slopes_fit.summary()
    assert list(summary.groups) == ["~g (Number of levels: 10)"]
    group = summary.groups["~g (Number of levels: 10)"]
    assert list(group.index) == ["sd(Intercept)", "sd(x)", "cor(Intercept,x)"]
    assert list(group.columns) == COLUMNS + DIAGNOSTICS
    assert list(summary.population.index) == ["Intercept", "x", "trt[T.b]"]
    assert list(summary.family.index) == ["sigma"]
    posterior = slopes_fit.to_arviz().posterior
    np.testing.assert_allclose(summary.population.loc["Intercept", "Estimate"],
                               float(posterior["b_Intercept"].mean()))
    np.testing.assert_allclose(group.loc["sd(x)", "Estimate"],
                               float(posterior["sd_g"].sel(g_effect="x").mean()))
    low, high = np.quantile(posterior["sigma"].values, [0.025, 0.975])
    np.testing.assert_allclose(summary.family.loc["sigma", ["Q2.5", "Q97.5"]], [low, high])
    text = str(summary)
    assert text.startswith(" Family: gaussian\n  Links: mu = identity\nFormula: " + FORMULA)
    assert "\nMultilevel Hyperparameters:\n~g (Number of levels: 10)\n" in text
    assert "\nRegression Coefficients:\n" in text
    assert "\nFurther Distributional Parameters:\n" in text
    assert "Draws were sampled using NUTS: " in text
    assert repr(slopes_fit) == text


@pytest.mark.slow
def test_fixef_is_the_population_at_predictors_zero(slopes_fit):
    table = slopes_fit.fixef()
    posterior = slopes_fit.to_arviz().posterior
    assert list(table.columns) == COLUMNS
    np.testing.assert_allclose(table.loc["x", "Estimate"],
                               float(posterior["b"].sel(coef="x").mean()))
    np.testing.assert_allclose(table.loc["Intercept", "Est.Error"],
                               float(posterior["b_Intercept"].std(ddof=1)))


@pytest.mark.slow
def test_coef_is_each_levels_line_at_x_zero(slopes_fit):
    """lme4's coef(): a level's intercept is its line's value at x = 0 (for trt = a), the
    same number the fitted program predicts for that row; its slope is the population
    slope plus the level's deviation."""
    coef = slopes_fit.coef("g")
    levels = list(coef.index)
    assert levels == [f"g{j}" for j in range(10)]
    rows = pd.DataFrame({"x": 0.0, "g": levels, "trt": "a", "y": 0.0})
    line = slopes_fit.posterior_linpred(rows, new_levels="error")
    np.testing.assert_allclose(coef[("Intercept", "Estimate")].to_numpy(),
                               line.mean(("chain", "draw")).values, atol=1e-5)  # 6 digits
    ranef = slopes_fit.ranef()["g"]
    population = slopes_fit.fixef()
    np.testing.assert_allclose(coef[("x", "Estimate")],
                               ranef[("x", "Estimate")] + population.loc["x", "Estimate"])
    assert list(ranef.columns.get_level_values(1)[:4]) == COLUMNS


def test_ranef_names_the_terms_it_has(eight_schools_df):
    fit = sb.Fit.__new__(sb.Fit)
    fit.model = sb.Model("y | se(sigma) ~ 1 + (1 | school)", eight_schools_df)
    with pytest.raises(ValueError, match=r"'store' is not a group term of this model "
                                         r"\(group terms: school\)"):
        fit.ranef("store")
