"""What a fit returns: its ArviZ groups, per method, for posterior and prior draws."""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
from stanbhm.results import correlation_pairs

FORMULA = "y ~ x + (1 + x | g)"


def slopes_data() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 200
    g = rng.integers(0, 10, n)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(size=10)[g] + rng.normal(size=n) * 0.5
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})


@pytest.fixture(scope="module")
def slopes() -> sb.Model:
    model = sb.Model(FORMULA, slopes_data())
    model.compile()
    return model


@pytest.fixture(scope="module")
def slopes_fit(slopes):
    return slopes.fit(chains=2, iter_warmup=300, iter_sampling=300, seed=1,
                      show_progress=False)


def test_correlation_pairs_are_the_matrix_below_its_diagonal():
    import xarray as xr

    names = ["Intercept", "x", "z"]
    cor = np.array([[1, 0.2, 0.3], [0.2, 1, -0.4], [0.3, -0.4, 1]])
    matrix = xr.DataArray(cor[None, None], dims=("chain", "draw", "e", "e_bis"),
                          coords={"e": names, "e_bis": names})
    pairs = correlation_pairs(matrix)
    assert pairs.dims == ("chain", "draw", "e_pair")
    assert list(pairs["e_pair"].values) == ["Intercept, x", "Intercept, z", "x, z"]
    np.testing.assert_allclose(pairs.values[0, 0], [0.2, 0.3, -0.4])


@pytest.mark.slow
def test_the_posterior_holds_what_a_user_asks_about(slopes_fit):
    import arviz as az

    idata = slopes_fit.to_arviz()
    assert set(idata.posterior.data_vars) == {"Intercept", "b", "sd_g", "sigma", "r_g",
                                              "b_Intercept", "coef_g", "cor_g"}
    assert set(idata.internals.data_vars) == {"z_g", "L_g", "Cor_g"}
    np.testing.assert_allclose(idata.posterior["cor_g"].sel(g_effect_pair="Intercept, x"),
                               idata.internals["Cor_g"].values[..., 1, 0])
    assert "means of the population-level predictors" in \
        idata.posterior["Intercept"].attrs["long_name"]
    assert "predictors = 0" in idata.posterior["b_Intercept"].attrs["long_name"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NaN R-hat of a constant cell
        summary = az.summary(idata)
    assert "cor_g[Intercept, x]" in summary.index


@pytest.mark.slow
@pytest.mark.parametrize("method", ["optimize", "laplace", "pathfinder"])
def test_every_method_gives_draws_shaped_as_declared(slopes, method):
    """CmdStanPy returns the optimum's size-1 ``b`` as a bare number; to_arviz raised
    "different number of dimensions on data and dims: 2 vs 3" for it."""
    fit = slopes.fit(method=method, seed=2, show_progress=False)
    idata = fit.to_arviz()
    draws = 1 if method == "optimize" else 1000
    assert idata.posterior["b"].shape == (1, draws, 1)
    assert idata.posterior["r_g"].shape == (1, draws, 10, 2)
    assert idata.posterior_predictive["y_rep"].shape == (1, draws, 200)
    assert idata.log_likelihood["log_lik"].shape == (1, draws, 200)
    assert "z_g" in idata.internals and "z_g" not in idata.posterior


@pytest.mark.slow
def test_a_failed_laplace_run_raises_cmdstans_message(slopes):
    """A mode from one L-BFGS iteration from inits far out (uniform(-10, 10) on the
    unconstrained scale): CmdStan exits 1 after "Calculating Hessian", and CmdStanPy
    returned that as a fit with no draws."""
    mode = slopes.fit(method="optimize", iter=1, jacobian=True, seed=3, inits=10).cmdstan
    with pytest.raises(sb.CmdStanError, match=r"CmdStan's laplace failed \(exit 1\):\n"
                                              r"Exception: normal_lpdf"):
        slopes.fit(method="laplace", mode=mode, seed=1)


@pytest.mark.slow
def test_prior_draws_fill_the_prior_groups_alone(slopes):
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")

    fit = slopes.fit(prior_only=True, chains=2, iter_warmup=200, iter_sampling=200, seed=4,
                     show_progress=False)
    idata = fit.to_arviz()
    assert set(idata.groups()) == {"prior", "prior_predictive", "sample_stats_prior",
                                   "observed_data", "internals"}
    assert "log_lik" not in idata.prior and "y_rep" not in idata.prior
    assert idata.prior_predictive["y_rep"].shape == (2, 200, 200)
    # raised before: the draws were in the posterior groups
    az.plot_ppc(idata, group="prior", data_pairs={"y": "y_rep"}, num_pp_samples=20)
    assert fit.draws is idata.prior
    assert set(fit.diagnostics()) >= {"divergences", "rhat_max"}


@pytest.mark.slow
def test_a_healthy_fit_prints_progress_and_nothing_else(slopes, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="cmdstanpy")
    with warnings.catch_warnings():
        warnings.simplefilter("error", sb.SamplingWarning)
        # four chains (brms's default): with two, R-hat of the intercept of this 10-group
        # fit wanders around 1.01 from seed to seed
        slopes.fit(chains=4, seed=1)
    out, err = capfd.readouterr()
    assert out == ""  # CmdStanPy padded stdout with a line of spaces per chain
    assert "Non-fatal error" not in err and "cmdstanpy - INFO" not in err
    assert "Sampling completed" in err  # the progress bars still show
    assert [r.getMessage() for r in caplog.records] == []


@pytest.mark.slow
def test_a_failed_sample_raises_cmdstans_message_once(slopes):
    """An initial value outside its bounds: every chain fails the same way; the error
    says it once, in CmdStan's words (CmdStanPy's RuntimeError repeated it per try)."""
    with pytest.raises(sb.CmdStanError) as error:
        slopes.fit(chains=2, inits={"sigma": -1}, iter_warmup=10, iter_sampling=10,
                   show_progress=False)
    message = str(error.value)
    assert re.fullmatch(r"CmdStan's sample failed:\nException: lb_free: Lower bounded variable "
                        r"is -1, but must be greater than or equal to 0\.000000 \(in "
                        r"'model\.stan', line \d+, column \d+ to column \d+\)", message)
