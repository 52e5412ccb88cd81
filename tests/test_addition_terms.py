"""Addition terms ``cens()``, ``weights()`` and ``trunc()`` (`stanbhm.likelihood`): the
program's log likelihood against scipy's censored, weighted and truncated one at 20
points, its ``log_lik`` and ``y_rep`` over a short fit, the header's reasons for the
rewrites they rule out, and the recovery of a demand from stocked-out sales.

Three programs are compiled (a negative binomial with every censoring kind, written a
kind of rows per statement; a poisson weighted, censored and truncated on both sides,
written one row at a time; a gaussian censored and truncated below), two more for the
comparison with brms's form of a weighted, censored negative binomial (the generated
program and the hand-written ``tests/stan/brms_censored_weighted.stan``), one more
for the recovery test, and one for the weighted ordinal survey (its log likelihood
against scipy's and the recovery of the generator's cutpoints and coefficients).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import STAN_DIR
from exact import log_density
from rewrite_cases import assert_likelihood_is, decision, model_block
from scipy import stats

import stanbhm as sb
from stanbhm import toolchain
from stanbhm.errors import PlanError

KINDS = np.array(["none", "right", "left", "interval"])


def count_data(seed: int = 4, n: int = 80) -> pd.DataFrame:
    """Counts with every censoring kind, interval upper bounds, weights, a group factor
    and two rows without an outcome."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(list("abcde"), size=n),
                       "w": rng.uniform(0.2, 3.0, size=n)})
    df["y"] = rng.poisson(np.exp(1.5 + 0.4 * df["x"])).astype(float)
    df["c"] = rng.choice(KINDS, p=[0.55, 0.2, 0.15, 0.1], size=n)
    df["u"] = df["y"] + rng.integers(1, 4, size=n)
    df.loc[[3, 17], "y"] = np.nan
    return df


def linear(point: dict, df: pd.DataFrame) -> np.ndarray:
    """The linear predictor of every row at `point`, X centered over the observed rows."""
    x = df["x"].to_numpy()
    return point["Intercept"] + point["b"][0] * (x - x[df["y"].notna()].mean())


def censored_log_lik(dist, df: pd.DataFrame, lower=None, upper=None) -> np.ndarray:
    """scipy's log likelihood of each observed row: exact rows their log density, right
    log P(Y > y), left log P(Y <= y), interval log P(y < Y <= u); truncated ones less
    log P(lb <= Y <= ub) (for counts P(lb - 1 < Y <= ub)); `dist` is scipy's frozen
    distribution over the observed rows."""
    obs = df["y"].notna().to_numpy()
    y, c, u = df["y"].to_numpy()[obs], df["c"].to_numpy()[obs], df["u"].to_numpy()[obs]
    discrete = hasattr(dist, "pmf")
    out = np.where(c == "none", dist.logpmf(y) if discrete else dist.logpdf(y), 0.0)
    out = np.where(c == "right", dist.logsf(y), out)
    out = np.where(c == "left", dist.logcdf(y), out)
    out = np.where(c == "interval", np.log(dist.cdf(u) - dist.cdf(y)), out)
    step = 1 if discrete else 0
    below = dist.cdf(lower - step) if lower is not None else 0.0
    above = dist.cdf(upper) if upper is not None else 1.0
    return out - np.log(above - below)


# --------------------------------------------------------------------------- programs


def test_censored_rows_are_written_a_kind_per_statement_and_rewrites_say_why() -> None:
    df = count_data()
    model = sb.Model("y | cens(c, u) ~ x + (1 | g)", df, family="negbinomial")
    block = model_block(model.stan_code())
    assert "target += neg_binomial_2_log_lupmf(y[exact] | eta[exact], phi);" in block
    assert "target += neg_binomial_2_lccdf(y[right] | exp(eta[right]), phi);" in block
    assert "target += neg_binomial_2_lcdf(y[left] | exp(eta[left]), phi);" in block
    assert "for (k in 1 : N_interval) {" in block
    data = model.stan_data()
    obs = df["y"].notna().to_numpy()
    assert list(data["right"]) == list(np.flatnonzero(df["c"].to_numpy()[obs] == "right") + 1)
    assert data["N_interval"] == int((df["c"][obs] == "interval").sum())
    assert list(data["y2"]) == list(np.where(df["c"][obs] == "interval", df["u"][obs], 0))
    reason = "the rows are censored (cens(c, u))"
    assert decision(model, "glm") == f"glm: not used; {reason}: not the kernel's likelihood"
    assert decision(model, "collapse") == (f"collapse: not applied; {reason}; a cell stands "
                                           "for plain rows only")
    assert decision(model, "marginalization") == (
        "marginalization: not applied; the rows have cens(c, u), and the marginal kinds "
        "integrate the effects out of plain rows only")
    gaussian = sb.Model("y | cens(c, u) ~ x + (1 | g)", df)
    assert decision(gaussian, "sufficient statistics") == (
        f"sufficient statistics: not applied; {reason}; the statistics stand for plain "
        "or weighted rows only")
    assert decision(gaussian, "joint statistics").startswith(
        f"joint statistics: not applied; {reason}")
    threaded = sb.Model("y | weights(w) ~ x", df, family="poisson", threads=2)
    assert decision(threaded, "threads") == (
        "threads: one per chain; the rows are weighted (weights(w)), written by kind of row "
        "or one row at a time; reduce_sum slices are not written for them")
    assert decision(model, "log_lik").endswith(
        "at most 5000; a censored row's is its log probability (lccdf, lcdf), a truncated "
        "row's renormalized, a weighted row's times its weight, as brms")
    with pytest.raises(PlanError, match=r"rewrites\['g'\] = 'marginalize': the rows have "
                       r"cens\(c, u\), and the marginal kinds"):
        sb.Model("y | cens(c, u) ~ x + (1 | g)", df, rewrites={"g": "marginalize"})


