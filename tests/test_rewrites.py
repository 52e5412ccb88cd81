"""Exact rewrites: the request, the decisions, and proof that the posterior is unchanged.

A rewrite that integrates parameters out is checked twice: its log density against an
independent one (scipy's multivariate normal over each level's rows) at random points,
and its posterior (hyper-parameters and the effects drawn back) against the plain
program's within Monte Carlo error.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from exact import assert_constant_gap, gradient, log_density
from scipy import stats

import stanbhm as sb
from stanbhm.datasets import election, election_formula
from stanbhm.errors import PlanError


def grouped(seed: int = 0, n: int = 60, missing: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(list("abcdefg"), size=n),
                       "h": rng.choice(list("pqr"), size=n), "s": rng.uniform(0.5, 2, n)})
    u = rng.normal(0, 0.8, size=7)
    df["y"] = 1 + 0.5 * df["x"] + u[df["g"].map("abcdefg".index)] + rng.normal(size=n)
    if missing:
        df.loc[np.arange(n) % 7 == 2, "y"] = np.nan
    return df


def decision(model: sb.Model, subject: str) -> str:
    return next(str(d) for d in model.plan.decisions if d.subject == subject)


# --------------------------------------------------------------------------- the request


def test_auto_integrates_out_the_intercept_with_most_levels() -> None:
    model = sb.Model("y ~ x + (1 | g) + (1 | h)", grouped())
    assert decision(model, "marginalization") == (
        "marginalization: effects of g integrated out; gaussian rows with a group intercept: "
        "exact normal-normal marginalization; the level effects are drawn back in generated "
        "quantities; one factor at most, so h keep their effects")
    assert [g.marginalized for g in model.plan.groups] == [True, False]
    assert decision(model, "parameterization of g") == (
        "parameterization of g: none; its level effects are integrated out")
    data = model.stan_data()
    assert list(data["n_g"]) == list(np.bincount(data["J_g"] - 1))
    rows = data["rows_g"] - 1
    assert list(np.diff(data["start_g"])) == list(data["n_g"])
    assert (np.diff(data["J_g"][rows]) >= 0).all()  # rows listed level by level


def test_skipped_marginalization_says_why() -> None:
    df = grouped()
    cases = {
        ("y ~ x", "gaussian", "auto"): "no group term",
        ("y ~ x + (1 | g)", "gaussian", "noncentered"):
            "g: its parameterization was requested; pass rewrites={'g': 'marginalize'} to "
            "integrate it out",
        ("y ~ x + (1 + x | g)", "gaussian", "auto"):
            "g: it has slopes; only a group intercept, (1 | factor), is integrated out",
        ("yc ~ x + (1 | g)", "negbinomial", "auto"):
            "the negbinomial family has no exact normal marginal; group intercepts are "
            "integrated out of gaussian outcomes only",
    }
    df["yc"] = np.random.default_rng(0).poisson(2, size=len(df))
    for (formula, family, param), reason in cases.items():
        model = sb.Model(formula, df, family=family, parameterization=param)
        assert decision(model, "marginalization") == f"marginalization: not applied; {reason}"
    none = sb.Model("y ~ x + (1 | g)", df, rewrites="none")
    assert decision(none, "marginalization") == (
        "marginalization: not applied; rewrites='none' requested")
    assert "z_g" in none.stan_code() or "centered_g ~" in none.stan_code()


def test_the_header_says_what_log_lik_holds_after_a_rewrite(eight_schools_df) -> None:
    marginal = sb.Model("y | se(sigma) ~ 1 + (1 | school)", eight_schools_df)
    assert decision(marginal, "log_lik") == (
        "log_lik: on; 8 observed rows, at most 5000; one value per row given the drawn "
        "effects of school, as in the plain program")
    cells = sb.Model("yb ~ C(a) + (1 | g)", count_data(), family="bernoulli")
    assert decision(cells, "log_lik") == (
        "log_lik: on; 400 observed rows, at most 5000; one value per row, from the rows, as "
        "in the plain program")
    plain = sb.Model("y ~ x", grouped())
    assert decision(plain, "log_lik") == "log_lik: on; 60 observed rows, at most 5000"


def test_a_named_term_is_integrated_out_even_with_a_parameterization() -> None:
    model = sb.Model("y ~ x + (1 | g) + (1 | h)", grouped(), parameterization="centered",
                     rewrites={"h": "marginalize"})
    assert [g.term_name for g in model.plan.groups if g.marginalized] == ["h"]


@pytest.mark.parametrize(("rewrites", "error", "message"), [
    ("all", PlanError, "rewrites='all': use 'auto', 'none', a list of rewrites (marginalize, "
     "fold, sufficient_statistics, collapse, joint_statistics) or a dict of group terms"),
    (["fast"], PlanError, "rewrites: unknown rewrite 'fast'; choose from marginalize, "
     "fold, sufficient_statistics, collapse, joint_statistics"),
    ({"k": "marginalize"}, PlanError, "rewrites given for 'k', which is not a group term of "
     "this model (group terms: g, g_x)"),
    ({"g": "centered"}, PlanError, "rewrites['g'] = 'centered' is not one of auto, "
     "marginalize, gamma_poisson, beta_binomial, laplace, none"),
    ({"g_x": "marginalize"}, PlanError, "rewrites['g_x'] = 'marginalize': it has slopes; only "
     "a group intercept, (1 | factor), is integrated out"),
    ({"g": "laplace"}, PlanError, "rewrites['g'] = 'laplace': a gaussian outcome's effects "
     "are integrated out exactly; use 'marginalize'"),
])
def test_bad_requests_are_refused_by_name(rewrites, error, message) -> None:
    with pytest.raises(error) as info:
        sb.Model("y ~ x + (1 | g) + (x - 1 | g)", grouped(), rewrites=rewrites)
    assert str(info.value) == message


def test_only_gaussian_outcomes_are_integrated_over() -> None:
    df = grouped()
    df["yb"] = (df["y"] > 1).astype(int)
    with pytest.raises(PlanError, match=r"^rewrites\['g'\] = 'marginalize': the bernoulli "):
        sb.Model("yb ~ x + (1 | g)", df, family="bernoulli", rewrites={"g": "marginalize"})
    with pytest.raises(PlanError, match="only one group term can be integrated out, and g, h"):
        sb.Model("y ~ (1 | g) + (1 | h)", df, rewrites={"g": "marginalize", "h": "marginalize"})


def test_a_list_without_marginalize_keeps_every_effect() -> None:
    model = sb.Model("y ~ x + (1 | g)", grouped(), rewrites=[])
    assert not any(g.marginalized for g in model.plan.groups)


# --------------------------------------------------------------------------- exactness


def assert_likelihood_is(model: sb.Model, point, seed: int) -> None:
    """The program's likelihood (its log density less the prior-only one) equals an
    independent value up to a constant at 20 points; ``point(rng)`` gives the parameters
    and that value."""
    rng = np.random.default_rng(seed)
    gaps, scale = [], 0.0
    for _ in range(20):
        p, exact = point(rng)
        likelihood = log_density(model, p, False) - log_density(model, p, True)
        gaps.append(likelihood - exact)
        scale = max(scale, abs(exact))
    assert max(gaps) - min(gaps) < 1e-8 * scale, (gaps, scale)


def _marginal_loglik(resid, variances, level, tau) -> float:
    """log N(resid | 0, diag(variances) + tau^2 * (same level)), level by level."""
    total = 0.0
    for j in np.unique(level):
        rows = level == j
        cov = np.diag(variances[rows]) + tau**2
        total += stats.multivariate_normal(np.zeros(rows.sum()), cov).logpdf(resid[rows])
    return total


def model_block(code: str) -> str:
    return code.split("\nmodel {\n", 1)[1].split("\ngenerated quantities {\n", 1)[0]


def transformed_data(code: str) -> str:
    return code.split("\ntransformed data {\n", 1)[1].split("\n}\n", 1)[0]


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
def test_marginal_likelihood_is_the_multivariate_normal(case) -> None:
    """The program's likelihood (its log density less the prior-only one) equals the
    joint normal density of each level's rows up to a constant, at 20 random points."""
    df = grouped(seed=3, missing=case in ("sigma", "statistics"))
    if case == "one_row_per_level":
        df = df.drop_duplicates("g").reset_index(drop=True)
    formula = {"sigma": "y ~ x + (1 | g) + (x - 1 | h)",
               "known_se": "y | se(s) ~ x + (1 | g)",
               "one_row_per_level": "y | se(s) ~ x + (1 | g)",
               "statistics": "y ~ x + (1 | g) + (x - 1 | g)"}[case]
    slope = {"sigma": ("h", "pqr"), "statistics": ("g_x", "abcdefg")}.get(case)
    model = sb.Model(formula, df, parameterization={slope[0]: "noncentered"} if slope
                     else "auto")
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
            p["sigma"] = float(rng.uniform(0.6, 1.5))
            p[f"sd_{term}"] = float(np.exp(rng.normal(-1, 0.3)))
            p[f"z_{term}"] = rng.normal(size=len(levels)).tolist()
            r = p[f"sd_{term}"] * np.array(p[f"z_{term}"])
            eta = eta + r[df[factor].map(levels.index).to_numpy()[obs]] * x  # x as given
            variances = np.full(len(y), p["sigma"] ** 2)
        else:
            variances = df["s"].to_numpy()[obs] ** 2
        return p, _marginal_loglik(y - eta, variances, level, p["sd_g"])

    assert_likelihood_is(model, point, seed=11)


