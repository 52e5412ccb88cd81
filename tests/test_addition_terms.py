"""Addition terms ``cens()``, ``weights()`` and ``trunc()`` (`stanbhm.likelihood`): the
program's log likelihood against scipy's censored, weighted and truncated one at 20
points, its ``log_lik`` and ``y_rep`` over a short fit, the header's reasons for the
rewrites they rule out, and the recovery of a demand from stocked-out sales.

Three programs are compiled (a negative binomial with every censoring kind, written a
kind of rows per statement; a poisson weighted, censored and truncated on both sides,
written one row at a time; a gaussian censored and truncated below, which also takes
interval-censored rows far in the upper tail), two more for the comparison with brms's
form of a weighted, censored negative binomial (the generated program and the
hand-written ``tests/stan/brms_censored_weighted.stan``), one more for its weighted,
truncated form, one more for the recovery
test, one for the weighted ordinal survey (its log likelihood against scipy's and the
recovery of the generator's cutpoints and coefficients), and two for weighted rows
truncated to bounds of each row's own (a gaussian, a poisson), read from columns.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from brms_reference import assert_brms_form, reference, reference_density
from rewrite_cases import _agree, assert_likelihood_is, decision, grouped, model_block
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
    # censored rows get cells of their own, but x is continuous: every row its own cell
    assert decision(model, "collapse") == (
        "collapse: not applied; 78 rows in 78 cells of identical linear predictor, the 31 "
        "censored rows (cens(c, u)) in 31 of them, kept apart from the exact rows: each of "
        "rows with one censoring kind and outcome (and y2): too few rows per cell to pay")
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
        "integrate the effects out of plain rows only (the normal kind, of weighted ones "
        "too)")
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
    # -inf as lb and inf as ub leave that side of a row unbounded (brms); not the others
    assert error("y | trunc(lb = lo, ub = hi) ~ x",
                 df.assign(lo=df["lo"].where(df.index > 0, np.inf))) == (
        "trunc(lb = lo, ub = hi): column 'lo' has 1 row with lb = inf, which no outcome lies "
        "above; -inf leaves that side of a row unbounded")
    assert error("y | trunc(ub = hi) ~ x", df.assign(hi=df["hi"].where(df.index > 1, -np.inf))
                 ) == ("trunc(ub = hi): column 'hi' has 2 rows with ub = -inf, which no "
                       "outcome lies below; inf leaves that side of a row unbounded")
    unbounded = df.assign(lo=df["lo"].where(df.index % 3 > 0, -np.inf),
                          hi=df["hi"].where(df.index % 4 > 0, np.inf))
    assert sb.Model("y | trunc(lb = lo, ub = hi) ~ x", unbounded, family="negbinomial")
    assert error("y | trunc(lb = lo) ~ x", df.assign(lo=df["lo"] - 0.5)) == (
        "trunc(lb = lo): column 'lo' must hold whole numbers for the poisson family, whose "
        "outcome is an integer, but 59 rows do not")
    zeros = int((df["lo"] == 0).sum())
    assert error("y | trunc(lb = lo) ~ x", df.assign(lo=df["lo"] - 1), "negbinomial") == (
        f"trunc(lb = lo): column 'lo' is below 0 in {zeros} rows, where the negbinomial "
        "family's outcome has no values; make each lb at least 0 (or -inf: no lower bound)")
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
    counts 0); new rows carry bounds of their own (`lb_new`), so y_new is drawn within
    them."""
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
    # and so is y_new, within each new row's bounds, which the new rows carry
    assert "  vector[N_new] lb_new; // lower truncation bound of each new row: lo\n" in code
    assert "        y_new[i] = normal_truncated_rng(eta[i], sigma, lb_new[i], ub);\n" in code
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


