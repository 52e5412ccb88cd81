"""The marginalization pass (`passes.marginalize`): which group term is integrated out
under "auto", a list or dict of rewrites, the requests refused and their messages, and
what the program header then says of the effects (drawn back or not, `passes.outputs`)
and of log_lik; checked on the plan's decisions, the data and the generated text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rewrite_cases import count_data, decision, grouped

import stanbhm as sb
from stanbhm.datasets import election, election_formula
from stanbhm.errors import PlanError

# ------------------------------------------------------------------------- the request


def test_auto_integrates_out_the_intercept_with_most_levels() -> None:
    model = sb.Model("y ~ x + (1 | g) + (1 | h)", grouped())
    assert decision(model, "marginalization") == (
        "marginalization: effects of g integrated out; gaussian rows with a group intercept: "
        "exact normal-normal marginalization; the level effects are drawn back in generated "
        "quantities; one factor at most, so h keep their effects")
    assert [g.marginalized for g in model.plan.groups] == [True, False]
    assert decision(model, "parameterization of g") == (
        "parameterization of g: none; its level effects are integrated out")
    data = model.stan_data()
    assert list(data["n_g"]) == list(np.bincount(data["J_g"] - 1))
    rows = data["rows_g"] - 1
    assert list(np.diff(data["start_g"])) == list(data["n_g"])
    assert (np.diff(data["J_g"][rows]) >= 0).all()  # rows listed level by level


def test_skipped_marginalization_says_why() -> None:
    df = grouped()
    cases = {
        ("y ~ x", "gaussian", "auto"): "no group term",
        ("y ~ x + (1 | g)", "gaussian", "noncentered"):
            "g: its parameterization was requested; pass rewrites={'g': 'marginalize'} to "
            "integrate it out",
        ("y ~ x + (1 + x | g)", "gaussian", "auto"):
            "g: it has slopes; only a group intercept, (1 | factor), is integrated out",
        ("yc ~ x + (1 | g)", "negbinomial", "auto"):
            "the negbinomial family has no exact normal marginal; group intercepts are "
            "integrated out of gaussian outcomes only; g: 7 levels: 'auto' integrates a "
            "non-gaussian intercept out by adaptive quadrature (an approximation) from 6000 "
            "levels, where it costs less than sampling them; name it, rewrites={'g': "
            "'quadrature'}, to integrate it out",
    }
    df["yc"] = np.random.default_rng(0).poisson(2, size=len(df))
    for (formula, family, param), reason in cases.items():
        model = sb.Model(formula, df, family=family, parameterization=param)
        assert decision(model, "marginalization") == f"marginalization: not applied; {reason}"
    none = sb.Model("y ~ x + (1 | g)", df, rewrites="none")
    assert decision(none, "marginalization") == (
        "marginalization: not applied; rewrites='none' requested")
    assert "z_g" in none.stan_code() or "centered_g ~" in none.stan_code()


def test_the_header_says_what_log_lik_holds_after_a_rewrite(eight_schools_df) -> None:
    marginal = sb.Model("y | se(sigma) ~ 1 + (1 | school)", eight_schools_df)
    assert decision(marginal, "log_lik") == (
        "log_lik: on; 8 observed rows, at most 5000; one value per row given the drawn "
        "effects of school, as in the plain program")
    cells = sb.Model("yb ~ C(a) + (1 | g)", count_data(), family="bernoulli")
    assert decision(cells, "log_lik") == (
        "log_lik: on; 400 observed rows, at most 5000; one value per row, from the rows, as "
        "in the plain program")
    plain = sb.Model("y ~ x", grouped())
    assert decision(plain, "log_lik") == "log_lik: on; 60 observed rows, at most 5000"


def test_a_named_term_is_integrated_out_even_with_a_parameterization() -> None:
    model = sb.Model("y ~ x + (1 | g) + (1 | h)", grouped(), parameterization="centered",
                     rewrites={"h": "marginalize"})
    assert [g.term_name for g in model.plan.groups if g.marginalized] == ["h"]


@pytest.mark.parametrize(("rewrites", "error", "message"), [
    ("all", PlanError, "rewrites='all': use 'auto', 'none', a list of rewrites (marginalize, "
     "fold, sufficient_statistics, collapse, joint_statistics, block_products) or a dict of "
     "group terms"),
    (["fast"], PlanError, "rewrites: unknown rewrite 'fast'; choose from marginalize, "
     "fold, sufficient_statistics, collapse, joint_statistics, block_products"),
    ({"k": "marginalize"}, PlanError, "rewrites given for 'k', which is not a group term of "
     "this model (group terms: g, g_x)"),
    ({"g": "centered"}, PlanError, "rewrites['g'] = 'centered' is not one of auto, "
     "marginalize, gamma_poisson, beta_binomial, laplace, quadrature, none"),
    ({"g_x": "marginalize"}, PlanError, "rewrites['g_x'] = 'marginalize': it has slopes; only "
     "a group intercept, (1 | factor), is integrated out"),
    ({"g": "laplace"}, PlanError, "rewrites['g'] = 'laplace': a gaussian outcome's effects "
     "are integrated out exactly; use 'marginalize'"),
])
def test_bad_requests_are_refused_by_name(rewrites, error, message) -> None:
    with pytest.raises(error) as info:
        sb.Model("y ~ x + (1 | g) + (x - 1 | g)", grouped(), rewrites=rewrites)
    assert str(info.value) == message


def test_only_gaussian_outcomes_are_integrated_over() -> None:
    df = grouped()
    df["yb"] = (df["y"] > 1).astype(int)
    with pytest.raises(PlanError, match=r"^rewrites\['g'\] = 'marginalize': the bernoulli "):
        sb.Model("yb ~ x + (1 | g)", df, family="bernoulli", rewrites={"g": "marginalize"})
    with pytest.raises(PlanError, match="only one group term can be integrated out, and g, h"):
        sb.Model("y ~ (1 | g) + (1 | h)", df, rewrites={"g": "marginalize", "h": "marginalize"})


def test_a_list_without_marginalize_keeps_every_effect() -> None:
    model = sb.Model("y ~ x + (1 | g)", grouped(), rewrites=[])
    assert not any(g.marginalized for g in model.plan.groups)


# ------------------------------------------------ effects integrated out, drawn or not


def test_effects_of_many_levels_are_not_drawn_unless_asked() -> None:
    df, _ = election(seed=2, rows=15_000, states=5, covariates=2)
    df["respondent"] = (np.arange(len(df)) // 3).astype(str)  # 5000, 3 rows each
    df["state"] = df.groupby("respondent")["state"].transform("first")  # nested
    big = pd.concat([df, df.assign(respondent=df["respondent"] + "b")], ignore_index=True)
    quiet = {"log_lik": False, "y_rep": False}
    model = sb.Model(election_formula(2), big, **quiet)
    assert decision(model, "effects of respondent") == (
        "effects of respondent: not drawn; 10000 levels, over 5000, and neither log_lik nor "
        "y_rep needs them; pass effects=True to draw them")
    code = model.stan_code()
    assert "r_respondent" not in code and "coef_respondent" not in code
    assert not [name for name in model.program.schema.dims if "respondent" in name]
    assert "real<lower=0> sd_respondent" in code  # declared, or folded (passes.fold)
    from stanbhm.predict import predict_draws

    with pytest.raises(ValueError, match=r"this fit has no draws of the effects of respondent: "
                       r"they were integrated out and not drawn back \(see the program "
                       r"header\); refit with effects=True to predict"):
        predict_draws(model, None, big.head(3), "sample", None)
    assert decision(sb.Model(election_formula(2), df, **quiet), "effects of respondent") == (
        "effects of respondent: drawn back; 5000 levels, at most 5000")
    assert decision(sb.Model(election_formula(2), big, effects=True, **quiet),
                    "effects of respondent") == (
        "effects of respondent: drawn back; effects=True requested")
    assert decision(sb.Model(election_formula(2), big, log_lik=True, y_rep=False),
                    "effects of respondent") == (
        "effects of respondent: drawn back; log_lik needs them")
    with pytest.raises(PlanError, match=r"effects=False: log_lik and y_rep are computed given "
                       r"the drawn effects of respondent; pass log_lik=False, y_rep=False too"):
        sb.Model(election_formula(2), df, effects=False, log_lik=True, y_rep=True)
    with pytest.raises(PlanError, match=r"effects='some': use True, False or 'auto'"):
        sb.Model(election_formula(2), df, effects="some")
    assert "//   effects of" not in sb.Model("y ~ x + (1 | g)", grouped(seed=1, n=40),
                                        rewrites="none").stan_code()
