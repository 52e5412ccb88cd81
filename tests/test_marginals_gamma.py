"""The gamma-poisson marginal (`marginals.gamma`): gamma multipliers of a poisson rate
integrated out, asked for by name. Checked on its decision and generated text, its
exact log density against the integral over each level's multiplier (scipy quad) and
at the poisson limit, and its posterior against a hand-written program that samples
the multipliers (GAMMA_PLAIN).
"""

from __future__ import annotations

import numpy as np
import pytest
from exact import gradient, log_density
from rewrite_cases import (
    _agree,
    assert_likelihood_is,
    count_data,
    decision,
    model_block,
    transformed_data,
)
from scipy import stats

import stanbhm as sb
from stanbhm.errors import PlanError


def test_gamma_poisson_is_asked_for_by_name() -> None:
    df = count_data()
    auto = sb.Model("yc ~ C(a) + (1 | g)", df, family="poisson")
    assert decision(auto, "marginalization") == (
        "marginalization: not applied; the poisson family has no exact normal marginal; "
        "'gamma_poisson' integrates out gamma multipliers instead (a different model for "
        "the effects, asked for by name); g: 5 levels: 'auto' integrates a non-gaussian "
        "intercept out by adaptive quadrature (an approximation) from 6000 levels, where "
        "it costs less than sampling them; name it, rewrites={'g': 'quadrature'}, to "
        "integrate it out")
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
@pytest.mark.log_density
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
    # a few rows without an outcome, so that the program is the one of the poisson limit's
    # test below (whose missing rows fill a level)
    df["yc"] = df["yc"].astype(float).where(np.arange(len(df)) % 11 != 5)
    model = sb.Model("yc ~ 1 + (1 | g)", df, family="poisson", rewrites={"g": "gamma_poisson"},
                     priors={"Intercept": "normal(1, 1)", "sd_g": "exponential(2)"})
    data = model.stan_data()
    assert data["N_obs"] < data["N"]
    plain = toolchain.compile_model(GAMMA_PLAIN, cpp_options={"STAN_THREADS": True})
    explicit = plain.sample(data={"N": data["N_obs"], "y": data["y"], "G": data["N_g"],
                                  "g": data["J_g"][data["obs"] - 1]}, chains=4,
                            iter_sampling=2000, seed=5, show_progress=False)
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
