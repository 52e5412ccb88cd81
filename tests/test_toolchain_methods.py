"""Every CmdStanPy method against the offline launcher, checked against known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _within_mcse(draws: np.ndarray, target: float, *, k: float = 4.0) -> None:
    """Assert the draws' mean is within k Monte Carlo standard errors of target."""
    import arviz as az

    ess = float(az.ess(draws.reshape(1, -1) if draws.ndim == 1 else draws))
    mcse = draws.std() / math.sqrt(ess)
    assert abs(draws.mean() - target) < k * mcse, (draws.mean(), target, mcse)


# ---------------------------------------------------------------- sample


@pytest.fixture(scope="module")
def normal_fit(normal_model, normal_problem):
    return normal_model.sample(data=normal_problem.data, chains=4, seed=11,
                               iter_sampling=2000, show_progress=False)


def test_sample_posterior_matches_conjugate_answer(normal_fit, normal_problem):
    import arviz as az

    mu = normal_fit.stan_variable("mu")
    _within_mcse(mu, normal_problem.post_mean)
    # The sd of the draws estimates the posterior sd; its error is about sd/sqrt(2 ess).
    ess = float(az.ess(normal_fit.draws_xr("mu")["mu"].values))
    assert abs(mu.std() - normal_problem.post_sd) < 4 * normal_problem.post_sd / math.sqrt(2 * ess)
    tau = normal_fit.stan_variable("tau")
    _within_mcse(tau, 1.0)  # Exponential(1) posterior mean
    np.testing.assert_allclose(normal_fit.stan_variable("mu2"), 2 * mu, rtol=1e-5)


def test_sample_csv_metadata_round_trips(normal_fit):
    cfg = normal_fit.metadata.cmdstan_config
    assert cfg["num_samples"] == 2000
    assert cfg["metric"] == "diag_e"
    assert cfg["max_depth"] == 10
    assert cfg["seed"] == 11
    assert normal_fit.draws().shape == (2000, 4, 7 + 2 + 2)
    assert normal_fit.step_size.shape == (4,)
    assert normal_fit.inv_metric.shape == (4, 2)


def test_sample_chains_in_one_process_use_threads(normal_model, normal_problem):
    fit = normal_model.sample(data=normal_problem.data, chains=3, parallel_chains=3, seed=5,
                              iter_warmup=200, iter_sampling=100, show_progress=False)
    assert not fit.runset.one_process_per_chain
    assert fit.chains == 3 and len(fit.runset.csv_files) == 3
    assert fit.chain_ids == [1, 2, 3]


def test_sample_chains_in_separate_processes(normal_model, normal_problem):
    fit = normal_model.sample(data=normal_problem.data, chains=2, seed=5, chain_ids=[7, 8],
                              iter_warmup=200, iter_sampling=100,
                              force_one_process_per_chain=True, show_progress=False)
    assert fit.runset.one_process_per_chain
    assert fit.chain_ids == [7, 8]
    assert fit.draws().shape[:2] == (100, 2)


def test_same_seed_same_draws_different_seed_different_draws(normal_model, normal_problem):
    kw = dict(data=normal_problem.data, chains=2, iter_warmup=150, iter_sampling=50,
              show_progress=False)
    a = normal_model.sample(seed=42, **kw).draws()
    b = normal_model.sample(seed=42, **kw).draws()
    c = normal_model.sample(seed=43, **kw).draws()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # Chains differ from each other under one seed (chain id enters the RNG).
    assert not np.allclose(a[:, 0, :], a[:, 1, :])


def test_one_process_and_per_process_chains_are_the_same_draws(normal_model, normal_problem):
    """CmdStan seeds chain k with (seed, k) either way, so the draws coincide."""
    kw = dict(data=normal_problem.data, chains=2, seed=9, iter_warmup=100, iter_sampling=30,
              show_progress=False)
    one = normal_model.sample(parallel_chains=2, **kw).draws()
    many = normal_model.sample(force_one_process_per_chain=True, **kw).draws()
    np.testing.assert_array_equal(one, many)


@pytest.mark.parametrize("metric", ["unit_e", "diag_e", "dense_e"])
def test_sample_metrics(normal_model, normal_problem, metric):
    fit = normal_model.sample(data=normal_problem.data, chains=1, seed=3, metric=metric,
                              iter_warmup=300, iter_sampling=300, show_progress=False)
    assert fit.metric_type == metric
    if metric == "unit_e":
        assert fit.inv_metric is None
    elif metric == "diag_e":
        assert fit.inv_metric.shape == (1, 2)
    else:
        assert fit.inv_metric.shape == (1, 2, 2)
    assert abs(fit.stan_variable("mu").mean() - normal_problem.post_mean) < 0.3