def test_new_rows_carry_their_own_bounds_and_say_what_is_wrong() -> None:
    """Predicting reads each bound column from the new data (-inf as lb, inf as ub: no
    bound on that side, an integer outcome's as 0 and int max), or says which column is
    at fault: missing from the new data, missing values, an infinity on the wrong side,
    not whole for counts, lb not below ub. Predicting the fitted rows takes their own."""
    from stanbhm.predict import encode, fitted_rows, prediction_data

    df = unbounded_data("poisson")
    model = sb.Model("y | trunc(lb = lo, ub = hi) ~ x", df, family="poisson")
    assert "  array[N_new] int ub_new; // upper truncation bound of each new row: hi\n" in \
        model.stan_code()
    assert model.stan_data()["N_new"] == 0 and len(model.stan_data()["lb_new"]) == 0
    new = pd.DataFrame({"x": [0.0, 1.0, -1.0], "lo": [1.0, -np.inf, 0.0],
                        "hi": [5.0, 8.0, np.inf]})
    data = prediction_data(model.plan, encode(model, new), True)
    assert data["lb_new"].tolist() == [1, 0, 0]
    assert data["ub_new"].tolist() == [5, 8, 2**31 - 1]
    own = prediction_data(model.plan, fitted_rows(model), True)
    np.testing.assert_array_equal(own["lb_new"], model.stan_data()["lb"])
    np.testing.assert_array_equal(own["ub_new"], model.stan_data()["ub"])

    def error(frame: pd.DataFrame) -> str:
        with pytest.raises(SpecError) as info:
            encode(model, frame)
        return str(info.value)

    text = "trunc(lb = lo, ub = hi) of the new data"
    assert error(new.drop(columns="hi")) == (
        "new data has no column 'hi' (the upper truncation bound of trunc(lb = lo, ub = "
        "hi)): y_new is drawn within each new row's bounds")
    assert error(new.assign(lo=[1.0, np.nan, 0.0])) == (
        f"{text}: column 'lo' has 1 row with a missing value; give each new row its "
        "bound (-inf for none)")
    assert error(new.assign(hi=[5.0, -np.inf, 3.0])) == (
        f"{text}: column 'hi' has 1 row with ub = -inf, which no outcome lies below; inf "
        "leaves that side of a row unbounded")
    assert error(new.assign(lo=[1.5, 0.0, 0.0])) == (
        f"{text}: column 'lo' must hold whole numbers for the poisson family, whose "
        "outcome is an integer, but 1 row do not")
    assert error(new.assign(lo=[5.0, 0.0, 0.0])) == f"{text}: lb is not below ub in 1 row"
    words = new.assign(lo="low")
    assert error(words) == (
        f"{text}: column 'lo' must be numeric, but it has dtype {words['lo'].dtype}")
    gaussian = sb.Model("y | trunc(lb = lo, ub = hi) ~ x", unbounded_data("gaussian"))
    values = prediction_data(gaussian.plan, encode(gaussian, new), True)
    assert values["lb_new"].tolist() == [1.0, -np.inf, 0.0]
    assert values["ub_new"].tolist() == [5.0, 8.0, np.inf]


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


