"""opencl=: the device request, what the header says, and that the OpenCL program's
log density equals the CPU program's at the same parameters (on whatever OpenCL
device this machine has; PoCL's CPU device in CI)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
from stanbhm.toolchain import ToolchainError, opencl

HERE = opencl.opencl_missing() is None


def rows(n: int = 500, seed: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    g = rng.choice(list("abcd"), size=n)
    eta = 0.2 + x @ np.array([0.5, -0.4, 0.3]) + pd.Series(g).map(
        {"a": -0.3, "b": 0.0, "c": 0.2, "d": 0.4}).to_numpy()
    df = pd.DataFrame(x, columns=["x1", "x2", "x3"]).assign(g=g)
    df["y"] = eta + rng.normal(size=n)
    df["yb"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    return df


def decision(model: sb.Model) -> str:
    return next(str(d) for d in model.plan.decisions if d.subject == "opencl")


def test_without_opencl_the_request_names_what_is_missing(monkeypatch) -> None:
    monkeypatch.setattr(opencl, "opencl_missing", lambda: "no OpenCL platform is installed")
    with pytest.raises(ToolchainError) as err:
        sb.Model("y ~ x1", rows(), opencl="gpu")
    assert str(err.value) == "opencl='gpu' was requested but no OpenCL platform is installed"


@pytest.mark.skipif(not HERE, reason="no OpenCL platform or headers here")
def test_the_header_says_what_runs_on_the_device() -> None:
    df = rows()
    first = opencl.devices()[0]
    pair = (first.platform_id, first.device_id)
    model = sb.Model("y ~ x1 + x2 + (1 | g)", df, rewrites="none", opencl=pair)
    assert model.device == first
    assert decision(model) == f"opencl: opencl={pair!r}; normal_id_glm runs on the OpenCL device"
    kept = sb.Model("y ~ 1 + (1 | g)", df, rewrites="none", opencl=pair)
    assert decision(kept) == (f"opencl: opencl={pair!r}; no GLM kernel applies, so the "
                              "likelihood stays on the CPU except what stanc --use-opencl "
                              "moves itself")
    assert not any(d.subject == "opencl" for d in sb.Model("y ~ x1", df).plan.decisions)
    with pytest.raises(ToolchainError, match=r"^opencl=\(0, 99\): no such OpenCL device; "):
        sb.Model("y ~ x1", df, opencl=(0, 99))


@pytest.mark.slow
@pytest.mark.opencl
@pytest.mark.skipif(not HERE, reason="no OpenCL platform or headers here")
@pytest.mark.parametrize(("formula", "family", "param"), [
    # the device program of the run-time test below (and of tests/test_distributed.py)
    ("y ~ x1 + x2 + x3 + (1 | g)", "gaussian", "auto"),
    # the CPU program of tests/test_families.py's bernoulli
    ("yb ~ x1 + x2 + x3 + (1 | g)", "bernoulli", "noncentered")])
def test_the_device_program_has_the_cpu_log_density(formula, family, param) -> None:
    df = rows()
    device = opencl.devices()[0]
    kwargs = {"family": family, "rewrites": "none", "parameterization": param}
    cpu = sb.Model(formula, df, **kwargs)
    gpu = sb.Model(formula, df, opencl=(device.platform_id, device.device_id), **kwargs)
    exe = gpu.compile()
    assert exe.exe_info()["STAN_OPENCL"] == "true"
    draws = cpu.fit(chains=1, iter_warmup=150, iter_sampling=10, seed=2).cmdstan
    names = list(cpu.compile().src_info()["parameters"])
    for i in range(10):
        point = {n: np.asarray(draws.stan_variable(n)[i]).tolist() for n in names}
        on_cpu = cpu.compile().log_prob(point, data=cpu.stan_data(), sig_figs=15)
        on_device = exe.log_prob(point, data=gpu.stan_data(), sig_figs=15)
        np.testing.assert_allclose(on_device.to_numpy(), on_cpu.to_numpy(), rtol=1e-9,
                                   atol=1e-9)


@pytest.mark.slow
@pytest.mark.opencl
@pytest.mark.skipif(not HERE, reason="no OpenCL platform or headers here")
def test_the_device_is_chosen_at_run_time() -> None:
    """One build serves every device: the launcher takes it from STANBHM_OPENCL_DEVICE,
    which Model.fit sets for its runs, and refuses a malformed or absent one."""
    import subprocess

    from stanbhm.datafile import data_file

    device = opencl.devices()[0]
    model = sb.Model("y ~ x1 + x2 + x3 + (1 | g)", rows(), rewrites="none",
                     opencl=(device.platform_id, device.device_id))
    fit = model.fit(chains=1, iter_warmup=50, iter_sampling=20, seed=1, show_progress=False,
                    advice=False)
    assert fit.cmdstan.stan_variable("Intercept").shape == (20,)
    assert opencl.DEVICE_VARIABLE not in os.environ  # set for the run only
    exe = model.compile().exe_file
    with data_file(model.stan_data()) as data:
        def run(value: str) -> subprocess.CompletedProcess:
            env = {**os.environ, opencl.DEVICE_VARIABLE: value}
            return subprocess.run([exe, "sample", "num_warmup=5", "num_samples=5", "data",
                                   f"file={data}", "output", "file=/dev/null"],
                                  capture_output=True, text=True, env=env, check=False)
        assert run(f"{device.platform_id},{device.device_id}").returncode == 0
        bad = run("gpu")
        assert bad.returncode == 1
        assert ("STANBHM_OPENCL_DEVICE must be 'platform,device' (two non-negative integers), "
                "got 'gpu'") in bad.stdout + bad.stderr
        assert run(f"{device.platform_id},99").returncode == 1


@pytest.mark.slow
@pytest.mark.opencl
@pytest.mark.skipif(not HERE, reason="no OpenCL platform or headers here")
def test_chains_of_an_opencl_program_run_as_processes() -> None:
    """Chains as threads of one process share Stan's OpenCL context, and the first
    rejection inside a kernel (a zero scale in early warmup, as with these data and
    seed) aborted the process; `fit` runs one process per chain instead."""
    rng = np.random.default_rng(5)
    g = rng.choice(list("abcd"), size=200)
    df = pd.DataFrame({"g": g, "x": rng.normal(size=200)})
    df["y"] = 1 + 0.5 * df["x"] + pd.Series(g).map(
        {"a": -0.5, "b": 0.0, "c": 0.3, "d": 0.6}).to_numpy() + rng.normal(0, 0.5, 200)
    device = opencl.devices()[0]
    model = sb.Model("y ~ x + (1 | g)", df, rewrites="none",
                     opencl=(device.platform_id, device.device_id))
    fit = model.fit(chains=2, seed=3, iter_warmup=100, iter_sampling=50, show_progress=False,
                    advice=False)
    assert fit.cmdstan.runset.num_procs == 2
    assert fit.cmdstan.stan_variable("b").shape == (100, 1)


def test_auto_puts_large_glm_kernels_on_a_gpu(monkeypatch) -> None:
    """opencl="auto": a GPU is wanted when the kernel's work per gradient is large enough
    to pay for a call's fixed cost, otherwise the CPU, and the header says why. The plan
    and the program are the same on every machine: the model finds the GPU on its own
    (`model.device`), and runs the kernel on the CPU where there is none."""
    from stanbhm.passes import glm

    df = rows()
    gpu = opencl.Device(1, 0, "NVIDIA CUDA", "NVIDIA H100 80GB HBM3", "gpu")
    cpu = opencl.Device(0, 0, "Portable Computing Language", "pthread-cpu", "cpu")
    monkeypatch.setattr(opencl, "opencl_missing", lambda: None)
    monkeypatch.setattr(opencl, "devices", lambda: [cpu, gpu])
    small = sb.Model("y ~ x1 + x2 + x3 + (1 | g)", df, rewrites="none", opencl="auto")
    assert decision(small) == (
        "opencl: not used; 'auto': 500 rows x 3 columns in normal_id_glm, under 3e+06: a GPU "
        "call's fixed ~3.5 ms would cost more than it saves")
    assert small.device is None and small.build_options() == ({"STAN_THREADS": True}, {"O1": True})
    assert not small.plan.gpu_wanted
    monkeypatch.setattr(glm, "AUTO_ENTRIES", 1000)
    big = sb.Model("y ~ x1 + x2 + x3 + (1 | g)", df, rewrites="none", opencl="auto")
    assert decision(big) == (
        "opencl: a GPU if the machine has one; 'auto': 500 rows x 3 columns in normal_id_glm, "
        "at least 1e+03: the machine the model is made on runs the kernel on its first "
        "OpenCL GPU, or on the CPU when it has none")
    assert big.plan.gpu_wanted and big.device == gpu
    # one build for any device; the device reaches the launcher when the program runs
    assert big.build_options() == ({"STAN_THREADS": True, "STAN_OPENCL": True},
                                   {"O1": True, "use-opencl": True})
    with opencl.selected(big.device):
        assert os.environ[opencl.DEVICE_VARIABLE] == "1,0"
    assert opencl.DEVICE_VARIABLE not in os.environ
    kept = sb.Model("y ~ 1 + (1 | g)", df, rewrites="none", opencl="auto")
    assert decision(kept) == ("opencl: not used; 'auto': no GLM kernel applies, and the GLM "
                              "kernels are what a GPU runs")
    assert kept.device is None
    # a machine with no GPU, or no OpenCL at all: the same program, run on the CPU
    monkeypatch.setattr(opencl, "devices", lambda: [cpu])
    alone = sb.Model("y ~ x1 + x2 + x3 + (1 | g)", df, rewrites="none", opencl="auto")
    monkeypatch.setattr(opencl, "opencl_missing", lambda: "no OpenCL platform is installed")
    monkeypatch.setattr(opencl, "devices", lambda: [])
    bare = sb.Model("y ~ x1 + x2 + x3 + (1 | g)", df, rewrites="none", opencl="auto")
    for other in (alone, bare):
        assert other.stan_code() == big.stan_code()
        assert decision(other) == decision(big) and other.plan.gpu_wanted
        assert other.device is None
        assert other.build_options() == ({"STAN_THREADS": True}, {"O1": True})
