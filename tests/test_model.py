"""The public Model path on eight schools: formula -> program -> fit -> ArviZ."""

from __future__ import annotations

import numpy as np
import pytest

import stanbhm as sb

FORMULA = "y | se(sigma) ~ 1 + (1 | school)"


@pytest.fixture(scope="module")
def nc_model(eight_schools_df):
    return sb.Model(FORMULA, eight_schools_df, parameterization="noncentered")


@pytest.fixture(scope="module")
def c_model(eight_schools_df):
    return sb.Model(FORMULA, eight_schools_df, parameterization="centered")


def test_stan_code_is_deterministic_and_named(nc_model, eight_schools_df):
    code = nc_model.stan_code()
    again = sb.Model(FORMULA, eight_schools_df, parameterization="noncentered").stan_code()
    assert code == again
    assert "// formula: y | se(sigma) ~ 1 + (1 | school)" in code
    assert ('//   parameterization of school: non-centered; parameterization="noncentered" '
            "requested") in code
    for name in ("sd_school", "z_school", "r_school", "J_school", "N_school"):
        assert name in code
    params = code.split("parameters {")[1].split("}")[0]
    assert "sigma" not in params  # known se: no sigma parameter


def test_stan_data_matches_the_program(nc_model):
    data = nc_model.stan_data()
    assert data["N"] == 8 and "N_obs" not in data  # every row observed: no index
    assert list(data["J_school"]) == list(range(1, 9))
    assert list(data["se"]) == [15, 10, 16, 11, 9, 11, 10, 18]
    assert data["prior_only"] == 0 and nc_model.stan_data(prior_only=True)["prior_only"] == 1


def test_write_is_atomic_and_complete(nc_model, tmp_path):
    path = nc_model.write(tmp_path / "sub" / "es.stan")
    assert path.read_text() == nc_model.stan_code()
    assert [p.name for p in path.parent.iterdir()] == ["es.stan"]


def posterior_mean_of_sd(model: sb.Model) -> float:
    """E[sd_school] of eight schools under the program's priors (its student_t on the
    Intercept, half student_t on sd_school, their numbers read from its data), by
    Gauss-Legendre quadrature of the marginal likelihood y_j ~ normal(mu, sqrt(se_j^2 +
    tau^2)) over (mu, tau), the lines mapped onto (0, 1): 6.0019621251 at 100, 200 and
    800 nodes a side, and by scipy's adaptive quad nested in mu and tau (48 s)."""
    from scipy import stats

    code = model.stan_code()  # the priors integrated below
    assert "  Intercept ~ student_t(3, prior_location_Intercept, prior_scale_Intercept);" in code
    assert "  sd_school ~ student_t(3, 0, prior_scale_sd_school);" in code
    data = model.stan_data()
    x, wx = np.polynomial.legendre.leggauss(200)
    x, wx = (x + 1) / 2, wx / 2
    mu = 7.5 + 30 * np.tan(np.pi * (x - 0.5))
    w_mu = wx * 30 * np.pi / np.cos(np.pi * (x - 0.5)) ** 2
    tau, w_tau = 10 * x / (1 - x), wx * 10 / (1 - x) ** 2
    log_post = (stats.t.logpdf(mu[:, None], 3, data["prior_location_Intercept"],
                               data["prior_scale_Intercept"])
                + stats.t.logpdf(tau[None, :], 3, 0, data["prior_scale_sd_school"]))
    for y, se in zip(data["y"], data["se"], strict=True):
        log_post = log_post + stats.norm.logpdf(y, mu[:, None], np.hypot(se, tau[None, :]))
    weight = np.exp(log_post - log_post.max()) * w_mu[:, None] * w_tau[None, :]
    return float((weight * tau[None, :]).sum() / weight.sum())