def _agree(a: np.ndarray, b: np.ndarray, name: str) -> None:
    """Posterior means agree within 4 Monte Carlo standard errors (from ArviZ's ESS)."""
    import arviz as az

    def mcse(v: np.ndarray) -> np.ndarray:
        per_chain = v.reshape(4, v.shape[0] // 4, -1)
        return np.array([az.mcse(per_chain[:, :, k], method="mean")
                         for k in range(per_chain.shape[2])]).reshape(v.shape[1:])

    gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
    bound = 4 * np.hypot(mcse(a), mcse(b))
    assert (gap < bound).all(), (name, gap, bound)


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
    marginal = sb.Model(formula, df)
    plain = sb.Model(formula, df, rewrites="none")
    fits = {name: m.fit(chains=4, iter_warmup=1000, iter_sampling=2000, seed=seed)
            for name, m in (("marginal", marginal), ("plain", plain))}
    for var in ("Intercept", "b", "sigma", "sd_g", "r_g", "coef_g"):
        _agree(fits["marginal"].cmdstan.stan_variable(var),
               fits["plain"].cmdstan.stan_variable(var), var)
    # log_lik stays per row, given the drawn effects, as in the plain program
    ll = [f.cmdstan.stan_variable("log_lik").mean(axis=0) for f in fits.values()]
    np.testing.assert_allclose(ll[0], ll[1], atol=0.05)


# --------------------------------------------------------------------------- statistics

STATISTICS_CASES = {
    "correlated_noncentered": ("y ~ x + (1 + x | g)", "noncentered", False),
    "correlated_centered_missing": ("y ~ x + (1 + x | g)", "centered", True),
    "covariate_only_in_a_term": ("y ~ z + (1 + x || g)", "noncentered", False),
    "two_terms_one_factor_offset": ("y ~ x + offset(z) + (1 | g) + (x - 1 | g)",
                                    {"g": "centered", "g_x": 0.0}, False),
    # columns z, w, v carry b[2 : 4] alone: one statement fills them
    "population_columns_run_missing": ("y ~ x + z + w + v + (1 + x | g)", "noncentered",
                                       True),
}


def statistics_data(n: int = 400, missing: bool = False) -> pd.DataFrame:
    df = grouped(seed=5, n=n, missing=missing)
    df["z"] = np.random.default_rng(6).normal(size=n)
    df["w"] = np.random.default_rng(7).normal(size=n)
    df["v"] = np.random.default_rng(8).normal(size=n)
    return df


def test_statistics_are_exact_per_level() -> None:
    """rss + |R (theta - bhat)|^2 is each level's sum of squares, for any theta."""
    from stanbhm.passes.statistics import level_statistics

    rng = np.random.default_rng(0)
    D = np.column_stack([np.ones(50), rng.normal(size=50) + 1e4, rng.normal(size=50)])
    y = D @ [1.0, 2.0, -1.0] + rng.normal(size=50)
    index = np.repeat([0, 1, 2, 4], [20, 27, 2, 1])  # level 3 empty; 2 and 4 rank-deficient
    bhat, R, rss = level_statistics(D, y, index, 5)
    for _ in range(5):
        theta = rng.normal(size=(5, 3)) + np.array([1.0, 2.0, -1.0])
        direct = sum(float(np.sum((y[index == j] - D[index == j] @ theta[j]) ** 2))
                     for j in range(5))
        quad = sum(float(np.sum((R[:, j, :] @ (theta[j] - bhat[j])) ** 2)) for j in range(5))
        assert abs(rss.sum() + quad - direct) < 1e-9 * direct


def test_statistics_are_skipped_with_a_reason() -> None:
    df = statistics_data()
    df["h"] = np.where(df["x"] > 0, "u", "v")
    few = statistics_data(n=12)
    cases = [
        (sb.Model("y ~ x + (1 | g) + (1 | h)", df, rewrites=["sufficient_statistics"]),
         "group terms on 2 factors (g, h); one is needed"),
        (sb.Model("y | se(s) ~ x + (1 + x | g)", df),
         "known standard errors: the rows are already the statistics"),
        (sb.Model("y ~ x + (1 + x | g)", few),
         "12 rows, 7 levels of g, 2 columns per level: fewer than 2 rows per column and "
         "level, so the rows cost no more"),
        (sb.Model("y ~ x + (1 + x | g)", df, rewrites="none"), "rewrites='none' requested"),
    ]
    for model, reason in cases:
        assert decision(model, "sufficient statistics") == (
            f"sufficient statistics: not applied; {reason}")
        assert "ss_rss" not in model.stan_code()
    both = sb.Model("y ~ x + (1 | g)", df)
    assert decision(both, "sufficient statistics") == (
        "sufficient statistics: per level of g; 400 rows, 7 levels of g, 2 columns per level: "
        "a gradient costs O(levels x columns^2), not O(rows)")
    assert both.plan.groups[0].marginalized
    assert set(both.stan_data()) >= {"n_g", "ss_ysum", "ss_xsum"}
    assert "rows_g" not in both.stan_data()


def test_statistics_fill_population_only_columns_in_one_statement() -> None:
    """Consecutive columns that no level effect varies hold the same row b[j : k] on every
    level: one statement fills them (the election model's 40 covariates were 40), while a
    column with level effects keeps its own, the level slopes' mean terms included."""
    formula, param, missing = STATISTICS_CASES["population_columns_run_missing"]
    code = sb.Model(formula, statistics_data(missing=missing),
                    parameterization=param).stan_code()
    assert ("    ss_theta[ : , 1] = Intercept + r_g[ : , 1] + means_X[1] * r_g[ : , 2];\n"
            "    ss_theta[ : , 2] = b[1] + r_g[ : , 2];\n"
            "    ss_theta[ : , 3 : 5] = rep_vector(1, N_g) * b[2 : 4]';\n"
            "    matrix[N_g, ss_cols] ss_dev") in code
    election_code = sb.Model(election_formula(3), nested_data()).stan_code()
    assert ("    ss_theta[ : , 1] = centered_state;\n"
            "    ss_theta[ : , 2 : 4] = rep_vector(1, N_state) * b[1 : 3]';\n"
            "    ss_theta[ : , 5] = r_state_age;\n") in election_code
    assert "rep_vector(b[" not in code + election_code


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(STATISTICS_CASES))
def test_statistics_keep_the_log_density(case) -> None:
    """The rewritten and the plain program differ by a constant at 20 posterior draws."""
    formula, param, missing = STATISTICS_CASES[case]
    df = statistics_data(missing=missing)
    plain = sb.Model(formula, df, parameterization=param, rewrites="none")
    rewritten = sb.Model(formula, df, parameterization=param)
    assert rewritten.plan.likelihood.strategy.name == "statistics"
    assert plain.plan.likelihood.strategy.name == "rowwise"
    assert_constant_gap(plain, rewritten)


