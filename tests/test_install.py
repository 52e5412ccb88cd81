"""The package as ``pip install`` builds it, used from outside the checkout.

Every other test imports the editable checkout, where the templates and launcher
sources sit beside the modules anyway; this one builds the wheel, installs it into a
new virtual environment and runs the console script and a fit from a temporary folder,
so a file missing from the wheel or a path that only exists in the checkout fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import stanbhm as sb

REPO = Path(__file__).resolve().parents[1]
FORMULA = "y | se(sigma) ~ 1 + (1 | school)"
PRIORS = {"Intercept": "normal(0, 10)", "sd_school": "normal(0, 10)"}

SCRIPT = """
import json

import arviz as az
import stanbhm as sb
from stanbhm.render import template_dir

model = sb.Model({formula!r}, sb.datasets.eight_schools(), priors={priors!r})
written = model.write("eight_schools.stan")
fit = model.fit(seed=11, chains=4, iter_sampling=1500, show_progress=False)
summary = az.summary(fit.to_arviz(), var_names=["Intercept", "sd_school"])
json.dump({{"module": sb.__file__, "templates": str(template_dir()),
           "code": written.read_text(),
           "mean": summary["mean"].to_dict(), "mcse": summary["mcse_mean"].to_dict()}},
          open("result.json", "w"))
"""


def eight_schools_posterior_means() -> dict[str, float]:
    """E[Intercept] and E[sd_school] under PRIORS (half-normal on the sd), by quadrature
    of the marginal likelihood y_j ~ normal(mu, sqrt(sigma_j^2 + tau^2)) on a grid."""
    df = sb.datasets.eight_schools()
    mu = np.linspace(-40, 50, 901)[:, None]
    tau = np.linspace(0, 50, 1001)[None, :]
    log_post = stats.norm.logpdf(mu, 0, 10) + stats.norm.logpdf(tau, 0, 10)
    for y, s in zip(df["y"], df["sigma"], strict=True):
        log_post = log_post + stats.norm.logpdf(y, mu, np.sqrt(s**2 + tau**2))
    weight = np.exp(log_post - log_post.max())
    weight /= weight.sum()
    return {"Intercept": float((weight * mu).sum()), "sd_school": float((weight * tau).sum())}


@pytest.fixture(scope="module")
def installed(tmp_path_factory, cmdstan) -> Path:
    """A new virtual environment with stanbhm installed from a freshly built wheel."""
    root = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(root / "dist"), str(REPO)], check=True, capture_output=True)
    (wheel,) = (root / "dist").glob("stanbhm-*.whl")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True,
                   capture_output=True)
    return root


def run_installed(installed: Path, args: list[str], cwd: Path, cmdstan: Path):
    """Run a program of the new environment from `cwd`, with a models cache of its own
    (so the fit compiles through the installed package) and the session's toolchain."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(STANBHM_HOME=str(installed / "home"), CMDSTAN=str(cmdstan))
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_the_installed_wheel_writes_compiles_and_fits_eight_schools(installed, cmdstan,
                                                                    tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(textwrap.dedent(SCRIPT.format(formula=FORMULA, priors=PRIORS)))
    proc = run_installed(installed, [str(installed / "venv/bin/python"), str(script)],
                         tmp_path, cmdstan)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    site = installed / "venv" / "lib"
    assert Path(result["module"]).is_relative_to(site)
    assert Path(result["templates"]).is_relative_to(site)
    assert result["code"] == sb.Model(FORMULA, sb.datasets.eight_schools(),
                                      priors=PRIORS).stan_code()
    assert (installed / "home" / "models").is_dir()  # compiled by the installed package
    exact = eight_schools_posterior_means()
    for name, value in exact.items():
        assert abs(result["mean"][name] - value) < 4 * result["mcse"][name] + 0.05, name


@pytest.mark.slow
def test_the_installed_console_script_reports_its_version_and_writes_code(
        installed, cmdstan, tmp_path):
    stanbhm = str(installed / "venv" / "bin" / "stanbhm")
    version = run_installed(installed, [stanbhm, "--version"], tmp_path, cmdstan)
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"stanbhm {sb.__version__}\n"
    sb.datasets.eight_schools().to_csv(tmp_path / "es.csv", index=False)
    code = run_installed(installed, [stanbhm, "code", FORMULA, "--data", "es.csv"],
                         tmp_path, cmdstan)
    assert code.returncode == 0, code.stderr
    assert code.stdout == sb.Model(FORMULA, sb.datasets.eight_schools()).stan_code()


@pytest.mark.slow
def test_the_wheel_carries_its_license_and_metadata(installed):
    import zipfile

    (wheel,) = (installed / "dist").glob("stanbhm-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(f"stanbhm-{sb.__version__}.dist-info/METADATA").decode()
    assert f"stanbhm-{sb.__version__}.dist-info/licenses/LICENSE" in names
    assert "stanbhm/stan_templates/program.stan.j2" in names
    assert "stanbhm/toolchain/launcher/main.cpp" in names
    assert "License-Expression: BSD-3-Clause\n" in metadata
    assert "Requires-Dist: arviz<1,>=0.17\n" in metadata  # ArviZ 1.0 replaces InferenceData
    assert "Classifier: Intended Audience :: Science/Research\n" in metadata
    assert metadata.startswith("Metadata-Version:") and "Summary: Hierarchical" in metadata