def unbounded_data(family: str) -> pd.DataFrame:
    """`bounded_data` with an upper bound column for both (the gaussian's 100) and some
    infinite bounds on fitted rows, brms's "no bound on this side": -inf as lb on rows
    1 and 2, inf as ub on rows 2 and 7 (row 2 unbounded on both sides)."""
    df = bounded_data(3, family)
    if family == "gaussian":
        df["hi"] = 100.0
    df.loc[[1, 2], "lo"] = -np.inf
    df.loc[[2, 7], "hi"] = np.inf
    return df


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_weighted_rows_truncated_to_bounds_of_their_own_are_scipys(family) -> None:
    """Weighted rows truncated to bounds read from columns, some infinite (no bound on
    that side of the row, as brms reads -inf as lb and inf as ub): at 20 points the
    program's log likelihood is scipy's sum of weight x (log density - log P(within the
    row's bounds)); the header says so, as brms does for rows that are not censored;
    over a short fit log_lik is that per row and every y_rep lies within its row's
    bounds. The gaussian's y_rep is drawn by the inverse CDF: within bounds some 15 sds
    above the mean too (where 10000 redraws would all fail), and distributed as the
    truncated normal of its draw's parameters (the PIT values' KS test). New rows carry
    their own bounds: every y_new lies within its row's, infinite ones included."""
    df = unbounded_data(family)
    formula = "y | weights(w) + trunc(lb = lo, ub = hi) ~ x"
    model = sb.Model(formula, df, family=family)
    code = model.stan_code()
    assert ("// weights(w): each row's log density less the log probability of its "
            "truncation bounds, all times its weight, log_lik too, as brms; a weight of 2 "
            "counts a row twice, not a survey design correction\n") in code
    span = {"gaussian": "P(lb < Y <= ub)", "poisson": "P(lb - 1 < Y <= ub)"}[family]
    draw = {"gaussian": "y_rep drawn within its row's bounds by the inverse CDF "
                        "(normal_truncated_rng)",
            "poisson": "y_rep redrawn until it falls within its row's bounds (at most "
                       "10000 tries a row: a draw whose bounds hold less of its predictive "
                       "mass fails with a message)"}[family]
    assert (f"// trunc(lb = lo, ub = hi): each row's density divided by {span} (lb from "
            f"column lo and ub from column hi, each row its own), as brms; {draw}; y_new "
            "within each new row's bounds, read from the new data's lo and hi; -inf as lb "
            "or inf as ub leaves that side of a row unbounded, as in brms: 3 fitted rows\n"
            ) in code
    if family == "gaussian":
        assert ("      if (is_inf(lb_obs[i]) && is_inf(ub_obs[i])) {\n"
                "        // both sides unbounded: nothing to renormalize\n"
                "      } else if (is_inf(ub_obs[i])) {\n"
                "        lp -= normal_lcdf(-lb_obs[i] | -eta[i], sigma);\n"
                "      } else if (is_inf(lb_obs[i])) {\n"
                "        lp -= normal_lcdf(ub_obs[i] | eta[i], sigma);\n"
                "      } else {\n") in code
    else:  # an integer outcome's -inf lb is 0, which bounds nothing; its inf ub is int max
        assert ("      if (ub_obs[i] == 2147483647) {\n"
                "        lp -= poisson_lccdf(lb_obs[i] - 1 | exp(eta[i]));\n"
                "      } else {\n") in code
    obs = df["y"].notna().to_numpy()
    y, w = df["y"].to_numpy()[obs], df["w"].to_numpy()[obs]
    lower, upper = df["lo"].to_numpy()[obs], df["hi"].to_numpy()[obs]

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
    fitted = model.fit(chains=1, iter_warmup=150, iter_sampling=20, seed=3, advice=False,
                       show_progress=False)
    fit = fitted.cmdstan
    log_lik, y_rep = fit.stan_variable("log_lik"), fit.stan_variable("y_rep")
    names = ["Intercept", "b"] + (["sigma"] if family == "gaussian" else [])
    for d in range(20):
        p = {n: fit.stan_variable(n)[d] for n in names}
        # the CSV files hold 6 significant digits, of the parameters too
        np.testing.assert_allclose(log_lik[d], row_log_lik(p), rtol=1e-4, atol=1e-4)
    low = df["lo"].fillna(-np.inf).to_numpy()
    high = df["hi"].to_numpy()
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
    # new rows, each within its own bounds: narrow, one-sided, none, far above the mean
    far = (40.0, 60.0) if family == "gaussian" else (5.0, 9.0)  # the gaussian's ~25 sds up
    new = pd.DataFrame({"x": [0.0, 1.0, -1.0, 0.5, 0.0],
                        "lo": [2.0, -np.inf, 1.0, -np.inf, far[0]],
                        "hi": [3.0, 4.0, np.inf, np.inf, far[1]]}, index=list("abcde"))
    drawn = fitted.posterior_predict(new)
    assert list(drawn.indexes["row"]) == list("abcde")
    values = drawn.values.reshape(-1, len(new))
    assert ((values >= new["lo"].to_numpy()) & (values <= new["hi"].to_numpy())).all()
    assert ((values[:, 3] < 2) | (values[:, 3] > 3)).any()  # unbounded, unlike row a


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
            "weights": fitted["w"].to_numpy(), "K": 2, "X": fitted[["x", "z"]].to_numpy(),
            "truncated": 0, "lb": 0}
    program = reference("brms_censored_weighted")
    points = negbinomial_points(6)
    gaps = assert_brms_form(model, program, data, points)
    assert spread_without(program, data, gaps, points, weights=np.ones(len(fitted))) > 1.0


@pytest.mark.slow
def test_weighted_truncated_negbinomial_is_the_brms_form() -> None:
    """y | weights(w) + trunc(lb = 2): the generated program's log density is brms's
    form's (the same reference program, every row truncated: its log mass less
    log P(Y > 1), all times its weight) up to a constant at 20 points; the reference
    without the truncation is not."""
    df = count_data()
    df = df[df["y"].isna() | (df["y"] >= 2)].reset_index(drop=True)
    df["z"] = np.random.default_rng(9).normal(size=len(df))
    priors = {"Intercept": "normal(1.5, 1)", "b": "normal(0, 1)", "phi": "gamma(2, 0.1)"}
    model = sb.Model("y | weights(w) + trunc(lb = 2) ~ x + z", df, family="negbinomial",
                     priors=priors)
    fitted = df[df["y"].notna()]
    n = len(fitted)
    data = {"N": n, "Y": fitted["y"].to_numpy(dtype=int), "cens": np.zeros(n, dtype=int),
            "rcens": np.zeros(n, dtype=int), "weights": fitted["w"].to_numpy(), "K": 2,
            "X": fitted[["x", "z"]].to_numpy(), "truncated": 1, "lb": 2}
    program = reference("brms_censored_weighted")
    points = negbinomial_points(8)
    gaps = assert_brms_form(model, program, data, points)
    assert spread_without(program, data, gaps, points, truncated=0) > 1.0