# --------------------------------------------------------------------------- collapse


def count_data(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(8)
    df = pd.DataFrame({"a": rng.choice(list("xyz"), size=n),
                       "c": rng.integers(0, 3, size=n).astype(float),
                       "g": rng.choice(list("abcde"), size=n),
                       "expo": rng.choice([1.0, 2.0, 3.0], size=n),
                       "t": rng.integers(1, 5, size=n)})
    df["yb"] = (rng.uniform(size=n) < 0.4).astype(int)
    df["yc"] = rng.poisson(2 * df["expo"])
    df["ys"] = rng.binomial(df["t"], 0.3)
    df["ybm"] = df["yb"].where(np.arange(n) % 9 != 1)
    return df


COLLAPSE_CASES = {
    "bernoulli": ("yb ~ C(a) + c + (1 | g)", "bernoulli", "noncentered"),
    "poisson_exposure": ("yc ~ C(a) + offset(log(expo)) + (1 + c | g)", "poisson", "centered"),
    "binomial_trials": ("ys | trials(t) ~ C(a) + (1 | g)", "binomial", "auto"),
    "bernoulli_missing_no_intercept": ("ybm ~ 0 + C(a) + c + (c - 1 | g)", "bernoulli",
                                       "centered"),
}


def test_collapse_sums_cells_and_says_why_not() -> None:
    df = count_data()
    model = sb.Model("yc ~ C(a) + offset(log(expo)) + (1 | g)", df, family="poisson")
    data = model.stan_data()
    assert decision(model, "collapse") == (
        "collapse: poisson on the sums, exposures added; 400 rows in 15 cells of identical "
        "linear predictor: exact, a constant apart")
    assert data["y_cell"].sum() == df["yc"].sum()
    np.testing.assert_allclose(np.exp(data["log_exposure_cell"]).sum(), df["expo"].sum())
    assert "    y_cell ~ poisson_log(eta + log_exposure_cell);\n" in model.stan_code()
    df["x"] = np.random.default_rng(0).normal(size=len(df))
    skipped = {
        ("yb ~ x + (1 | g)", "bernoulli"): "400 rows in 400 cells of identical linear "
        "predictor: too few rows per cell to pay",
        ("yc ~ C(a) + (1 | g)", "negbinomial"): "the negative binomial rows given their sum "
        "depend on phi, so a sum is not exact",
    }
    for (formula, family), reason in skipped.items():
        model = sb.Model(formula, df, family=family)
        assert decision(model, "collapse") == f"collapse: not applied; {reason}"


def test_negative_binomial_sums_would_change_the_posterior_of_phi() -> None:
    """Why NB2 rows are not collapsed: their sum is NB2(n mu, n phi), but the rows' density
    less the sum's still moves with phi (a poisson's does not move with its rate)."""
    y = np.array([0, 3, 7, 1])
    mu = 2.5

    def nb2(k, m, phi):  # Stan's neg_binomial_2(m, phi)
        return stats.nbinom.logpmf(k, phi, phi / (phi + m))

    def gap(phi):
        return nb2(y, mu, phi).sum() - nb2(y.sum(), len(y) * mu, len(y) * phi)

    assert abs(gap(1.0) - gap(10.0)) > 1.0
    rows = [stats.poisson.logpmf(y, m).sum() - stats.poisson.logpmf(y.sum(), len(y) * m)
            for m in (1.0, 10.0)]
    assert abs(rows[0] - rows[1]) < 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(COLLAPSE_CASES))
