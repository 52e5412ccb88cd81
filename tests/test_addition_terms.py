"""Addition terms ``cens()``, ``weights()`` and ``trunc()`` (`stanbhm.likelihood`): the
program's log likelihood against scipy's censored, weighted and truncated one at 20
points, its ``log_lik`` and ``y_rep`` over a short fit, the header's reasons for the
rewrites they rule out, and the recovery of a demand from stocked-out sales.

Three programs are compiled (a negative binomial with every censoring kind, written a
kind of rows per statement; a poisson weighted, censored and truncated on both sides,
written one row at a time; a gaussian censored and truncated below, which also takes
interval-censored rows far in the upper tail), two more for the comparison with brms's
form of a weighted, censored negative binomial (the generated program and the
hand-written ``tests/stan/brms_censored_weighted.stan``), one more for the recovery
test, one for the weighted ordinal survey (its log likelihood against scipy's and the
recovery of the generator's cutpoints and coefficients), and two for weighted rows
truncated to bounds of each row's own (a gaussian, a poisson), read from columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from brms_reference import assert_brms_form, reference, reference_density
from rewrite_cases import assert_likelihood_is, decision, model_block
from scipy import stats

import stanbhm as sb
from stanbhm.errors import PlanError, SpecError

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
    out = np.where(c == "interval", interval_log_prob(dist, y, u), out)
    step = 1 if discrete else 0
    below = dist.cdf(lower - step) if lower is not None else 0.0
    above = dist.cdf(upper) if upper is not None else 1.0
    return out - np.log(above - below)


def interval_log_prob(dist, y: np.ndarray, u: np.ndarray) -> np.ndarray:
    """log P(y < Y <= u) computed stably: from the upper tails (scipy's logsf) where y
    lies above the median, else from the CDFs (logcdf)."""
    upper = dist.logsf(y) < np.log(0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        from_tails = dist.logsf(y) + np.log(-np.expm1(dist.logsf(u) - dist.logsf(y)))
        from_cdfs = dist.logcdf(u) + np.log(-np.expm1(dist.logcdf(y) - dist.logcdf(u)))
    return np.where(upper, from_tails, from_cdfs)


def bounded_data(seed: int, family: str) -> pd.DataFrame:
    """Rows with a lower bound of each row's own (``lo``; missing on one of the two rows
    without an outcome, and for the gaussian 50 on the other, some 15 sds above its
    mean), an upper one (``hi``), weights and an outcome within its row's bounds: counts
    for the poisson, reals for the gaussian."""
    rng = np.random.default_rng(seed)
    n = 60
    df = pd.DataFrame({"x": rng.normal(size=n), "w": rng.uniform(0.2, 3.0, size=n)})
    if family == "poisson":
        df["lo"] = rng.integers(0, 4, size=n).astype(float)
        df["hi"] = df["lo"] + rng.integers(4, 12, size=n)
        df["y"] = np.clip(rng.poisson(np.exp(1.2 + 0.4 * df["x"])), df["lo"], df["hi"])
    else:
        df["lo"] = rng.uniform(-1.0, 2.0, size=n)
        df["y"] = np.clip(3 + df["x"] + rng.normal(0, 1.5, size=n), df["lo"] + 0.01, 11.0)
    df["y"] = df["y"].astype(float)
    df.loc[[5, 40], "y"] = np.nan
    df.loc[5, "lo"] = np.nan  # no outcome to fit: drawn without a lower bound
    if family == "gaussian":
        df.loc[40, "lo"] = 50.0  # drawn where a redraw would almost never land
    return df


def truncated_log_lik(dist, y: np.ndarray, lower: np.ndarray, upper, discrete: bool,
                      ) -> np.ndarray:
    """scipy's log density of each row less log P(lower <= Y <= upper) (for counts
    P(lower - 1 < Y <= upper)), bounds per row."""
    step = 1 if discrete else 0
    density = dist.logpmf(y) if discrete else dist.logpdf(y)
    return density - np.log(dist.cdf(upper) - dist.cdf(lower - step))


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


def test_truncation_bounds_from_columns_name_the_column_at_fault() -> None:
    """A bound read from a column: the column must exist, be numeric, have a value on
    every row with an outcome (NaN elsewhere is no bound), be finite, be whole for counts
    and not below 0 where the outcome has no values; lb is below ub in every row, and
    each outcome within its own row's bounds."""
    df = bounded_data(3, "poisson")

    def error(formula: str, data: pd.DataFrame = df, family: str = "poisson") -> str:
        with pytest.raises(SpecError) as info:
            sb.Model(formula, data, family=family)
        return str(info.value)

    assert error("y | trunc(lb = low) ~ x").startswith(
        "column 'low' (used in trunc(lb = low)) is not in the data; available columns: x, "
        "w, lo, hi, y")
    words = df.assign(hi="many")
    assert error("y | trunc(lb = lo, ub = hi) ~ x", words) == (
        "trunc(lb = lo, ub = hi): column 'hi' must be numeric, but it has dtype "
        f"{words['hi'].dtype}")
    assert error("y | trunc(lb = lo) ~ x", df.assign(lo=df["lo"] > 1)) == (
        "trunc(lb = lo): column 'lo' must be numeric, but it has dtype bool")
    gaps = df.copy()
    gaps.loc[[0, 7], "lo"] = np.nan
    assert error("y | trunc(lb = lo, ub = 30) ~ x", gaps) == (
        "trunc(lb = lo, ub = 30): column 'lo' has 2 rows with a missing value where the "
        "outcome is observed")
    assert error("y | trunc(ub = hi) ~ x", df.assign(hi=df["hi"].where(df.index > 0, np.inf))
                 ) == ("trunc(ub = hi): column 'hi' has 1 row with infinite values; give each "
                       "row a finite bound (a side left out of trunc() has none)")
    assert error("y | trunc(lb = lo) ~ x", df.assign(lo=df["lo"] - 0.5)) == (
        "trunc(lb = lo): column 'lo' must hold whole numbers for the poisson family, whose "
        "outcome is an integer, but 59 rows do not")
    zeros = int((df["lo"] == 0).sum())
    assert error("y | trunc(lb = lo) ~ x", df.assign(lo=df["lo"] - 1), "negbinomial") == (
        f"trunc(lb = lo): column 'lo' is below 0 in {zeros} rows, where the negbinomial "
        "family's outcome has no values; make each lb at least 0")
    assert error("y | trunc(lb = lo, ub = hi) ~ x", df.assign(hi=df["lo"])) == (
        "trunc(lb = lo, ub = hi): lb is not below ub in 59 rows")
    low_hi = df.assign(hi=df["hi"].where(df.index != 9, 2))
    assert error("y | trunc(lb = 2, ub = hi) ~ x", low_hi) == (
        "trunc(lb = 2, ub = hi): lb is not below ub in 1 row")
    above = int((df["y"] > df["lo"] + 1).sum())  # NaN outcomes compare False
    assert error("y | trunc(lb = lo, ub = hi) ~ x", df.assign(hi=df["lo"] + 1)) == (
        f"response 'y' is outside the truncation bounds (lb = lo, ub = hi) in {above} rows")
    below = int((df["y"] - 1 < df["lo"]).sum())
    assert error("y | trunc(lb = `my lo`) ~ x", df.rename(columns={"lo": "my lo"}).assign(
        y=df["y"] - 1), "negbinomial") == (
        f"response 'y' is outside the truncation bounds (lb = `my lo`) in {below} rows")


