"""Per-level sufficient statistics (`passes.statistics`): when they are chosen or skipped
and why, and the generated text that fills them; their exactness checked directly
(numpy) and the rewritten program's exact log density against the plain one's, a
constant apart, including the cells of a nested intercept integrated out.
"""

from __future__ import annotations

import numpy as np
import pytest
from exact import assert_constant_gap
from rewrite_cases import decision, nested_data, statistics_data
from test_parts import PRIOR, correlated

import stanbhm as sb
from stanbhm.datasets import election, election_formula

STATISTICS_CASES = {
    "correlated_noncentered": ("y ~ x + (1 + x | g)", "noncentered", False),
    "correlated_centered": ("y ~ x + (1 + x | g)", "centered", False),
    # z is in the term alone; x, w, v run as b[1 : 3] (tests/test_parts.py's runs_model)
    "covariate_only_in_a_term": ("y ~ x + w + v + (1 + z + x + w + v || g)", "noncentered",
                                 False),
    "two_terms_one_factor_offset": ("y ~ x + offset(z) + (1 | g) + (x - 1 | g)",
                                    {"g": "centered", "g_x": 0.0}, False),
    # columns z, w, v carry b[2 : 4] alone: one statement fills them
    "population_columns_run_missing": ("y ~ x + z + w + v + (1 + x | g)", "noncentered",
                                       True),
}


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


#: Options that make a case's programs ones other files compile too (priors and outputs
#: change neither rewrite): the varying-slopes pair of the benchmark's test runs
#: (tests/test_bench.py), and tests/test_parts.py's runs_model.
SHARED = {
    "correlated_noncentered": {"log_lik": False, "y_rep": False},
    "covariate_only_in_a_term": {"priors": PRIOR, "log_lik": False, "y_rep": False},
}
#: Cases taken on another file's model: the centered correlated slopes of
#: tests/test_parts.py (its data and priors), whose plain and statistics programs are
#: notebooks/hierarchical_regression.ipynb's. Missing rows are statistics_data's in
#: population_columns_run_missing.
ELSEWHERE = {"correlated_centered": correlated}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(STATISTICS_CASES))
@pytest.mark.log_density
def test_statistics_keep_the_log_density(case) -> None:
    """The rewritten and the plain program differ by a constant at 20 posterior draws."""
    formula, param, missing = STATISTICS_CASES[case]
    if case in ELSEWHERE:
        plain = ELSEWHERE[case](parameterization=param, rewrites="none")
        rewritten = ELSEWHERE[case](parameterization=param, rewrites="auto")
    else:
        df = statistics_data(missing=missing)
        options = SHARED.get(case, {})
        plain = sb.Model(formula, df, parameterization=param, rewrites="none", **options)
        rewritten = sb.Model(formula, df, parameterization=param, **options)
    assert rewritten.plan.likelihood.strategy.name == "statistics"
    assert plain.plan.likelihood.strategy.name == "rowwise"
    assert_constant_gap(plain, rewritten)


# --------------------------------------------------- statistics with a nested marginal


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
@pytest.mark.log_density
def test_nested_marginal_statistics_keep_the_log_density(missing) -> None:
    """Against the program that integrates the respondents out over the rows."""
    df = nested_data(missing)
    rows = sb.Model(election_formula(3), df, rewrites=["marginalize"])
    cells = sb.Model(election_formula(3), df)
    assert rows.plan.likelihood.strategy.name == "marginal"
    assert cells.plan.likelihood.strategy.nested is not None
    assert_constant_gap(rows, cells)


# ------------------------------------------------------------------ weighted statistics


def weighted_data(missing: bool = True):
    """statistics_data with row weights from 0 (a row that counts for nothing) to 3."""
    df = statistics_data(missing=missing)
    df["wt"] = np.random.default_rng(9).uniform(0.2, 3.0, size=len(df))
    df.loc[::37, "wt"] = 0.0
    return df


def test_weighted_statistics_are_the_weighted_sum_of_squares() -> None:
    """Taken of the rows times sqrt(w), each level's rss + |R (theta - bhat)|^2 is its
    rows' weighted sum of squares, for any theta; the program's ss_wsum is sum(w)."""
    df = weighted_data()
    model = sb.Model("y | weights(wt) ~ x + (1 + x | g)", df, parameterization="centered")
    s = model.plan.likelihood.strategy
    assert s.name == "statistics"
    fitted = df[df["y"].notna()]
    w, y, x = (fitted[c].to_numpy() for c in ("wt", "y", "x"))
    level = fitted["g"].map({v: i for i, v in enumerate(model.plan.groups[0].levels)}).to_numpy()
    assert model.stan_data()["ss_wsum"] == pytest.approx(w.sum())
    rng = np.random.default_rng(4)
    D = np.column_stack([np.ones(len(x)), x - x.mean()])  # centered X, as the design is
    for _ in range(4):
        theta = rng.normal(size=(s.bhat.shape[0], 2)) + np.array([1.0, 0.5])
        resid = y - np.einsum("ij,ij->i", D, theta[level])
        quad = sum(float(np.sum((s.R[:, j, :] @ (theta[j] - s.bhat[j])) ** 2))
                   for j in range(s.bhat.shape[0]))
        want = float(np.sum(w * resid**2))
        assert abs(s.rss + quad - want) < 1e-9 * want
        assert abs(float(np.sum(resid**2)) - want) > 1e-3 * want  # the weights tell


def test_weighted_statistics_are_said_and_others_still_refused() -> None:
    df = weighted_data()
    df["c"] = np.where(df["x"] > 1.5, "right", "none")
    model = sb.Model("y | weights(wt) ~ x + (1 + x | g)", df)
    assert decision(model, "sufficient statistics") == (
        "sufficient statistics: per level of g, weighted; 343 rows, 7 levels of g, 2 columns "
        "per level: a gradient costs O(levels x columns^2), not O(rows); weights(wt): each "
        "row's design and outcome times sqrt(weight), the weights' sum counting the rows in "
        "log(sigma)")
    code = model.stan_code()
    assert "    target += -ss_wsum * log(sigma) - 0.5 * ss_q / square(sigma);\n" in code
    assert "real<lower=0> ss_wsum; // the rows' weights summed" in code
    censored = sb.Model("y | weights(wt) + cens(c) ~ x + (1 + x | g)", df)
    assert decision(censored, "sufficient statistics") == (
        "sufficient statistics: not applied; the rows are censored (cens(c)) and weighted "
        "(weights(wt)); the statistics stand for plain or weighted rows only")
    assert "ss_rss" not in censored.stan_code()
    plain = sb.Model("y ~ x + (1 + x | g)", df)
    assert "ss_wsum" not in plain.stan_code() and "ss_wsum" not in plain.stan_data()


@pytest.mark.slow
@pytest.mark.log_density
def test_weighted_statistics_keep_the_log_density() -> None:
    """The weighted per-level statistics and the weighted rows (brms's form, each row's
    log density times its weight) differ by a constant at 20 posterior draws, some
    weights 0 and some rows missing."""
    df = weighted_data()
    formula = "y | weights(wt) ~ x + (1 + x | g)"
    plain = sb.Model(formula, df, parameterization="centered", rewrites="none")
    rewritten = sb.Model(formula, df, parameterization="centered")
    assert plain.plan.likelihood.strategy.name == "rowwise"
    assert rewritten.plan.likelihood.strategy.name == "statistics"
    assert_constant_gap(plain, rewritten)
