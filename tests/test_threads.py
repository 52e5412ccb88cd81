"""reduce_sum threading: the decision, the grainsize rule, and that the threaded program
has the single-threaded one's log density and runs on the threads asked for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from exact import assert_constant_gap
from test_parts import correlated

import stanbhm as sb
from stanbhm.reduce import grainsize


def rows(n: int = 400, seed: int = 9) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice([f"g{i}" for i in range(8)], size=n)
    h = rng.choice(list("abc"), size=n)
    x = rng.normal(size=n)
    expo = rng.uniform(1, 3, size=n)
    slope = dict(zip(sorted(set(g)), rng.normal(0.5, 0.2, size=8), strict=True))
    eta = 0.3 + np.array([slope[k] for k in g]) * x
    df = pd.DataFrame({"g": g, "h": h, "x": x, "expo": expo})
    df["y"] = (eta + rng.normal(size=n)).round(6)
    df["y_missing"] = df["y"].where(np.arange(n) % 6 != 2)
    df["yc"] = rng.negative_binomial(5, 5 / (5 + np.exp(eta) * expo))
    return df


def decision(model: sb.Model) -> str:
    return next(str(d) for d in model.plan.decisions if d.subject == "threads")


def test_grainsize_is_four_slices_per_thread_rounded_up() -> None:
    assert [grainsize(1000, 2), grainsize(1001, 2), grainsize(3, 4), grainsize(940_000, 16)] \
        == [125, 126, 1, 14_688]


def test_the_header_gives_the_threads_and_the_grainsize() -> None:
    df = rows()
    model = sb.Model("y_missing ~ x + (1 + x | g)", df, rewrites="none", threads=2)
    assert decision(model) == ("threads: 2 per chain; reduce_sum over slices of the fitted rows; "
                               "grainsize 42: 333 fitted rows over 4 slices per thread")
    assert model.stan_data()["grainsize"] == 42
    assert "    target += reduce_sum(partial_log_lik_lupmf, row_index, grainsize, y, Xc,\n" \
        in model.stan_code()
    chosen = sb.Model("y_missing ~ x + (1 + x | g)", df, rewrites="none", threads=2,
                      grainsize=50)
    assert decision(chosen).endswith("; grainsize=50 requested")
    assert chosen.stan_data()["grainsize"] == 50
    one = sb.Model("y ~ x + (1 | g)", df, rewrites="none")
    assert decision(one) == ("threads: one per chain; pass threads=k for reduce_sum over slices "
                             "of rows")
    assert "grainsize" not in one.stan_data() and "reduce_sum(" not in one.stan_code()


def test_a_rewritten_likelihood_stays_on_one_thread_and_says_why() -> None:
    model = sb.Model("y ~ x + (1 + x | g)", rows(), threads=2)
    assert model.plan.likelihood.strategy.name == "statistics"
    assert decision(model) == ("threads: one per chain; the likelihood is rewritten (statistics), "
                               "not a sum over rows or levels that slices can share")
    assert "reduce_sum(" not in model.stan_code()


def test_an_integrated_out_intercept_is_sliced_by_its_levels() -> None:
    model = sb.Model("y_missing ~ x + (1 | g) + (1 + x | h)", rows(), threads=2,
                     rewrites={"g": "marginalize"})
    assert model.plan.likelihood.strategy.name == "marginal"
    assert decision(model) == (
        "threads: 2 per chain; reduce_sum over slices of the levels of g, whose effects are "
        "integrated out (each level's rows together); grainsize 1: 8 levels of g over 4 "
        "slices per thread")
    assert model.stan_data()["grainsize"] == 1
    code = model.stan_code()
    assert "  array[N_g] int level_index = linspaced_int_array(N_g, 1, N_g); // what " \
        "reduce_sum slices\n" in code
    assert "    target += reduce_sum(partial_log_lik_lupmf, level_index, grainsize, y,\n" in code
    data = model.stan_data()
    fitted = rows()["y_missing"].notna().to_numpy()
    levels = data["J_g"][data["obs"] - 1]  # the fitted rows come sorted by level
    assert sorted(data["obs"]) == list(np.flatnonzero(fitted) + 1)
    assert (np.diff(levels) >= 0).all() and "rows_g" not in data
    np.testing.assert_array_equal(data["y"], rows()["y_missing"].to_numpy()[data["obs"] - 1])
    assert list(data["start_g"]) == list(np.searchsorted(levels, np.arange(1, 10)) + 1)
    gamma = sb.Model("yc ~ x + (1 | g)", rows(), family="poisson", threads=2,
                     rewrites={"g": "gamma_poisson"})
    assert decision(gamma) == (
        "threads: one per chain; the effects of g are integrated out (gamma); only the normal "
        "and quadrature kinds' rows are summed over slices of their levels")


def test_a_sliced_known_se_marginal_reads_the_precisions() -> None:
    """Each slice multiplies its residuals by 1 / se^2 from transformed data, passed in
    for se: nothing squares or divides by se at every gradient."""
    model = sb.Model("y | se(expo) ~ x + (1 | g)", rows(), threads=2,
                     rewrites={"g": "marginalize"})
    code = model.stan_code()
    functions = code.split("\ndata {\n")[0]
    assert "vector inv_var,\n" in functions and "se_obs" not in functions
    assert ("    vector[n_rows] scaled = resid .* inv_var[first : last]; // over their "
            "variances\n") in functions
    assert "  vector[N_obs] inv_var = inv_square(se_obs); // 1 / se^2 of each fitted row\n" \
        in code
    assert ("    target += reduce_sum(partial_log_lik_lupmf, level_index, grainsize, y,\n"
            "                         inv_var, Xc, start_g, W_g, Intercept, b, sd_g);\n") in code


# formula, family, parameterization, glm, rewrites, grainsize. Each single-threaded
# program is one other files compile too, so only the threaded ones are this file's: the
# per-row program of tests/test_statistics.py's missing rows (test_glm.py's kernel,
# test_block.py's gathers), the negative binomial one of tests/test_block.py and
# test_collapse.py, tests/test_parts.py's correlated slopes, the integrated-out
# intercept beside a slope term of tests/test_joint.py, test_block.py and
# test_marginals_normal.py, and the known standard errors of test_marginals_normal.py.
CASES = {
    # expo: a population-only column, so b is scaled (`passes.scale`) as in those files
    "gaussian_glm_missing": ("y_missing ~ x + expo + (1 + x | g)", "gaussian", "noncentered",
                             "auto", "none", 25),
    "negbinomial_centered_offset": ("yc ~ x + offset(log(expo)) + (1 + x | g)", "negbinomial",
                                    "centered", "never", "none", 25),
    # the slice's slope line is broken in two, as stanc formats it; the model is
    # tests/test_parts.py's correlated slopes (`ELSEWHERE`)
    "gaussian_correlated": ("y ~ 1 + x + (1 + x | g)", "gaussian", "centered", "auto", "none",
                            25),
    "marginal_missing": ("y_missing ~ x + (1 | g) + (1 + x | h)", "gaussian",
                         {"h": "noncentered"}, "auto", ["marginalize"], 3),
    "marginal_known_se": ("y | se(expo) ~ x + (1 | g)", "gaussian", "auto", "auto",
                          ["marginalize"], 2),
}


#: Cases whose programs are another file's model: tests/test_parts.py's correlated
#: slopes (its data and priors), whose single-threaded and threaded programs that file
#: compares with brms's form (the single-threaded one is notebooks/'s too).
ELSEWHERE = {"gaussian_correlated": correlated}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_threads_keep_the_log_density(case) -> None:
    formula, family, param, glm, rewrites, size = CASES[case]
    kwargs = {"family": family, "parameterization": param, "rewrites": rewrites, "glm": glm}
    if case in ELSEWHERE:
        single = ELSEWHERE[case](**kwargs)
        threaded = ELSEWHERE[case](threads=2, grainsize=size, **kwargs)
    else:
        df = rows()
        single = sb.Model(formula, df, **kwargs)
        threaded = sb.Model(formula, df, threads=2, grainsize=size, **kwargs)
    assert "reduce_sum(" in threaded.stan_code() and "reduce_sum(" not in single.stan_code()
    assert single.plan.likelihood.strategy.name == threaded.plan.likelihood.strategy.name
    if case.startswith("marginal"):
        assert threaded.plan.likelihood.strategy.name == "marginal"
    assert_constant_gap(single, threaded)


@pytest.mark.slow
def test_rows_sorted_by_level_keep_their_log_lik() -> None:
    """log_lik of the program whose rows are sorted by level, at the single-threaded
    fit's draws, is the single-threaded program's, row for row by obs_id."""
    formula, family, param, glm, rewrites, _ = CASES["marginal_missing"]
    kwargs = {"family": family, "parameterization": param, "rewrites": rewrites, "glm": glm,
              "log_lik": True}  # and y_rep, as in the case's programs: no new ones
    single = sb.Model(formula, rows(), **kwargs)
    threaded = sb.Model(formula, rows(), threads=2, **kwargs)
    fit = single.fit(chains=1, iter_warmup=200, iter_sampling=30, seed=4, advice=False,
                     show_progress=False).cmdstan
    values = {}
    for model in (single, threaded):
        gq = model.compile().generate_quantities(data=model.stan_data(), previous_fit=fit,
                                                 seed=11)
        ids = model.plan.likelihood.coords()["obs_id"]
        values[model is threaded] = dict(zip(ids, gq.stan_variable("log_lik").T, strict=True))
    assert sorted(values[True]) == sorted(values[False])
    for row, own in values[False].items():
        np.testing.assert_allclose(values[True][row], own, rtol=1e-10)


@pytest.mark.slow
def test_a_threaded_fit_runs_on_the_threads_asked_for() -> None:
    formula, family, param, *_ = CASES["gaussian_glm_missing"]
    model = sb.Model(formula, rows(), family=family, parameterization=param, rewrites="none",
                     threads=2)
    fit = model.fit(chains=2, iter_warmup=300, iter_sampling=300, seed=5)
    assert fit.cmdstan.metadata.cmdstan_config["num_threads"] == 4  # 2 chains x 2 threads
    assert fit.diagnostics()["rhat_max"] < 1.05
