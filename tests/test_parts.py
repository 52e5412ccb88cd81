"""Group terms mean what the formula means in lme4 and brms: every level covariate is
used as given, so a level's intercept deviation is at x = 0 whatever X's centering
does to the population part.

The programs stanbhm writes for one formula (every parameterization, every rewrite
that applies) are compared with a hand-written program in brms's form
(``tests/stan/brms_form*.stan``: X centered in the population part only, Z raw, the
level effects non-centered) at 20 posterior draws of the latter: their log densities
must differ by a constant once the change of variables from the reference's
standardized effects to the declared ones is accounted for.

The priors are those of ``notebooks/hierarchical_regression.ipynb`` (`NOTEBOOK`), so the
correlated slopes' non-centered, centered and statistics programs are the ones the
notebook compiles; the reference takes them in place of its own. The integrated-out
intercept's reference keeps its own (`PRIOR`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import STAN_DIR

import stanbhm as sb
from stanbhm import toolchain

PRIOR = {"Intercept": "normal(0, 50)", "b": "normal(0, 5)", "sigma": "normal(0, 3)",
         "sd": "normal(0, 2)"}
#: the priors of notebooks/hierarchical_regression.ipynb ("cor" where a term is correlated)
NOTEBOOK = {"Intercept": "normal(0, 5)", "b": "normal(0, 2)", "sd": "exponential(1)",
            "sigma": "exponential(1)"}
#: brms_form.stan's prior statements, and what they become under NOTEBOOK
NOTEBOOK_STATEMENTS = {"Intercept ~ normal(0, 50);": "Intercept ~ normal(0, 5);",
                       "b ~ normal(0, 5);": "b ~ normal(0, 2);",
                       "sigma ~ normal(0, 3);": "sigma ~ exponential(1);",
                       "sd_g ~ normal(0, 2);": "sd_g ~ exponential(1);"}
LEVELS, ROWS = 8, 10


def data() -> pd.DataFrame:
    """8 levels of 10 rows; year 1998..2002 (mean 2000) and x 3..7 (mean 5), each value
    twice per level, so rows with the same level and covariate make cells."""
    rng = np.random.default_rng(27)
    g = np.repeat([f"g{j}" for j in range(LEVELS)], ROWS)
    year = np.tile(np.arange(1998, 2003), 2 * LEVELS).astype(float)
    x = np.concatenate([rng.permutation(np.tile(np.arange(3, 8), 2)) for _ in range(LEVELS)])
    a = rng.normal(0, 0.7, LEVELS)[np.repeat(np.arange(LEVELS), ROWS)]
    s = rng.normal(0, 0.2, LEVELS)[np.repeat(np.arange(LEVELS), ROWS)]
    y = 1 + a + (0.3 + s) * (x - 5) + 0.1 * (year - 2000) + rng.normal(0, 0.5, len(g))
    return pd.DataFrame({"y": y, "g": g, "c": g, "year": year, "x": x.astype(float)})


def model(formula: str, reference: str = "", **options) -> sb.Model:
    """The formula on `data` with the priors of its `reference`: `PRIOR` for the
    integrated-out intercept's, `NOTEBOOK` for the others (and where there is none)."""
    options.setdefault("rewrites", "none")
    priors = (PRIOR if reference == "year_marginal" else NOTEBOOK) | (
        {"cor": "lkj_corr_cholesky(2)"} if "(1 + x | g)" in formula else {})
    return sb.Model(formula, data(), priors=priors, **options)


def correlated(**options) -> sb.Model:
    """The correlated slopes' model (`REFERENCES["correlated"]`), which
    tests/test_statistics.py, test_joint.py and test_threads.py rewrite too: its centered
    program is the notebook's, and so is its statistics one."""
    return model(REFERENCES["correlated"][0], "correlated", **options)


def reference_program(marginal: bool) -> str:
    """brms_form.stan with `NOTEBOOK`'s priors; brms_form_marginal.stan as it is."""
    if marginal:
        return (STAN_DIR / "brms_form_marginal.stan").read_text()
    code = (STAN_DIR / "brms_form.stan").read_text()
    for old, new in NOTEBOOK_STATEMENTS.items():
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    assert "L_g[1] ~ lkj_corr_cholesky(2);" in code
    return code


#: per reference: formula, its population column, its level effects, correlated
REFERENCES = {
    "year_uncorrelated": ("y ~ 1 + year + (1 + year || g)", "year", ("Intercept", "year"), 0),
    "slope_only": ("y ~ 1 + x + (0 + x | c)", "x", ("x",), 0),
    "correlated": ("y ~ 1 + x + (1 + x | g)", "x", ("Intercept", "x"), 1),
    "year_marginal": ("y ~ 1 + year + (1 | g) + (0 + year | g)", "year", ("Intercept", "year"),
                      0),
}