def test_collapse_keeps_the_log_density(case) -> None:
    formula, family, param = COLLAPSE_CASES[case]
    df = count_data()
    plain = sb.Model(formula, df, family=family, parameterization=param, rewrites="none")
    rewritten = sb.Model(formula, df, family=family, parameterization=param)
    assert rewritten.plan.likelihood.strategy.name == "cells"
    assert_constant_gap(plain, rewritten)


# --------------------------------------------------------------------------- gamma-poisson


def test_gamma_poisson_is_asked_for_by_name() -> None:
    df = count_data()
    auto = sb.Model("yc ~ C(a) + (1 | g)", df, family="poisson")
    assert decision(auto, "marginalization") == (
        "marginalization: not applied; the poisson family has no exact normal marginal; "
        "'gamma_poisson' integrates out gamma multipliers instead (a different model for "
        "the effects, asked for by name)")
    with pytest.raises(PlanError, match=r"^rewrites\['g'\] = 'gamma_poisson': gamma "
                                        "multipliers are conjugate to poisson rows, not to "
                                        "the bernoulli family$"):
        sb.Model("yb ~ (1 | g)", df, family="bernoulli", rewrites={"g": "gamma_poisson"})
    named = sb.Model("yc ~ C(a) + (1 | g)", df, family="poisson",
                     rewrites={"g": "gamma_poisson"})
    assert decision(named, "marginalization").startswith(
        "marginalization: effects of g integrated out; 'gamma_poisson' requested: each level "
        "multiplies the rate by u ~ gamma(1 / sd_g^2, 1 / sd_g^2) (mean 1)")
    assert list(named.stan_data()["Y_g"]) == list(df.groupby("g")["yc"].sum())


