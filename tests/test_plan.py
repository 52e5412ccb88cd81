"""The plan stage and its passes, tested without compiling anything."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
from stanbhm.errors import PlanError, StanbhmError
from stanbhm.passes import Decision, OutputPass, Parameterize, run_passes
from stanbhm.passes.outputs import MAX_ROWS
from stanbhm.planner import RESERVED, Options, make_plan
from stanbhm.spec import build_spec


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 60
    return pd.DataFrame({
        "y": rng.normal(size=n), "x": rng.normal(size=n), "age": rng.normal(40, 9, size=n),
        "state": rng.choice(list("abcd"), size=n), "g": rng.choice(list("pqr"), size=n),
    })


def test_errors_share_one_base(df) -> None:
    with pytest.raises(PlanError) as bad:
        sb.Model("y ~ x + (1 | g)", df, parameterization=1.5)
    assert isinstance(bad.value, ValueError) and isinstance(bad.value, StanbhmError)
    assert str(bad.value) == "parameterization 1.5: a fraction of centering must be in [0, 1]"
    assert issubclass(sb.SpecError, StanbhmError) and issubclass(sb.FormulaError, StanbhmError)
    assert issubclass(sb.toolchain.ToolchainError, StanbhmError)


@pytest.mark.parametrize(("options", "kind", "message"), [
    ({"threads": 0}, PlanError, "threads=0: use None or a positive number of threads"),
    ({"threads": 2, "grainsize": 0}, PlanError,
     "grainsize=0: use None (the default rule) or a positive number of rows"),
    ({"grainsize": 100}, PlanError, "grainsize=100 sets the slices of reduce_sum, which runs with "
     "threads > 1 only; pass threads too"),
    ({"glm": "always"}, PlanError, "glm='always': use 'auto' (Stan's GLM kernels wherever the "
     "likelihood has their form) or 'never'"),
    ({"opencl": "tpu"}, PlanError, "opencl='tpu': use False, True (a GPU if there is one), 'gpu', "
     "'cpu', 'auto' (a GPU where it pays) or (platform, device) as OpenCL numbers them"),
    ({"opencl": (0, -1)}, PlanError, "opencl=(0, -1): use False, True (a GPU if there is one), "
     "'gpu', 'cpu', 'auto' (a GPU where it pays) or (platform, device) as OpenCL numbers "
     "them"),
    ({"log_lik": "yes"}, PlanError, "log_lik='yes': use True, False, 'auto' or 'marginal'"),
    ({"parameterization": "center"}, PlanError,
     "parameterization 'center' is not one of centered, noncentered, auto"),
])
def test_options_are_validated_in_the_plan(df, options, kind, message) -> None:
    spec = build_spec("y ~ x + (1 | g)", df)
    with pytest.raises(kind) as err:
        make_plan(spec, Options(**options))
    assert str(err.value) == message


def test_parameterization_keys_are_term_names(df) -> None:
    formula = "y ~ age + (1 | state) + (age - 1 | state)"
    plan = sb.Model(formula, df, parameterization={"state_age": "centered"}).plan
    assert [(g.term_name, g.centered) for g in plan.groups] == [("state", False),
                                                                ("state_age", True)]
    with pytest.raises(PlanError) as err:
        sb.Model(formula, df, parameterization={"state_2": "centered"})
    assert str(err.value) == ("parameterization given for 'state_2', which is not a group term "
                              "of this model (group terms: state, state_age)")


def test_marginalization_then_parameterization_come_first_with_reasons(df) -> None:
    plan = sb.Model("y ~ x + (1 | g) + (1 | state)", df, parameterization={"g": "centered"},
                    rewrites={"state": "none"}).plan
    first, second, third = (str(d) for d in plan.decisions[:3])
    assert first == ("marginalization: not applied; g: its parameterization was requested; "
                     "pass rewrites={'g': 'marginalize'} to integrate it out; state: "
                     "rewrites='none' requested for it")
    assert second == "parameterization of g: centered; parameterization['g']=\"centered\" requested"
    assert third == ('parameterization of state: non-centered; "auto": every level is '
                     "weakly informed")
    table = plan.decisions[2].table
    assert table[0] == "effect     tau ~  data precision per level  weights"
    assert table[1].startswith("Intercept  0      ") and table[1].endswith("0.00 to 0.00")


def test_a_pass_is_testable_on_its_own(df) -> None:
    spec = build_spec("y ~ x + (1 | g)", df)
    plan = make_plan(spec, Options(rewrites="none"))
    centered = Parameterize("g", "centered")
    decision, after = centered.decide(spec, plan)
    assert decision == Decision(
        "parameterization of g", "centered", 'parameterization="centered" requested')
    assert after.groups[0].centered
    assert not plan.groups[0].centered  # plans are frozen: the pass built a new one
    assert centered.decide(spec, plan)[0] == decision  # asked again: the same answer


def test_skipped_decisions_are_recorded_too(df) -> None:
    spec = build_spec("y ~ x", df)
    plan = make_plan(spec, Options(log_lik=False))
    assert not plan.likelihood.log_lik and plan.likelihood.y_rep
    assert "log_lik: off; log_lik=False requested" in [str(d) for d in plan.decisions]
    again = run_passes(spec, plan, [OutputPass("log_lik", True)])
    assert again.likelihood.log_lik and str(again.decisions[-1]) == (
        "log_lik: on; log_lik=True requested")


def test_per_row_outputs_are_off_by_default_for_large_data() -> None:
    n = MAX_ROWS + 1
    big = pd.DataFrame({"y": np.arange(n, dtype=float), "x": np.ones(n) * np.arange(n) % 7})
    model = sb.Model("y ~ x", big)
    text = model.stan_code()
    gq = text.split("generated quantities {")[1]
    assert "log_lik" not in gq and "y_rep" not in gq
    assert f"//   log_lik: off; {n} observed rows, over {MAX_ROWS}; pass log_lik=True to " \
           "write it\n" in text
    assert f"//   y_rep: off; {n} rows, over {MAX_ROWS}; pass y_rep=True to write it\n" in text
    assert "generated quantities" in text  # b_Intercept is still reported
    gq = sb.Model("y ~ x", big, log_lik=True).stan_code().split("generated quantities {")[1]
    assert "vector[N] log_lik;" in gq and "y_rep" not in gq


@pytest.mark.parametrize(("factor", "ident"), [
    ("obs", "obs_f"), ("Sigma", "Sigma"), ("b", "b"), ("eta", "eta"), ("X", "X"),
    ("Lcov", "Lcov"),
])
def test_group_names_never_clash_with_template_names(df, factor, ident) -> None:
    data = df.assign(y=df["y"].where(np.arange(len(df)) != 3), **{factor: df["g"]})
    plan = sb.Model(f"y ~ x + (1 + x | {factor})", data, priors={"b": "horseshoe()"},
                    parameterization="centered").plan
    assert plan.groups[0].ident == ident
    names = plan.groups[0].derived_names(ident)
    assert not set(names) & RESERVED
    if ident != factor:
        assert any(f"{factor} is written {ident} in the program" in n for n in plan.notes)


def test_every_renamed_term_is_in_the_header(df) -> None:
    """A factor called like a Stan keyword or like a name the program uses gets another
    identifier, and the header says which (obs_f: not obs_2, which reads as one more
    count beside N_obs)."""
    data = df.assign(obs=df["g"], real=df["g"])
    code = sb.Model("y ~ x + (1 | obs) + (1 | real)", data.assign(
        y=df["y"].where(np.arange(len(df)) != 3))).stan_code()
    assert ("//   obs is written obs_f in the program, clear of the names the program "
            "itself uses\n") in code
    assert "//   real is written real_ in the program, a Stan identifier\n" in code
    assert "N_obs_f" in code and "N_obs_2" not in code


def test_data_comes_from_the_parts(df) -> None:
    plan = sb.Model("y ~ x + offset(age) + (1 + x | g)", df, rewrites="none").plan
    assert list(plan.data()) == ["N", "y", "prior_only", "K", "X", "offs", "N_g", "J_g",
                                 "N_new", "new_levels_sampled", "X_new", "J_g_new", "N_g_new",
                                 "Z_g_new", "offs_new",  # none while fitting
                                 "prior_location_Intercept", "prior_scale_Intercept",
                                 "prior_scale_b", "prior_scale_sd_g", "prior_scale_sigma"]
    assert plan.eta_terms(plan.fit_rows) == ("Intercept + Xc * b", "r_g[J_g, 1]",
                                             "r_g[J_g, 2] .* Z_g[ : , 2]", "offs")
    assert plan.eta_terms(plan.fit_rows, design=False) == (
        "Intercept + r_g[J_g, 1]", "r_g[J_g, 2] .* Z_g[ : , 2]", "offs")
    assert plan.fixed.design(plan.fit_rows) == ("Xc", "b")
    assert plan.fit_rows.n == plan.all_rows.n == "N"


def test_missing_rows_are_fitted_from_transformed_data(df) -> None:
    data = df.assign(y=df["y"].where(np.arange(len(df)) % 5 != 0))
    model = sb.Model("y ~ x + (1 | g)", data, parameterization="noncentered", rewrites="none")
    plan = model.plan
    assert plan.missing and plan.fit_rows.n == "N_obs" and plan.all_rows.n == "N"
    text = model.stan_code()
    model_block = text.split("model {")[1].split("generated quantities")[0]
    assert "vector[N_obs] eta = Intercept + r_g[J_g_obs]; // linear predictor less X * b" \
        in model_block
    assert "y ~ normal_id_glm(Xc, eta, b, sigma);" in model_block
    assert "[obs]" not in model_block
    assert "  array[N_obs] int J_g_obs = J_g[obs]; // levels of the observed rows\n" in text
