"""Generated programs as text (golden files) and as programs (stanc accepts them).

Set STANBHM_UPDATE_GOLDEN=1 to rewrite tests/golden/ after an intended change, and
explain the change in the commit message.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stanbhm as sb
from stanbhm.datasets import eight_schools
from stanbhm.planner import RESERVED

GOLDEN = Path(__file__).resolve().parent / "golden"
HOSTILE = ["x; target += 1e9", "for", "ñame", "1x"]


def catalogue_data(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    df = pd.DataFrame({
        "x": rng.normal(size=n),
        "z": rng.normal(size=n),
        "pos": rng.uniform(0.5, 3, size=n),
        "cat": rng.choice(["lo", "mid", "hi"], size=n),
        "g": rng.choice([f"g{i}" for i in range(5)], size=n),
        "h": rng.choice([f"h{i}" for i in range(4)], size=n),
        "a": rng.choice(["a1", "a2", "a3"], size=n),
        "b": rng.choice(["b1", "b2"], size=n),
        "n": rng.integers(5, 15, size=n),
        "expo": rng.uniform(1, 4, size=n),
    })
    df["y"] = 1 + 0.5 * df["x"] + rng.normal(size=n)
    df["yb"] = (rng.uniform(size=n) < 0.4).astype(int)
    df["ys"] = rng.binomial(df["n"], 0.3)
    df["yc"] = rng.poisson(2.0, size=n)
    df["y_missing"] = df["y"].where(np.arange(n) % 10 != 3)
    df["ys_missing"] = df["ys"].where(np.arange(n) % 10 != 4)
    # g0 holds most rows and sits far from the rest; the other levels have 3 to 5 rows.
    df["g"] = np.where(np.arange(n) < 40, "g0", df["g"])
    df["y_unbalanced"] = df["y"] + np.where(df["g"] == "g0", 0.3, 0.0)
    for i, name in enumerate(HOSTILE):
        df[name] = rng.normal(size=n) + i
    df["for"] = rng.choice(["if", "while", "1 x"], size=n)  # hostile level names too
    df["obs"] = [f"o{i}" for i in range(n)]  # one level per row: an overdispersion term
    return df


@dataclass(frozen=True)
class Case:
    """One golden program: the arguments of `stanbhm.Model` that make it. Each defaults
    to Model's own default (the data to catalogue_data's frame), so a case states only
    what differs. Its name (the key in CASES) names its golden file,
    tests/golden/<name>.stan."""

    formula: str
    family: str = "gaussian"
    #: a parameterization for every term, or a dict of them by term (or centering weights)
    parameterization: str | dict[str, str | float] = "auto"
    #: "auto", "none", a list of model-wide rewrites, or a dict of them by term
    rewrites: str | list[str] | dict[str, str] = "auto"
    priors: dict[str, str] | None = None
    #: Model's other keywords (threads, grainsize, glm, log_lik, effects, y_rep)
    options: dict[str, Any] = field(default_factory=dict)
    #: builds the data frame the formula reads
    data: Callable[[], pd.DataFrame] = catalogue_data

    def model(self) -> sb.Model:
        return sb.Model(self.formula, self.data(), family=self.family,
                        parameterization=self.parameterization, priors=self.priors,
                        rewrites=self.rewrites, **self.options)


def addition_data() -> pd.DataFrame:
    """catalogue_data with the columns of the addition terms: a censoring status with
    every kind (brms's words), interval upper bounds, row weights."""
    df = catalogue_data()
    rng = np.random.default_rng(31)
    df["status"] = rng.choice(["none", "right", "left", "interval"], p=[0.6, 0.2, 0.1, 0.1],
                              size=len(df))
    df["no_interval"] = df["status"].replace("interval", "none")
    df["upper"] = np.maximum(df["yc"], df["ys"]) + 2
    df["w"] = rng.uniform(0.5, 2.0, size=len(df))
    df["yc_missing"] = df["yc"].where(np.arange(len(df)) % 10 != 5)
    df["low"] = df["y"] - rng.uniform(0.5, 2.0, size=len(df))  # a truncation bound per row
    return df


def family_data() -> pd.DataFrame:
    """catalogue_data with the outcomes of the beta and cumulative families: a proportion
    and an ordinal answer 1 to 4, each also with missing values."""
    df = catalogue_data()
    rng = np.random.default_rng(32)
    n = len(df)
    df["prop"] = rng.beta(2, 3, size=n)
    df["answer"] = rng.integers(1, 5, size=n)
    df["answer_missing"] = df["answer"].where(np.arange(n) % 10 != 6)
    return df


EIGHT_SCHOOLS = "y | se(sigma) ~ 1 + (1 | school)"
#: Model's output options switched off: no level effects, log_lik or y_rep drawn.
NO_OUTPUTS = {"effects": False, "log_lik": False, "y_rep": False}

CASES: dict[str, Case] = {
    # ---- the catalogue: every family, formula syntax and parameterization
    "eight_schools_noncentered": Case(EIGHT_SCHOOLS, parameterization="noncentered",
                                      data=eight_schools),
    "eight_schools_centered": Case(EIGHT_SCHOOLS, parameterization="centered",
                                   data=eight_schools),
    "fixed_only": Case("y ~ x + z"),
    "interaction_star": Case("y ~ x*z"),
    "interaction_colon_no_intercept": Case("y ~ 0 + x:z + x"),
    "minus_one": Case("y ~ x - 1"),
    "categorical_and_transforms": Case("y ~ C(cat) + log(pos) + scale(z)"),
    "correlated_slopes_noncentered": Case("y ~ x + (1 + x | g)",
                                          parameterization="noncentered"),
    "uncorrelated_slopes": Case("y ~ x + (1 + x || g)", parameterization="noncentered"),
    "slope_without_intercept": Case("y ~ x + (x - 1 | g) + (0 + z | h)",
                                    parameterization="centered"),
    "nested": Case("y ~ 1 + (1 | a/b)", parameterization="noncentered"),
    "interaction_grouping": Case("y ~ x + (1 | a:b)", parameterization="centered"),
    "crossed_per_factor": Case("y ~ x + (1 | g) + (1 + x | h)",
                               parameterization={"g": "centered", "h": "noncentered"}),
    "student_t": Case("y ~ x + (1 | g)", family="student_t", parameterization="noncentered"),
    "bernoulli": Case("yb ~ x + (1 | g)", family="bernoulli", parameterization="noncentered"),
    "binomial": Case("ys | trials(n) ~ x + (1 | g)", family="binomial",
                     parameterization="noncentered"),
    "poisson_offset": Case("yc ~ x + offset(log(expo)) + (1 | g)", family="poisson",
                           parameterization="noncentered"),
    "negbinomial": Case("yc ~ x + (1 + x | g)", family="negbinomial",
                        parameterization="centered"),
    "missing_outcome": Case("y_missing ~ x + (1 | g)", parameterization="noncentered"),
    "hostile_names": Case("y ~ `x; target += 1e9` + `ñame` + `1x` + (1 | `for`)",
                          parameterization="noncentered"),
    "observation_level_effect": Case("yc ~ x + (1 | obs)", family="poisson",
                                     parameterization="noncentered"),
    "two_terms_one_factor": Case("y ~ x + (1 | g) + (x - 1 | g)",
                                 parameterization={"g": "noncentered", "g_x": "centered"}),
    "lognormal": Case("pos ~ x + (1 | g)", family="lognormal", parameterization="noncentered"),
    "gamma": Case("pos ~ x + (1 | g)", family="gamma", parameterization="noncentered"),
    "binomial_missing": Case("ys_missing | trials(n) ~ x + offset(z) + (1 + x | g)",
                             family="binomial", parameterization="noncentered"),
    "nested_centered": Case("y ~ x + (1 | a/b)", parameterization="centered"),
    "partially_centered": Case("y ~ x + (1 | g) + (x - 1 | h)",
                               parameterization={"g": 0.5, "h": 0.25}),
    # ---- user priors
    "user_priors": Case("y ~ x + z + (1 + x | g)", parameterization="noncentered",
                        priors={"b": "normal(0, 2)", "b_z": "student_t(3, 0, 1)",
                                "sd_g": "exponential(1)", "cor": "lkj_corr_cholesky(4)",
                                "sigma": "exponential(0.5)", "Intercept": "normal(0, 10)"}),
    "horseshoe": Case("y ~ x + z + pos + (1 | g)", parameterization="noncentered",
                      priors={"b": "horseshoe(df=1, scale_global=0.1)"}),
    "horseshoe_bernoulli": Case("yb ~ x + z + pos", family="bernoulli",
                                priors={"b": "horseshoe(df=3, scale_global=0.05, df_slab=6)"}),
    # ---- programs that show a rewrite, or a case with rewrites switched off
    "centered_missing_slopes": Case("y_missing ~ x + z + (1 + x | g)",
                                    parameterization="centered", rewrites="none"),
    "uncorrelated_centered": Case("y ~ x + (1 + x || g)", parameterization="centered",
                                  rewrites="none"),
    "correlated_slopes_centered": Case("y ~ x + (1 + x | g)", parameterization="centered",
                                       rewrites="none"),
    "auto_per_level": Case("y_unbalanced ~ x + (1 | g)", rewrites="none"),
    "eight_schools_marginal": Case(EIGHT_SCHOOLS, data=eight_schools),
    "marginal_rows": Case("y_missing ~ x + (1 | g) + (1 + x | h)",
                          parameterization="noncentered", rewrites={"g": "marginalize"}),
    "marginal_known_se": Case("y | se(pos) ~ x + (1 | g) + (1 | h)"),
    "collapse_bernoulli": Case("yb ~ C(cat) + (1 | g)", family="bernoulli",
                               parameterization="noncentered"),
    "beta_binomial": Case("ys | trials(n) ~ 1 + (1 | g)", family="binomial",
                          rewrites={"g": "beta_binomial"}),
    "collapse_poisson_exposure": Case("yc ~ C(cat) + offset(log(n)) + (1 | h)",
                                      family="poisson", parameterization="centered"),
    "collapse_negbinomial": Case("yc ~ C(cat) + (1 | h)", family="negbinomial"),
    "marginal_statistics": Case("y ~ x + (1 | g) + (x - 1 | g)",
                                parameterization={"g_x": "noncentered"}),
    "gamma_poisson_offset": Case("yc ~ x + offset(log(expo)) + (1 | g)", family="poisson",
                                 rewrites={"g": "gamma_poisson"}),
    "marginal_cells": Case("y_missing ~ C(cat) + (1 | g) + (1 | h)"),
    "gamma_poisson_cells": Case("yc ~ C(cat) + offset(log(n)) + (1 | h)", family="poisson",
                                rewrites={"h": "gamma_poisson"}),
    "laplace_binomial": Case("ys_missing | trials(n) ~ x + (1 | g)", family="binomial",
                             rewrites={"g": "laplace"}),
    "quadrature_binomial_missing": Case("ys_missing | trials(n) ~ x + (1 | g)",
                                        family="binomial", rewrites={"g": "quadrature"}),
    "quadrature_negbinomial": Case("yc ~ x + (1 | g)", family="negbinomial",
                                   rewrites={"g": "quadrature"},
                                   options={"quadrature_points": 5}),
    "statistics_covariate_in_term": Case("y_missing ~ z + offset(x) + (1 + x | g)",
                                         parameterization="noncentered"),
    "joint_marginal_crossed": Case("y_missing ~ x + (1 | g) + (1 + x | h)",
                                   rewrites=["marginalize", "joint_statistics"]),
    "joint_partial_b": Case("y ~ x + z + offset(pos) + (1 | g) + (z - 1 | h)",
                            parameterization={"g": "centered", "h": "centered"},
                            rewrites=["joint_statistics"]),
    # ---- reduce_sum programs
    # correlated slopes over missing outcomes: a slice's slope line is too long for one
    # line, and breaks where stanc --auto-format breaks it
    "threads_correlated_missing": Case("y_missing ~ x + z + (1 + x | g)",
                                       parameterization="centered", rewrites="none",
                                       options={"threads": 2}),
    "threads_glm_missing": Case("y_missing ~ x + z + (1 + x || g) + (1 | h)",
                                parameterization="noncentered", rewrites="none",
                                options={"threads": 2}),
    "threads_negbinomial_centered": Case("yc ~ x + offset(log(expo)) + (1 + x | g)",
                                         family="negbinomial", parameterization="centered",
                                         rewrites="none",
                                         options={"threads": 2, "glm": "never"}),
    "threads_known_se": Case("y | se(pos) ~ x + (1 | g)", parameterization="noncentered",
                             rewrites="none", options={"threads": 3, "grainsize": 7}),
    "threads_marginal_missing": Case("y_missing ~ x + (1 | g) + (1 + x | h)",
                                     parameterization="noncentered",
                                     rewrites={"g": "marginalize"}, options={"threads": 2}),
    "threads_marginal_known_se": Case("y | se(pos) ~ x + z + (1 | g) + (1 | h)",
                                      parameterization="centered",
                                      rewrites={"g": "marginalize"}, options={"threads": 2}),
    # ---- programs shaped by an output option
    "marginal_undrawn": Case("y_missing ~ x + (1 | g) + (1 + x | h)",
                             parameterization="noncentered", rewrites={"g": "marginalize"},
                             options=NO_OUTPUTS),
    "joint_rows_left_out": Case("y_missing ~ x + z + offset(pos) + (1 | g) + (1 + x | h)",
                                rewrites=["marginalize", "joint_statistics"],
                                options=NO_OUTPUTS),
    "marginal_log_lik_levels": Case("y_missing ~ x + (1 | g)", parameterization="noncentered",
                                    rewrites={"g": "marginalize"},
                                    options={"log_lik": "marginal"}),
    "eight_schools_marginal_log_lik": Case(EIGHT_SCHOOLS, rewrites={"school": "marginalize"},
                                           options={"log_lik": "marginal"}, data=eight_schools),
    # ---- addition terms: censored, weighted, truncated rows
    "censored_negbinomial": Case("yc_missing | cens(status, upper) ~ x + (1 | g)",
                                 family="negbinomial", data=addition_data),
    "weighted_censored_binomial": Case("ys | trials(n) + weights(w) + cens(no_interval) ~ x",
                                       family="binomial", data=addition_data),
    "censored_known_se": Case("y | se(pos) + cens(no_interval) ~ x + (1 | g)",
                              data=addition_data),
    "truncated_lognormal": Case("pos | trunc(lb = 0.5, ub = 3) ~ x + (1 | g)",
                                family="lognormal", parameterization="noncentered",
                                data=addition_data),
    "truncated_poisson": Case("yc | trunc(lb = 1) ~ x", family="poisson",
                              data=lambda: addition_data().query("yc > 0")),
    "weighted_statistics": Case("y_missing | weights(w) ~ x + (1 + x | g)",
                                parameterization="noncentered", data=addition_data),
    "truncated_gaussian_column_bound": Case("y | trunc(lb = low, ub = 6) ~ x + (1 | g)",
                                            parameterization="noncentered",
                                            data=addition_data),
    "weighted_truncated_poisson": Case("yc | weights(w) + trunc(lb = 1) ~ x + (1 | g)",
                                       family="poisson", parameterization="noncentered",
                                       data=lambda: addition_data().query("yc > 0")),
    # weighted rows with their group intercept integrated out (the weights as precisions)
    "weighted_marginal": Case("y_missing | weights(w) ~ x + (1 | g)",
                              rewrites={"g": "marginalize"}, data=addition_data),
    # ---- the families and links of issue 31: zero-inflated, hurdle, beta, ordinal
    "zero_inflated_poisson": Case("yc ~ x + (1 | g)", family="zero_inflated_poisson",
                                  parameterization="noncentered"),
    "zero_inflated_negbinomial_threads": Case("yc ~ x + (1 + x | g)",
                                              family="zero_inflated_negbinomial",
                                              options={"threads": 2}),
    "hurdle_poisson": Case("yc ~ x + offset(log(expo)) + (1 | g)", family="hurdle_poisson",
                           parameterization="noncentered"),
    "hurdle_negbinomial": Case("yc ~ x + (1 | g)", family="hurdle_negbinomial",
                               parameterization="centered"),
    "beta": Case("prop ~ x + (1 | g)", family="beta", parameterization="noncentered",
                 data=family_data),
    "bernoulli_probit": Case("yb ~ x + (1 | g)", family="bernoulli",
                             parameterization="noncentered", options={"link": "probit"}),
    "binomial_cloglog_missing": Case("ys_missing | trials(n) ~ x + (1 | g)", family="binomial",
                                     options={"link": "cloglog"}),
    "cumulative": Case("answer ~ x + z + (1 + x | g)", family="cumulative",
                       parameterization="noncentered", data=family_data),
    "cumulative_threads_missing": Case("answer_missing ~ x + (1 | g)", family="cumulative",
                                       options={"threads": 2}, data=family_data),
}


def build(name: str, eight_schools_df: pd.DataFrame | None = None) -> sb.Model:
    """The model of CASES[name]. Each case builds its own data; eight_schools_df (the
    fixture's frame, which tests/test_metric.py and scripts/o1_audit.py pass) is not used."""
    return CASES[name].model()


ALL = sorted(CASES)


@pytest.mark.parametrize("name", ALL)
def test_golden_program(name):
    code = CASES[name].model().stan_code()
    path = GOLDEN / f"{name}.stan"
    if os.environ.get("STANBHM_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(code)
    assert path.exists(), f"no golden file {path.name}; run with STANBHM_UPDATE_GOLDEN=1"
    assert code == path.read_text()


@pytest.mark.parametrize("name", ALL)
def test_golden_program_passes_stanc_and_is_formatted(name, cmdstan, tmp_path):
    src = GOLDEN / f"{name}.stan"
    stanc = str(cmdstan / "bin" / "stanc")
    proc = subprocess.run([stanc, *_flags(name), f"--o={tmp_path / 'm.hpp'}", str(src)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    fmt = subprocess.run([stanc, *_flags(name), "--auto-format", str(src)],
                         capture_output=True, text=True, check=True)
    assert fmt.stdout.rstrip("\n") == src.read_text().rstrip("\n")


def _strip_comments(code: str) -> str:
    return "\n".join(line.split("//", 1)[0] for line in code.splitlines())


def test_hostile_names_never_reach_the_program():
    code = CASES["hostile_names"].model().stan_code()
    statements = _strip_comments(code)
    for raw in ("target += 1e9", "ñame", "1x", "1 x", ";  "):
        assert raw not in statements
    assert not re.search(r"\bfor\b(?! \()", statements)  # only as a loop keyword
    assert "N_for_" in statements
    # the header names the prior key as the user writes it, inside a comment
    assert "\n//   b_x; target += 1e9 ~ normal(0, 2.74)\n" in code


def test_line_breaks_in_names_cannot_escape_comments(tmp_path):
    df = catalogue_data()
    df["evil\ntarget += 1e9;\n//"] = df["x"]
    code = sb.Model("y ~ `evil\ntarget += 1e9;\n//` + (1 | g)", df).stan_code()
    assert "target += 1e9" not in _strip_comments(code)
    header = re.split(r"^(?:functions|data) \{", code, maxsplit=1, flags=re.M)[0]
    assert all(line.startswith("//") for line in header.splitlines())


def test_program_is_deterministic():
    a = CASES["crossed_per_factor"].model().stan_code()
    b = CASES["crossed_per_factor"].model().stan_code()
    assert a == b


def test_catalogue_covers_every_family():
    families = {case.family for case in CASES.values()}
    assert families == set(sb.FAMILIES)
    assert len(ALL) >= 15


# --------------------------------------------------------------------------- invariants

#: stanc --warn-pedantic may say only these about a golden program (docs/testing.md):
#: the unit-scale hint for data-scaled default priors, and the "has no priors" false
#: positive for a parameter whose prior's location or scale involves another parameter
#: (the horseshoe's global scale, per sigma; a centered term's levels, around Intercept).
PEDANTIC_ALLOWED = (
    re.compile(r"Argument \S+ suggests there may be parameters that are not unit scale"),
    re.compile(r"The parameter (hs_global|centered_\w+|r_\w+) has no priors"),
    # a gamma-poisson marginal's normalizing terms depend on sd_g alone, which stanc's
    # heuristic counts as a second prior
    re.compile(r"The parameter sd_\w+ has 2 priors"),
    # negative binomial cells: the histogram's terms depend on phi alone, which stanc
    # likewise counts as a second prior
    re.compile(r"The parameter phi has 2 priors"),
    # stanc 2.39's pedantic mode takes the function handed to reduce_sum for a variable
    re.compile(r"The variable partial_log_lik_lupmf may not have been assigned a value"),
    # the beta family's phi ~ gamma(0.01, 0.01), brms's default, which stanc's pedantic
    # mode warns of as a would-be noninformative prior
    re.compile(r"There is a gamma or inverse-gamma distribution with parameters that are "
               r"equal to each other and set to values less than 1"),
)
DECLARATION = re.compile(
    r"^\s*(int|real|vector|row_vector|matrix|array|corr_matrix|cholesky_factor_corr)\b.*;")


def _flags(name: str) -> list[str]:
    """stanc's flags for the program of CASES[name] as its model compiles it: functions
    defined in C++ compiled with it (a quadrature marginal) are declared without a body."""
    return [f"--{key}" for key in CASES[name].model().program.stanc_options]


def _stanc(cmdstan: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(cmdstan / "bin" / "stanc"), *args], capture_output=True,
                          text=True, check=False)


@pytest.mark.parametrize("name", ALL)
def test_data_block_and_outputs_match_the_parts(name, cmdstan):
    import json

    model = CASES[name].model()
    info = json.loads(_stanc(cmdstan, *_flags(name), "--info",
                             str(GOLDEN / f"{name}.stan")).stdout)
    assert set(info["inputs"]) == set(model.stan_data())
    schema = model.program.schema
    for block in ("parameters", "transformed parameters", "generated quantities"):
        for var, meta in info[block].items():
            if meta["dimensions"]:
                assert len(schema.dims[var]) == meta["dimensions"], var
                for dim in schema.dims[var]:
                    assert dim in schema.coords, (var, dim)


@pytest.mark.parametrize("name", ALL)
def test_pedantic_mode_only_says_what_is_allowed(name, cmdstan, tmp_path):
    proc = _stanc(cmdstan, *_flags(name), "--warn-pedantic", f"--o={tmp_path / 'm.hpp'}",
                  str(GOLDEN / f"{name}.stan"))
    assert proc.returncode == 0, proc.stderr
    code = (GOLDEN / f"{name}.stan").read_text()
    warnings = [w for w in re.split(r"Warning in ", proc.stderr) if w.strip()]
    for warning in warnings:
        text = " ".join(warning.split())
        # stanc counts a prior whose arguments are data as none: a default's location
        # and scale are data (prior_<role>_<parameter>), set from the data
        unseen = re.search(r"The parameter (\w+?)(_signed)? has no priors", text)
        if unseen and re.search(rf"^  {unseen.group(1)} ~ .*\bprior_\w+", code, re.M):
            continue
        assert any(p.search(text) for p in PEDANTIC_ALLOWED), text


@pytest.mark.parametrize("name", ALL)
def test_program_reads_well(name):
    code = (GOLDEN / f"{name}.stan").read_text()
    header, body = code.split("\n", 1)[0], code[code.index("\ndata {"):]
    assert header.startswith("// Generated by stanbhm")
    for line in body.splitlines():
        statement = line.split("//", 1)[0]
        assert len(statement.rstrip()) <= 80, line
        if DECLARATION.match(line):
            assert "//" in line, f"declaration without a comment: {line}"
    decisions = code.split("// decisions:\n", 1)[1].split("\n", 1)
    for line in code.splitlines():
        if line.startswith("//   ") and ("parameterization of" in line or "log_lik:" in line):
            assert not re.search(r"\([^)]*\(", line), line
    assert "eta = rep_vector(0, " not in code  # a model without intercept starts at a term
    assert decisions


# A column called Intercept is refused by the spec (tests/test_spec.py), so it is left out.
HOSTILE_NAMES = sorted((RESERVED - {"Intercept"}) | {
    "Sigma", "L_Sigma", "z_b", "Z_g", "Zc_g", "J_g", "sd_g", "obs_obs", "g_obs", "r", "coef",
    "Cor", "Lcov_g", "b_prior", "c_g", "c", "nc_g", "n_g", "W_g", "rows_g", "start_g",
    "sum_g", "prec_g", "v_g", "m_g"})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column=st.sampled_from(HOSTILE_NAMES), factor=st.sampled_from(HOSTILE_NAMES),
       second=st.sampled_from(HOSTILE_NAMES), centered=st.sampled_from([True, False, None]),
       horseshoe=st.booleans())
def test_reserved_names_as_columns_and_factors_compile(column, factor, second, centered,
                                                      horseshoe, cmdstan, tmp_path_factory):
    """centered=None: "auto", which integrates the (1 | second) effects out."""
    if len({column, factor, second, "yy"}) < 4:
        return
    rng = np.random.default_rng(0)
    n = 30
    data = pd.DataFrame({"yy": rng.normal(size=n), column: rng.normal(size=n),
                         factor: rng.choice(list("abc"), size=n),
                         second: rng.choice(list("pq"), size=n)})
    data.loc[3, "yy"] = np.nan
    model = sb.Model(f"yy ~ `{column}` + (1 + `{column}` | `{factor}`) + (1 | `{second}`)",
                     data, parameterization={True: "centered", False: "noncentered",
                                             None: "auto"}[centered],
                     priors={"b": "horseshoe()"} if horseshoe else None)
    path = tmp_path_factory.mktemp("prop") / "m.stan"
    path.write_text(model.stan_code())
    proc = _stanc(cmdstan, f"--o={path.with_suffix('.hpp')}", str(path))
    assert proc.returncode == 0, proc.stderr


def test_reviewed_defects_stay_fixed():
    """One assertion per reviewed defect that a golden file alone would not explain."""
    corr = CASES["correlated_slopes_centered"].model().stan_code()
    # 5: one vectorized statement for the centered correlated effects, no loop over levels
    assert "  centered_g ~ multi_normal_cholesky([Intercept, b[1]], Lcov_g);\n" in corr
    assert "for (j in" not in corr
    # 9: correlations, a prior-only switch and each level's total coefficients
    assert "  corr_matrix[2] Cor_g = multiply_lower_tri_self_transpose(L_g);" in corr
    assert "  int<lower=0, upper=1> prior_only; // 1: sample the prior alone\n" in corr
    assert "  if (!prior_only) {\n" in corr and "  r_g[ : , 2] -= b[1];\n" in corr
    # 4: X centered in transformed data, the x = 0 intercept reported
    assert "    Xc[ : , k] = X[ : , k] - means_X[k];\n" in corr
    assert "  real b_Intercept = Intercept - dot_product(means_X, b); // intercept at x = 0\n" \
        in corr
    assert "// Intercept: the intercept at the predictors' means, as X is centered;\n" in corr
    # 11: the offset's data comment names its expression; no rep_vector(0, N)
    offset = CASES["poisson_offset"].model().stan_code()
    assert "  vector[N] offs; // offset: log(expo)\n" in offset
    no_intercept = CASES["interaction_colon_no_intercept"].model().stan_code()
    assert "    vector[N] eta = X * b; // linear predictor\n" in no_intercept
    # 11: the header says which priors are half-distributions
    assert "on sd_* and sigma a prior\n// centered at 0 is a half-distribution." in corr


def test_a_sliced_marginal_says_its_constants_are_dropped():
    """The 2 pi terms are not in the slice's density, and its comment says so."""
    code = (GOLDEN / "threads_marginal_missing.stan").read_text()
    function = code.split("functions {")[1].split("data {")[0]
    assert "constants dropped" in function and "constants kept" not in function
    assert "pi()" not in function


def test_templates_write_every_statement_python_only_expressions() -> None:
    """Stan text is made in one layer: the templates write every statement, declaration
    and function; Python hands them expressions (right-hand sides, arguments) and lays
    long lines out (`stanbhm.layout`). So no string the package's Python builds is a
    Stan statement (a sampling statement, an assignment, an increment or a return); a
    string only measured (inside ``len()``) does not count."""
    package = Path(sb.__file__).resolve().parent
    marks = (" ~ ", " += ", " = ", "return ")
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.parent.name in ("bench", "suites", "toolchain", "launcher") or \
                path.name == "layout.py":
            continue
        tree = ast.parse(path.read_text())
        measured = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name) and node.func.id == "len"
                    for arg in node.args}
        for node in ast.walk(tree):
            if id(node) in measured:
                continue
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "{}"
                               for v in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            else:
                continue
            if text.rstrip().endswith((";", ") {")) and any(m in text for m in marks):
                found.append(f"{path.relative_to(package)}:{node.lineno}: {text.strip()[:60]}")
    assert found == []
