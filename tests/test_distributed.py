"""Chains and fits as Dask tasks on a local cluster of two worker processes: the same
draws as a local fit (on an OpenCL device too, found again on the worker), one fit per
model, and a clear error without Dask or without the device on a worker."""

from __future__ import annotations

import builtins
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
from stanbhm import distributed
from stanbhm.toolchain import ToolchainError, opencl

dask_distributed = pytest.importorskip("dask.distributed")


def grouped(mean: float, seed: int, n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(list("abcd"), size=n)
    effect = pd.Series(g).map({"a": -0.5, "b": 0.0, "c": 0.3, "d": 0.6}).to_numpy()
    return pd.DataFrame({"g": g, "y": mean + effect + rng.normal(0, 0.5, size=n)})


@pytest.fixture(scope="module")
def client():
    cluster = dask_distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                            dashboard_address=None)
    with dask_distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.mark.slow
def test_chains_as_tasks_are_the_local_chains(client, tmp_path) -> None:
    model = sb.Model("y ~ 1 + (1 | g)", grouped(2.0, 1), parameterization="noncentered",
                     rewrites="none")
    kwargs = {"iter_warmup": 200, "iter_sampling": 100}
    remote = distributed.sample_chains(model, client, chains=4, seed=7, out_dir=tmp_path,
                                       **kwargs)
    local = model.fit(chains=4, seed=7, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.split("/")[-1] for p in remote.cmdstan.runset.csv_files)
    ours, theirs = remote.to_arviz().posterior, local.to_arviz().posterior
    assert ours["chain"].size == 4
    np.testing.assert_array_equal(ours["Intercept"].values, theirs["Intercept"].values)
    np.testing.assert_array_equal(ours["r_g"].values, theirs["r_g"].values)


@pytest.mark.slow
def test_one_task_per_model(client) -> None:
    models = {region: sb.Model("y ~ 1 + (1 | g)", grouped(mean, seed), rewrites="none",
                               parameterization="noncentered")
              for region, mean, seed in (("north", 1.0, 2), ("south", 5.0, 3))}
    fits = distributed.fit_many(models, client, chains=2, iter_warmup=300, iter_sampling=200,
                                seed=1)
    assert list(fits) == ["north", "south"]
    for region, mean in (("north", 1.0), ("south", 5.0)):
        intercept = fits[region].to_arviz().posterior["Intercept"].values
        assert abs(intercept.mean() - (mean + 0.1)) < 4 * intercept.std()


def test_without_dask_the_error_names_the_extra(monkeypatch) -> None:
    real = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.startswith("dask"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    model = sb.Model("y ~ 1 + (1 | g)", grouped(0.0, 4))
    with pytest.raises(ImportError) as err:
        distributed.sample_chains(model, client=None)
    assert str(err.value) == 'stanbhm.distributed needs Dask: pip install "stanbhm[distributed]"'


@pytest.mark.slow
@pytest.mark.opencl
@pytest.mark.skipif(opencl.opencl_missing() is not None, reason="no OpenCL platform here")
def test_an_opencl_program_runs_on_the_workers_device(client) -> None:
    """The task resolves the model's request on the worker and sets the launcher's device
    variable there: the draws are the local fit's on the same device."""
    kind = opencl.devices()[0].kind
    rng = np.random.default_rng(5)
    df = grouped(1.0, 5, n=200).assign(x=rng.normal(size=200))
    df["y"] += 0.5 * df["x"]
    model = sb.Model("y ~ x + (1 | g)", df, rewrites="none", opencl=kind)
    kwargs = {"iter_warmup": 100, "iter_sampling": 50}
    remote = distributed.sample_chains(model, client, chains=2, seed=3, **kwargs)
    local = model.fit(chains=2, seed=3, show_progress=False, advice=False, **kwargs)
    np.testing.assert_array_equal(remote.to_arviz().posterior["b"].values,
                                  local.to_arviz().posterior["b"].values)


def test_a_worker_finds_the_device_by_the_models_request(monkeypatch) -> None:
    """"auto" travels as the type of device it chose, other requests as given; a worker
    without that device fails the task, naming what it has, before any build."""
    gpu = opencl.Device(1, 0, "NVIDIA CUDA", "NVIDIA H100 80GB HBM3", "gpu")
    auto = SimpleNamespace(options=SimpleNamespace(opencl="auto"), device=gpu)
    assert distributed.device_request(auto) == "gpu"
    assert distributed.device_request(SimpleNamespace(options=SimpleNamespace(
        opencl="auto"), device=None)) is False
    assert distributed.device_request(SimpleNamespace(options=SimpleNamespace(
        opencl=(1, 0)), device=gpu)) == (1, 0)
    cpu = opencl.Device(0, 0, "Portable Computing Language", "pthread-cpu", "cpu")
    monkeypatch.setattr(opencl, "opencl_missing", lambda: None)
    monkeypatch.setattr(opencl, "devices", lambda: [cpu])
    with pytest.raises(ToolchainError) as err:
        distributed.run_task("this is never compiled", {}, {}, {}, "sample", {}, "gpu")
    assert str(err.value) == "opencl='gpu': no OpenCL gpu device; found: cpu 'pthread-cpu' " \
        "(platform 0)"
