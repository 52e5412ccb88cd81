"""Compile and sample every family on simulated data: the truth is recovered.

Each model has about twenty parameters; with seeded data the number of true values
inside their central 90% intervals must be what a calibrated posterior gives
(Binomial(k, 0.9): fewer than k - 6 would happen with probability < 0.001).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from brms_reference import assert_brms_form, reference
from exact import log_density
from scipy import special, stats

import stanbhm as sb
from stanbhm.datasets import wide_regression

pytestmark = pytest.mark.slow
G = 15


def simulate(family: str, seed: int, link: str | None = None,
             ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
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
    if link is not None:  # bernoulli and binomial under another link
        p = sb.LINKS[link].mean(eta)
        df["y"] = rng.binomial(df["n"] if family == "binomial" else 1, p)
    phi, zero = 4.0, 0.3
    mu = np.exp(eta)
    if family.startswith("zero_inflated"):
        counts = rng.poisson(mu) if family.endswith("poisson") else \
            rng.negative_binomial(phi, phi / (phi + mu))
        df["y"] = np.where(rng.uniform(size=n) < zero, 0, counts)
        truth["zi"] = np.array([zero])
    elif family.startswith("hurdle"):
        positive = np.zeros(n, dtype=int)  # the count part, drawn again while 0
        while (positive == 0).any():
            rows = np.flatnonzero(positive == 0)
            m = mu[rows]
            positive[rows] = rng.poisson(m) if family.endswith("poisson") else \
                rng.negative_binomial(phi, phi / (phi + m))
        df["y"] = np.where(rng.uniform(size=n) < zero, 0, positive)
        truth["hu"] = np.array([zero])
    if family.endswith("negbinomial") and family != "negbinomial":
        truth["phi"] = np.array([phi])
    if family == "beta":
        precision = 20.0
        m = special.expit(eta)
        df["y"] = rng.beta(m * precision, (1 - m) * precision)
        truth["phi"] = np.array([precision])
    if family == "cumulative":  # no intercept: the cutpoints at x = 0 are b_Intercept
        cutpoints = np.array([-1.0, 0.0, 1.2])
        latent = eta - intercept + rng.logistic(size=n)
        df["y"] = 1 + np.searchsorted(cutpoints, latent)
        truth["b_Intercept"] = cutpoints
    return df, truth


FORMULAS = {
    "binomial": "y | trials(n) ~ x + z + (1 | g)",
}
#: Every family under its own link, and the other links (one program each: probit on
#: the bernoulli, cloglog on the binomial)
CASES = [(f, None) for f in sb.FAMILIES] + [("bernoulli", "probit"), ("binomial", "cloglog")]
#: The families and links of issue 31, whose log densities are checked against scipy's
NEW = [(f, link) for f, link in CASES if link is not None or f in (
    "zero_inflated_poisson", "zero_inflated_negbinomial", "hurdle_poisson",
    "hurdle_negbinomial", "beta", "cumulative")]


def _id(case) -> str:
    return case[0] if case[1] is None else f"{case[0]}-{case[1]}"


def case_model(family: str, link: str | None) -> tuple[sb.Model, pd.DataFrame, dict]:
    """The recovery test's model of a case (the log density test compiles the same
    program)."""
    df, truth = simulate(family, seed=sum(map(ord, family + (link or ""))), link=link)
    formula = FORMULAS.get(family, "y ~ x + z + (1 | g)")
    model = sb.Model(formula, df, family=family, link=link, parameterization="noncentered")
    return model, df, truth


#: The recovery fits: 2 chains x (250 warmup + 750 draws), half the iterations of the
#: 4 x (500 + 500) they replaced, on the machine's 2 cores. Over 6 seeds of the data and
#: the fit (96 fits) the largest split R-hat (4 halves of 375 draws) was 1.032, against
#: 1.050 (one failure) for 4 x (500 + 500) (8 halves of 250); as many true values fell
#: inside the intervals (1773 of 1908 both); 2 x (500 + 500) failed R-hat in 3 of 80 fits.
SAMPLING = {"chains": 2, "parallel_chains": 2, "iter_warmup": 250, "iter_sampling": 750}
DRAWS = SAMPLING["chains"] * SAMPLING["iter_sampling"]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_truth_inside_90_percent_intervals(case):
    family, link = case
    model, df, truth = case_model(family, link)
    fit = model.fit(seed=5, **SAMPLING)
    inside = total = 0
    for name, values in truth.items():
        draws = fit.cmdstan.stan_variable(name).reshape(DRAWS, -1)
        lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
        inside += int(np.sum((values >= lo) & (values <= hi)))
        total += len(values)
    # P(X < k) for X ~ Binomial(total, 0.9) below 1e-3 sets the bar.
    k = int(stats.binom.ppf(1e-3, total, 0.9))
    assert inside >= k, f"{family}: {inside} of {total} true values inside (need {k})"
    assert fit.diagnostics()["rhat_max"] < 1.05
    if case in NEW:
        _check_outputs(model, fit, df, case)


def _check_outputs(model: sb.Model, fit, df: pd.DataFrame, case) -> None:
    """log_lik at 20 draws is scipy's pointwise log density (the program's one-row
    density, constants kept); the predictions' mu is the family's mean of eta; y_rep
    takes the outcome's values."""
    family, link = case
    cmdstan = fit.cmdstan
    log_lik = cmdstan.stan_variable("log_lik")
    parameters = _parameters(model)
    for i in range(0, DRAWS, DRAWS // 20):
        point = {n: np.asarray(cmdstan.stan_variable(n)[i]) for n in parameters}
        eta = _eta(model, df, point)
        # the draws and log_lik come through CmdStan's CSV, 6 significant figures
        np.testing.assert_allclose(log_lik[i], _loglik(family, link, df, eta, point),
                                   rtol=1e-4, atol=1e-4)
    y_rep = cmdstan.stan_variable("y_rep")
    if family == "cumulative":
        assert set(np.unique(y_rep)) <= {1, 2, 3, 4}
    elif family == "beta":
        assert ((y_rep > 0) & (y_rep < 1)).all()
    else:
        assert (y_rep >= 0).all() and (y_rep == np.round(y_rep)).all()
    if family.startswith("hurdle"):  # a zero only with probability hu
        share = (y_rep == 0).mean(axis=1)
        assert abs(np.mean(share) - np.mean(cmdstan.stan_variable("hu"))) < 0.02
    predicted = fit.predict(df.head(8), seed=2).predictions
    eta, mu = predicted["eta"].values.reshape(-1, 8), predicted["mu"].values.reshape(-1, 8)
    draws = {n: cmdstan.stan_variable(n) for n in ("zi", "hu", "phi", "Intercept")
             if n in parameters}
    expected = _mean(family, link, df.head(8), eta, draws, model)
    np.testing.assert_allclose(mu, expected, rtol=1e-4)
    if family == "cumulative":  # one row per cutpoint, at x = 0
        rows = list(fit.summary().population.index)
        assert rows[:3] == ["Intercept[1] (1|2)", "Intercept[2] (2|3)", "Intercept[3] (3|4)"]


def _parameters(model: sb.Model) -> list[str]:
    return list(model.compile().src_info()["parameters"])


def _eta(model: sb.Model, df: pd.DataFrame, point: dict) -> np.ndarray:
    """The linear predictor of every row at `point` (noncentered g), X centered; without
    the cutpoints for the ordinal family."""
    X = df[["x", "z"]].to_numpy()
    eta = (X - X.mean(axis=0)) @ point["b"]
    if not model.plan.fixed.cutpoints:
        eta = eta + point["Intercept"]
    levels = model.plan.groups[0].levels
    index = pd.Categorical(df["g"], categories=levels).codes
    return eta + point["sd_g"] * point["z_g"][index]


def _loglik(family: str, link: str | None, df: pd.DataFrame, eta: np.ndarray,
            point: dict) -> np.ndarray:
    """scipy's log density of each row."""
    y = df["y"].to_numpy()
    if link is not None:
        p = sb.LINKS[link].mean(eta)
        n = df["n"].to_numpy() if family == "binomial" else 1
        return stats.binom.logpmf(y, n, p)
    if family == "beta":
        m, phi = special.expit(eta), point["phi"]
        return stats.beta.logpdf(y, m * phi, (1 - m) * phi)
    if family == "cumulative":
        cut = np.concatenate([[-np.inf], point["Intercept"], [np.inf]])
        upper, lower = cut[y.astype(int)], cut[y.astype(int) - 1]
        return np.log(special.expit(upper - eta) - special.expit(lower - eta))
    mu = np.exp(eta)
    if family.endswith("poisson"):
        count = stats.poisson(mu)
    else:
        phi = point["phi"]
        count = stats.nbinom(phi, phi / (phi + mu))
    if family.startswith("zero_inflated"):
        zi = point["zi"]
        return np.where(y == 0, np.log(zi + (1 - zi) * count.pmf(0)),
                        np.log1p(-zi) + count.logpmf(y))
    hu = point["hu"]
    return np.where(y == 0, np.log(hu), np.log1p(-hu) + count.logpmf(y)
                    - np.log1p(-count.pmf(0)))


def _mean(family: str, link: str | None, df: pd.DataFrame, eta: np.ndarray, draws: dict,
          model: sb.Model) -> np.ndarray:
    """The family's expected outcome given eta, per draw (rows of eta)."""
    if link is not None:
        p = sb.LINKS[link].mean(eta)
        return p * (df["n"].to_numpy() if family == "binomial" else 1)
    if family == "beta":
        return special.expit(eta)
    if family == "cumulative":  # eta is relative to the cutpoints Intercept
        cut = draws["Intercept"]
        return 1 + special.expit(eta[:, :, None] - cut[:, None, :]).sum(axis=2)
    mu = np.exp(eta)
    if family.startswith("zero_inflated"):
        return (1 - draws["zi"][:, None]) * mu
    if family.endswith("poisson"):
        positive = -np.expm1(-mu)
    else:
        phi = draws["phi"][:, None]
        positive = 1 - (phi / (phi + mu)) ** phi
    return (1 - draws["hu"][:, None]) * mu / positive


def _random_point(model: sb.Model, rng: np.random.Generator) -> dict:
    """A point of the parameters, each in its support."""
    plan = model.plan
    point = {"b": rng.normal(0, 0.5, size=plan.fixed.k),
             "sd_g": float(rng.uniform(0.2, 1.2)),
             "z_g": rng.normal(size=plan.groups[0].n_levels)}
    if plan.fixed.cutpoints:
        point["Intercept"] = np.sort(rng.normal(0, 1.5, size=len(plan.fixed.cutpoints)))
    else:
        point["Intercept"] = float(rng.uniform(-1, 1))
    for a in plan.aux.params:
        point[a.name] = float(rng.uniform(0.1, 0.8) if a.name in ("zi", "hu") else
                              rng.uniform(5, 40) if plan.family.name == "beta" else
                              rng.uniform(1, 10))
    return point


_PRIORS = {
    "normal": lambda x, m, s: stats.norm.logpdf(x, m, s),
    "student_t": lambda x, df, m, s: stats.t.logpdf(x, df, m, s),
    "gamma": lambda x, a, b: stats.gamma.logpdf(x, a, scale=1 / b),
    "beta": lambda x, a, b: stats.beta.logpdf(x, a, b),
}


def _log_prior(model: sb.Model, point: dict) -> float:
    """The priors at `point`, as the plan states them (data-scaled arguments read from
    the program's data)."""
    data = model.stan_data()
    plan = model.plan

    def density(prior, x, target):
        args = [data[f"prior_{role}_{target}"] if i in prior.from_data else float(arg)
                for i, (arg, role) in enumerate(zip(prior.args, _ROLES[prior.dist],
                                                   strict=True))]
        return float(np.sum(_PRIORS[prior.dist](np.asarray(x), *args)))

    total = density(plan.fixed.intercept_prior, point["Intercept"], "Intercept")
    total += density(plan.fixed.b_priors[0], point["b"], "b")
    total += density(plan.groups[0].sd_priors[0], point["sd_g"], "sd_g")
    total += float(stats.norm.logpdf(point["z_g"]).sum())
    for a in plan.aux.params:
        total += density(a.prior, point[a.name], a.name)
    return total


_ROLES = {"normal": ("location", "scale"), "student_t": ("df", "location", "scale"),
          "gamma": ("shape", "rate"), "beta": ("alpha", "beta")}


@pytest.mark.parametrize("case", NEW, ids=_id)
def test_log_density_is_scipys_plus_the_priors(case):
    """At 20 random points the program's log density (constants dropped, no Jacobian)
    is scipy's log likelihood plus the priors, a constant apart: the rows' vectorized
    density, the family's aux parameters and their default priors (zi and hu beta(1, 1),
    the beta's phi gamma(0.01, 0.01), the cutpoints student_t(3, 0, 2.5))."""
    family, link = case
    model, df, _ = case_model(family, link)
    rng = np.random.default_rng(11)
    gaps = []
    for _ in range(20):
        point = _random_point(model, rng)
        # where 1 - exp(-exp(eta)) rounds to 1 the cloglog's density of a failure is -inf
        while link is not None and _eta(model, df, point).max() > 3:
            point = _random_point(model, rng)
        expected = _loglik(family, link, df, _eta(model, df, point), point).sum()
        expected += _log_prior(model, point)
        params = {k: np.asarray(v).tolist() for k, v in point.items()}
        gaps.append(log_density(model, params, prior_only=False) - expected)
    assert max(gaps) - min(gaps) < 1e-7 * max(1.0, abs(expected)), gaps


#: The reference's family switch (tests/stan/brms_families.stan) and its link's
_BRMS_FAMILY = {"zero_inflated_poisson": 1, "zero_inflated_negbinomial": 2,
                "hurdle_poisson": 3, "hurdle_negbinomial": 4, "beta": 5, "bernoulli": 6,
                "binomial": 7, "cumulative": 8}
_BRMS_LINK = {"probit": 1, "cloglog": 2}


def _brms_data(model: sb.Model, df: pd.DataFrame, family: str, link: str | None) -> dict:
    """The data of brms's form of a case: the outcome, X without the intercept column,
    the level of each row in stanbhm's order of the levels, the priors' arguments that
    stanbhm scaled to the data."""
    ours = model.stan_data()
    levels = model.plan.groups[0].levels
    y = df["y"].to_numpy()
    integer = family != "beta"
    n = len(df)
    return {"family": _BRMS_FAMILY[family], "link": _BRMS_LINK.get(link, 1), "N": n,
            "Y": y.astype(int) if integer else np.zeros(n, dtype=int),
            "Y_real": y.astype(float), "trials": df["n"].to_numpy() if "n" in df else
            np.ones(n, dtype=int), "K": 2, "X": df[["x", "z"]].to_numpy(),
            "N_1": len(levels), "M_1": 1,
            "J_1": pd.Categorical(df["g"], categories=levels).codes + 1,
            "Z_1_1": np.ones(n), "nthres": len(model.plan.fixed.cutpoints) or 1,
            "prior_location_Intercept": ours.get("prior_location_Intercept", 0.0),
            "prior_scale_Intercept": ours.get("prior_scale_Intercept", 1.0),
            "prior_scale_b": ours["prior_scale_b"],
            "prior_scale_sd": ours["prior_scale_sd_g"]}


def _brms_params(point: dict) -> dict:
    """A point of stanbhm's parameters in the reference's names: brms's (sd_1, z_1,
    NB2's shape), the family's own absent as empty arrays."""
    family_phi = "phi" in point and "zi" not in point and "hu" not in point
    return {"Intercept": np.atleast_1d(point["Intercept"]).tolist(),
            "b": np.asarray(point["b"]).tolist(), "sd_1": [point["sd_g"]],
            "z_1": [np.asarray(point["z_g"]).tolist()],
            "shape": [point["phi"]] if "phi" in point and not family_phi else [],
            "phi": [point["phi"]] if family_phi else [],
            "zi": [point["zi"]] if "zi" in point else [],
            "hu": [point["hu"]] if "hu" in point else []}


@pytest.mark.parametrize("case", NEW, ids=_id)
def test_log_density_is_the_brms_forms(case):
    """Each family and link of issue 31 against brms's form of the same model
    (tests/stan/brms_families.stan, one program for all, its data switch picking the
    family): the generated program's log density and the reference's differ by one
    constant at 20 random points (zi, hu, the beta's phi, the cutpoints and the group
    intercept included)."""
    family, link = case
    model, df, _ = case_model(family, link)
    program = reference("brms_families")
    data = _brms_data(model, df, family, link)
    rng = np.random.default_rng(23)
    points = []
    while len(points) < 20:
        point = _random_point(model, rng)
        # where 1 - exp(-exp(eta)) rounds to 1 the cloglog's density of a failure is -inf
        if link is not None and _eta(model, df, point).max() > 3:
            continue
        ours = {k: np.asarray(v).tolist() for k, v in point.items()}
        points.append((ours, _brms_params(point)))
    assert_brms_form(model, program, data, points)


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
    # the recovery fits' 2 x (250 + 750): over 6 seeds R-hat at most 1.011 (4 x (500 + 500):
    # 1.015) and the same intervals of rho to 0.01
    fit = model.fit(seed=3, **SAMPLING)
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