def negbinomial_points(seed: int) -> list[tuple[dict, dict]]:
    """20 points as stanbhm's parameters and as the reference's (brms calls the NB2
    precision `shape`)."""
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(20):
        p = {"Intercept": rng.normal(1.5, 0.3), "b": rng.normal([0.4, -0.2], 0.2).tolist(),
             "phi": rng.uniform(1, 10)}
        points.append((p, {"Intercept": p["Intercept"], "b": p["b"], "shape": p["phi"]}))
    return points


def spread_without(program, data: dict, gaps: list[float], points: list, **change) -> float:
    """How far the gaps to the reference spread once its data differ by `change`: more
    than rounding says the changed term is part of what matched."""
    moved = [gap + reference_density(program, theirs, data)
             - reference_density(program, theirs, {**data, **change})
             for gap, (_, theirs) in zip(gaps, points, strict=True)]
    return max(moved) - min(moved)


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


# ------------------------------------------------------------- cells of censored rows


def capped_counts(seed: int = 11, n: int = 300) -> pd.DataFrame:
    """Counts on a few cells of design (a factor, a group factor, an exposure of 1 or 2)
    whose measurement is capped: 0 is left-censored (at most 0: it may be below the
    detection limit), 6 and more right-censored at 6, 3 or 4 known only to lie in (2, 4];
    so censored rows share their outcome. Row weights; every 23rd outcome missing. A
    gaussian outcome ``t`` of the same rows, censored at 0 (left) and 2 (right): a tobit."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.choice(list("xyz"), n), "g": rng.choice(list("abcd"), n),
                       "expo": rng.choice([1.0, 2.0], n), "w": rng.choice([0.5, 1.0, 2.0], n)})
    raw = rng.poisson(1.5 * df["expo"] * np.exp(0.3 * (df["a"] == "y")))
    df["c"] = np.select([raw >= 6, raw <= 0, (raw >= 3) & (raw <= 4)],
                        ["right", "left", "interval"], "none")
    df["y"] = np.select([raw >= 6, raw <= 0, (raw >= 3) & (raw <= 4)], [6, 0, 2],
                        raw).astype(float)
    df["u"] = np.where(df["c"] == "interval", 4.0, 0.0)
    latent = 1 + 0.5 * (df["a"] == "y") + rng.normal(0, 1, n)
    df["tc"] = np.select([latent < 0, latent > 2], ["left", "right"], "none")
    df["t"] = np.clip(latent, 0, 2)
    df.loc[::23, ["y", "t"]] = np.nan
    return df


#: family -> the formula of `capped_counts` whose censored rows get cells of their own
CELL_FORMULAS = {
    "poisson": "y | cens(c, u) ~ C(a) + offset(log(expo)) + (1 | g)",
    "negbinomial": "y | cens(c, u) ~ C(a) + offset(log(expo)) + (1 | g)",
    "gaussian": "t | weights(w) + cens(tc) ~ C(a) + offset(0.1 * expo) + (1 | g)",
    # no interval: log_interval of four binomial CDFs with trials_cell[i] runs past 80
    # columns, where stanc breaks nested calls as stanbhm.layout does not yet
    "binomial": "y | trials(trials) + cens(no_interval) ~ C(a) + (1 | g)",
}


def test_censored_rows_are_collapsed_into_cells_of_their_own(cmdstan) -> None:
    """Exact rows collapse as before; the censored rows of one linear predictor,
    censoring kind, outcome and interval bound are cells of their own after them, each
    adding its rows' count times their log probability; a poisson's censored cell
    carries its rows' offset, not a summed exposure. Every family's program passes stanc
    as stanc --auto-format writes it. Truncated rows, weighted counts and rows all
    censored still refuse the cells, saying why."""
    df = capped_counts()
    model = sb.Model(CELL_FORMULAS["poisson"], df, family="poisson",
                     parameterization="noncentered")
    fitted = df[df["y"].notna()]
    exact, censored = fitted[fitted["c"] == "none"], fitted[fitted["c"] != "none"]
    design = exact.groupby(["a", "g"])["y"].agg(["sum", "size"])
    own = censored.groupby(["a", "g", "expo", "c", "y", "u"]).size()
    assert decision(model, "collapse") == (
        "collapse: poisson on the sums, exposures added; a censored cell adds its rows' "
        f"log probability (lccdf, lcdf) times its rows; {len(fitted)} rows in "
        f"{len(design) + len(own)} cells of identical linear predictor, the {len(censored)} "
        f"censored rows (cens(c, u)) in {len(own)} of them, kept apart from the exact rows: "
        "each of rows with one censoring kind and outcome (and y2): exact, a constant apart")
    data = model.stan_data()
    n = data["N_exact_cell"]
    assert n == len(design) and data["N_cell"] == n + len(own)
    assert sorted(data["y_cell"][:n]) == sorted(design["sum"].astype(int))
    assert (data["cens_cell"][:n] == 0).all() and (data["y2_cell"][:n] == 0).all()
    rows = fitted.reset_index(drop=True).iloc[data["cell"][n:] - 1]
    codes = rows["c"].map({"right": 1, "left": -1, "interval": 2}).to_numpy()
    np.testing.assert_array_equal(data["cens_cell"][n:], codes)
    np.testing.assert_array_equal(data["y_cell"][n:], rows["y"].astype(int))
    np.testing.assert_array_equal(data["y2_cell"][n:], rows["u"].astype(int))
    np.testing.assert_allclose(data["log_exposure_cell"][n:], np.log(rows["expo"]))
    keys = list(zip(rows["a"], rows["g"], rows["expo"], rows["c"], rows["y"], rows["u"],
                    strict=True))
    np.testing.assert_array_equal(data["n_cell"][n:], own.loc[keys].to_numpy())
    assert data["n_cell"].sum() == len(fitted)
    assert "N_right" not in data and len(data["cens"]) == len(fitted)  # log_lik reads cens
    block = model_block(model.stan_code())
    assert ("    eta += log_exposure_cell; // the exact cells' summed exposures, the censored "
            "ones' offset\n") in block
    assert "    for (i in (N_exact_cell + 1) : N_cell) {\n" in block
    assert "      if (cens_cell[i] == 1) {\n        lp = poisson_lccdf(y_cell[i] | exp(eta[i]));" \
        in block
    assert "        lp = log_interval(poisson_lcdf(y_cell[i] | exp(eta[i])),\n" in block
    assert "      target += n_cell[i] * lp;\n" in block
    assert "    y_cell[1 : N_exact_cell] ~ poisson_log(eta[1 : N_exact_cell]);\n" in block
    # every family's program: stanc accepts it, and leaves it as it is when formatting
    stanc = str(cmdstan / "bin" / "stanc")
    df["trials"] = 8
    df["no_interval"] = df["c"].replace("interval", "none")
    for family, formula in CELL_FORMULAS.items():
        other = sb.Model(formula, df, family=family, parameterization="noncentered")
        assert other.plan.likelihood.cells.n_censored > 0, family
        code = other.stan_code()
        for line in code[code.index("\ndata {"):].splitlines():
            assert len(line.split("//", 1)[0].rstrip()) <= 80, line
        with tempfile.TemporaryDirectory() as folder:
            src = Path(folder) / f"{family}.stan"
            src.write_text(code)
            checked = subprocess.run([stanc, f"--o={folder}/m.hpp", str(src)],
                                     capture_output=True, text=True, check=False)
            assert checked.returncode == 0, (family, checked.stderr)
            formatted = subprocess.run([stanc, "--auto-format", str(src)],
                                       capture_output=True, text=True, check=True)
            assert formatted.stdout.rstrip("\n") == code.rstrip("\n"), family
    # what still refuses cells
    reasons = {
        "y | weights(w) + cens(c, u) ~ C(a) + (1 | g)": "the rows are censored (cens(c, u)) "
        "and weighted (weights(w)); only gaussian cells take weights: a weighted sum of "
        "counts is no count",
        "y | cens(c, u) + trunc(ub = 6) ~ C(a) + (1 | g)": "the rows are censored (cens(c, "
        "u)) and truncated (trunc(ub = 6)); cells are written for plain, censored or "
        "(gaussian) weighted rows, not for truncated ones",
    }
    for formula, reason in reasons.items():
        refused = sb.Model(formula, df, family="poisson")
        assert decision(refused, "collapse") == f"collapse: not applied; {reason}"
    everything = df.assign(c=np.where(df["c"] == "none", "right", df["c"]))
    assert decision(sb.Model(CELL_FORMULAS["poisson"], everything, family="poisson"),
                    "collapse") == ("collapse: not applied; the rows are censored (cens(c, "
                                    "u)), every fitted row: no exact rows to collapse")


@pytest.mark.slow
@pytest.mark.parametrize("family", ["poisson", "negbinomial", "gaussian"])
def test_censored_cells_are_scipys_censored_rows(family) -> None:
    """The collapsed program's log likelihood is scipy's per-row censored one (weighted
    for the gaussian tobit) up to a constant at 20 points, with an offset, a group
    intercept and missing rows; over a short fit of the poisson's, log_lik is scipy's
    per row."""
    df = capped_counts()
    model = sb.Model(CELL_FORMULAS[family], df, family=family,
                     parameterization="noncentered")
    assert model.plan.likelihood.strategy.name == "cells"
    assert model.plan.likelihood.cells.n_censored > 0
    outcome = "t" if family == "gaussian" else "y"
    obs = df[outcome].notna().to_numpy()
    levels = list(model.plan.groups[0].levels)
    level = df["g"].map(levels.index).to_numpy()
    a = pd.get_dummies(df["a"], drop_first=True).to_numpy(dtype=float)
    a = a - a[obs].mean(axis=0)  # the program's X is centered over the fitted rows
    expo = df["expo"].to_numpy()
    offset = 0.1 * expo if family == "gaussian" else np.log(expo)
    rows = df.assign(y=df["t"], c=df["tc"]) if family == "gaussian" else df
    w = df["w"].to_numpy()[obs] if family == "gaussian" else 1.0

    def row_log_lik(p: dict) -> np.ndarray:
        eta = (p["Intercept"] + a @ np.asarray(p["b"]) + offset
               + p["sd_g"] * np.asarray(p["z_g"])[level])[obs]
        dist = {"poisson": lambda: stats.poisson(np.exp(eta)),
                "negbinomial": lambda: stats.nbinom(p["phi"],
                                                    p["phi"] / (p["phi"] + np.exp(eta))),
                "gaussian": lambda: stats.norm(eta, p["sigma"])}[family]()
        return w * censored_log_lik(dist, rows.assign(y=rows["y"].where(obs)))

    def point(rng):
        p = {"Intercept": rng.normal(0.5, 0.3), "b": rng.normal(0, 0.3, 2).tolist(),
             "sd_g": rng.uniform(0.1, 1.0), "z_g": rng.normal(size=len(levels)).tolist()}
        if family == "negbinomial":
            p["phi"] = rng.uniform(1, 10)
        if family == "gaussian":
            p["sigma"] = rng.uniform(0.5, 2)
        return p, float(row_log_lik(p).sum())

    assert_likelihood_is(model, point, seed=1)
    if family != "poisson":
        return
    fit = model.fit(chains=1, iter_warmup=150, iter_sampling=20, seed=3, advice=False,
                    show_progress=False).cmdstan
    log_lik = fit.stan_variable("log_lik")
    for d in range(20):
        p = {n: fit.stan_variable(n)[d] for n in ("Intercept", "b", "sd_g", "z_g")}
        # the CSV files hold 6 significant digits, of the parameters too
        np.testing.assert_allclose(log_lik[d], row_log_lik(p), rtol=1e-4, atol=1e-4)


# ------------------------------------------------- weighted rows, intercept integrated out

WEIGHTED_MARGINAL = "y | weights(w) ~ x + offset(0.3 * s) + (1 | g)"


def weighted_grouped(n: int = 60) -> pd.DataFrame:
    """`rewrite_cases.grouped` (missing outcomes) with row weights, two of them 0."""
    df = grouped(seed=3, n=n, missing=True)
    df["w"] = np.random.default_rng(1).uniform(0.2, 3.0, size=n)
    df.loc[[4, 11], "w"] = 0.0
    return df


def level_log_integral(r: np.ndarray, w: np.ndarray, sigma: float, tau: float) -> float:
    """log of the integral over u of prod_i N(r_i | u, sigma)^w_i N(u | 0, tau), by
    scipy's quadrature about the integrand's mode in units of its sd. The normal log
    densities are written out (scipy.stats.norm.logpdf's formula, -z^2 / 2 - log(scale)
    - log(2 pi) / 2; equal to 2e-16): quad evaluates the integrand some 500 times a
    level, and scipy.stats' argument checks made a level take 60 ms instead of 6 ms: 15 s
    of the weighted marginal test, which integrates 280 levels."""
    from scipy import integrate

    precision = w.sum() / sigma**2 + 1 / tau**2
    mode, sd = (w * r).sum() / sigma**2 / precision, precision**-0.5
    half_log_2pi = 0.5 * np.log(2 * np.pi)

    def log_normal(x, mean: float, scale: float):
        return -0.5 * ((x - mean) / scale) ** 2 - np.log(scale) - half_log_2pi

    def log_integrand(u: float) -> float:
        return float(np.sum(w * log_normal(r, u, sigma)) + log_normal(u, 0.0, tau))

    top = log_integrand(mode)
    value, _ = integrate.quad(lambda z: np.exp(log_integrand(mode + sd * z) - top),
                              -np.inf, np.inf, epsabs=1e-14, epsrel=1e-13)
    return top + np.log(value * sd)


def test_weighted_rows_have_their_intercept_integrated_out() -> None:
    """Weighted gaussian rows: the normal marginal takes them (the weights are
    precisions), the per-row statement is never used (one row per level is no normal
    density once weighted), the effects are drawn back with the rows' weights in their
    precision, log_lik is per row weighted as brms's; cells of weighted rows give the
    weighted level sums too. Censored or truncated rows and the other kinds still refuse
    it, saying why."""
    df = weighted_grouped()
    # under "auto" the statistics serve weighted rows, so the marginal is asked for by name
    assert decision(sb.Model(WEIGHTED_MARGINAL, df), "marginalization") == (
        "marginalization: not applied; the rows have weights(w): the per-level or joint "
        "statistics serve weighted rows in O(levels), and they take no integrated-out "
        "intercept; name a term (rewrites={'g': 'marginalize'}) to integrate it out")
    model = sb.Model(WEIGHTED_MARGINAL, df, rewrites={"g": "marginalize"})
    assert decision(model, "marginalization") == (
        "marginalization: effects of g integrated out; gaussian rows with a group intercept: "
        "exact normal-normal marginalization; the level effects are drawn back in generated "
        "quantities; weights(w): each row's log density times its weight, so the weights "
        "are precisions: the level sums weighted, the weights' sum counting the rows in "
        "log(sigma), the effects drawn back with precision W / sigma^2 + 1 / sd^2")
    code = model.stan_code()
    block = model_block(code)
    assert ("    vector[N_obs] scaled = weights .* resid; // residuals times their weights\n"
            in block)
    assert "    vector[N_g] v_g = square(sigma) + n_g * square(sd_g); // per level\n" in block
    assert "    target += -(wsum_g - N_g) * log(sigma) - 0.5 * sum(log(v_g));\n" in block
    assert "    target += -0.5 * dot_product(resid, scaled) / square(sigma);\n" in block
    assert ("  real wsum_g = sum(weights); // the fitted rows' weights summed: their count in "
            "the log(sigma) term\n") in code
    assert "        sum_g[J_g_obs[i]] += weights[i] * (y[i] - eta[i]) / square(sigma);\n" in code
    assert "        prec_g[J_g_obs[i]] += weights[i] / square(sigma);\n" in code
    assert "      log_lik[i] = weights[i] * lp;\n" in code
    fitted = df[df["y"].notna()]
    np.testing.assert_allclose(model.stan_data()["n_g"],
                               fitted.groupby("g")["w"].sum().reindex(
                                   list(model.plan.groups[0].levels)).to_numpy())
    # one row per level: still the level sums, as a weighted row's integral is no normal
    single = fitted.drop_duplicates("g")
    one = sb.Model(WEIGHTED_MARGINAL, single, rewrites={"g": "marginalize"})
    assert not one.plan.likelihood.marginal.per_row
    assert "sqrt(square(sigma) + square(sd_g))" not in one.stan_code()
    # known standard errors: the rows' precisions are weight / se^2
    known = sb.Model("y | se(s) + weights(w) ~ x + (1 | g)", df)
    assert ("  vector[N_obs] inv_var = weights .* inv_square(se_obs); // weight / se^2 of each "
            "fitted row: its precision\n") in known.stan_code()
    np.testing.assert_allclose(known.stan_data()["W_g"], (fitted["w"] / fitted["s"] ** 2)
                               .groupby(fitted["g"]).sum().reindex(
                                   list(known.plan.groups[0].levels)).to_numpy())
    # cells of weighted rows: their weights summed are the level sums' weights
    many = weighted_grouped(300)
    many["a"] = np.random.default_rng(2).choice(list("pq"), len(many))
    cells = sb.Model("y | weights(w) ~ C(a) + (1 | g) + (1 | h)", many,
                     rewrites={"g": "marginalize"})
    assert cells.plan.likelihood.strategy.name == "cells"
    assert "    target += -(wsum_cell - N_g) * log(sigma) - 0.5 * sum(log(v_g));\n" in \
        cells.stan_code()
    # what still refuses it
    with pytest.raises(PlanError, match=r"rewrites\['g'\] = 'gamma_poisson': the rows have "
                       r"weights\(w\), and only the normal kind"):
        sb.Model("y | weights(w) ~ x + (1 | g)", df.assign(y=df["y"].round().abs()),
                 family="poisson", rewrites={"g": "gamma_poisson"})
    df["c"] = np.where(df["x"] > 1, "right", "none")
    assert decision(sb.Model("y | weights(w) + cens(c) ~ x + (1 | g)", df),
                    "marginalization") == (
        "marginalization: not applied; the rows have cens(c) and weights(w), and the "
        "marginal kinds integrate the effects out of plain rows only (the normal kind, of "
        "weighted ones too)")


@pytest.mark.slow
def test_weighted_normal_marginal_is_the_integral_and_the_weighted_posterior() -> None:
    """The program's log likelihood is, up to a constant at 20 points, the sum over the
    levels of scipy's quadrature of prod_i N(y_i | eta_i + u, sigma)^w_i N(u | 0, sd_g)
    (weights 0 and missing rows among them); its log_lik="marginal" is that integral per
    level at each draw; and a short fit agrees with the weighted rows' fit with the
    effects sampled (brms's form) on Intercept, b, sigma, sd_g and the drawn-back effects
    within Monte Carlo error."""
    df = weighted_grouped()
    model = sb.Model(WEIGHTED_MARGINAL, df, log_lik="marginal", rewrites={"g": "marginalize"},
                     priors={"sd_g": "exponential(1)"})
    assert model.plan.likelihood.strategy.name == "marginal"
    obs = df["y"].notna().to_numpy()
    levels = list(model.plan.groups[0].levels)
    level = df["g"].map(levels.index).to_numpy()[obs]
    x = df["x"].to_numpy()
    centered, y = (x - x[obs].mean())[obs], df["y"].to_numpy()[obs]
    w, offset = df["w"].to_numpy()[obs], 0.3 * df["s"].to_numpy()[obs]

    def per_level(p: dict) -> np.ndarray:
        r = y - (p["Intercept"] + np.asarray(p["b"])[0] * centered + offset)
        return np.array([level_log_integral(r[level == j], w[level == j], p["sigma"],
                                            p["sd_g"]) for j in range(len(levels))])

    def point(rng):
        p = {"Intercept": rng.normal(1, 0.3), "b": [rng.normal(0.5, 0.2)],
             "sd_g": rng.uniform(0.2, 1.5), "sigma": rng.uniform(0.5, 2)}
        return p, float(per_level(p).sum())

    assert_likelihood_is(model, point, seed=2)
    fit = model.fit(chains=4, iter_warmup=300, iter_sampling=250, seed=4, advice=False,
                    show_progress=False).cmdstan
    log_lik = fit.stan_variable("log_lik")
    for d in range(0, 1000, 50):
        p = {n: fit.stan_variable(n)[d] for n in ("Intercept", "b", "sd_g", "sigma")}
        # the CSV files hold 6 significant digits, of the parameters too
        np.testing.assert_allclose(log_lik[d], per_level(p), rtol=1e-4, atol=1e-3)
    plain = sb.Model(WEIGHTED_MARGINAL, df, rewrites="none", parameterization="noncentered",
                     priors={"sd_g": "exponential(1)"})
    assert plain.plan.likelihood.strategy.name == "rowwise"
    rows = plain.fit(chains=4, iter_warmup=300, iter_sampling=250, seed=4, advice=False,
                     show_progress=False).cmdstan
    for name in ("Intercept", "b", "sigma", "sd_g", "r_g"):
        _agree(fit.stan_variable(name), rows.stan_variable(name), name)