def test_without_addition_terms_the_program_is_unchanged() -> None:
    """A censoring column with no censored row leaves the plain statement; the header
    still counts the rows."""
    df = count_data().assign(c="none")
    code = sb.Model("y | cens(c) ~ x", df, family="poisson", glm="never").stan_code()
    assert "    y ~ poisson_log(eta);\n" in code
    assert "// cens(c): 78 exact fitted rows;" in code
    plain = sb.Model("y ~ x", df, family="poisson", glm="never").stan_code()
    assert model_block(code) == model_block(plain)


def test_weighted_and_truncated_rows_are_written_one_at_a_time() -> None:
    df = count_data()
    model = sb.Model("y | weights(w) + cens(c, u) + trunc(lb = 0, ub = 20) ~ x", df,
                     family="poisson")
    block = model_block(model.stan_code())
    assert "    for (i in 1 : N_obs) {\n      real lp; // row i's log density\n" in block
    assert "        lp = poisson_lccdf(y[i] | exp(eta[i]));\n" in block
    assert ("      lp -= log_diff_exp(poisson_lcdf(ub | exp(eta[i])),\n"
            "                         poisson_lcdf(lb - 1 | exp(eta[i])));\n") in block
    assert "      target += weights[i] * lp;\n" in block
    assert "N_right" not in model.stan_data()  # the loop reads cens[i]
    assert model.stan_data()["lb"] == 0 and model.stan_data()["ub"] == 20


def test_skip_reasons_name_each_addition_term_as_written() -> None:
    """Every pass that skips names the terms as the formula writes them: the censoring
    column (backticked where it must be) with its upper bound, the weights' expression,
    the truncation bounds."""
    df = count_data().rename(columns={"c": "sold out"})
    formula = "y | weights(w) + cens(`sold out`, u) + trunc(lb = 0, ub = 20) ~ x + (1 | g)"
    model = sb.Model(formula, df, family="poisson")
    terms = "cens(`sold out`, u) and weights(w) and trunc(lb = 0, ub = 20)"
    assert decision(model, "marginalization") == (
        f"marginalization: not applied; the rows have {terms}, and the marginal kinds "
        "integrate the effects out of plain rows only")
    reason = ("the rows are censored (cens(`sold out`, u)) and weighted (weights(w)) and "
              "truncated (trunc(lb = 0, ub = 20))")
    assert decision(model, "glm") == f"glm: not used; {reason}: not the kernel's likelihood"
    assert decision(model, "collapse").startswith(f"collapse: not applied; {reason};")
    code = model.stan_code()
    assert "// cens(`sold out`, u): " in code and "// weights(w): " in code
    assert "// trunc(lb = 0, ub = 20): " in code
    one = sb.Model("y | trunc(ub = 30) ~ x + (1 | g)", df, family="poisson")
    assert decision(one, "marginalization").startswith(
        "marginalization: not applied; the rows have trunc(ub = 30), and")


# --------------------------------------------------------------------------- densities


@pytest.mark.slow
def test_censored_negbinomial_log_likelihood_is_scipys() -> None:
    df = count_data()
    model = sb.Model("y | cens(c, u) ~ x", df, family="negbinomial")
    obs = df["y"].notna().to_numpy()

    def point(rng):
        p = {"Intercept": rng.normal(1.5, 0.3), "b": [rng.normal(0.4, 0.2)],
             "phi": rng.uniform(1, 10)}
        mu = np.exp(linear(p, df))[obs]
        dist = stats.nbinom(p["phi"], p["phi"] / (p["phi"] + mu))
        return p, float(censored_log_lik(dist, df).sum())

    assert_likelihood_is(model, point, seed=1)