@pytest.mark.parametrize("collapsed", [True, False])
def test_gamma_poisson_converts_its_data_once(collapsed) -> None:
    """The counts as vectors are built in transformed data, and the shape enters the
    rising-factorial sum as a scalar: the model block converts nothing per gradient."""
    df = count_data()
    df["x"] = np.random.default_rng(0).normal(size=len(df))
    model = sb.Model("yc ~ C(a) + (1 | g)" if collapsed else "yc ~ x + (1 | g)", df,
                     family="poisson", rewrites={"g": "gamma_poisson"})
    assert model.plan.likelihood.strategy.name == ("cells" if collapsed else "marginal")
    code = model.stan_code()
    counts, n = ("y_cell", "N_cell") if collapsed else ("y", "N")
    assert (f"  vector[{n}] {counts}_vec = to_vector({counts}); // the outcome"
            f"{' of each cell' if collapsed else ''}, as a vector\n"
            "  vector[N_g] Y_g_vec = to_vector(Y_g); // the outcome summed over each level, as "
            "a vector\n") in transformed_data(code)
    assert (f"    target += dot_product({counts}_vec, eta);\n"
            "    target += sum_log_rising_ratio(shape_g, Y_g_vec);\n"
            "    target += -dot_product(shape_g + Y_g_vec, log1p(mu_g / shape_g));\n"
            ) in model_block(code)
    assert "to_vector(" not in model_block(code) and "rep_vector(" not in model_block(code)
    assert "  real sum_log_rising_ratio(real k, vector n) {\n" in code
    assert "sum_log_rising_ratio(vector k" not in code  # the beta-binomial's alone
    assert "    vector[N_g] a_g = shape_g + (1 - prior_only) * Y_g_vec; // per level\n" in code


@pytest.mark.slow
@pytest.mark.parametrize("collapsed", [True, False])
def test_gamma_poisson_marginal_is_the_integral(collapsed, monkeypatch) -> None:
    """The program's likelihood equals, up to a constant, the product over levels of
    the integral of the poisson rows over the level's gamma multiplier (scipy quad);
    with the rows summed into cells (the default here) and without."""
    from scipy import integrate

    from stanbhm.passes import collapse

    if not collapsed:
        monkeypatch.setattr(collapse, "MAX_CELL_SHARE", 0.0)
    df = count_data()
    df.loc[np.arange(len(df)) % 9 == 4, "yc"] = np.nan
    model = sb.Model("yc ~ c + offset(log(expo)) + (1 | g)", df, family="poisson",
                     rewrites={"g": "gamma_poisson"})
    assert model.plan.likelihood.strategy.name == ("cells" if collapsed else "marginal")
    obs = df["yc"].notna().to_numpy()
    y = df["yc"].to_numpy()[obs]
    c = df["c"].to_numpy()[obs]
    offset = np.log(df["expo"].to_numpy()[obs])
    level = df["g"].to_numpy()[obs]
    def point(rng):
        p = {"Intercept": rng.normal(1.3, 0.2), "b": [rng.normal(0, 0.1)],
             "sd_g": float(np.exp(rng.normal(-1, 0.4)))}
        rate = np.exp(p["Intercept"] + (c - c.mean()) * p["b"][0] + offset)
        a = 1 / p["sd_g"] ** 2
        exact = 0.0
        for j in np.unique(level):
            rows = level == j
            top = stats.poisson.logpmf(y[rows], rate[rows]).sum()  # the value at u = 1

            def integrand(u, ys=y[rows], rates=rate[rows], top=top, a=a):
                lik = stats.poisson.logpmf(ys, rates * u).sum() - top
                return np.exp(lik + stats.gamma.logpdf(u, a, scale=1 / a))

            value = integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-12, limit=200)[0]
            exact += top + np.log(value)
        return p, exact

    assert_likelihood_is(model, point, seed=4)


GAMMA_PLAIN = """
data {
  int<lower=1> N;
  array[N] int<lower=0> y;
  int<lower=1> G;
  array[N] int<lower=1, upper=G> g;
}
parameters {
  real Intercept;
  real<lower=0> sd_g;
  vector<lower=0>[G] u;
}
model {
  Intercept ~ normal(1, 1);
  sd_g ~ exponential(2);
  u ~ gamma(inv_square(sd_g), inv_square(sd_g));
  y ~ poisson(exp(Intercept) * u[g]);
}
"""


@pytest.mark.slow
def test_gamma_poisson_matches_explicit_multipliers(tmp_path) -> None:
    """Hyper-parameters and the drawn-back log multipliers agree with a hand-written
    program that samples the gamma multipliers themselves."""
    from stanbhm import toolchain

    df = count_data()
    model = sb.Model("yc ~ 1 + (1 | g)", df, family="poisson", rewrites={"g": "gamma_poisson"},
                     priors={"Intercept": "normal(1, 1)", "sd_g": "exponential(2)"})
    data = model.stan_data()
    plain = toolchain.compile_model(GAMMA_PLAIN, cpp_options={"STAN_THREADS": True})
    explicit = plain.sample(data={"N": data["N"], "y": data["y"], "G": data["N_g"],
                                  "g": data["J_g"]}, chains=4, iter_sampling=2000, seed=5,
                            show_progress=False)
    # with 5 levels sd_g's posterior reaches up to where the exponential prior's wall in
    # log sd_g makes leapfrog unstable at the step size adapt_delta=0.95 picks: 3 to 4 of
    # 20 seeds had one divergence in 8000 draws (the divergent draws at sd_g 0.18 and
    # 0.38, the upper tail), the explicit program dozens; at 0.99 none of 20 seeds had one
    fit = model.fit(chains=4, iter_sampling=2000, seed=5, adapt_delta=0.99)
    assert fit.diagnostics()["divergences"] == 0
    for var in ("Intercept", "sd_g"):
        _agree(fit.cmdstan.stan_variable(var), explicit.stan_variable(var), var)
    _agree(fit.cmdstan.stan_variable("r_g"), np.log(explicit.stan_variable("u")), "r_g")