@pytest.mark.slow
def test_centered_and_noncentered_sample_and_agree_on_tau(nc_model, c_model):
    """The non-centered fit's E[sd_school] is the posterior's within 4 Monte Carlo
    standard errors. The reference was a 100,000-draw run of the same program (6.016 +-
    0.025 at seed 99, 6.018 +- 0.023 at seed 5; 7 s, most of the test); the quadrature
    gives the posterior's value itself (6.0020) in 0.1 s, so the bound is 4 MCSEs of the
    fit alone, not of the fit and the reference together (which was 1.04 times wider)."""
    nc = nc_model.fit(chains=4, seed=1, iter_sampling=2000)
    c = c_model.fit(chains=4, seed=1, iter_sampling=1000, adapt_delta=0.95)

    def mean_and_mcse(fit):
        import arviz as az

        draws = fit.cmdstan.draws_xr("sd_school")["sd_school"].values
        return draws.mean(), np.asarray(az.mcse(draws)).item()  # (1,) in ArviZ 0.23

    m, se = mean_and_mcse(nc)
    exact = posterior_mean_of_sd(nc_model)
    assert abs(m - exact) < 4 * se, (m, exact, se)
    diag = nc.diagnostics()
    assert diag["divergences"] < 20 and diag["rhat_max"] < 1.02
    c_draws = c.cmdstan.stan_variable("sd_school")
    assert c_draws.mean() > 0  # the centered program runs (it may diverge: the funnel)


@pytest.mark.slow
def test_to_arviz_is_labelled_by_school(nc_model):
    fit = nc_model.fit(chains=2, seed=3, iter_sampling=200)
    idata = fit.to_arviz()
    for group in ("posterior", "sample_stats", "posterior_predictive", "log_likelihood",
                  "observed_data"):
        assert group in idata.groups()
    r = idata.posterior["r_school"]
    assert r.dims == ("chain", "draw", "school")
    theta = idata.posterior["coef_school"]  # each school's effect: Intercept + r_school
    np.testing.assert_allclose(theta.values, (idata.posterior["Intercept"] + r).values,
                               atol=1e-3)  # the CSV keeps 6 significant digits
    assert list(r.coords["school"].values) == list("ABCDEFGH")
    assert idata.posterior_predictive["y_rep"].shape == (2, 200, 8)
    np.testing.assert_array_equal(idata.observed_data["y"].values,
                                  [28, 8, -3, 7, -1, 1, 18, 12])
    assert set(fit.diagnostics()) == {"divergences", "treedepth_hits", "ebfmi_min", "rhat_max",
                                      "ess_bulk_min", "ess_tail_min"}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pathfinder", "variational", "laplace", "optimize"])
def test_other_methods_return_labelled_arviz(nc_model, method):
    kw = {"require_converged": False} if method == "variational" else {}
    fit = nc_model.fit(method=method, seed=2, **kw)
    idata = fit.to_arviz()
    assert "Intercept" in idata.posterior
    assert idata.posterior["r_school"].dims[-1] == "school"


@pytest.mark.slow
def test_prior_only_samples_the_prior(nc_model):
    """With prior_only=1 sd_school follows its half-t prior: median 26.1 * t_3(0.75)."""
    import arviz as az
    from scipy import stats

    fit = nc_model.fit(chains=4, seed=7, iter_sampling=2000, prior_only=True)
    sd = fit.cmdstan.draws_xr("sd_school")["sd_school"].values  # (chain, draw)
    median = 26.1 * stats.t.ppf(0.75, 3)
    below = (sd < median).astype(float)
    se = np.sqrt(0.25 / float(az.ess(below)))
    assert abs(below.mean() - 0.5) < 4 * se, (below.mean(), se)
    idata = fit.to_arviz()
    assert idata.prior["coef_school"].dims == ("chain", "draw", "school")
    # The prior predictive spread is far wider than the data's.
    assert float(idata.prior_predictive["y_rep"].std()) > 30
    assert isinstance(fit.advice(), list)  # a prior fit's diagnostics read its own groups


@pytest.mark.slow
def test_loo_compares_parameterizations_of_one_model(eight_schools_df):
    """az.loo and az.compare work on fits; centered, non-centered and marginalized are one
    model, so their expected log predictive densities agree within their standard error.
    Two chains of 1000 draws each: the elpd_loo estimates' Monte Carlo spread is some 0.1
    (0.07 to 0.27 over seeds 3 to 5, with 4 chains 0.07 to 0.10), the bound 2 se some
    1.8, so the check keeps its margin at half the sampling."""
    import arviz as az

    formula = "y | se(sigma) ~ 1 + (1 | school)"
    fits = {
        "centered": sb.Model(formula, eight_schools_df, parameterization="centered",
                             rewrites="none"),
        "noncentered": sb.Model(formula, eight_schools_df, parameterization="noncentered",
                                rewrites="none"),
        "marginalized": sb.Model(formula, eight_schools_df),
    }
    idata = {k: m.fit(chains=2, seed=3, adapt_delta=0.99, show_progress=False,
                      advice=False).to_arviz() for k, m in fits.items()}
    loo = az.loo(idata["noncentered"])
    assert loo.n_data_points == 8
    table = az.compare(idata)
    assert set(table.index) == set(fits)
    spread = table["elpd_loo"].max() - table["elpd_loo"].min()
    assert spread < 2 * table["se"].max()