@pytest.mark.slow
def test_weighted_censored_truncated_poisson_is_scipys_with_its_log_lik_and_y_rep() -> None:
    df = count_data()
    df["y"] = df["y"].clip(lower=1)  # within the bounds (the spec checks it)
    df["u"] = df["y"] + 2
    obs = df["y"].notna().to_numpy()
    model = sb.Model("y | weights(w) + cens(c, u) + trunc(lb = 1, ub = 40) ~ x", df,
                     family="poisson")
    w = df["w"].to_numpy()[obs]

    def row_log_lik(p: dict) -> np.ndarray:
        mu = np.exp(linear(p, df))[obs]
        return w * censored_log_lik(stats.poisson(mu), df, lower=1, upper=40)

    def point(rng):
        p = {"Intercept": rng.normal(1.5, 0.5), "b": [rng.normal(0.4, 0.3)]}
        return p, float(row_log_lik(p).sum())

    assert_likelihood_is(model, point, seed=2)
    fit = model.fit(chains=1, iter_warmup=150, iter_sampling=20, seed=3, advice=False,
                    show_progress=False).cmdstan
    log_lik, y_rep = fit.stan_variable("log_lik"), fit.stan_variable("y_rep")
    for d in range(20):
        p = {"Intercept": fit.stan_variable("Intercept")[d], "b": fit.stan_variable("b")[d]}
        # the CSV files hold 6 significant digits, of the parameters too
        np.testing.assert_allclose(log_lik[d], row_log_lik(p), rtol=1e-4, atol=1e-4)
    assert y_rep.min() >= 1 and y_rep.max() <= 40


@pytest.mark.slow
def test_censored_truncated_gaussian_is_scipys() -> None:
    """Vectorized by kind, truncated below: the normalizer summed over the rows."""
    df = count_data()
    rng = np.random.default_rng(8)
    df["y"] = (4 + df["x"] + rng.normal(0, 1.5, size=len(df))).where(df["y"].notna())
    df["u"] = df["y"] + rng.uniform(0.5, 2.0, size=len(df))
    model = sb.Model("y | cens(c, u) + trunc(lb = -3) ~ x", df)
    assert "    target += -normal_lccdf(lb | eta, sigma);\n" in model.stan_code()
    obs = df["y"].notna().to_numpy()

    def point(rng):
        p = {"Intercept": rng.normal(4, 0.5), "b": [rng.normal(1, 0.3)],
             "sigma": rng.uniform(1, 3)}
        dist = stats.norm(linear(p, df)[obs], p["sigma"])
        return p, float(censored_log_lik(dist, df, lower=-3.0).sum())

    assert_likelihood_is(model, point, seed=3)


@pytest.mark.slow
def test_weighted_censored_negbinomial_is_the_brms_forms() -> None:
    """The generated program's log density is that of brms's form of the model
    (``tests/stan/brms_censored_weighted.stan``: one row at a time, each row's log
    probability times its weight) up to a constant, at 20 points, with every censoring
    kind among the rows; the reference without its weights is not."""
    df = count_data()
    df["z"] = np.random.default_rng(9).normal(size=len(df))
    priors = {"Intercept": "normal(1.5, 1)", "b": "normal(0, 1)", "phi": "gamma(2, 0.1)"}
    model = sb.Model("y | weights(w) + cens(c, u) ~ x + z", df, family="negbinomial",
                     priors=priors)
    assert "      target += weights[i] * lp;\n" in model_block(model.stan_code())
    fitted = df[df["y"].notna()]
    codes = fitted["c"].map({"none": 0, "right": 1, "left": -1, "interval": 2}).to_numpy()
    assert sorted(set(codes)) == [-1, 0, 1, 2]
    data = {"N": len(fitted), "Y": fitted["y"].to_numpy(dtype=int), "cens": codes,
            "rcens": np.where(codes == 2, fitted["u"], 0).astype(int),
            "weights": fitted["w"].to_numpy(), "K": 2, "X": fitted[["x", "z"]].to_numpy()}
    reference = toolchain.compile_model((STAN_DIR / "brms_censored_weighted.stan").read_text())

    def reference_density(p: dict, weights: np.ndarray) -> float:
        params = {"Intercept": p["Intercept"], "b": p["b"], "shape": p["phi"]}
        frame = reference.log_prob(params=params, data={**data, "weights": weights},
                                   jacobian=False, sig_figs=18)
        return float(frame["lp__"].iloc[0])

    rng = np.random.default_rng(6)
    gaps, unweighted, scale = [], [], 0.0
    for _ in range(20):
        p = {"Intercept": rng.normal(1.5, 0.3), "b": rng.normal([0.4, -0.2], 0.2).tolist(),
             "phi": rng.uniform(1, 10)}
        lp = log_density(model, p, prior_only=False)
        ref = reference_density(p, data["weights"])
        gaps.append(lp - ref)
        unweighted.append(lp - reference_density(p, np.ones(len(fitted))))
        scale = max(scale, abs(ref))
    assert max(gaps) - min(gaps) < 1e-8 * scale, (gaps, scale)
    assert max(unweighted) - min(unweighted) > 1.0, unweighted


