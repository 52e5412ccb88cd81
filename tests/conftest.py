"""Shared fixtures: one toolchain and one compile per test model per session.

Compiling a Stan model costs tens of seconds here, so every compiled model is a
session-scoped fixture and the executables come from stanbhm's content cache.

The session uses the test build (``STANBHM_TEST_BUILD=1``: programs compiled at -O1,
cached apart from user builds; `stanbhm.toolchain.cache`) unless the variable is set
already (``STANBHM_TEST_BUILD=0`` runs every test on the user build). Tests marked
``user_build`` (the toolchain fidelity tests, the cache-hit test) and the programs of
the session fixtures below are built exactly as users build them; the benchmark suites'
test runs check no timing and use the test build. Every compile and every cache hit is
logged (``STANBHM_COMPILE_LOG``) with the test that asked, and the run ends with seconds,
programs compiled, programs requested (what a cold run would compile), compile seconds
and CmdStan seconds per test file.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cmdstanpy
import numpy as np
import pandas as pd
import pytest

from stanbhm import toolchain
from stanbhm.datasets import eight_schools
from stanbhm.toolchain.cache import COMPILE_LOG_ENV, TEST_BUILD_ENV, TEST_BUILD_LEVEL_ENV

TESTS = Path(__file__).resolve().parent
STAN_DIR = TESTS / "stan"

os.environ.setdefault(TEST_BUILD_ENV, "1")
_LOG_FOLDER = pytest.StashKey[str]()


@contextlib.contextmanager
def user_build() -> Iterator[None]:
    """Compile as users do (no test build) inside the block."""
    saved = os.environ.pop(TEST_BUILD_ENV, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[TEST_BUILD_ENV] = saved


@contextlib.contextmanager
def unoptimized_build() -> Iterator[None]:
    """Compile the test build at -O0 inside the block."""
    saved = os.environ.get(TEST_BUILD_LEVEL_ENV)
    os.environ[TEST_BUILD_LEVEL_ENV] = "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(TEST_BUILD_LEVEL_ENV, None)
        else:
            os.environ[TEST_BUILD_LEVEL_ENV] = saved


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "user_build: compile this test's programs (its fixtures' too) exactly as "
                   "users do, not with the test build")
    config.addinivalue_line(
        "markers", "log_density: the test compares log densities at a few points and samples "
                   "little, so its programs compile at -O0 (half of clang's -O1 compile; "
                   "sampling about 20x slower)")
    if not hasattr(config, "workerinput") and not os.environ.get(COMPILE_LOG_ENV):
        # set before pytest-xdist starts its workers, which inherit it
        folder = tempfile.mkdtemp(prefix="stanbhm-compiles-")
        os.environ[COMPILE_LOG_ENV] = os.path.join(folder, "compiles.jsonl")
        config.stash[_LOG_FOLDER] = folder


def pytest_unconfigure(config) -> None:
    folder = config.stash.get(_LOG_FOLDER, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(COMPILE_LOG_ENV, None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A ``user_build`` test's setup (its module and session fixtures included), call and
    teardown run without the test build; a ``log_density`` test's with the test build at
    -O0."""
    if item.get_closest_marker("user_build") is not None:
        with user_build():
            yield
    elif item.get_closest_marker("log_density") is not None:
        with unoptimized_build():
            yield
    else:
        yield


_real_run_cmdstan = cmdstanpy.CmdStanModel._run_cmdstan


def _timed_run_cmdstan(self, *args, **kwargs):
    """CmdStanPy's CmdStan process, timed into the compile log under the running test."""
    start = time.perf_counter()
    try:
        return _real_run_cmdstan(self, *args, **kwargs)
    finally:
        log = os.environ.get(COMPILE_LOG_ENV)
        if log:
            line = json.dumps({"cmdstan_s": round(time.perf_counter() - start, 3),
                               "test": os.environ.get("PYTEST_CURRENT_TEST")})
            with open(log, "a") as fh:
                fh.write(line + "\n")


cmdstanpy.CmdStanModel._run_cmdstan = _timed_run_cmdstan


