"""Collapsing rows into cells of identical linear predictor (`passes.collapse`): when the
cells are taken or skipped and why (negative binomial sums, joint statistics that cost
less), the data and generated text of the cells, gaussian ones and ones serving an
integrated-out intercept included; and the exact log density of the collapsed program
against the plain one's, a constant apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from exact import assert_constant_gap
from rewrite_cases import (
    CROSSED,
    WEIGHTED_CROSSED,
    count_data,
    crossed_data,
    decision,
    weighted_crossed_data,
)
from scipy import stats
from scipy.special import gammaln

import stanbhm as sb

#: name -> (formula, family, parameterization). The plain programs are others' too: the
#: bernoulli one tests/test_families.py's, the poisson one tests/test_glm.py's kernel,
#: the negative binomial one (without the GLM kernel, as there) tests/test_threads.py's.
COLLAPSE_CASES = {
    "bernoulli": ("yb ~ C(a) + c + (1 | g)", "bernoulli", "noncentered"),
    "poisson_exposure": ("yc ~ C(a) + offset(log(expo)) + (1 + c | g)", "poisson", "centered"),
    "binomial_trials": ("ys | trials(t) ~ C(a) + (1 | g)", "binomial", "auto"),
    "bernoulli_missing_no_intercept": ("ybm ~ 0 + C(a) + c + (c - 1 | g)", "bernoulli",
                                       "centered"),
    "negbinomial_offset_slope": ("yc ~ c + offset(log(expo)) + (1 + c | g)", "negbinomial",
                                 "centered"),
}
#: the GLM kernel left out of a case's plain program
NO_GLM = {"negbinomial_offset_slope"}


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
        ("yc ~ C(a) + (1 | g)", "student_t"): "the student_t family has no exact collapse "
        "of counts",
    }
    for (formula, family), reason in skipped.items():
        model = sb.Model(formula, df, family=family)
        assert decision(model, "collapse") == f"collapse: not applied; {reason}"


def test_negative_binomial_sums_alone_would_change_the_posterior_of_phi() -> None:
    """Why NB2 cells keep the outcome's histogram: the sum of a cell's rows is NB2(n mu,
    n phi), but the rows' density less the sum's still moves with phi (a poisson's does
    not move with its rate)."""
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


def test_negative_binomial_cells_are_the_rows_density_exactly() -> None:
    """The cells' terms and the histogram's give the rows' NB2 log density, less the
    constant sum of lgamma(y + 1), at any mu and phi."""
    df = count_data().dropna(subset=["ycm"])
    model = sb.Model("ycm ~ C(a) + offset(log(expo)) + (1 | g)", df, family="negbinomial")
    cells = model.plan.likelihood.cells
    assert decision(model, "collapse") == (
        "collapse: negative binomial from the cells' counts and sums, with the outcome's "
        f"histogram; {len(df)} rows in {cells.n} cells of identical linear predictor: "
        "exact, a constant apart")
    data = model.stan_data()
    y = df["ycm"].to_numpy()
    keys = list(zip(df["a"], df["g"], df["expo"], strict=True))  # what the predictor reads
    standing = {keys[r]: c for c, r in enumerate(cells.row)}
    cell_of = np.array([standing[k] for k in keys])
    assert len(standing) == cells.n and data["N_value"] == len(np.unique(y))
    np.testing.assert_array_equal(data["y_cell"], np.bincount(cell_of, weights=y))
    rng = np.random.default_rng(2)
    for phi in (0.3, 4.0, 250.0):
        eta = rng.normal(0.5, 1.0, size=cells.n)  # log mu of each cell
        mu = np.exp(eta)[cell_of]
        rows = stats.nbinom.logpmf(y, phi, phi / (phi + mu)).sum() + gammaln(y + 1).sum()
        t = eta - np.log(phi)
        cells_lp = (data["y_cell"] @ t - (data["n_cell"] * phi + data["y_cell"])
                    @ np.logaddexp(0, t) + data["value_count"] @ gammaln(data["value"] + phi)
                    - len(y) * gammaln(phi))
        assert abs(cells_lp - rows) < 1e-9 * abs(rows)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(COLLAPSE_CASES))
@pytest.mark.log_density
def test_collapse_keeps_the_log_density(case) -> None:
    formula, family, param = COLLAPSE_CASES[case]
    df = count_data()
    glm = "never" if case in NO_GLM else "auto"
    plain = sb.Model(formula, df, family=family, parameterization=param, rewrites="none",
                     glm=glm)
    rewritten = sb.Model(formula, df, family=family, parameterization=param, glm=glm)
    assert rewritten.plan.likelihood.strategy.name == "cells"
    assert_constant_gap(plain, rewritten)


# ---------------------------------------------------------------------- gaussian cells


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
@pytest.mark.log_density
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
@pytest.mark.log_density
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


def _reference_cells(columns, rows):
    """Cells by np.unique over the stacked rows, numbered in order of first appearance."""
    table = np.column_stack([c[rows] for c in columns]) + 0.0
    _, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse.reshape(-1)]


@pytest.mark.parametrize("hashes", ["real", "all collide"])
def test_distinct_rows_groups_exactly_even_when_hashes_collide(hashes, monkeypatch) -> None:
    from stanbhm.passes import collapse

    rng = np.random.default_rng(3)
    n = 500
    a = rng.integers(0, 3, n).astype(float)
    a[a == 0] = -0.0 * rng.integers(0, 2, (a == 0).sum())  # -0.0 and 0.0: one value
    columns = [a, rng.integers(0, 4, n).astype(float), rng.choice([0.5, 1.5], n)]
    if hashes == "all collide":
        monkeypatch.setattr(collapse, "row_hashes",
                            lambda columns, at, n: np.zeros(n, dtype=np.uint64))
    for rows in (np.arange(n), np.flatnonzero(rng.random(n) < 0.7)):
        first, inverse = collapse.distinct_rows(columns, rows)
        want_first, want_inverse = _reference_cells(columns, rows)
        np.testing.assert_array_equal(first, want_first)
        np.testing.assert_array_equal(inverse, want_inverse)
    assert len(first) == 24  # 3 x 4 x 2 combinations, all present


def test_distinct_rows_with_no_columns_is_one_cell() -> None:
    from stanbhm.passes.collapse import distinct_rows

    first, inverse = distinct_rows([], np.arange(5))
    assert first.tolist() == [0] and inverse.tolist() == [0] * 5


def test_distinct_rows_of_a_continuous_first_column_are_every_row() -> None:
    from stanbhm.passes.collapse import distinct_rows

    rng = np.random.default_rng(5)
    X = np.column_stack([rng.normal(size=40), np.zeros(40)])
    for rows in (np.arange(40), np.arange(3, 40, 2)):
        first, inverse = distinct_rows([X, np.ones(40)], rows)
        assert first.tolist() == inverse.tolist() == list(range(len(rows)))
    X[7, 0] = X[3, 0]  # two rows alike: found by the full comparison
    first, inverse = distinct_rows([X, np.ones(40)], np.arange(40))
    assert len(first) == 39 and inverse[7] == inverse[3] == 3


# ------------------------------------------------------------- weighted gaussian cells

def test_weighted_gaussian_cells_hold_weighted_means_and_sum_of_squares() -> None:
    """Each cell weighs its rows' weights, at their weighted mean, with the weighted sum
    of squares within; a cell of weight 0 is left out; censoring still refuses cells."""
    df = weighted_crossed_data()
    model = sb.Model(WEIGHTED_CROSSED, df, parameterization="noncentered")
    cells = model.plan.likelihood.cells
    fitted = df.dropna(subset=["y"]).assign(wy=lambda d: d["wt"] * d["y"])
    sums = fitted.groupby(["a", "g", "h"])[["wt", "wy"]].sum()
    sums = sums[sums["wt"] > 0]
    assert len(sums) < fitted.groupby(["a", "g", "h"]).ngroups  # the weightless cell is out
    assert decision(model, "collapse") == (
        f"collapse: normal on the cell means, with the sum of squares within cells, weighted; "
        f"564 rows in {cells.n} cells of identical linear predictor; weights(wt): weighted "
        "cell means and sum of squares within cells, each cell weighing its rows' weights, "
        "the weights' sum counting the rows in log(sigma): exact, a constant apart")
    assert cells.n == len(sums)
    np.testing.assert_allclose(np.sort(cells.counts), np.sort(sums["wt"]), rtol=1e-13)
    means = (sums["wy"] / sums["wt"]).to_numpy()  # the offset is one number per cell
    np.testing.assert_allclose(np.sort(model.stan_data()["y_cell"]), np.sort(means),
                               rtol=1e-12)
    mean_of_row = fitted.groupby(["a", "g", "h"])["wy"].transform("sum") / \
        fitted.groupby(["a", "g", "h"])["wt"].transform("sum").replace(0, 1)
    direct = float((fitted["wt"] * (fitted["y"] - mean_of_row) ** 2).sum())
    assert abs(cells.within - direct) < 1e-9 * direct
    data = model.stan_data()
    assert data["wsum_cell"] == pytest.approx(fitted["wt"].sum())
    assert "    target += -(wsum_cell - N_cell) * log(sigma)" in model.stan_code()
    df["c"] = np.where(df["g"] == "A", "right", "none")
    censored = sb.Model(WEIGHTED_CROSSED.replace("weights(wt)", "weights(wt) + cens(c)"), df,
                        parameterization="noncentered")
    assert decision(censored, "collapse") == (
        "collapse: normal on the cell means, with the sum of squares within cells, weighted; "
        "a censored cell adds its rows' log probability (lccdf, lcdf) times its rows (their "
        "weights summed); 564 rows in 178 cells of identical linear predictor, the 95 "
        "censored rows (cens(c)) in 89 of them, kept apart from the exact rows: each of rows "
        "with one censoring kind and outcome; weights(wt): weighted cell means and sum of "
        "squares within cells, each cell weighing its rows' weights, the weights' sum "
        "counting the rows in log(sigma): exact, a constant apart")


@pytest.mark.slow
@pytest.mark.log_density
def test_weighted_gaussian_cells_keep_the_log_density() -> None:
    df = weighted_crossed_data()
    plain = sb.Model(WEIGHTED_CROSSED, df, parameterization="noncentered", rewrites="none")
    cells = sb.Model(WEIGHTED_CROSSED, df, parameterization="noncentered")
    assert cells.plan.likelihood.strategy.name == "cells"
    assert_constant_gap(plain, cells)