@pytest.mark.slow
def test_a_compile_says_so_and_a_cache_hit_says_nothing(fresh_program, capsys):
    import re

    err = fresh_program["stderr"]  # what the first compile printed
    assert err.startswith("compiling model (first time, ~15 s)...\n")
    assert re.search(r"^compiled in \d+ s$", err, flags=re.MULTILINE)
    fresh_program["model"].compile()
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- reuse


def _varying_slopes(levels: int, rows: int, seed: int):
    import pandas as pd

    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(levels), rows)
    x = rng.normal(3 * seed, 1 + seed, size=levels * rows)
    a, s = rng.normal(0, 1, levels), rng.normal(0, 0.3, levels)
    y = 10 * seed + a[g] + (0.5 + s[g]) * x + rng.normal(0, 1 + seed, size=len(g))
    return pd.DataFrame({"y": y, "x": x, "g": [f"l{j}" for j in g]})


REUSED = ("y ~ 1 + x + (1 + x | g)", {"parameterization": "noncentered"})


@pytest.fixture(scope="module")
def fresh_program():
    """REUSED on a first data set, with an sd prior the cache has not seen (a new
    program on every run: the one compile of this file), compiled once: the model, its
    priors, what the compile printed on stderr and the programs it built."""
    import contextlib
    import io
    import uuid

    from stanbhm.toolchain import cache

    scale = 1 + (uuid.uuid4().int % 100_000) / 1e6
    formula, options = REUSED
    priors = {"sd": f"exponential({scale})"}
    model = sb.Model(formula, _varying_slopes(8, 10, 1), priors=priors, **options)
    builds: list[str] = []
    real_build = cache._build

    def counted(*args, **kwargs):
        builds.append(args[0])
        return real_build(*args, **kwargs)

    err = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(err):
        patch.setattr(cache, "_build", counted)
        model.compile()
    return {"model": model, "priors": priors, "stderr": err.getvalue(), "builds": builds}


def test_a_new_data_set_keeps_the_program_text() -> None:
    """Other rows, values and level counts: the default priors' numbers differ and the
    header says so, but they are data, so what stanc compiles is the same."""
    from stanbhm.toolchain.cache import program_text

    formula, options = REUSED
    first = sb.Model(formula, _varying_slopes(8, 10, 1), **options)
    second = sb.Model(formula, _varying_slopes(13, 7, 2), **options)
    assert [d.choice for d in first.plan.decisions] == [d.choice for d in second.plan.decisions]
    assert first.stan_code() != second.stan_code()  # the header's numbers
    assert program_text(first.stan_code()) == program_text(second.stan_code())
    assert first.stan_data()["prior_scale_b"] != second.stan_data()["prior_scale_b"]
    assert "  b ~ normal(0, prior_scale_b);\n" in first.stan_code()


@pytest.mark.slow
def test_a_new_data_set_reuses_the_compiled_program(fresh_program, monkeypatch) -> None:
    """The same formula on two data sets compiles once: the compiler ran for the first
    (`fresh_program`) and the second finds its executable."""
    from stanbhm.toolchain import cache

    assert len(fresh_program["builds"]) == 1
    builds = []
    real_build = cache._build

    def counted(*args, **kwargs):
        builds.append(args[0])
        return real_build(*args, **kwargs)

    monkeypatch.setattr(cache, "_build", counted)
    formula, options = REUSED
    for levels, rows, seed in ((8, 10, 1), (13, 7, 2)):
        model = sb.Model(formula, _varying_slopes(levels, rows, seed),
                         priors=fresh_program["priors"], **options)
        fit = model.fit(chains=1, iter_warmup=200, iter_sampling=100, seed=5, advice=False,
                        show_progress=False)
        slope = float(fit.draws["b"].mean())
        assert 0.2 < slope < 0.8, slope  # each fit reads its own data
    assert builds == []