@pytest.mark.slow
def test_gamma_poisson_reaches_the_poisson_limit_as_sd_vanishes() -> None:
    """At sd_g = 1e-9 (shape 1e18) the multipliers are all 1, so the log density moves with
    the intercept as the plain poisson one does: no term may lose its digits to the shape
    (a form with shape * log(shape) and lgamma(shape) did, and trapped chains there). One
    level has no observed rows: its rate sum is 0.

    The gradient too: in log sd_g it is the prior's and the Jacobian's alone (lchoose's
    difference of digammas gave 3389 instead of 1 at sd_g = 2e-9, and 1.22 at 3e-7)."""
    df = count_data()
    df["yc"] = df["yc"].astype(float).where(df["g"] != df["g"].iloc[0])
    model = sb.Model("yc ~ 1 + (1 | g)", df, family="poisson", rewrites={"g": "gamma_poisson"},
                     priors={"Intercept": "normal(1, 1)", "sd_g": "exponential(2)"})
    y = df["yc"].dropna().to_numpy()

    def poisson(c: float) -> float:
        return -0.5 * (c - 1) ** 2 + y.sum() * c - len(y) * np.exp(c)

    lp = {c: log_density(model, {"Intercept": c, "sd_g": 1e-9}, prior_only=False)
          for c in (0.9, 1.4)}
    assert abs((lp[1.4] - lp[0.9]) - (poisson(1.4) - poisson(0.9))) < 1e-6
    for sd in (1e-9, 3e-7):  # the likelihood's share is below 1e-7 at both
        grad = gradient(model, {"Intercept": 1.4, "sd_g": sd})
        assert abs(grad["sd_g"] - (1 - 2 * sd)) < 1e-6, (sd, grad)
        assert grad["Intercept"] == pytest.approx(-0.4 + y.sum() - len(y) * np.exp(1.4),
                                                  rel=1e-6, abs=1e-6)


# --------------------------------------------------------------------------- laplace


