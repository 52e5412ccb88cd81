"""The normal marginal (`marginals.normal`): a gaussian group intercept integrated out
exactly. Its likelihood is checked against an independent one (scipy's multivariate
normal over each level's rows) at random points through CmdStan's exact log density,
its posterior (hyper-parameters and the effects drawn back) against the plain
program's within Monte Carlo error, and its generated text (weights built once in
transformed data, log_lik="marginal" per row or per level).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from rewrite_cases import (
    _agree,
    assert_likelihood_is,
    decision,
    grouped,
    model_block,
    transformed_data,
)
from scipy import stats

import stanbhm as sb
from stanbhm.errors import PlanError


def _marginal_loglik(resid, variances, level, tau) -> float:
    """log N(resid | 0, diag(variances) + tau^2 * (same level)), level by level."""
    total = 0.0
    for j in np.unique(level):
        rows = level == j
        cov = np.diag(variances[rows]) + tau**2
        total += stats.multivariate_normal(np.zeros(rows.sum()), cov).logpdf(resid[rows])
    return total


@pytest.mark.parametrize("missing", [False, True])
def test_marginal_weights_are_data_built_once(missing) -> None:
    """1 / se^2 and level_sums' 1 per row are data: transformed data builds them, and a
    gradient multiplies by them instead of dividing by square(se) and building a vector
    of ones per call."""
    df = grouped(seed=3, missing=missing)
    code = sb.Model("y | se(s) ~ x + (1 | g)", df).stan_code()
    n, suffix = ("N_obs", "_obs") if missing else ("N", "")
    assert (f"  vector[{n}] inv_var = inv_square(se{suffix}); // 1 / se^2 of each fitted "
            f"row\n  vector[{n}] ones_g = rep_vector(1, {n}); // a 1 per row: the values "
            "of level_sums' sparse matrix\n") in transformed_data(code)
    assert (f"    vector[{n}] scaled = resid .* inv_var; // residuals over their variances\n"
            "    vector[N_g] sum_g = level_sums(scaled, ones_g, rows_g, start_g); // per level\n"
            ) in model_block(code)
    assert "square(se" not in model_block(code)
    assert "rep_vector(" not in code.split("\ndata {\n")[0]  # the functions block
    assert "    return csr_matrix_times_vector(m, n, w, rows, start, v);\n" in code
    sigma = sb.Model("y ~ x + (1 | g)", df, rewrites=["marginalize"]).stan_code()
    assert "    vector[N_g] sum_g = level_sums(resid, ones_g, rows_g, start_g); // per level\n" \
        in sigma


@pytest.mark.slow
@pytest.mark.parametrize("case", ["sigma", "known_se", "one_row_per_level", "statistics"])
@pytest.mark.log_density
def test_marginal_likelihood_is_the_multivariate_normal(case) -> None:
    """The program's likelihood (its log density less the prior-only one) equals the
    joint normal density of each level's rows up to a constant, at 20 random points."""
    df = grouped(seed=3, missing=case in ("sigma", "statistics"))
    if case == "one_row_per_level":
        df = df.drop_duplicates("g").reset_index(drop=True)
    # "sigma" is the program tests/test_joint.py, test_threads.py and test_block.py compare
    # theirs with: g integrated out beside a correlated intercept and slope of h
    formula = {"sigma": "y ~ x + (1 | g) + (1 + x | h)",
               "known_se": "y | se(s) ~ x + (1 | g)",
               "one_row_per_level": "y | se(s) ~ x + (1 | g)",
               "statistics": "y ~ x + (1 | g) + (x - 1 | g)"}[case]
    slope = {"sigma": ("h", "pqr"), "statistics": ("g_x", "abcdefg")}.get(case)
    model = sb.Model(formula, df, parameterization={slope[0]: "noncentered"} if slope
                     else "auto", **({"rewrites": ["marginalize"]} if case == "sigma" else {}))
    assert model.plan.groups[0].marginalized
    assert ("level_sums" in model.stan_code()) == (case in ("sigma", "known_se"))
    assert (model.plan.likelihood.strategy.name == "statistics") == (case == "statistics")
    obs = df["y"].notna().to_numpy()
    x, y = df["x"].to_numpy()[obs], df["y"].to_numpy()[obs]
    xc = x - x.mean()
    level = df["g"].to_numpy()[obs]

    def point(rng):
        p = {"Intercept": rng.normal(1, 0.5), "b": [rng.normal(0.5, 0.3)],
             "sd_g": float(np.exp(rng.normal(-0.3, 0.5)))}
        eta = p["Intercept"] + xc * p["b"][0]
        if slope:
            term, levels = slope
            factor = term.split("_")[0]
            at = df[factor].map(levels.index).to_numpy()[obs]
            p["sigma"] = float(rng.uniform(0.6, 1.5))
            if case == "sigma":  # an intercept and a slope, correlated
                sd = np.exp(rng.normal(-1, 0.3, size=2))
                rho = float(rng.uniform(-0.6, 0.6))
                L = np.array([[1.0, 0.0], [rho, np.sqrt(1 - rho**2)]])
                z = rng.normal(size=(2, len(levels)))
                p |= {f"sd_{term}": sd.tolist(), f"L_{term}": L.tolist(),
                      f"z_{term}": z.tolist()}
                r = (np.diag(sd) @ L @ z).T  # levels x (intercept, slope)
                eta = eta + r[at, 0] + r[at, 1] * x  # x as given
            else:
                p[f"sd_{term}"] = float(np.exp(rng.normal(-1, 0.3)))
                p[f"z_{term}"] = rng.normal(size=len(levels)).tolist()
                r = p[f"sd_{term}"] * np.array(p[f"z_{term}"])
                eta = eta + r[at] * x  # x as given
            variances = np.full(len(y), p["sigma"] ** 2)
        else:
            variances = df["s"].to_numpy()[obs] ** 2
        return p, _marginal_loglik(y - eta, variances, level, p["sd_g"])

    assert_likelihood_is(model, point, seed=11)