def test_sample_adaptation_settings_thin_warmup_and_stepsize(normal_model, normal_problem):
    fit = normal_model.sample(
        data=normal_problem.data, chains=1, seed=4, iter_warmup=200, iter_sampling=300, thin=3,
        save_warmup=True, adapt_delta=0.95, adapt_init_phase=20, adapt_metric_window=30,
        adapt_step_size=40, max_treedepth=6, step_size=0.3, show_progress=False,
    )
    cfg = fit.metadata.cmdstan_config
    assert (cfg["delta"], cfg["init_buffer"], cfg["window"], cfg["term_buffer"]) == (
        0.95, 20, 30, 40)
    assert cfg["max_depth"] == 6 and cfg["thin"] == 3 and cfg["stepsize"] == 0.3
    assert fit.draws(inc_warmup=True).shape[0] == math.ceil(200 / 3) + math.ceil(300 / 3)
    assert fit.draws().shape[0] == 100
    assert fit.method_variables()["treedepth__"].max() <= 6


def test_sample_without_adaptation_uses_given_stepsize(normal_model, normal_problem):
    fit = normal_model.sample(data=normal_problem.data, chains=1, seed=4, adapt_engaged=False,
                              step_size=0.25, iter_warmup=0, iter_sampling=200,
                              show_progress=False)
    assert np.all(fit.method_variables()["stepsize__"] == 0.25)


def test_sample_inits_number_dict_file_and_per_chain(normal_model, normal_problem, tmp_path):
    kw = dict(data=normal_problem.data, seed=2, iter_warmup=0, iter_sampling=1,
              adapt_engaged=False, show_progress=False, save_warmup=False)
    # With no warmup, the first draw starts from the init; a huge step from a
    # tiny stepsize stays near it, so the init is visible in the draw.
    kw["step_size"] = 1e-8
    fit = normal_model.sample(chains=1, inits={"mu": 3.5, "tau": 0.5}, **kw)
    assert fit.stan_variable("mu")[0] == pytest.approx(3.5, abs=1e-4)
    path = tmp_path / "init.json"
    path.write_text(json.dumps({"mu": -2.0, "tau": 2.0}))
    fit = normal_model.sample(chains=1, inits=str(path), **kw)
    assert fit.stan_variable("mu")[0] == pytest.approx(-2.0, abs=1e-4)
    fit = normal_model.sample(chains=2, parallel_chains=2,
                              inits=[{"mu": 1.0, "tau": 1.0}, {"mu": 5.0, "tau": 1.0}], **kw)
    np.testing.assert_allclose(fit.stan_variable("mu"), [1.0, 5.0], atol=1e-4)
    fit = normal_model.sample(chains=1, inits=0, **kw)
    assert fit.stan_variable("mu")[0] == pytest.approx(0.0, abs=1e-4)
    assert fit.stan_variable("tau")[0] == pytest.approx(1.0, abs=1e-4)  # exp(0)


def test_sample_metric_file(normal_model, normal_problem, tmp_path):
    path = tmp_path / "metric.json"
    path.write_text(json.dumps({"inv_metric": [0.2, 0.7]}))
    fit = normal_model.sample(data=normal_problem.data, chains=1, seed=1, metric="diag_e",
                              inv_metric=str(path), adapt_engaged=False, iter_warmup=0,
                              iter_sampling=50, show_progress=False)
    np.testing.assert_allclose(fit.inv_metric[0], [0.2, 0.7])


def test_sample_fixed_param(normal_model, normal_problem):
    fit = normal_model.sample(data=normal_problem.data, chains=1, seed=1, fixed_param=True,
                              inits={"mu": 0.5, "tau": 1.5}, iter_sampling=20,
                              show_progress=False)
    assert np.all(fit.stan_variable("mu") == 0.5)
    assert np.all(fit.stan_variable("mu2") == 1.0)
    assert fit.stan_variable("y_new").std() > 0  # generated quantities still random


def test_sample_sig_figs_output_dir_and_progress(normal_model, normal_problem, tmp_path):
    fit = normal_model.sample(data=normal_problem.data, chains=2, seed=1, sig_figs=12,
                              output_dir=str(tmp_path), iter_warmup=100, iter_sampling=20,
                              refresh=10, show_progress=True)
    for f in fit.runset.csv_files:
        assert Path(f).parent == tmp_path
    line = next(ln for ln in Path(fit.runset.csv_files[0]).read_text().splitlines()
                if ln and ln[0] in "-0123456789")
    longest = max(len(v.replace("-", "").replace(".", "").split("e")[0]) for v in line.split(","))
    assert longest > 6  # more than the default 6 significant digits
    stdout = Path(fit.runset.stdout_files[0]).read_text()
    assert "Iteration:" in stdout


# --------------------------------------------------------- other methods


@pytest.mark.parametrize("algorithm", ["lbfgs", "bfgs", "newton"])
def test_optimize_finds_the_mode(normal_model, normal_problem, algorithm):
    mle = normal_model.optimize(data=normal_problem.data, seed=1, algorithm=algorithm)
    # Without the Jacobian, tau's mode is at the boundary (exponential density).
    # Optimizer tolerance, far below the posterior sd (about 0.4).
    assert mle.stan_variable("mu") == pytest.approx(normal_problem.post_mean, abs=1e-3)
    assert mle.stan_variable("tau") < 1e-3


