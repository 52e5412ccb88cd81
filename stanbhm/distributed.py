"""Chains and whole fits as tasks of a Dask cluster.

A task carries only plain values (the program text, build options, the data
dictionary, CmdStanPy's arguments); on its worker it finds the executable in that
machine's content cache (`toolchain.compile_model`, which builds it on a miss, under a
lock, so two workers of one machine build it once), runs CmdStan into a temporary
folder and sends the CSV files back as bytes, since a worker's disk is not the
client's. The client writes them into one folder and reads them with CmdStanPy, so the
result is a `Fit` like a local one. Dask is an optional extra:
``pip install "stanbhm[distributed]"``.

Chain k of a run with seed s is CmdStan's chain k of that seed whichever process runs
it, so `sample_chains` gives the draws a local ``model.fit(chains=..., seed=s)`` gives.

A program built for OpenCL finds its device on the worker, since the client's
(platform, device) numbers may name another device, or none, on another machine: the
model's ``opencl=`` request is resolved again there ("auto" as the type of device it
chose here), and a worker without that device fails its task with the reason.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import atomic

if TYPE_CHECKING:
    from .model import Model
    from .results import Fit

__all__ = ["fit_many", "sample_chains"]

#: Methods a task runs: those CmdStanPy reads back from CSV files alone.
_METHODS = ("sample", "optimize", "variational", "pathfinder")


def _client_type() -> type:
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError('stanbhm.distributed needs Dask: pip install "stanbhm[distributed]"'
                          ) from None
    return Client


def run_task(code: str, cpp_options: dict[str, Any], stanc_options: dict[str, Any],
             data: dict[str, Any], method: str, arguments: dict[str, Any],
             opencl: Any = False) -> list[tuple[str, bytes]]:
    """On a worker: the program's CmdStan `method` on `data`, its OpenCL kernels on the
    worker's device for the request `opencl`; its CSV files as (name, contents)."""
    from . import toolchain
    from .datafile import data_file
    from .toolchain import opencl as opencl_devices

    device = opencl_devices.resolve(opencl)
    exe = toolchain.compile_model(code, cpp_options=cpp_options, stanc_options=stanc_options)
    with tempfile.TemporaryDirectory(prefix="stanbhm-task-") as folder, \
            data_file(data) as path, opencl_devices.selected(device):
        result = getattr(exe, method)(data=path, output_dir=folder, **arguments)
        return [(Path(f).name, Path(f).read_bytes()) for f in result.runset.csv_files]


def device_request(model: Model) -> Any:
    """The ``opencl=`` request a worker resolves for `model`: the model's own, except
    that "auto" becomes the type of device it chose ("gpu"), or False for none."""
    request = model.options.opencl
    if request == "auto":
        return False if model.device is None else model.device.kind
    return request


def _task_arguments(model: Model) -> tuple[str, dict[str, Any], dict[str, Any], dict]:
    cpp, stanc = model.build_options()
    return model.stan_code(), cpp, stanc, model.stan_data()


def _collect(model: Model, files: list[tuple[str, bytes]], method: str,
             out_dir: str | os.PathLike[str] | None) -> Fit:
    """Write the returned CSVs (each atomically) and read them as one CmdStanPy result."""
    import cmdstanpy

    from .results import Fit

    folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="stanbhm-"))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, contents in files:
        atomic.write(folder / name, contents)
        paths.append(str(folder / name))
    result = cmdstanpy.from_csv(paths, method=method)
    return Fit(model.program.schema, result, method, model=model)


def sample_chains(model: Model, client: Any, chains: int = 4, seed: int = 1,
                  out_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> Fit:
    """NUTS with one task per chain on `client` (a ``dask.distributed.Client``); chain k
    is chain k of a local ``model.fit(chains=chains, seed=seed)``. Keyword arguments go
    to CmdStanPy's ``sample`` (``iter_warmup``, ``adapt_delta``, ...); the CSV files land
    in `out_dir` (a new temporary folder by default)."""
    _client_type()
    if chains < 1:
        raise ValueError(f"chains={chains}: need at least one")
    code, cpp, stanc, data = _task_arguments(model)
    kwargs = model.sample_arguments(kwargs)
    kwargs.setdefault("show_progress", False)
    futures = [client.submit(run_task, code, cpp, stanc, data, "sample",
                             {**kwargs, "chains": 1, "chain_ids": k + 1, "seed": seed},
                             device_request(model), pure=False,
                             key=f"stanbhm-chain-{k + 1}-{os.urandom(4).hex()}")
               for k in range(chains)]
    # a one-chain run names its file without the chain id: add it, or chains collide
    files = [(f"chain{k + 1}-{name}", contents)
             for k, result in enumerate(client.gather(futures)) for name, contents in result]
    return _collect(model, files, "sample", out_dir)


def fit_many(models: Mapping[str, Model], client: Any, method: str = "sample",
             out_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> dict[str, Fit]:
    """One task per model (e.g. one model per region), each running `method` with
    CmdStanPy's keyword arguments; the fits in the order of `models`, CSVs under
    ``out_dir/<key>``."""
    _client_type()
    if method not in _METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(_METHODS)}")
    if method == "sample":
        kwargs.setdefault("show_progress", False)
    futures = {}
    for key, model in models.items():
        code, cpp, stanc, data = _task_arguments(model)
        task = model.sample_arguments(kwargs) if method == "sample" else dict(kwargs)
        futures[key] = client.submit(run_task, code, cpp, stanc, data, method, task,
                                     device_request(model), pure=False)
    results = client.gather(futures)
    return {key: _collect(model, results[key], method,
                          None if out_dir is None else Path(out_dir) / key)
            for key, model in models.items()}