@pytest.fixture
def started_processes(monkeypatch) -> list[list[str]]:
    """The argv of every process Python starts while the test runs (compilers
    included), so a test can assert that something compiled nothing."""
    started: list[list[str]] = []
    real_popen = subprocess.Popen

    class Recorder(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args, *a, **kw):
            started.append(list(args) if not isinstance(args, str) else [args])
            super().__init__(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", Recorder)
    return started


@pytest.fixture(scope="session")
def cmdstan() -> Path:
    return toolchain.ensure_cmdstan()


@pytest.fixture(scope="session")
def eight_schools_df() -> pd.DataFrame:
    return eight_schools()


@pytest.fixture(scope="session")
def eight_schools_data(eight_schools_df: pd.DataFrame) -> dict:
    return {
        "J": len(eight_schools_df),
        "y": eight_schools_df["y"].tolist(),
        "sigma": eight_schools_df["sigma"].tolist(),
    }


@pytest.fixture(scope="session")
def normal_model(cmdstan: Path):
    """Built as users build it: the toolchain fidelity tests run it."""
    code = (STAN_DIR / "normal_mean.stan").read_text()
    with user_build():
        return toolchain.compile_model(code, cpp_options={"STAN_THREADS": True})


@pytest.fixture(scope="session")
def eight_schools_model(cmdstan: Path):
    code = (STAN_DIR / "eight_schools_nc.stan").read_text()
    with user_build():
        return toolchain.compile_model(code, cpp_options={"STAN_THREADS": True})


class NormalProblem:
    """Data and the closed-form posterior of ``normal_mean.stan``."""

    def __init__(self) -> None:
        rng = np.random.default_rng(20261123)
        self.sigma, self.m0, self.s0 = 2.0, 1.0, 3.0
        self.y = rng.normal(0.7, self.sigma, size=25)
        n = len(self.y)
        prec = 1 / self.s0**2 + n / self.sigma**2
        self.post_sd = prec**-0.5
        self.post_mean = (self.m0 / self.s0**2 + self.y.sum() / self.sigma**2) / prec

    @property
    def data(self) -> dict:
        return {"N": len(self.y), "y": self.y.tolist(), "sigma": self.sigma,
                "m0": self.m0, "s0": self.s0}

    def lp(self, mu: float, tau: float, jacobian: bool) -> float:
        """Log density up to the constant Stan drops (``~`` statements)."""
        val = (-0.5 * ((mu - self.m0) / self.s0) ** 2
               - 0.5 * np.sum(((self.y - mu) / self.sigma) ** 2) - tau)
        return val + (np.log(tau) if jacobian else 0.0)


@pytest.fixture(scope="session")
def normal_problem() -> NormalProblem:
    return NormalProblem()


def read_compile_log(path: str | os.PathLike[str] | None) -> list[dict]:
    """The records of a compile log (compiles and CmdStan runs); none when it is absent."""
    if not path or not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def requested_programs(records: list[dict]) -> dict[str, list[str]]:
    """Per program (cache key) the tests that asked for it, compiled or served by the
    cache, in the order of the log; a compile that failed is no program."""
    failed = {r["key"] for r in records if "key" in r and r.get("failed", False)}
    tests: dict[str, list[str]] = {}
    for record in records:
        key = record.get("hit") or record.get("key")
        if key is None or key in failed:
            continue
        test = record.get("test") or "(outside a test)"
        asked = tests.setdefault(key, [])
        if test not in asked:
            asked.append(test)
    return tests


def per_file_table(durations: dict[str, float], records: list[dict]) -> dict[str, dict]:
    """Per test file: summed test seconds, programs compiled (one per cache miss; a
    program is compiled once however many files use it), programs requested (compiled or
    served by the cache; each counted in the first file that asked for it, so a warm run's
    total is what a cold run would compile), programs used (all the file asked for,
    shared or not), the compiles' wall and compiler CPU seconds, and the seconds in
    CmdStan processes started in the test process (summed over parallel chains; not
    those of subprocesses such as notebook kernels)."""
    table: dict[str, dict] = {}

    def row(name: str) -> dict:
        return table.setdefault(name, {"seconds": 0.0, "programs": 0, "requested": 0,
                                       "used": 0, "compile_s": 0.0, "compile_cpu_s": 0.0,
                                       "cmdstan_s": 0.0})

    def file_of(test: str | None) -> str:
        return (test or "(outside a test)").split("::")[0]

    for name, seconds in durations.items():
        row(name)["seconds"] += seconds
    for record in records:
        entry = row(file_of(record.get("test")))
        if "key" in record:
            entry["programs"] += not record.get("failed", False)  # its seconds still count
            entry["compile_s"] += record["seconds"]
            entry["compile_cpu_s"] += record["cpu_s"]
        elif "cmdstan_s" in record:
            entry["cmdstan_s"] += record["cmdstan_s"]
    for tests in requested_programs(records).values():
        files = list(dict.fromkeys(file_of(t) for t in tests))
        row(files[0])["requested"] += 1
        for name in files:
            row(name)["used"] += 1
    return table


def pytest_terminal_summary(terminalreporter) -> None:
    """Seconds per test file at the end of a run (setup, call and teardown, summed over
    the workers), with the programs each compiled, so a cold run shows where its time
    went. ``STANBHM_TEST_TABLE=path`` also writes the table as JSON
    (``scripts/test_programs.py`` prints it as markdown)."""
    per_file: collections.Counter[str] = collections.Counter()
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid, duration = getattr(report, "nodeid", ""), getattr(report, "duration", None)
            if nodeid and isinstance(duration, float):
                per_file[nodeid.split("::")[0]] += duration
    if not per_file:
        return
    records = read_compile_log(os.environ.get(COMPILE_LOG_ENV))
    table = per_file_table(dict(per_file), records)
    compiles = [r for r in records if "key" in r and not r.get("failed", False)]
    requested = requested_programs(records)
    terminalreporter.section("seconds per test file (summed over workers)")
    terminalreporter.write_line(f"{'seconds':>8}  {'programs':>8}  {'requested':>9}  "
                                f"{'used':>4}  {'compile s':>9}  {'CmdStan s':>9}  file")
    ranked = sorted(table.items(), key=lambda kv: -kv[1]["seconds"])
    shown = [kv for i, kv in enumerate(ranked) if i < 15 or kv[1]["requested"]]
    for name, entry in shown:
        terminalreporter.write_line(
            f"{entry['seconds']:8.1f}  {entry['programs']:8d}  {entry['requested']:9d}  "
            f"{entry['used']:4d}  {entry['compile_s']:9.1f}  {entry['cmdstan_s']:9.1f}  "
            f"{name}")
    terminalreporter.write_line(
        f"{len({r['key'] for r in compiles})} programs compiled "
        f"({sum(r.get('test_build', False) for r in compiles)} in the test build) in "
        f"{sum(r['seconds'] for r in compiles):.0f} s, "
        f"{sum(r['cpu_s'] for r in compiles):.0f} s of compiler CPU; "
        f"{len(requested)} distinct programs requested (what a cold run compiles)")
    out = os.environ.get("STANBHM_TEST_TABLE")
    if out:
        Path(out).write_text(json.dumps({"files": table, "compiles": compiles,
                                         "programs": requested}, indent=1))