def test_optimize_jacobian_moves_the_mode(normal_model, normal_problem):
    mle = normal_model.optimize(data=normal_problem.data, seed=1, jacobian=True)
    # With the log-transform Jacobian the density in u = log tau is exp(u - e^u): mode tau = 1.
    assert mle.stan_variable("tau") == pytest.approx(1.0, abs=1e-3)
    assert mle.metadata.cmdstan_config["jacobian"] == 1


@pytest.mark.parametrize("algorithm", ["meanfield", "fullrank"])
def test_variational(normal_model, normal_problem, algorithm):
    vb = normal_model.variational(data=normal_problem.data, seed=3, algorithm=algorithm,
                                  draws=2000, require_converged=False)
    assert vb.variational_sample.shape[0] == 2000
    assert vb.stan_variable("mu", mean=True) == pytest.approx(normal_problem.post_mean, abs=0.3)
    assert vb.eta > 0


def test_pathfinder(normal_model, normal_problem):
    pf = normal_model.pathfinder(data=normal_problem.data, seed=3, num_paths=4, draws=1000)
    mu = pf.stan_variable("mu")
    assert mu.shape == (1000,)
    assert mu.mean() == pytest.approx(normal_problem.post_mean, abs=0.25)
    single = normal_model.pathfinder(data=normal_problem.data, seed=3, num_paths=1,
                                     draws=500, psis_resample=False)
    assert single.stan_variable("mu").shape == (500,)


def test_laplace_sample_matches_normal_posterior(normal_model, normal_problem):
    mode = normal_model.optimize(data=normal_problem.data, seed=1, jacobian=True)
    lap = normal_model.laplace_sample(data=normal_problem.data, mode=mode, draws=4000, seed=2)
    mu = lap.stan_variable("mu")
    # The posterior of mu is exactly normal, so the Laplace draws have its moments.
    assert mu.mean() == pytest.approx(normal_problem.post_mean, abs=4 * normal_problem.post_sd
                                      / math.sqrt(4000))
    assert mu.std() == pytest.approx(normal_problem.post_sd, rel=0.06)


def test_generate_quantities_from_a_fit(normal_model, normal_problem, normal_fit):
    gq = normal_model.generate_quantities(data=normal_problem.data, previous_fit=normal_fit,
                                          seed=8)
    np.testing.assert_allclose(gq.stan_variable("mu2"), 2 * normal_fit.stan_variable("mu"),
                               rtol=1e-5)
    y_new = gq.stan_variable("y_new")
    assert y_new.std() == pytest.approx(
        math.sqrt(normal_problem.sigma**2 + normal_problem.post_sd**2), rel=0.08)


@pytest.mark.parametrize("jacobian", [True, False])
def test_log_prob_matches_the_density(normal_model, normal_problem, jacobian):
    pts = [(0.3, 0.5), (1.2, 2.0)]
    out = [normal_model.log_prob({"mu": m, "tau": t}, data=normal_problem.data,
                                 jacobian=jacobian, sig_figs=15) for m, t in pts]
    lps = [float(o["lp__"].iloc[0]) for o in out]
    want = [normal_problem.lp(m, t, jacobian) for m, t in pts]
    assert lps[1] - lps[0] == pytest.approx(want[1] - want[0], rel=1e-6)
    # Gradient with respect to the unconstrained parameters (mu, log tau).
    mu, tau = pts[0]
    p = normal_problem
    dmu = -(mu - p.m0) / p.s0**2 + np.sum(p.y - mu) / p.sigma**2
    du = -tau + (1.0 if jacobian else 0.0)
    grads = out[0].iloc[0].to_numpy()[1:]
    np.testing.assert_allclose(grads, [dmu, du], rtol=1e-6)


def test_unsupported_argument_fails_with_a_clear_error(normal_model, normal_problem, tmp_path):
    import subprocess

    data = tmp_path / "d.json"
    data.write_text(json.dumps(normal_problem.data))
    proc = subprocess.run([normal_model.exe_file, "sample", "engine=static", "data",
                           f"file={data}", "output", f"file={tmp_path / 'o.csv'}"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "engine=static is not supported by the stanbhm launcher" in proc.stderr
    assert not (tmp_path / "o.csv").exists()
    proc = subprocess.run([normal_model.exe_file, "sample", "bogus_key=1"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "argument 'bogus_key' is not supported with method=sample" in proc.stderr


def test_sample_diagnostic_file(normal_model, normal_problem):
    fit = normal_model.sample(data=normal_problem.data, chains=2, seed=1, iter_warmup=100,
                              iter_sampling=20, save_latent_dynamics=True, show_progress=False)
    for path in fit.runset.diagnostic_files:
        lines = [ln for ln in Path(path).read_text().splitlines() if not ln.startswith("#")]
        header = lines[0].split(",")
        # Unconstrained position, momentum and gradient of each parameter, per iteration.
        assert header[-6:] == ["mu", "tau", "p_mu", "p_tau", "g_mu", "g_tau"]
        assert len(lines) == 1 + 20
