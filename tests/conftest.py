"""Shared fixtures: one toolchain and one compile per test model per session.

Compiling a Stan model costs tens of seconds here, so every compiled model is a
session-scoped fixture and the executables come from stanbhm's content cache.
"""

from __future__ import annotations

import collections
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stanbhm import toolchain
from stanbhm.datasets import eight_schools

TESTS = Path(__file__).resolve().parent
STAN_DIR = TESTS / "stan"


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
    code = (STAN_DIR / "normal_mean.stan").read_text()
    return toolchain.compile_model(code, cpp_options={"STAN_THREADS": True})


@pytest.fixture(scope="session")
def eight_schools_model(cmdstan: Path):
    code = (STAN_DIR / "eight_schools_nc.stan").read_text()
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


def pytest_terminal_summary(terminalreporter) -> None:
    """Seconds per test file at the end of a run (setup, call and teardown, summed over
    the workers), so a cold run shows where its time went."""
    per_file: collections.Counter[str] = collections.Counter()
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid, duration = getattr(report, "nodeid", ""), getattr(report, "duration", None)
            if nodeid and isinstance(duration, float):
                per_file[nodeid.split("::")[0]] += duration
    if not per_file:
        return
    terminalreporter.section("seconds per test file (summed over workers)")
    for name, seconds in per_file.most_common(15):
        terminalreporter.write_line(f"{seconds:8.1f}  {name}")
