"""The offline toolchain against recorded CmdStan behaviour, through CmdStanPy.

What CmdStan does here was read from CmdStan 2.36's sources (its argument
classes, ``command.hpp``, ``stansummary``/``diagnose``) and from its output:
the column names each method writes, the configuration keys CmdStanPy parses
back, which argument values it refuses, its exit codes (0 or 1), and the
files it writes for ``save_metric``, ``profile_file`` and ``diagnostic_file``.
Where the launcher knowingly differs (``save_cmdstan_config``, ``engine=static``
are refused), the test pins the refusal message instead.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stanbhm import toolchain

# built exactly as users build: the test build (conftest.py) is off here
pytestmark = [pytest.mark.slow, pytest.mark.user_build]

STAN_DIR = Path(__file__).resolve().parent / "stan"

# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def data_file(normal_problem, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "normal.json"
    path.write_text(json.dumps(normal_problem.data))
    return path


@pytest.fixture(scope="module")
def fit(normal_model, normal_problem):
    return normal_model.sample(data=normal_problem.data, chains=4, seed=21,
                               iter_sampling=1000, show_progress=False)


@pytest.fixture(scope="module")
def profiled_model(cmdstan):
    code = (STAN_DIR / "profiled_matrix.stan").read_text()
    return toolchain.compile_model(code, cpp_options={"STAN_THREADS": True})


def run_exe(exe: str, *args: str, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "STAN_NUM_THREADS"}
    full_env.update(env or {})
    return subprocess.run([exe, *args], capture_output=True, text=True, check=False,
                          env=full_env, cwd=cwd)


def data_rows(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]


# --------------------------------------------------- stansummary via CmdStanPy

SUMMARY_COLUMNS = ["Mean", "MCSE", "StdDev", "MAD", "5%", "50%", "95%",
                   "ESS_bulk", "ESS_tail", "R_hat"]


def test_summary_columns_rows_and_numbers(fit, normal_problem):
    import arviz as az

    s = fit.summary()
    assert list(s.columns) == SUMMARY_COLUMNS
    # CmdStanPy keeps lp__ and the model's variables, in program order.
    assert list(s.index) == ["lp__", "mu", "tau", "mu2", "y_new"]
    mu = fit.stan_variable("mu")
    # The statistics are those of the draws in the CSV files (6 digits there).
    assert s.loc["mu", "Mean"] == pytest.approx(mu.mean(), rel=1e-5, abs=1e-6)
    assert s.loc["mu", "StdDev"] == pytest.approx(mu.std(ddof=1), rel=1e-4)
    for pct in (5, 50, 95):
        assert s.loc["mu", f"{pct}%"] == pytest.approx(np.percentile(mu, pct), rel=1e-4,
                                                       abs=1e-5)
    assert s.loc["mu", "MAD"] == pytest.approx(
        1.4826 * np.median(np.abs(mu - np.median(mu))), rel=1e-3)
    # And the posterior: within Monte Carlo error of the conjugate answer.
    assert abs(s.loc["mu", "Mean"] - normal_problem.post_mean) < 4 * s.loc["mu", "MCSE"]
    # ESS and R-hat are the rank-normalized split-chain estimators ArviZ also uses.
    draws = fit.draws_xr("mu")["mu"].values
    assert s.loc["mu", "ESS_bulk"] == pytest.approx(float(az.ess(draws, method="bulk")),
                                                    rel=0.03)
    assert s.loc["mu", "ESS_tail"] == pytest.approx(float(az.ess(draws, method="tail")),
                                                    rel=0.03)
    assert s.loc["mu", "R_hat"] == pytest.approx(float(az.rhat(draws)), abs=2e-3)
    assert s.loc["mu", "MCSE"] == pytest.approx(mu.std(ddof=1) / math.sqrt(
        s.loc["mu", "ESS_bulk"]), rel=0.05)


def test_summary_percentiles_and_sig_figs(fit):
    s = fit.summary(percentiles=(10, 25, 75, 90), sig_figs=3)
    assert list(s.columns) == ["Mean", "MCSE", "StdDev", "MAD", "10%", "25%", "75%",
                               "90%", "ESS_bulk", "ESS_tail", "R_hat"]
    mu = fit.stan_variable("mu")
    assert s.loc["mu", "25%"] == pytest.approx(np.percentile(mu, 25), rel=5e-3)
    for value in s.to_numpy().ravel():
        if np.isfinite(value) and value != 0:
            digits = f"{abs(value):.6e}".split("e")[0].replace(".", "").rstrip("0")
            assert len(digits) <= 3, value


def test_summary_orders_containers_row_major_and_fixed_param(profiled_model, tmp_path,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit = profiled_model.sample(chains=2, seed=5, iter_sampling=800, show_progress=False)
    # Without profile_file, a program with profile blocks writes profile.csv in the
    # working folder, as CmdStan does: one row per profile and thread (each of the
    # two chains ran on its own thread).
    prof = pd.read_csv(tmp_path / "profile.csv")
    assert set(prof["name"]) == {"prior"} and 1 <= len(prof) <= 2
    s = fit.summary()
    names = [f"m[{i},{j}]" for i in (1, 2) for j in (1, 2, 3)]
    assert list(s.index) == ["lp__", "mu", *names]
    for i in (1, 2):
        for j in (1, 2, 3):
            row = s.loc[f"m[{i},{j}]"]
            assert abs(row["Mean"] - (10 * i + j)) < 4 * row["MCSE"]
    # A fixed_param run has no lp__ row in CmdStanPy's summary.
    fp = profiled_model.sample(chains=1, seed=5, iter_sampling=200, fixed_param=True,
                               inits={"mu": 0.5}, show_progress=False)
    fs = fp.summary()
    assert list(fs.index) == ["mu", *names]
    assert fs.loc["mu", "Mean"] == 0.5 and fs.loc["mu", "StdDev"] == 0


def test_diagnose_reports_clean_and_troubled_fits(fit, normal_model, normal_problem):
    text = fit.diagnose()
    assert "Checking sampler transitions treedepth.\nTreedepth satisfactory" in text
    assert "No divergent transitions found." in text
    assert "E-BFMI satisfactory." in text
    assert text.rstrip().endswith("Processing complete, no problems detected.")
    bad = normal_model.sample(data=normal_problem.data, chains=2, seed=3, max_treedepth=1,
                              iter_warmup=100, iter_sampling=200, show_progress=False)
    text = bad.diagnose()
    assert "transitions hit the maximum treedepth limit of 1, or 2^1 leapfrog steps." in text
    assert text.rstrip().endswith("Processing complete.")


def test_stansummary_print_and_diagnose_on_the_command_line(fit, cmdstan, tmp_path):
    bin_dir = Path(cmdstan) / "bin"
    files = [str(f) for f in fit.runset.csv_files]
    out = run_exe(str(bin_dir / "stansummary"), *files)
    assert out.returncode == 0, out.stdout
    assert "Inference for Stan model: " in out.stdout
    assert "4 chains: each with iter=1000; warmup=1000; thin=1" in out.stdout
    table = next(ln for ln in out.stdout.splitlines() if ln.lstrip().startswith("Mean"))
    assert table.split() == SUMMARY_COLUMNS
    bad = run_exe(str(bin_dir / "stansummary"), "--percentiles=50,5", *files)
    assert bad.returncode == 1
    assert "values must be in range (0, 100), inclusive, and strictly increasing" in bad.stdout
    existing = tmp_path / "exists.csv"
    existing.write_text("")
    bad = run_exe(str(bin_dir / "stansummary"), f"--csv_filename={existing}", *files)
    assert bad.returncode == 1 and str(existing) in bad.stdout
    assert run_exe(str(bin_dir / "stansummary")).returncode == 1  # usage, like CmdStan
    printed = run_exe(str(bin_dir / "print"), *files)
    assert printed.returncode == 0 and "deprecated" in printed.stdout
    assert "ESS_bulk" in printed.stdout
    missing = run_exe(str(bin_dir / "diagnose"), str(tmp_path / "nope.csv"))
    assert missing.returncode == 1
    assert "No valid input files, exiting." in missing.stdout


# ------------------------------------------------------- columns and config


def test_column_names_of_every_method(fit, normal_model, normal_problem):
    d = normal_problem.data
    sampler = ["lp__", "accept_stat__", "stepsize__", "treedepth__", "n_leapfrog__",
               "divergent__", "energy__"]
    params = ["mu", "tau", "mu2", "y_new"]
    # The method columns come from Stan's services, so they are those of CmdStan's
    # driver on the same Stan 2.39 (converged__, path__ and log_q__ are new there).
    assert fit.column_names == (*sampler, *params)
    opt = normal_model.optimize(data=d, seed=1)
    assert opt.column_names == ("lp__", "converged__", *params)
    vb = normal_model.variational(data=d, seed=1, require_converged=False)
    assert vb.column_names == ("lp__", "log_p__", "log_g__", *params)
    pf = normal_model.pathfinder(data=d, seed=1)
    assert pf.column_names == ("lp_approx__", "lp__", "path__", *params)
    mode = normal_model.optimize(data=d, seed=1, jacobian=True)
    lap = normal_model.laplace_sample(data=d, mode=mode, seed=1, draws=100)
    assert lap.column_names == ("log_p__", "log_q__", *params)
    lp = normal_model.log_prob({"mu": 0.5, "tau": 1.0}, data=d)
    assert list(lp.columns) == ["lp__", "g_mu", "g_tau"]


def test_log_prob_names_gradients_after_unconstrained_parameters(eight_schools_model,
                                                                 eight_schools_data):
    params = {"mu": 1.0, "tau": 2.0, "theta_tilde": [0.1] * 8}
    out = eight_schools_model.log_prob(params, data=eight_schools_data)
    assert list(out.columns) == ["lp__", "g_mu", "g_tau",
                                 *[f"g_theta_tilde.{k}" for k in range(1, 9)]]


# CmdStan's sample config, as CmdStanPy reads it back (RunSet / InferenceMetadata).
SAMPLE_CONFIG_KEYS = {
    "stan_version_major", "stan_version_minor", "stan_version_patch", "model",
    "start_datetime", "method", "num_samples", "num_warmup", "save_warmup", "thin",
    "engaged", "gamma", "delta", "kappa", "t0", "init_buffer", "term_buffer", "window",
    "save_metric", "algorithm", "engine", "max_depth", "metric", "metric_file",
    "stepsize", "stepsize_jitter", "num_chains", "id", "init", "seed", "refresh",
    "sig_figs", "profile_file", "save_cmdstan_config", "num_threads", "stanc_version",
}


def test_config_keys_cmdstanpy_parses(fit):
    cfg = fit.metadata.cmdstan_config
    assert SAMPLE_CONFIG_KEYS <= set(cfg), SAMPLE_CONFIG_KEYS - set(cfg)
    assert (cfg["method"], cfg["algorithm"], cfg["engine"]) == ("sample", "hmc", "nuts")
    assert cfg["seed"] == 21 and cfg["num_chains"] == 4


# --------------------------------------------------------- argument checks

# (arguments after `sample data file=D output file=O`, CmdStan's exit status):
# CmdStan 2.36's argument classes accept seed in [0, 2^32) or -1, refresh >= 0,
# sig_figs in [0, 18] or -1, id >= 0, thin > 0, num_samples >= 0, and refuse
# anything else with exit status 1.
RECORDED_ARGUMENTS = [
    (["random", "seed=4294967295"], 0),
    (["random", "seed=4294967296"], 1),
    (["random", "seed=-1"], 0),
    (["random", "seed=-5"], 1),
    (["output", "refresh=0"], 0),
    (["output", "refresh=-1"], 1),
    (["output", "sig_figs=0"], 0),
    (["output", "sig_figs=18"], 0),
    (["output", "sig_figs=19"], 1),
    (["id=0"], 0),
    (["id=-1"], 1),
    (["thin=0"], 1),
    (["num_samples=0"], 0),
    (["num_samples=-1"], 1),
    (["bogus_key=1"], 1),
    (["num_threads=0"], 1),
    (["num_threads=-1"], 0),
]


@pytest.mark.parametrize(("extra", "status"), RECORDED_ARGUMENTS,
                         ids=[" ".join(a) for a, _ in RECORDED_ARGUMENTS])
def test_argument_accept_and_refuse_like_cmdstan(normal_model, data_file, tmp_path,
                                                 extra, status):
    out = tmp_path / "o.csv"
    sizes = [a for a in ("num_warmup=20", "num_samples=5")
             if not any(e.startswith(a.split("=")[0]) for e in extra)]
    proc = run_exe(normal_model.exe_file, "sample", *sizes, *extra, "data",
                   f"file={data_file}", "output", f"file={out}")
    assert proc.returncode == status, proc.stderr
    if status:
        assert "Error: " in proc.stderr
        key = next(a.split("=")[0] for a in extra if "=" in a)
        assert key in proc.stderr  # the message names the argument


def test_refusal_messages_name_the_argument(normal_model, data_file, tmp_path):
    out = str(tmp_path / "o.csv")
    proc = run_exe(normal_model.exe_file, "sample", "random", "seed=-5", "output",
                   f"file={out}")
    assert proc.stderr.strip() == (
        "Error: argument 'seed' must be a non-negative integer < 4294967296 or -1 "
        "(a seed from the system time), got '-5'")
    proc = run_exe(normal_model.exe_file, "sample", "output", "refresh=-1")
    assert proc.stderr.strip() == "Error: argument 'refresh' must be non-negative, got -1"
    proc = run_exe(normal_model.exe_file, "data", f"file={data_file}")
    assert proc.returncode == 1 and "a method must be specified" in proc.stderr
    assert not Path(out).exists()


def test_stan_num_threads_must_agree_with_num_threads(normal_model, data_file, tmp_path):
    base = ["sample", "num_warmup=20", "num_samples=5", "data", f"file={data_file}",
            "output", f"file={tmp_path / 'o.csv'}"]
    proc = run_exe(normal_model.exe_file, *base, "num_threads=2",
                   env={"STAN_NUM_THREADS": "4"})
    assert proc.returncode == 1
    assert "STAN_NUM_THREADS=4 but argument num_threads=2" in proc.stderr
    # Equal values, the environment alone, or an environment of 1 are fine.
    for env, extra in [({"STAN_NUM_THREADS": "2"}, ["num_threads=2"]),
                       ({"STAN_NUM_THREADS": "3"}, []),
                       ({"STAN_NUM_THREADS": "1"}, ["num_threads=2"])]:
        proc = run_exe(normal_model.exe_file, *base, *extra, env=env)
        assert proc.returncode == 0, (env, extra, proc.stderr)
    proc = run_exe(normal_model.exe_file, *base, env={"STAN_NUM_THREADS": "zero"})
    assert proc.returncode == 1 and "STAN_NUM_THREADS" in proc.stderr


def test_help_prints_the_argument_tree(normal_model):
    top = run_exe(normal_model.exe_file, "help")
    assert top.returncode == 0
    assert "Begin by selecting amongst the following inference methods" in top.stdout
    everything = run_exe(normal_model.exe_file, "help-all")
    assert everything.returncode == 0
    # Two spaces a level: method > sample > algorithm > hmc > engine > nuts > max_depth.
    for line in ["  method=<list element>", "    sample", "      num_samples=<int>",
                 "        Defaults to 1000", "      adapt", "              max_depth=<int>",
                 "    laplace", "      mode=<string>", "  random",
                 "    seed=<long long int>"]:
        assert line in everything.stdout.splitlines(), line
    sample = run_exe(normal_model.exe_file, "sample", "help")
    assert sample.returncode == 0
    assert sample.stdout.splitlines()[:3] == [
        "sample", "  Bayesian inference with Markov Chain Monte Carlo",
        "  Valid subarguments: num_samples, num_warmup, save_warmup, thin, adapt, "
        "algorithm, num_chains"]
    adapt = run_exe(normal_model.exe_file, "variational", "adapt", "help")
    assert adapt.stdout.splitlines()[2] == "  Valid subarguments: engaged, iter"
    bare = run_exe(normal_model.exe_file)
    assert bare.returncode == 1 and "Usage: " in bare.stdout


# ------------------------------------------------ files CmdStan writes on request


def test_save_metric_writes_the_adapted_metric(normal_model, data_file, tmp_path):
    out = tmp_path / "out.csv"
    proc = run_exe(normal_model.exe_file, "sample", "num_chains=2", "num_warmup=200",
                   "num_samples=10", "adapt", "save_metric=1", "data",
                   f"file={data_file}", "output", f"file={out}", "random", "seed=4")
    assert proc.returncode == 0, proc.stderr
    for chain in (1, 2):
        metric = json.loads((tmp_path / f"out_metric_{chain}.json").read_text())
        assert metric["metric_type"] == "diag_e"
        text = (tmp_path / f"out_{chain}.csv").read_text()
        step = float(text.split("# Step size = ")[1].splitlines()[0])
        inv = [float(v) for v in
               text.split("# Diagonal elements of inverse mass matrix:\n# ")[1]
               .splitlines()[0].split(",")]
        assert metric["stepsize"] == pytest.approx(step, rel=1e-5)
        np.testing.assert_allclose(metric["inv_metric"], inv, rtol=1e-5)
    proc = run_exe(normal_model.exe_file, "sample", "num_warmup=0", "adapt", "engaged=0",
                   "save_metric=1", "data", f"file={data_file}", "output",
                   f"file={tmp_path / 'x.csv'}")
    assert proc.returncode == 1
    assert "save_metric=1 needs adaptation (adapt engaged=1)" in proc.stderr


def test_profile_file_through_cmdstanpy(profiled_model):
    fit = profiled_model.sample(chains=1, seed=2, iter_warmup=100, iter_sampling=100,
                                save_profile=True, show_progress=False)
    prof = pd.read_csv(fit.runset.profile_files[0])
    assert list(prof.columns) == ["name", "thread_id", "total_time", "forward_time",
                                  "reverse_time", "chain_stack", "no_chain_stack",
                                  "autodiff_calls", "no_autodiff_calls"]
    assert list(prof["name"]) == ["prior"]
    # One gradient per leapfrog step (plus initialisation and adaptation restarts).
    leapfrogs = int(fit.method_variables()["n_leapfrog__"].sum())
    assert prof["autodiff_calls"].iloc[0] >= leapfrogs
    assert prof["total_time"].iloc[0] == pytest.approx(
        prof["forward_time"].iloc[0] + prof["reverse_time"].iloc[0], rel=1e-4)


def test_laplace_diagnostic_file_holds_mode_gradient_and_hessian(
        normal_model, normal_problem, data_file, tmp_path):
    mode = normal_model.optimize(data=normal_problem.data, seed=1, jacobian=True)
    out = tmp_path / "lap.csv"
    proc = run_exe(normal_model.exe_file, "laplace", f"mode={mode.runset.csv_files[0]}",
                   "draws=50", "data", f"file={data_file}", "output", f"file={out}",
                   f"diagnostic_file={tmp_path / 'lap_diag.csv'}", "random", "seed=3")
    assert proc.returncode == 0, proc.stderr
    diag = json.loads((tmp_path / "lap_diag.json").read_text())  # CmdStan: .json
    assert set(diag) == {"lp_mode", "gradient", "Hessian"}
    p = normal_problem
    # d2/dmu2 of the log density, and d2/du2 of -e^u + u at tau = e^u = 1.
    hess = np.array(diag["Hessian"])
    np.testing.assert_allclose(hess, [[-(1 / p.s0**2 + len(p.y) / p.sigma**2), 0], [0, -1]],
                               atol=1e-3)
    np.testing.assert_allclose(diag["gradient"], [0, 0], atol=1e-3)
    assert len(data_rows(out)) == 1 + 50


@pytest.mark.parametrize("method", ["optimize", "log_prob", "diagnose"])
def test_diagnostic_file_of_other_methods_carries_the_config(
        normal_model, data_file, tmp_path, method):
    """CmdStan writes the configuration block to diagnostic_file for these methods."""
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"mu": 0.2, "tau": 1.5}))
    extra = [f"constrained_params={params}"] if method == "log_prob" else []
    diag = tmp_path / "diag.csv"
    proc = run_exe(normal_model.exe_file, method, *extra, "data", f"file={data_file}",
                   "output", f"file={tmp_path / 'o.csv'}", f"diagnostic_file={diag}")
    assert proc.returncode == 0, proc.stderr
    lines = diag.read_text().splitlines()
    assert f"# method = {method}" in lines
    assert data_rows(diag) == []


def test_save_cmdstan_config_is_refused_clearly(normal_model, data_file, tmp_path):
    proc = run_exe(normal_model.exe_file, "sample", "data", f"file={data_file}", "output",
                   f"file={tmp_path / 'o.csv'}", "save_cmdstan_config=1")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "Error: save_cmdstan_config=1 is not supported by the stanbhm launcher")


def test_exit_status_is_zero_or_one(normal_model, data_file, tmp_path):
    bad_data = tmp_path / "bad.json"
    bad_data.write_text(json.dumps({"N": 2, "y": [1.0], "sigma": 1, "m0": 0, "s0": 1}))
    proc = run_exe(normal_model.exe_file, "sample", "data", f"file={bad_data}", "output",
                   f"file={tmp_path / 'o.csv'}")
    assert proc.returncode == 1 and "Error in model data" in proc.stderr
