"""The package as ``pip install`` builds it, used from outside the checkout.

Every other test imports the editable checkout, where the templates and launcher
sources sit beside the modules anyway; this one builds the wheel, installs it into a
new virtual environment and runs the console script and a fit from a temporary folder,
so a file missing from the wheel or a path that only exists in the checkout fails here.
"""

from __future__ import annotations

import collections
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
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
    """A new virtual environment with stanbhm installed from a freshly built wheel, and
    with the distributions that ``pip install <wheel>`` would install beside it.

    The wheel is built from the checkout by ``pip wheel`` (an isolated build, as a user's
    ``pip install .`` builds it) and installed by pip into a new environment outside the
    checkout. Its dependencies are resolved by pip as for that install (``pip install
    --dry-run --report``: the same index, constraints and resolver, every distribution and
    version the install would take), but not unpacked again: a resolved distribution of
    that very version already installed in this test environment is linked into the new
    one (its top-level files, as its RECORD lists them), any other is installed by pip
    (``--no-deps``, pinned to the resolved version). So the new environment holds exactly
    the resolved set, as a full install would, in about 13 s instead of 50 s of unpacking
    numpy, scipy, pandas and matplotlib. The trade-off: the linked files are this
    environment's copies of those versions, not pip's fresh unpacking of them, and the
    dependencies' console scripts are left out (stanbhm runs none). What a full install
    checks is checked still: the wheel installs, its requirements resolve, nothing outside
    the resolved set is importable (an undeclared import fails), and ``pip check`` in the
    new environment (`test_the_installed_wheels_requirements_are_satisfied`) finds every
    requirement satisfied."""
    root = tmp_path_factory.mktemp("install")
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = (root / "dist").glob("stanbhm-*.whl")
    venv.create(root / "venv", with_pip=False)  # pip runs on it from here (--python)
    into = [*pip, "--python", str(root / "venv" / "bin" / "python")]
    subprocess.run([*into, "install", "--dry-run", "-q", "--report", str(root / "resolved.json"),
                    str(wheel)], check=True, capture_output=True)
    report = json.loads((root / "resolved.json").read_text())
    resolved = {item["metadata"]["name"]: item["metadata"]["version"]
                for item in report["install"] if not item.get("is_direct")}
    here = {normalize(d.metadata["Name"]): d
            for d in importlib.metadata.distributions(path=[sysconfig.get_path("purelib")])}
    owners = collections.Counter(top for d in here.values() for top in top_level(d))
    site = Path(subprocess.run([str(root / "venv" / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    unpack = []
    for name, version in resolved.items():
        dist = here.get(normalize(name))
        if (dist is None or dist.version != version or not top_level(dist)
                or any(owners[top] > 1 for top in top_level(dist))):
            unpack.append(f"{name}=={version}")  # not here as resolved: pip installs it
            continue
        for top in top_level(dist):
            (site / top).symlink_to(Path(dist.locate_file(top)))
    subprocess.run([*into, "install", "--no-deps", "-q", str(wheel), *unpack], check=True,
                   capture_output=True)
    return root


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def top_level(dist: importlib.metadata.Distribution) -> set[str]:
    """The entries of site-packages that a distribution's RECORD puts files in (no
    scripts, no shared __pycache__)."""
    return {f.parts[0] for f in dist.files or () if f.parts[0] not in ("..", "__pycache__")}


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


@pytest.mark.slow
def test_the_installed_wheels_requirements_are_satisfied(installed):
    """What ``pip install <wheel>`` resolved is what the new environment holds, version
    for version, and pip finds every requirement of every distribution there satisfied."""
    python = str(installed / "venv" / "bin" / "python")
    report = json.loads((installed / "resolved.json").read_text())
    resolved = {normalize(item["metadata"]["name"]): item["metadata"]["version"]
                for item in report["install"]}
    assert resolved["stanbhm"] == sb.__version__ and "arviz" in resolved
    listed = subprocess.run([sys.executable, "-m", "pip", "--python", python, "list",
                             "--format=json"], check=True, capture_output=True, text=True)
    held = {normalize(d["name"]): d["version"] for d in json.loads(listed.stdout)}
    assert held == resolved
    check = subprocess.run([sys.executable, "-m", "pip", "--python", python, "check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout == "No broken requirements found.\n"