#: per case: the reference, stanbhm's options, and how the likelihood must end up
CASES = {
    "year_noncentered": ("year_uncorrelated", {"parameterization": "noncentered"}, "rowwise"),
    "year_centered": ("year_uncorrelated", {"parameterization": "centered"}, "rowwise"),
    "year_statistics": ("year_uncorrelated", {"parameterization": "centered",
                                              "rewrites": ["sufficient_statistics"]},
                        "statistics"),
    "year_cells": ("year_uncorrelated", {"parameterization": "centered",
                                         "rewrites": ["collapse"]}, "cells"),
    "year_threads": ("year_uncorrelated", {"parameterization": "centered", "threads": 2},
                     "threads"),
    "year_split_fraction": ("year_uncorrelated", {
        "formula": "y ~ 1 + year + (1 | g) + (0 + year | g)", "parameterization": 0.5},
        "rowwise"),
    "year_marginal": ("year_marginal", {"parameterization": {"g_year": "centered"},
                                        "rewrites": {"g": "marginalize"}}, "statistics"),
    "slope_noncentered": ("slope_only", {"parameterization": "noncentered"}, "rowwise"),
    "slope_centered": ("slope_only", {"parameterization": "centered"}, "rowwise"),
    "slope_fraction": ("slope_only", {"parameterization": 0.3}, "rowwise"),
    "slope_per_level": ("slope_only", {"parameterization": "auto"}, "rowwise"),
    "slope_statistics": ("slope_only", {"parameterization": "centered",
                                        "rewrites": ["sufficient_statistics"]}, "statistics"),
    "slope_cells": ("slope_only", {"parameterization": "centered", "rewrites": ["collapse"]},
                    "cells"),
    "slope_threads": ("slope_only", {"parameterization": "noncentered", "threads": 2},
                      "threads"),
    "correlated_noncentered": ("correlated", {"parameterization": "noncentered"}, "rowwise"),
    "correlated_centered": ("correlated", {"parameterization": "centered"}, "rowwise"),
    "correlated_statistics": ("correlated", {"parameterization": "centered",
                                             "rewrites": ["sufficient_statistics"]},
                              "statistics"),
    "correlated_cells": ("correlated", {"parameterization": "centered",
                                        "rewrites": ["collapse"]}, "cells"),
    "correlated_threads": ("correlated", {"parameterization": "centered", "threads": 2},
                           "threads"),
}


class Reference:
    """A brms-form program fitted once: its 20 draws as (Intercept, b, sigma, per effect
    sd and level effects, L) and its log density at each."""

    def __init__(self, name: str) -> None:
        formula, column, effects, correlated = REFERENCES[name]
        df = data()
        plain = model(formula, name)
        marginal = name == "year_marginal"
        index = plain.plan.groups[0].index
        order = np.argsort(index, kind="stable") if marginal else np.arange(len(df))
        slopes = [e for e in effects if e != "Intercept"] if marginal else list(effects)
        Z = np.column_stack([np.ones(len(df)) if e == "Intercept" else df[e] for e in slopes])
        self.data = {"N": len(df), "y": df.y.to_numpy()[order], "K": 1,
                     "X": df[[column]].to_numpy()[order], "J": LEVELS,
                     "g": index[order], "M": len(slopes), "Z": Z[order]}
        if marginal:
            self.data["start"] = np.searchsorted(index[order], np.arange(1, LEVELS + 2)) + 1
        else:
            self.data["correlated"] = correlated
        self.exe = toolchain.compile_model(reference_program(marginal))
        # 20 points where the posterior has mass (`exact.assert_constant_gap`)
        fit = self.exe.sample(data=self.data, chains=1, iter_warmup=100, iter_sampling=20,
                              seed=11, sig_figs=18, show_progress=False, show_console=False)
        self.points = []
        for i in range(20):
            sd = np.atleast_1d(fit.stan_variable("sd_g")[i])
            L = fit.stan_variable("L_g")[i][0] if correlated else None
            # the effects from the very z the log density is taken at, not from r_g's
            # rounded output
            r = (np.diag(sd) @ (L if L is not None else np.eye(len(sd)))
                 @ fit.stan_variable("z_g")[i]).T
            point = {"Intercept": float(fit.stan_variable("Intercept")[i]),
                     "b": fit.stan_variable("b")[i].tolist(),
                     "sigma": float(fit.stan_variable("sigma")[i]),
                     "sd": dict(zip(slopes, sd, strict=True)),
                     "r": {e: r[:, m] for m, e in enumerate(slopes)}, "L": L}
            if marginal:
                point["sd"]["Intercept"] = float(fit.stan_variable("sd_int")[i])
            raw = {n: np.asarray(fit.stan_variable(n)[i]).tolist()
                   for n in self.exe.src_info()["parameters"] if n in fit.stan_variables()}
            if not marginal and not correlated:
                raw["L_g"] = []  # an array of no Cholesky factors
            point["lp"] = float(self.exe.log_prob(params=raw, data=self.data, jacobian=False,
                                                  sig_figs=18)["lp__"].iloc[0])
            self.points.append(point)