def test_bounds_of_each_rows_own_are_data_over_every_row() -> None:
    """Bounds from a column are data over all rows (y_rep draws every row within its
    own), the fitted rows' copy taken in transformed data; the rows are written one at a
    time; a row without an outcome and without a bound is drawn without it (-inf, for
    counts 0); new rows carry no bounds, so y_new stops with a message."""
    gaussian = sb.Model("y | trunc(lb = lo, ub = 100) ~ x", bounded_data(3, "gaussian"))
    code = gaussian.stan_code()
    assert "  vector[N] lb; // lower truncation bound of each row: lo\n" in code
    assert "  real ub; // upper truncation bound\n" in code
    assert ("  vector[N_obs] lb_obs = lb[obs]; // lower truncation bounds of the observed "
            "rows\n") in code
    assert ("      lp -= log_diff_exp(normal_lcdf(ub | eta[i], sigma),\n"
            "                         normal_lcdf(lb_obs[i] | eta[i], sigma));\n") in code
    assert "      lp -= log_diff_exp(normal_lcdf(ub | eta[obs[i]], sigma),\n" in code
    assert "                         normal_lcdf(lb[obs[i]] | eta[obs[i]], sigma));\n" in code
    # the gaussian's y_rep by the inverse of its CDF, each row within its own bounds
    assert "  real normal_truncated_rng(real mu, real sigma, real lb, real ub) {\n" in code
    assert "      y_rep[i] = normal_truncated_rng(eta[i], sigma, lb[i], ub);\n" in code
    assert ('      reject("y_new: trunc(lb = lo, ub = 100) reads its bounds from the data, ",\n'
            '             "which new rows do not carry");\n') in code
    lb = gaussian.stan_data()["lb"]
    assert lb.shape == (60,) and lb[5] == -np.inf and np.isfinite(np.delete(lb, 5)).all()
    counts = sb.Model("y | trunc(lb = lo) ~ x", bounded_data(3, "poisson"), family="poisson")
    code = counts.stan_code()
    assert "  array[N] int lb; // lower truncation bound of each row: lo\n" in code
    assert "      lp -= poisson_lccdf(lb_obs[i] - 1 | exp(eta[i]));\n" in code
    assert "      while ((y_rep[i] < lb[i]) && tries < 10000) {\n" in code  # redrawn
    assert counts.stan_data()["lb"][5] == 0
    # a column with a name that is no identifier is backticked as the formula writes it
    named = sb.Model("y | trunc(ub = `upper bound`) ~ x",
                     bounded_data(3, "poisson").rename(columns={"hi": "upper bound"}),
                     family="poisson")
    assert "  array[N] int ub; // upper truncation bound of each row: `upper bound`\n" in \
        named.stan_code()


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
    # what it weights, and where brms's code differs (R/stan-likelihood.R writes
    # `weights[n] * poisson_lccdf(...) - log_diff_exp(...)` with cens() and trunc())
    assert ("// weights(w): each row's log density or log probability less the log "
            "probability of its truncation bounds, all times its weight, log_lik too; brms, "
            "with cens() and trunc() together, weights the log density or log probability "
            "alone and subtracts the bounds' log probability unweighted; a weight of 2 "
            "counts a row twice, not a survey design correction\n") in model.stan_code()
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
    # log P(Y > lb) as normal_lcdf of -lb about -mu: Stan's normal_lccdf is -inf from
    # 8.25 sds on
    assert "    target += -normal_lcdf(-lb | -eta, sigma);\n" in model.stan_code()
    obs = df["y"].notna().to_numpy()

    def point(rng):
        p = {"Intercept": rng.normal(4, 0.5), "b": [rng.normal(1, 0.3)],
             "sigma": rng.uniform(1, 3)}
        dist = stats.norm(linear(p, df)[obs], p["sigma"])
        return p, float(censored_log_lik(dist, df, lower=-3.0).sum())

    assert_likelihood_is(model, point, seed=3)

    # the same program with the interval-censored rows 12 sds and more above their mean,
    # where both CDFs round to 1: brms's log_diff_exp of the log CDFs is -inf there
    far = df.copy()
    interval = (far["c"] == "interval") & far["y"].notna()
    far.loc[interval, "y"] = 4 + far["x"][interval] + 30.0
    far["u"] = far["y"] + 1.0
    tail = sb.Model("y | cens(c, u) + trunc(lb = -3) ~ x", far)
    assert tail.compile().exe_file == model.compile().exe_file  # one program
    code = tail.stan_code()
    assert ("      target += log_interval(normal_lcdf(y[i] | eta[i], sigma),\n"
            "                             normal_lcdf(y2[i] | eta[i], sigma),\n"
            "                             normal_lcdf(-y[i] | -eta[i], sigma),\n"
            "                             normal_lcdf(-y2[i] | -eta[i], sigma));\n") in code
    rows = interval.to_numpy()[obs]

    def far_point(rng):
        p = {"Intercept": rng.normal(4, 0.3), "b": [rng.normal(1, 0.1)],
             "sigma": rng.uniform(1, 2)}
        dist = stats.norm(linear(p, far)[obs], p["sigma"])
        y = far["y"].to_numpy()[obs]
        assert ((y[rows] - dist.mean()[rows]) / p["sigma"] > 12).all()
        with np.errstate(divide="ignore"):  # the difference of the CDFs is 0
            assert np.isneginf(np.log(dist.cdf(y + 1.0) - dist.cdf(y))[rows]).all()
        value = float(censored_log_lik(dist, far, lower=-3.0).sum())
        assert np.isfinite(value), p
        return p, value

    assert_likelihood_is(tail, far_point, seed=4)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_weighted_rows_truncated_to_bounds_of_their_own_are_scipys(family) -> None:
    """Weighted rows truncated to bounds read from columns (the gaussian's lower one per
    row and a constant upper one; the poisson's both per row): at 20 points the program's
    log likelihood is scipy's sum of weight x (log density - log P(within the row's
    bounds)); the header says so, as brms does for rows that are not censored; over a
    short fit log_lik is that per row and every y_rep lies within its row's bounds. The
    gaussian's y_rep is drawn by the inverse CDF: within bounds some 15 sds above the
    mean too (where 10000 redraws would all fail), and distributed as the truncated
    normal of its draw's parameters (the PIT values' KS test)."""
    df = bounded_data(3, family)
    formula = {"gaussian": "y | weights(w) + trunc(lb = lo, ub = 100) ~ x",
               "poisson": "y | weights(w) + trunc(lb = lo, ub = hi) ~ x"}[family]
    model = sb.Model(formula, df, family=family)
    code = model.stan_code()
    assert ("// weights(w): each row's log density less the log probability of its "
            "truncation bounds, all times its weight, log_lik too, as brms; a weight of 2 "
            "counts a row twice, not a survey design correction\n") in code
    own = {"gaussian": "P(lb < Y <= ub) (lb from column lo, each row its own)",
           "poisson": "P(lb - 1 < Y <= ub) (lb from column lo and ub from column hi, each "
                      "row its own)"}[family]
    draw = {"gaussian": "y_rep drawn within its row's bounds by the inverse CDF "
                        "(normal_truncated_rng)",
            "poisson": "y_rep redrawn until it falls within its row's bounds (at most "
                       "10000 tries a row: a draw whose bounds hold less of its predictive "
                       "mass fails with a message)"}[family]
    assert (f"// {formula.split(' | ')[1].split(' ~ ')[0].split(' + ')[1]}: each row's "
            f"density divided by {own}, as brms; {draw}; no y_new: new rows carry no "
            "bounds of their own\n") in code
    obs = df["y"].notna().to_numpy()
    y, w = df["y"].to_numpy()[obs], df["w"].to_numpy()[obs]
    lower = df["lo"].to_numpy()[obs]
    upper = np.full(obs.sum(), 100.0) if family == "gaussian" else df["hi"].to_numpy()[obs]

    def row_log_lik(p: dict) -> np.ndarray:
        eta = linear(p, df)[obs]
        dist = stats.norm(eta, p["sigma"]) if family == "gaussian" else stats.poisson(
            np.exp(eta))
        return w * truncated_log_lik(dist, y, lower, upper, family == "poisson")

    def point(rng):
        if family == "gaussian":
            p = {"Intercept": rng.normal(3, 0.5), "b": [rng.normal(1, 0.3)],
                 "sigma": rng.uniform(1, 3)}
        else:
            p = {"Intercept": rng.normal(1.2, 0.3), "b": [rng.normal(0.4, 0.1)]}
        value = float(row_log_lik(p).sum())
        assert np.isfinite(value), p
        return p, value

    assert_likelihood_is(model, point, seed=5)
    fit = model.fit(chains=1, iter_warmup=150, iter_sampling=20, seed=3, advice=False,
                    show_progress=False).cmdstan
    log_lik, y_rep = fit.stan_variable("log_lik"), fit.stan_variable("y_rep")
    names = ["Intercept", "b"] + (["sigma"] if family == "gaussian" else [])
    for d in range(20):
        p = {n: fit.stan_variable(n)[d] for n in names}
        # the CSV files hold 6 significant digits, of the parameters too
        np.testing.assert_allclose(log_lik[d], row_log_lik(p), rtol=1e-4, atol=1e-4)
    low = df["lo"].fillna(-np.inf).to_numpy()
    high = np.full(len(df), 100.0) if family == "gaussian" else df["hi"].to_numpy()
    assert ((y_rep >= low) & (y_rep <= high)).all()
    if family == "gaussian":
        x = df["x"].to_numpy()
        mu = (fit.stan_variable("Intercept")[:, None]
              + fit.stan_variable("b")[:, :1] * (x - x[obs].mean()))
        sigma = fit.stan_variable("sigma")[:, None]
        assert ((low[40] - mu[:, 40]) / sigma[:, 0] > 10).all()
        a, b = (low - mu) / sigma, (high - mu) / sigma
        pit = stats.truncnorm.cdf((y_rep - mu) / sigma, a, b)
        assert stats.kstest(pit.ravel(), "uniform").pvalue > 1e-3


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
    program = reference("brms_censored_weighted")
    rng = np.random.default_rng(6)
    points = []
    for _ in range(20):
        p = {"Intercept": rng.normal(1.5, 0.3), "b": rng.normal([0.4, -0.2], 0.2).tolist(),
             "phi": rng.uniform(1, 10)}
        points.append((p, {"Intercept": p["Intercept"], "b": p["b"], "shape": p["phi"]}))
    gaps = assert_brms_form(model, program, data, points)
    unweighted = [gap + reference_density(program, theirs, data)
                  - reference_density(program, theirs, {**data, "weights": np.ones(len(fitted))})
                  for gap, (_, theirs) in zip(gaps, points, strict=True)]
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
