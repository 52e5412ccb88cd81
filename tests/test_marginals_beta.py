"""The beta-binomial marginal (`marginals.beta`): each level's probability integrated out,
asked for by name. Checked on its decisions and refusals, its generated text (the
linear predictor computed per level), and its exact log density and gradient against
scipy's beta-binomial of each level's totals and at the binomial limit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from exact import gradient, log_density
from rewrite_cases import decision, model_block, transformed_data
from scipy import stats

import stanbhm as sb
from stanbhm.errors import PlanError


def beta_binomial_data(varying: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    level = np.repeat(np.arange(12), rng.integers(2, 6, size=12))
    xg = rng.normal(size=12)
    n = rng.integers(3, 15, size=len(level))
    p = 1 / (1 + np.exp(-(0.3 + 0.8 * xg[level] + rng.normal(0, 0.6, size=12)[level])))
    x = xg[level] + (rng.normal(size=len(level)) if varying else 0.0)
    return pd.DataFrame({"g": [f"g{k:02d}" for k in level], "x": x, "n": n,
                         "y": rng.binomial(n, p)})


def test_beta_binomial_is_asked_for_by_name_and_needs_level_covariates() -> None:
    df = beta_binomial_data()
    model = sb.Model("y | trials(n) ~ x + (1 | g)", df, family="binomial",
                     rewrites={"g": "beta_binomial"})
    assert decision(model, "marginalization").startswith(
        "marginalization: effects of g integrated out; 'beta_binomial' requested: each level "
        "has one probability p ~ beta(mu kappa, (1 - mu) kappa)")
    assert "  kappa_g ~ gamma(2, 0.1);\n" in model.stan_code()
    with pytest.raises(PlanError, match=r"prior 'sd_g' is for an sd, but rewrites asks for "
                       r"g's effects to be beta-binomial, whose spread is the concentration "
                       r"kappa_g \(default prior gamma\(2, 0.1\)\); drop that prior"):
        sb.Model("y | trials(n) ~ x + (1 | g)", df, family="binomial",
                 rewrites={"g": "beta_binomial"}, priors={"sd_g": "normal(0, 1)"})
    data = model.stan_data()
    assert list(data["Y_g"]) == list(df.groupby("g")["y"].sum())
    assert list(data["T_g"]) == list(df.groupby("g")["n"].sum())
    assert "y_g ~" not in model.stan_code()
    with pytest.raises(PlanError, match=r"rewrites\['g'\] = 'beta_binomial': column 'x' varies "
                       r"within its levels; the beta-binomial needs the rest of the linear "
                       r"predictor to be the level's own"):
        sb.Model("y | trials(n) ~ x + (1 | g)", beta_binomial_data(varying=True),
                 family="binomial", rewrites={"g": "beta_binomial"})
    with pytest.raises(PlanError, match=r"beta probabilities are conjugate to bernoulli and "
                       r"binomial rows, not to the poisson family"):
        sb.Model("y ~ x + (1 | g)", df, family="poisson", rewrites={"g": "beta_binomial"})
    empty = df.copy()
    empty["y"] = empty["y"].astype(float)
    empty.loc[empty["g"] == "g03", "y"] = np.nan
    with pytest.raises(PlanError, match=r"level 'g03' has no observed row"):
        sb.Model("y | trials(n) ~ x + (1 | g)", empty, family="binomial",
                 rewrites={"g": "beta_binomial"})


@pytest.mark.slow
@pytest.mark.log_density
def test_beta_binomial_reaches_the_binomial_limit_as_kappa_grows() -> None:
    """At concentration 1e18 every level's probability is its mean, so the log density
    and its gradient are the binomial's: Stan's beta_binomial lost its digits there (its
    log density rose by 214 between concentrations 2.5e17 and 1e26, and the gradient in
    the intercept was 0.008 instead of 2.45), a trap for any chain that wandered up."""
    df = beta_binomial_data()
    model = sb.Model("y | trials(n) ~ x + (1 | g)", df, family="binomial",
                     rewrites={"g": "beta_binomial"},
                     priors={"Intercept": "normal(0, 2)", "b": "normal(0, 2)",
                             "sd": "normal(0, 1)"})
    xc = (df["x"] - df["x"].mean()).to_numpy()
    y, n = df["y"].to_numpy(), df["n"].to_numpy()

    def binomial(c: float, b: float) -> tuple[float, float, float]:
        """The log density without constants, and its gradient in c and b."""
        eta = c + b * xc
        p = 1 / (1 + np.exp(-eta))
        lp = (y * eta - n * np.log1p(np.exp(eta))).sum() - (c ** 2 + b ** 2) / 8
        return lp, (y - n * p).sum() - c / 4, ((y - n * p) * xc).sum() - b / 4

    points = [(0.3, 0.8), (-0.4, 1.5)]
    for kappa in (1e9, 1e18, 1e26):
        if kappa < 1e10:  # above, gamma(2, 0.1)'s -0.1 kappa leaves no digits for a gap
            lp = [log_density(model, {"Intercept": c, "b": [b], "kappa_g": kappa},
                              prior_only=False) for c, b in points]
            exact = [binomial(c, b)[0] for c, b in points]
            assert abs((lp[1] - lp[0]) - (exact[1] - exact[0])) < 1e-6, kappa
        for c, b in points:
            grad = gradient(model, {"Intercept": c, "b": [b], "kappa_g": kappa})
            _, dc, db = binomial(c, b)
            assert grad["Intercept"] == pytest.approx(dc, rel=1e-6, abs=1e-6)
            # b is sampled in units of its multiplier, scale_b
            assert grad["b.1"] == pytest.approx(db * model.stan_data()["scale_b"][0],
                                                rel=1e-6, abs=1e-6)
            # in log kappa, Jacobian included: gamma(2, 0.1)'s 2 - 0.1 kappa alone
            assert grad["kappa_g"] == pytest.approx(2 - 0.1 * kappa, rel=1e-6), grad


@pytest.mark.slow
def test_beta_binomial_log_density_is_the_beta_binomial() -> None:
    """At 20 points the program's log density is scipy's beta-binomial of each level's
    totals plus the priors, a constant apart."""
    df = beta_binomial_data()
    model = sb.Model("y | trials(n) ~ x + (1 | g)", df, family="binomial",
                     rewrites={"g": "beta_binomial"},
                     priors={"Intercept": "normal(0, 2)", "b": "normal(0, 2)",
                             "sd": "normal(0, 1)"})
    totals = df.groupby("g")[["y", "n"]].sum()
    xg = df.groupby("g")["x"].first().to_numpy()
    rng = np.random.default_rng(5)
    gaps = []
    for _ in range(20):
        point = {"Intercept": rng.normal(0, 1), "b": [rng.normal(0, 1)],
                 "kappa_g": rng.uniform(0.25, 100.0)}
        mu = 1 / (1 + np.exp(-(point["Intercept"] + point["b"][0] * (xg - df["x"].mean()))))
        expected = beta_binomial_log_density(point, mu, totals)
        gaps.append(log_density(model, point, prior_only=False) - expected)
    assert max(gaps) - min(gaps) < 1e-8 * max(abs(g) for g in gaps), gaps


def beta_binomial_log_density(point: dict, mu: np.ndarray, totals: pd.DataFrame) -> float:
    """The priors the beta-binomial tests set (Intercept and b ~ normal(0, 2)), kappa's
    default gamma(2, 0.1), and scipy's beta-binomial of each level's totals at mean `mu`."""
    k = point["kappa_g"]
    return float(stats.norm.logpdf(point["Intercept"], 0, 2)
                 + stats.norm.logpdf(point["b"][0], 0, 2) + stats.gamma.logpdf(k, 2, scale=10)
                 + stats.betabinom.logpmf(totals["y"], totals["n"], mu * k,
                                          (1 - mu) * k).sum())


def nested_beta_binomial_data() -> pd.DataFrame:
    """`beta_binomial_data` with a region holding every 4 levels of g, an offset constant
    within each level, and two rows without an outcome."""
    df = beta_binomial_data()
    level = df["g"].str[1:].astype(int)
    df["region"] = (level // 4).map(lambda k: f"r{k}")
    df["o"] = 0.1 * level
    df["y"] = df["y"].astype(float)
    df.loc[[1, 20], "y"] = np.nan
    return df


BETA_NESTED = "y | trials(n) ~ x + offset(o) + (1 | region) + (1 | g)"


def test_beta_binomial_computes_the_linear_predictor_per_level() -> None:
    """The beta-binomial reads each level's linear predictor, constant within the level:
    a fitted row stands for each (the cells of `collapse` are the levels), so a gradient
    costs O(levels x columns), and its data are converted once."""
    df = nested_beta_binomial_data()
    model = sb.Model(BETA_NESTED, df, family="binomial", rewrites={"g": "beta_binomial"},
                     parameterization={"region": "noncentered"})
    assert decision(model, "collapse") == (
        "collapse: a fitted row for each level of g; 37 rows in 12 levels of g, the linear "
        "predictor constant within each, as the beta-binomial needs: it is computed for the "
        "levels, O(levels x columns), not for the rows")
    assert model.plan.likelihood.cells.level_of == "g"
    code = model.stan_code()
    td = transformed_data(code)
    assert ("  int N_cell = N_g; // cells: the levels of g\n"
            "  array[N_cell] int cell = first_g; // the fitted row standing for each\n"
            "  vector[N_g] hit_g = to_vector(Y_g); // successes of each level\n"
            "  vector[N_g] miss_g = to_vector(T_g) - hit_g; // failures of each level\n"
            "  vector[N_g] T_g_vec = to_vector(T_g); // trials of each level\n") in td
    assert "  matrix[N_cell, K] Xc_cell = Xc[cell]; // rows standing for the cells\n" in td
    assert "  vector[N_cell] offs_cell = offs_obs[cell]; // offset of the cells\n" in td
    assert "  array[N_cell] int J_region_cell = J_region_obs[cell];" in td
    body = model_block(code)
    assert ("    vector[N_cell] eta = Intercept + Xc_cell * b; // linear predictor\n"
            "    eta += r_region[J_region_cell];\n"
            "    eta += offs_cell;\n") in body
    assert "Xc * b" not in body and "to_vector(" not in body and "rep_vector(" not in body
    assert "    target += -sum_log_rising_ratio(kappa_g, T_g_vec);\n" in body
    assert "    r_g = logit(to_vector(beta_rng(a_g, b_g))) - eta;\n" in code
    data = model.stan_data()
    assert "N_cell" not in data and "cell" not in data and "y_cell" not in data


@pytest.mark.slow
@pytest.mark.log_density
def test_beta_binomial_per_level_is_the_beta_binomial() -> None:
    """With another factor's effects, an offset and rows without an outcome, the log
    density at 20 points is scipy's beta-binomial of each level's totals plus the priors,
    a constant apart: the linear predictor at one row per level is the levels' own."""
    df = nested_beta_binomial_data()
    model = sb.Model(BETA_NESTED, df, family="binomial", rewrites={"g": "beta_binomial"},
                     parameterization={"region": "noncentered"},
                     priors={"Intercept": "normal(0, 2)", "b": "normal(0, 2)",
                             "sd": "normal(0, 1)"})
    fitted = df.dropna(subset=["y"])
    totals = fitted.groupby("g")[["y", "n"]].sum()
    first = fitted.groupby("g")[["x", "o", "region"]].first()
    region = first["region"].str[1:].astype(int).to_numpy()
    xc = first["x"].to_numpy() - fitted["x"].mean()
    rng = np.random.default_rng(6)
    gaps = []
    for _ in range(20):
        z = rng.normal(size=3)
        point = {"Intercept": rng.normal(0, 1), "b": [rng.normal(0, 1)],
                 "sd_region": rng.uniform(0.1, 1.0), "z_region": z.tolist(),
                 "kappa_g": rng.uniform(0.25, 100.0)}
        eta = (point["Intercept"] + point["b"][0] * xc + point["sd_region"] * z[region]
               + first["o"].to_numpy())
        mu = 1 / (1 + np.exp(-eta))
        expected = (beta_binomial_log_density(point, mu, totals)
                    + stats.norm.logpdf(point["sd_region"], 0, 1) + stats.norm.logpdf(z).sum())
        gaps.append(log_density(model, point, prior_only=False) - expected)
    assert max(gaps) - min(gaps) < 1e-8 * max(abs(g) for g in gaps), gaps