@pytest.fixture(scope="module")
def references():
    kept: dict[str, Reference] = {}

    def get(name: str) -> Reference:
        if name not in kept:
            kept[name] = Reference(name)
        return kept[name]

    return get


def declared(m: sb.Model, point: dict) -> tuple[dict, float]:
    """The point in `m`'s own parameters, and log |d declared / d reference| (the
    reference's level effects are standardized: r = sd * z, or diag(sd) L z)."""
    b = point["b"]
    values = {"Intercept": point["Intercept"], "b": b}
    params = {"Intercept": point["Intercept"], "b": b, "sigma": point["sigma"]}
    log_jacobian = 0.0
    for part in m.plan.groups:
        g = part.ident
        sd = np.array([point["sd"][e] for e in part.effects])
        sd_value = float(sd[0]) if part.k == 1 else sd.tolist()
        params[f"sd_{g}_signed" if part.folded else f"sd_{g}"] = sd_value
        L = point["L"] if part.correlated else None
        if L is not None:
            params[f"L_{g}"] = L.tolist()
        if part.marginalized:
            continue
        r = np.column_stack([point["r"][e] for e in part.effects])  # levels x effects
        if part.noncentered:
            scale = np.diag(sd) @ (L if L is not None else np.eye(part.k))
            z = np.linalg.solve(scale, r.T)  # effects x levels
            params[f"z_{g}"] = z[0].tolist() if part.k == 1 else z.tolist()
            continue
        shift = [0.0 if m_ == "0" else values["Intercept"] if m_ == "Intercept"
                 else values["b"][int(m_[2:-1]) - 1] for m_ in part.location]
        level = r + np.array(shift)
        params[part.level_param] = level[:, 0].tolist() if part.k == 1 else level.tolist()
        log_jacobian += part.n_levels * (np.log(sd).sum()
                                         + (np.log(np.diag(L)).sum() if L is not None else 0))
    return params, log_jacobian


def log_density(m: sb.Model, params: dict) -> float:
    frame = m.compile().log_prob(params=params, data=m.stan_data(), jacobian=False,
                                 sig_figs=18)
    return float(frame["lp__"].iloc[0])


def strategy(m: sb.Model) -> str:
    lik = m.plan.likelihood
    return "threads" if lik.threads > 1 else lik.strategy.name


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.log_density
def test_log_density_is_the_brms_forms_up_to_a_constant(case, references) -> None:
    name, options, expected = CASES[case]
    options = dict(options)
    formula = options.pop("formula", REFERENCES[name][0])
    m = model(formula, name, **options)
    assert strategy(m) == expected, m.plan.decisions
    if case == "slope_per_level":
        assert m.plan.groups[0].c_levels is not None
    if case == "year_marginal":  # and the statistics of the rows that remain
        assert m.plan.groups[0].marginalized
    ref = references(name)
    gaps, scale = [], 0.0
    for point in ref.points:
        params, log_jacobian = declared(m, point)
        gaps.append(log_density(m, params) + log_jacobian - point["lp"])
        scale = max(scale, abs(point["lp"]))
    assert max(gaps) - min(gaps) < 1e-8 * scale, (gaps, scale)


def test_level_covariates_are_not_centered() -> None:
    """``(1 + year || g)`` with year near 2000: the program multiplies the raw year and
    says so; nothing subtracts X's means from a level covariate."""
    code = model("y ~ 1 + year + (1 + year || g)", parameterization="centered").stan_code()
    assert "Zc_" not in code
    assert "    eta += to_vector(centered_g[J_g, 2]) .* Z_g[ : , 2];\n" in code
    assert ("// Varying slopes multiply their covariates as the formula gives them (not "
            "centered),\n// so a level's intercept deviation is at x = 0, as in lme4 and "
            "brms.\n") in code