def test_laplace_is_by_name_and_says_it_approximates() -> None:
    df = count_data()
    model = sb.Model("yb ~ C(a) + (1 | g)", df, family="bernoulli", rewrites={"g": "laplace"})
    assert decision(model, "marginalization") == (
        "marginalization: effects of g integrated out; 'laplace' requested: an APPROXIMATION, "
        "not exact: Stan's embedded Laplace approximation integrates the effects out and "
        "laplace_latent_rng draws them back")
    code = model.stan_code()
    assert "    target += laplace_g(y, eta, J_g, sd_g, N_g);\n" in code
    assert "    return bernoulli_logit_lpmf(y | eta + u[J]);\n" in code
    with pytest.raises(PlanError, match=r"^rewrites\['g'\] = 'laplace': a gaussian outcome's "
                                        r"effects are integrated out exactly; use 'marginalize'$"):
        sb.Model("y ~ x + (1 | g)", grouped(), rewrites={"g": "laplace"})
    many = pd.DataFrame({"y": np.arange(4002) % 2, "g": np.arange(4002) // 2})
    with pytest.raises(PlanError, match=r"2001 levels: Stan's embedded Laplace builds and "
                                        r"factors dense 2001 x 2001 matrices; it is offered "
                                        r"up to 2000 levels$"):
        sb.Model("y ~ 1 + (1 | g)", many, family="bernoulli", rewrites={"g": "laplace"})


@pytest.mark.slow
def test_laplace_posterior_is_close_to_the_plain_one() -> None:
    """An approximation, so not exact: with about 40 poisson rows per level the
    hyper-parameters and effects agree with the plain program's within a tenth of a
    posterior sd plus Monte Carlo error."""
    df = count_data()
    formula = "yc ~ c + (1 | g)"
    approx = sb.Model(formula, df, family="poisson", rewrites={"g": "laplace"})
    plain = sb.Model(formula, df, family="poisson", rewrites="none")
    fits = [m.fit(chains=4, iter_sampling=1000, seed=9).cmdstan for m in (approx, plain)]
    for var in ("Intercept", "b", "sd_g", "r_g"):
        a, b = (f.stan_variable(var) for f in fits)
        gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
        assert (gap < 0.1 * b.std(axis=0) + 4 * b.std(axis=0) / np.sqrt(1000)).all(), var


# ------------------------------------------------------ statistics with a nested marginal


def nested_data(missing: bool = False) -> pd.DataFrame:
    """Respondents nested in states (each lives in one), a few rows each."""
    df, _ = election(seed=4, rows=1500, states=12, covariates=3)
    if missing:
        df.loc[::37, "y"] = np.nan
    return df


def test_nested_marginal_cells_are_exact() -> None:
    """Per cell, ms_rss + |R (theta_level - bhat)|^2 is the sum over its members of the
    squared residual sums, for any per-level theta."""
    from stanbhm.passes.statistics import nested_cells

    rng = np.random.default_rng(1)
    member = rng.integers(0, 40, size=300)
    home = rng.integers(0, 5, size=40)
    home[7] = -1
    member[member == 7] = 8  # member 7 has no rows
    D = np.column_stack([np.ones(300), rng.normal(size=300) + 50.0, rng.normal(size=300)])
    y = D @ [1.0, 0.5, -2.0] + rng.normal(size=300)
    cells = nested_cells(D, y, member, home)
    counts = np.bincount(member, minlength=40)
    assert cells.members.sum() == 39 and cells.rows.min() >= 1
    for _ in range(3):
        theta = rng.normal(size=(5, 3)) + np.array([1.0, 0.5, -2.0])
        resid = y - np.einsum("ij,ij->i", D, theta[home[member]])
        sums = np.bincount(member, weights=resid, minlength=40)
        for c in range(cells.n):
            chosen = (home == cells.level[c]) & (counts == cells.rows[c])
            direct = float(np.sum(sums[chosen] ** 2))
            dev = theta[cells.level[c]] - cells.bhat[c]
            quad = cells.rss[c] + float(np.sum((cells.R[:, c, :] @ dev) ** 2))
            assert abs(quad - direct) < 1e-9 * max(direct, 1.0)


def test_nested_marginal_statistics_are_chosen_and_said() -> None:
    model = sb.Model(election_formula(3), nested_data())
    assert model.plan.likelihood.strategy.name == "statistics"
    cells = model.plan.likelihood.strategy.nested.n
    assert decision(model, "sufficient statistics") == (
        "sufficient statistics: per level of state, and of respondent per cell; 1500 rows, "
        "12 levels of state, 5 columns per level; respondent, integrated out, is nested in "
        f"state: its levels' residual sums enter through {cells} cells of one level of state "
        "and one row count: a gradient costs O((levels + cells) x columns^2), not O(rows)")
    small, _ = election(seed=4, rows=200, states=12, covariates=3)
    said = decision(sb.Model(election_formula(3), small), "sufficient statistics")
    assert said.startswith("sufficient statistics: not applied; 200 rows, 12 levels of state, "
                           "5 columns per level; respondent, integrated out, is nested in "
                           "state, but its ")
    assert said.endswith(" cells and the 12 levels times 5 columns outnumber the rows, so the "
                         "rows cost no more")
    crossed = nested_data()
    crossed.loc[::2, "state"] = crossed["state"].iloc[1::2].to_numpy()[: len(crossed[::2])]
    model = sb.Model(election_formula(3), crossed)
    assert decision(model, "sufficient statistics") == (
        "sufficient statistics: not applied; group terms on 2 factors (respondent, state); "
        "one is needed, or another whose intercept is integrated out and whose levels each "
        "lie in one level of state, which respondent's do not")


@pytest.mark.slow
@pytest.mark.parametrize("missing", [False, True])
def test_nested_marginal_statistics_keep_the_log_density(missing) -> None:
    """Against the program that integrates the respondents out over the rows."""
    df = nested_data(missing)
    rows = sb.Model(election_formula(3), df, rewrites=["marginalize"])
    cells = sb.Model(election_formula(3), df)
    assert rows.plan.likelihood.strategy.name == "marginal"
    assert cells.plan.likelihood.strategy.nested is not None
    assert_constant_gap(rows, cells)


# --------------------------------------------------------------- gaussian cells


def crossed_data() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    n = 600
    df = pd.DataFrame({"a": rng.choice(list("pqr"), n), "g": rng.choice(list("ABCDEF"), n),
                       "h": rng.choice(list("uvwxyz"), n)})
    df["y"] = rng.normal(size=n) + (df["a"] == "p") * 1.0 + 1e4
    df.loc[::17, "y"] = np.nan
    return df


CROSSED = "y ~ C(a) + offset(0.5 * (a == 'q')) + (1 | g) + (1 | h)"


def test_gaussian_cells_hold_the_means_and_the_sum_of_squares_within() -> None:
    df = crossed_data()
    model = sb.Model(CROSSED, df, parameterization="noncentered")
    cells = model.plan.likelihood.cells
    assert decision(model, "collapse") == (
        f"collapse: normal on the cell means, with the sum of squares within cells; 564 rows "
        f"in {cells.n} cells of identical linear predictor: exact, a constant apart")
    fitted = df.dropna(subset=["y"])
    groups = fitted.groupby(["a", "g", "h"])["y"]
    assert cells.n == groups.ngroups and sorted(cells.counts) == sorted(groups.size())
    direct = float(((fitted["y"] - groups.transform("mean")) ** 2).sum())
    assert abs(cells.within - direct) < 1e-9 * direct
    data = model.stan_data()
    np.testing.assert_allclose(np.sort(data["y_cell"]), np.sort(groups.mean().to_numpy()),
                               rtol=1e-13)
    assert data["ss_cell"] == cells.within
    known = crossed_data().dropna()
    known["s"] = 1.0
    model = sb.Model("y | se(s) ~ C(a) + (1 | g) + (1 | h)", known,
                     parameterization="noncentered")
    assert decision(model, "collapse") == (
        "collapse: not applied; known standard errors: the rows are already the statistics")


@pytest.mark.slow
def test_gaussian_cells_keep_the_log_density() -> None:
    df = crossed_data()
    plain = sb.Model(CROSSED, df, parameterization="noncentered", rewrites="none")
    cells = sb.Model(CROSSED, df, parameterization="noncentered")
    assert cells.plan.likelihood.strategy.name == "cells"
    assert_constant_gap(plain, cells)


def test_cells_serve_an_integrated_out_intercept() -> None:
    """Each cell lies in one level of the term integrated out, so its level sums run over
    the cells: the program reads which cells make up each level, and the rows per level."""
    df = crossed_data()
    model = sb.Model(CROSSED, df)
    lik = model.plan.likelihood
    assert (lik.strategy.name, lik.marginal.name) == ("cells", "g")
    assert decision(model, "collapse") == (
        f"collapse: normal on the cell means, with the sum of squares within cells; 564 rows "
        f"in {lik.cells.n} cells of identical linear predictor: exact, a constant apart")
    data = model.stan_data()
    fitted = df.dropna(subset=["y"])
    levels = sorted(fitted["g"].unique())
    assert list(data["n_g"]) == [int((fitted["g"] == v).sum()) for v in levels]
    level_of_cell = fitted["g"].to_numpy()[data["cell"] - 1]
    for j, level in enumerate(levels):
        members = data["rows_g"][data["start_g"][j] - 1: data["start_g"][j + 1] - 1] - 1
        assert sorted(members) == list(np.flatnonzero(level_of_cell == level))
        assert data["n_cell"][members].sum() == data["n_g"][j]
    code = model.stan_code()
    assert ("    vector[N_g] sum_g = level_sums(n_cell .* resid, ones_g, rows_g, start_g); "
            "// per level\n") in code
    assert ("  vector[N_cell] ones_g = rep_vector(1, N_cell); // a 1 per row: the values of "
            "level_sums' sparse matrix\n") in code
    assert "  array[N_cell] int<lower=1, upper=N_cell> rows_g; // cells sorted by level of g\n" \
        in code


def test_gaussian_cells_give_way_to_cheaper_joint_statistics() -> None:
    rng = np.random.default_rng(5)
    n = 60_000
    df = pd.DataFrame({"a": rng.choice(list("pqrst"), n), "b": rng.choice(list("vwxyz"), n),
                       "g": rng.integers(0, 20, n).astype(str),
                       "h": rng.integers(0, 20, n).astype(str), "y": rng.normal(size=n)})
    model = sb.Model("y ~ C(a) + C(b) + (1 | g) + (1 | h)", df,
                     parameterization="noncentered")
    assert decision(model, "collapse") == (
        "collapse: not applied; 60000 rows in 9980 cells of identical linear predictor: the "
        "joint statistics cost less: dense factors of 50 x 49 against 9980 cells x 11 columns")
    assert model.plan.likelihood.strategy.name == "joint"
    cells = sb.Model("y ~ C(a) + C(b) + (1 | g) + (1 | h)", df,
                     parameterization="noncentered", rewrites=["collapse"])
    assert cells.plan.likelihood.strategy.name == "cells"


@pytest.mark.slow
def test_cells_with_an_integrated_out_intercept_keep_the_log_density() -> None:
    """Against the program that integrates g out over the rows. The outcome is moved
    back to 0: at 1e4, the short warmup finds sd_g ~ 3700 with g carrying the mean, where
    both programs cancel squared residuals of 1e8 each, so they agree only to 1e-7."""
    df = crossed_data()
    df["y"] -= 1e4
    rows = sb.Model(CROSSED, df, rewrites=["marginalize", "fold"])
    cells = sb.Model(CROSSED, df)
    assert rows.plan.likelihood.strategy.name == "marginal"
    assert cells.plan.likelihood.strategy.name == "cells"
    assert_constant_gap(rows, cells)


# ------------------------------------------------- effects integrated out, drawn or not


def test_effects_of_many_levels_are_not_drawn_unless_asked() -> None:
    df, _ = election(seed=2, rows=15_000, states=5, covariates=2)
    df["respondent"] = (np.arange(len(df)) // 3).astype(str)  # 5000, 3 rows each
    df["state"] = df.groupby("respondent")["state"].transform("first")  # nested
    big = pd.concat([df, df.assign(respondent=df["respondent"] + "b")], ignore_index=True)
    quiet = {"log_lik": False, "y_rep": False}
    model = sb.Model(election_formula(2), big, **quiet)
    assert decision(model, "effects of respondent") == (
        "effects of respondent: not drawn; 10000 levels, over 5000, and neither log_lik nor "
        "y_rep needs them; pass effects=True to draw them")
    code = model.stan_code()
    assert "r_respondent" not in code and "coef_respondent" not in code
    assert not [name for name in model.program.schema.dims if "respondent" in name]
    assert "real<lower=0> sd_respondent" in code  # declared, or folded (passes.fold)
    from stanbhm.predict import predict_draws

    with pytest.raises(ValueError, match=r"this fit has no draws of the effects of respondent: "
                       r"they were integrated out and not drawn back \(see the program "
                       r"header\); refit with effects=True to predict"):
        predict_draws(model, None, big.head(3), "sample", None)
    assert decision(sb.Model(election_formula(2), df, **quiet), "effects of respondent") == (
        "effects of respondent: drawn back; 5000 levels, at most 5000")
    assert decision(sb.Model(election_formula(2), big, effects=True, **quiet),
                    "effects of respondent") == (
        "effects of respondent: drawn back; effects=True requested")
    assert decision(sb.Model(election_formula(2), big, log_lik=True, y_rep=False),
                    "effects of respondent") == (
        "effects of respondent: drawn back; log_lik needs them")
    with pytest.raises(PlanError, match=r"effects=False: log_lik and y_rep are computed given "
                       r"the drawn effects of respondent; pass log_lik=False, y_rep=False too"):
        sb.Model(election_formula(2), df, effects=False, log_lik=True, y_rep=True)
    with pytest.raises(PlanError, match=r"effects='some': use True, False or 'auto'"):
        sb.Model(election_formula(2), df, effects="some")
    assert "//   effects of" not in sb.Model("y ~ x + (1 | g)", grouped(seed=1, n=40),
                                        rewrites="none").stan_code()


# ------------------------------------------------------------------- beta-binomial


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


# ------------------------------------------------------------------- marginal log_lik


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