@pytest.mark.slow
def test_eight_schools_marginalized_matches_the_plain_program(eight_schools_df) -> None:
    formula = "y | se(sigma) ~ 1 + (1 | school)"
    marginal = sb.Model(formula, eight_schools_df)
    plain = sb.Model(formula, eight_schools_df, parameterization="noncentered")
    assert marginal.plan.groups[0].marginalized and not plain.plan.groups[0].marginalized
    assert marginal.plan.groups[0].folded  # sd_school = |sd_school_signed| (`passes.fold`)
    fits = {name: m.fit(chains=4, iter_warmup=1000, iter_sampling=5000, seed=7)
            for name, m in (("marginal", marginal), ("plain", plain))}
    assert fits["marginal"].diagnostics()["divergences"] == 0
    for var in ("Intercept", "sd_school", "coef_school", "r_school"):
        _agree(fits["marginal"].cmdstan.stan_variable(var),
               fits["plain"].cmdstan.stan_variable(var), var)
    # the spread of the recovered effects, not only their means
    a = fits["marginal"].cmdstan.stan_variable("coef_school").std(axis=0)
    b = fits["plain"].cmdstan.stan_variable("coef_school").std(axis=0)
    np.testing.assert_allclose(a, b, rtol=0.08)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_rows_marginalized_match_the_plain_program(seed) -> None:
    df = grouped(seed=seed, n=120, missing=True)
    formula = "y ~ x + (1 | g)"
    # the marginalization alone: the program tests/test_fold.py compares its fold with
    marginal = sb.Model(formula, df, rewrites=["marginalize"])
    assert marginal.plan.groups[0].marginalized
    plain = sb.Model(formula, df, rewrites="none")
    fits = {name: m.fit(chains=4, iter_warmup=1000, iter_sampling=2000, seed=seed)
            for name, m in (("marginal", marginal), ("plain", plain))}
    for var in ("Intercept", "b", "sigma", "sd_g", "r_g", "coef_g"):
        _agree(fits["marginal"].cmdstan.stan_variable(var),
               fits["plain"].cmdstan.stan_variable(var), var)
    # log_lik stays per row, given the drawn effects, as in the plain program
    ll = [f.cmdstan.stan_variable("log_lik").mean(axis=0) for f in fits.values()]
    np.testing.assert_allclose(ll[0], ll[1], atol=0.05)