def test_a_slope_that_took_b_over_leaves_its_mean_times_b() -> None:
    """b_x (x - mean) + r x = (b_x + r) x - b_x mean: the fitted rows subtract mean * b."""
    code = model("y ~ 1 + x + (0 + x | c)", parameterization="centered").stan_code()
    assert "  centered_c ~ normal(b[1], sd_c);\n" in code
    assert ("    vector[N] eta = rep_vector(Intercept - means_X[1] * b[1], N); "
            "// linear predictor\n") in code
    assert "    eta += centered_c[J_c] .* Z_c;\n" in code


def test_coef_is_lme4s_at_x_zero() -> None:
    """coef_<term>'s intercept is b_Intercept plus the deviation, in every
    parameterization; the centered declaration has its own name."""
    for choice in ("centered", "noncentered"):
        code = model("y ~ 1 + x + (1 + x | g)", parameterization=choice).stan_code()
        assert "  coef_g[ : , 1] += b_Intercept;\n" in code
        assert "  coef_g[ : , 2] += b[1];\n" in code
    centered = model("y ~ 1 + x + (1 + x | g)", parameterization="centered")
    internal = centered.program.schema.internal
    assert "centered_g" in internal and "coef_g" not in internal


def runs_model(**options) -> sb.Model:
    """Effects Intercept, z (no population coefficient), x, year, u (b[1 : 3])."""
    rng = np.random.default_rng(4)
    df = data()
    df = df.assign(z=rng.normal(size=len(df)), u=rng.normal(size=len(df)))
    return sb.Model("y ~ 1 + x + year + u + (1 + z + x + year + u || g)", df, priors=PRIOR,
                    rewrites="none", log_lik=False, y_rep=False, **options)


def test_coef_adds_runs_of_population_coefficients_at_once() -> None:
    """coef_<term> adds b_Intercept, then each run of consecutive b[j] as one row
    repeated over the levels (retail's 22 features: one line, not 22); an effect without
    a population coefficient (z) adds nothing."""
    from stanbhm.datasets import retail, retail_formula
    from stanbhm.parts import b_runs

    assert b_runs(["b_Intercept", "b[1]", "b[2]", "b[3]", "0", "b[5]", "b[7]", "b[8]"]) == [
        (0, 0, "b_Intercept"), (1, 3, "b[1 : 3]"), (4, 4, "0"), (5, 5, "b[5]"),
        (6, 7, "b[7 : 8]")]
    code = runs_model().stan_code()
    assert ("  coef_g[ : , 1] += b_Intercept;\n"
            "  coef_g[ : , 3 : 5] += rep_vector(1, N_g) * b[1 : 3]';\n"
            "  vector") in code
    df, _ = retail(stores=12, days=40, features=5)
    code = sb.Model(retail_formula(5), df, family="negbinomial").stan_code()
    assert ("  coef_store[ : , 1] += b_Intercept;\n"
            "  coef_store[ : , 2 : 6] += rep_vector(1, N_store) * b[1 : 5]';\n"
            "  vector") in code


@pytest.mark.slow
def test_coef_runs_add_the_population_row_to_every_level() -> None:
    """In the draws, coef_g is r_g plus [b_Intercept, 0, b[1], b[2], b[3]] on every level."""
    fit = runs_model(parameterization="noncentered").fit(
        chains=1, iter_warmup=100, iter_sampling=20, seed=2, show_progress=False,
        advice=False, sig_figs=15).cmdstan
    coef, r = fit.stan_variable("coef_g"), fit.stan_variable("r_g")
    b, b0 = fit.stan_variable("b"), fit.stan_variable("b_Intercept")
    row = np.column_stack([b0, np.zeros_like(b0), b])  # per draw, per effect
    np.testing.assert_allclose(coef, r + row[:, None, :], rtol=1e-12, atol=1e-12)


def test_each_column_is_shipped_once() -> None:
    """A term whose covariates are X's columns (and the intercept) builds Z from X in
    transformed data, and a second term on the same factor reads the first's level
    index: the data file carries each column once."""
    m = model("y ~ 1 + year + x + (1 + x || g) + (0 + year | g)", parameterization="centered")
    data = m.stan_data()
    assert "Z_g" not in data and "Z_g_year" not in data and "J_g_year" not in data
    assert data["N_g_year"] == data["N_g"] == LEVELS
    code = m.stan_code()
    assert ("  matrix[N, 2] Z_g = append_col(rep_vector(1, N), X[ : , {2}]); "
            "// covariates of the effects, from X\n") in code
    assert "  array[N] int J_g_year = J_g; // level of each row: g again\n" in code
    assert "  vector[N] Z_g_year = X[ : , 1]; // covariate of the varying effect, X's column\n" \
        in code
    own = model("y ~ 1 + x + (1 + year | g)", parameterization="centered")
    assert own.stan_data()["Z_g"].shape == (LEVELS * ROWS, 2)  # year is not in X