# --------------------------------------------------------------------------- recovery


@pytest.mark.slow
def test_right_censored_sales_recover_the_demand() -> None:
    """Poisson demand of mean 20 a day, stocked to about its 70% quantile: a third of
    the days sell out, and their sales understate the demand. Right-censored at
    ``sales - 1`` (demand at least the sales), the fit recovers the log mean demand within
    four posterior sds; the mean of the sales alone is well below it."""
    rng = np.random.default_rng(12)
    n, truth = 400, np.log(20.0)
    demand = rng.poisson(20.0, size=n)
    stock = stats.poisson.ppf(0.7, 20.0) + rng.integers(-2, 3, size=n)
    sales = np.minimum(demand, stock)
    out = demand >= stock
    df = pd.DataFrame({"at_least": sales - out, "stocked_out": out})
    assert np.log(sales.mean()) < truth - 0.05  # ignoring the stock-outs biases it down
    fit = sb.Model("at_least | cens(stocked_out) ~ 1", df, family="poisson",
                   priors={"Intercept": "normal(3, 1)"}).fit(
        chains=2, iter_warmup=300, iter_sampling=300, seed=5, advice=False,
        show_progress=False)
    draws = fit.cmdstan.stan_variable("Intercept")
    assert abs(draws.mean() - truth) < 4 * draws.std(), (draws.mean(), draws.std(), truth)
    assert fit.diagnostics()["divergences"] == 0


# ------------------------------------------------------------ a weighted ordinal survey


@pytest.mark.slow
def test_weighted_ordinal_survey_is_scipys_and_recovers_the_truth() -> None:
    """The election-like survey (`datasets.survey`): an ordinal answer with sampling
    weights, a cumulative logit with a state intercept. The program's log likelihood is
    scipy's weighted ordered-logistic sum (each row's log probability times its weight)
    up to a constant at 20 points, and a short fit puts the generator's cutpoints (at
    x = 0) and coefficients inside their 99% posterior intervals."""
    from scipy.special import expit

    from stanbhm.datasets import survey, survey_formula

    df, truth = survey(seed=3, rows=600, states=8, categories=4)
    formula = survey_formula().replace("answer ~", "answer | weights(w) ~")
    assert formula == "answer | weights(w) ~ age + female + college + (1 | state)"
    model = sb.Model(formula, df, family="cumulative", parameterization="noncentered")
    assert "target += weights[i] * lp;" in model_block(model.stan_code())
    X = df[["age", "female", "college"]].to_numpy(dtype=float)
    Xc = X - X.mean(axis=0)  # the program's eta is relative to the predictors' means
    levels = list(model.plan.groups[0].levels)
    state = df["state"].map(levels.index).to_numpy()
    y, w = df["answer"].to_numpy(), df["w"].to_numpy()
    assert w.std() > 0.1  # the weights differ, so an unweighted sum would not do

    def point(rng):
        p = {"Intercept": np.sort(rng.normal(0, 1.2, size=3)).tolist(),
             "b": rng.normal([0.6, -0.4, 0.8], 0.3).tolist(),
             "sd_state": float(rng.uniform(0.2, 1.0)),
             "z_state": rng.normal(size=len(levels)).tolist()}
        eta = Xc @ p["b"] + p["sd_state"] * np.asarray(p["z_state"])[state]
        cuts = np.r_[-np.inf, p["Intercept"], np.inf]
        prob = expit(cuts[y] - eta) - expit(cuts[y - 1] - eta)
        return p, float(np.sum(w * np.log(prob)))

    assert_likelihood_is(model, point, seed=4)
    fit = model.fit(chains=2, iter_warmup=300, iter_sampling=300, seed=5, advice=False,
                    show_progress=False).cmdstan
    for name, want in (("b_Intercept", truth["cutpoints"]), ("b", truth["b"])):
        draws = fit.stan_variable(name)
        low, high = np.quantile(draws, [0.005, 0.995], axis=0)
        assert np.all((low < want) & (want < high)), (name, low, high, want)