# -------------------------------------------------------------------- marginal log_lik


def grouped_gaussian() -> pd.DataFrame:
    rng = np.random.default_rng(61)
    g = np.repeat(np.arange(6), [3, 4, 5, 3, 6, 4])
    x = rng.normal(size=len(g))
    y = 1 + 0.5 * x + rng.normal(0, 0.8, 6)[g] + rng.normal(0, 1, len(g))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{j}" for j in g]})


def test_marginal_log_lik_is_per_row_or_per_level(eight_schools_df) -> None:
    schools = sb.Model("y | se(sigma) ~ 1 + (1 | school)", eight_schools_df,
                       log_lik="marginal", rewrites={"school": "marginalize"})
    assert decision(schools, "log_lik") == (
        "log_lik: marginal; one value per observed row, the effect of school integrated "
        "out: no level has two rows, so the rows are independent given the rest")
    assert ("      log_lik[i] = normal_lpdf(y[i] | eta[i],\n"
            "                               sqrt(square(se[i]) + square(sd_school)));\n"
            ) in schools.stan_code()
    assert schools.program.schema.dims["log_lik"] == ["obs_id"]
    levels = sb.Model("y ~ x + (1 | g)", grouped_gaussian(), log_lik="marginal",
                      rewrites={"g": "marginalize"}, effects=False, y_rep=False)
    assert decision(levels, "log_lik").startswith("log_lik: marginal; one value per level of g")
    code = levels.stan_code()
    assert "  vector[N_g] log_lik; // log likelihood of each level's observed rows" in code
    assert levels.program.schema.dims["log_lik"] == ["g"]
    assert re.search(r"\br_g\b", code) is None  # not drawn: not needed
    with pytest.raises(PlanError, match=r"log_lik='marginal' is the log likelihood with a "
                       r"normal group intercept integrated out, and this model integrates no "
                       r"group term out"):
        sb.Model("y ~ x + (1 | g)", grouped_gaussian(), log_lik="marginal", rewrites="none")


@pytest.mark.slow
@pytest.mark.log_density
def test_marginal_log_lik_is_the_multivariate_normal_of_each_level() -> None:
    """Per level, log_lik is the joint density of the level's rows with its intercept
    integrated out, N(eta, sigma^2 I + sd^2 11'), at every draw."""
    df = grouped_gaussian()
    model = sb.Model("y ~ x + (1 | g)", df, log_lik="marginal", rewrites={"g": "marginalize"})
    fit = model.fit(chains=1, iter_warmup=200, iter_sampling=30, seed=4, advice=False,
                    show_progress=False, sig_figs=18)
    post = fit.cmdstan
    log_lik = post.stan_variable("log_lik")
    xc = df["x"].to_numpy() - df["x"].mean()
    index = model.plan.groups[0].index - 1
    for d in range(30):
        eta = post.stan_variable("Intercept")[d] + post.stan_variable("b")[d, 0] * xc
        sigma, sd = post.stan_variable("sigma")[d], post.stan_variable("sd_g")[d]
        for j in range(6):
            rows = index == j
            n = int(rows.sum())
            cov = sigma**2 * np.eye(n) + sd**2 * np.ones((n, n))
            expected = stats.multivariate_normal.logpdf(df["y"].to_numpy()[rows], eta[rows],
                                                        cov)
            assert log_lik[d, j] == pytest.approx(expected, rel=1e-8, abs=1e-8)
    assert fit.to_arviz().log_likelihood["log_lik"].dims == ("chain", "draw", "g")
