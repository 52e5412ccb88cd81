"""The unit each population coefficient is sampled in (`stanbhm.passes.scale`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
from stanbhm.plan import PlanError


def regression(n: int = 400, seed: int = 1, family: str = "gaussian") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(0, 3, n), "z": rng.normal(5, 0.2, n),
                       "g": rng.integers(0, 8, n).astype(str)})
    eta = 0.3 + 0.4 * df.x - 1.0 * (df.z - 5)
    if family == "gaussian":
        df["y"] = eta + rng.normal(0, 0.5, n)
    else:
        df["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    return df


def test_gaussian_scales_are_the_least_squares_standard_errors() -> None:
    df = regression()
    model = sb.Model("y ~ x + z", df)
    X = np.column_stack([np.ones(len(df)), df.x, df.z])
    _, rss, *_ = np.linalg.lstsq(X, df.y, rcond=None)
    sigma2 = rss[0] / (len(df) - 3)
    se = np.sqrt(np.diag(np.linalg.inv(X.T @ X)) * sigma2)[1:]
    # the prior normal(0, 2.5 sd(y) / sd(x)) adds little precision here
    np.testing.assert_allclose(model.stan_data()["scale_b"], se, rtol=0.01)
    assert "vector<multiplier=scale_b>[K] b; //" in model.stan_code()


def test_bernoulli_scales_are_the_inverse_fisher_information() -> None:
    df = regression(n=3000, family="bernoulli")
    model = sb.Model("y ~ x + z", df, family="bernoulli")
    X = np.column_stack([np.ones(len(df)), df.x, df.z])
    beta = np.zeros(3)
    for _ in range(30):  # Newton's method for the logistic regression's maximum
        p = 1 / (1 + np.exp(-X @ beta))
        beta += np.linalg.solve((X * (p * (1 - p))[:, None]).T @ X, X.T @ (df.y - p))
    p = 1 / (1 + np.exp(-X @ beta))
    se = np.sqrt(np.diag(np.linalg.inv((X * (p * (1 - p))[:, None]).T @ X)))[1:]
    np.testing.assert_allclose(model.stan_data()["scale_b"], se, rtol=0.01)


def test_the_prior_bounds_the_scale_of_a_coefficient_the_data_barely_inform() -> None:
    df = regression(n=50)
    df["rare"] = 0.0
    df.loc[0, "rare"] = 1.0  # one row informs its coefficient
    model = sb.Model("y ~ x + rare", df, priors={"b": "normal(0, 0.1)"})
    assert model.stan_data()["scale_b"][1] == pytest.approx(0.1, rel=0.05)


def test_coefficients_a_group_term_varies_keep_unit_scale() -> None:
    model = sb.Model("y ~ x + z + (1 + x | g)", regression())
    scale = model.stan_data()["scale_b"]
    assert scale[0] == 1.0 and scale[1] < 0.2
    assert ("//   scale of b: per coefficient; b is sampled in units of its approximate "
            "posterior sd (pooled fit and prior); 1 for b_x, which a group term varies"
            ) in model.stan_code()


def test_prior_only_samples_in_units_of_the_prior() -> None:
    model = sb.Model("y ~ x + z", regression(), priors={"b": "normal(0, 3)"})
    assert model.stan_data()["scale_b"].max() < 0.2
    np.testing.assert_array_equal(model.stan_data(prior_only=True)["scale_b"], [3.0, 3.0])
    assert model.stan_data(prior_only=True)["prior_only"] == 1


@pytest.mark.parametrize("kwargs, reason", [
    ({"scale_b": "never"}, 'scale_b="never" requested'),
    ({"priors": {"b": "horseshoe()"}},
     "the horseshoe samples standardized coefficients already"),
])
def test_b_is_declared_plainly_when_not_scaled(kwargs, reason) -> None:
    model = sb.Model("y ~ x + z", regression(), **kwargs)
    code = model.stan_code()
    assert f"//   scale of b: none; {reason}" in code
    assert "scale_b" not in model.stan_data()
    assert "multiplier=scale_b" not in code


def test_a_bad_request_is_refused_by_name() -> None:
    with pytest.raises(PlanError) as err:
        sb.Model("y ~ x", regression(), scale_b=True)
    assert str(err.value) == ("scale_b=True: use 'auto' (each coefficient sampled in units "
                              "of its approximate posterior sd) or 'never'")


@pytest.mark.slow
def test_scaling_moves_the_log_density_by_the_jacobian_alone() -> None:
    """On the constrained scale the programs agree exactly; with the Jacobian, the
    scaled one is higher by sum(log(scale_b)), at every point."""
    df = regression(n=600, family="bernoulli")
    models = {s: sb.Model("y ~ x + z + (1 | g)", df, family="bernoulli", scale_b=s,
                          log_lik=False, y_rep=False) for s in ("auto", "never")}
    scale = models["auto"].stan_data()["scale_b"]
    rng = np.random.default_rng(3)
    for _ in range(5):
        point = {"Intercept": rng.normal(0.3, 0.2), "b": rng.normal(0, 1, 2).tolist(),
                 "sd_g": float(np.exp(rng.normal(-1, 0.5)))}
        name = next(n for n in models["auto"].compile().src_info()["parameters"]
                    if n.endswith("_g") and n != "sd_g")
        point[name] = rng.normal(0, 0.3, 8).tolist()
        for jacobian, gap in ((False, 0.0), (True, float(np.log(scale).sum()))):
            lp = {s: float(m.compile().log_prob(params=point, data=m.stan_data(),
                                                jacobian=jacobian, sig_figs=18)["lp__"].iloc[0])
                  for s, m in models.items()}
            assert lp["auto"] - lp["never"] == pytest.approx(gap, abs=1e-8 * abs(lp["never"]))
