"""The GLM kernels: when the likelihood uses them, what it says when it does not, and
that the program's log density is the plain one's, a constant apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from exact import assert_constant_gap
from rewrite_cases import count_data

import stanbhm as sb


def rows(n: int = 300, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(list("abcdef"), size=n)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    expo = rng.choice([1.0, 2.0, 4.0], size=n)
    effect = dict(zip("abcdef", rng.normal(0, 0.5, size=6), strict=True))
    eta = 0.2 + 0.5 * x - 0.3 * z + np.array([effect[k] for k in g])
    df = pd.DataFrame({"g": g, "x": x, "z": z, "expo": expo, "t": rng.integers(1, 6, size=n)})
    df["y"] = eta + rng.normal(size=n)
    df["y_missing"] = df["y"].where(np.arange(n) % 7 != 3)
    df["se"] = rng.uniform(0.5, 1.5, size=n)
    df["yb"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    df["ys"] = rng.binomial(df["t"], 1 / (1 + np.exp(-eta)))
    df["yc"] = rng.poisson(np.exp(eta) * expo)
    return df


def decision(model: sb.Model) -> str:
    return next(str(d) for d in model.plan.decisions if d.subject == "glm")


def model_block(model: sb.Model) -> str:
    return model.stan_code().split("\nmodel {")[1].split("\ngenerated quantities")[0]


# formula, family, parameterization, the model block's likelihood lines
CASES = {
    "gaussian_missing": (
        "y_missing ~ x + z + (1 + x | g)", "gaussian", "noncentered",
        "    vector[N_obs] eta = Intercept + r_g[J_g_obs, 1]; // linear predictor less X * b\n"
        "    eta += r_g[J_g_obs, 2] .* Z_g_obs[ : , 2];\n"
        "    y ~ normal_id_glm(Xc, eta, b, sigma);\n"),
    "gaussian_se": (
        "y | se(se) ~ x + z + (1 | g)", "gaussian", "noncentered",
        "    vector[N] eta = Intercept + r_g[J_g]; // linear predictor less X * b\n"
        "    y ~ normal_id_glm(Xc, eta, b, se);\n"),
    "bernoulli_centered": (
        "yb ~ x + z + (1 | g)", "bernoulli", "centered",
        "    vector[N] eta = centered_g[J_g]; // linear predictor less X * b\n"
        "    y ~ bernoulli_logit_glm(Xc, eta, b);\n"),
    "binomial": (
        "ys | trials(t) ~ x + z + (1 | g)", "binomial", "noncentered",
        "    vector[N] eta = Intercept + r_g[J_g]; // linear predictor less X * b\n"
        "    y ~ binomial_logit_glm(trials, Xc, eta, b);\n"),
    "poisson_offset": (
        "yc ~ x + z + offset(log(expo)) + (1 | g)", "poisson", "noncentered",
        "    vector[N] eta = Intercept + r_g[J_g]; // linear predictor less X * b\n"
        "    eta += offs;\n"
        "    y ~ poisson_log_glm(Xc, eta, b);\n"),
    "negbinomial_no_groups": (
        "yc ~ x + z", "negbinomial", "auto",
        "    y ~ neg_binomial_2_log_glm(Xc, Intercept, b, phi);\n"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_likelihood_uses_the_glm_kernel(case) -> None:
    formula, family, param, lines = CASES[case]
    model = sb.Model(formula, rows(), family=family, parameterization=param, rewrites="none")
    assert model.plan.likelihood.glm
    assert f"  if (!prior_only) {{\n{lines}  }}\n" in model_block(model)
    assert decision(model).startswith(f"glm: {model.plan.family.glm}; the likelihood is Xc * b "
                                      "plus a per-row intercept")


def test_the_header_says_why_a_kernel_is_not_used() -> None:
    df = rows()
    skipped = {
        ("y ~ x + (1 | g)", "gaussian", "auto", "never"): "glm='never' requested",
        ("y ~ x + (1 | g)", "student_t", "none", "auto"):
            "the student_t family has no GLM kernel in Stan",
        ("y ~ x + (1 + x | g)", "gaussian", "auto", "auto"):
            "the likelihood is rewritten (statistics), not one term per row",
        ("yb ~ 1 + (1 | g)", "bernoulli", "none", "auto"):
            "no population coefficient is left in the likelihood (no X * b)",
    }
    for (formula, family, rewrites, glm), reason in skipped.items():
        model = sb.Model(formula, df, family=family, rewrites=rewrites, glm=glm,
                         parameterization="centered")
        assert decision(model) == f"glm: not used; {reason}"
        assert not model.plan.likelihood.glm
        assert "_glm(" not in model.stan_code()
    named = sb.Model("y ~ x + (1 | g)", df, rewrites="none", parameterization="noncentered")
    assert decision(named) == ("glm: normal_id_glm; the likelihood is Xc * b plus a per-row "
                               "intercept (the linear predictor without X * b)")
    plain = sb.Model("y ~ x", df)
    assert decision(plain) == ("glm: normal_id_glm; the likelihood is Xc * b plus a per-row "
                               "intercept (Intercept)")


def test_a_centered_term_that_took_the_slope_leaves_the_other_columns() -> None:
    model = sb.Model("y ~ x + z + (1 + x | g)", rows(), parameterization="centered",
                     rewrites="none")
    assert "    y ~ normal_id_glm(Xc_free, eta, b[{2}], sigma);\n" in model_block(model)


#: Where the exactness check takes another file's model: the kernel program is then the
#: plain program tests/test_collapse.py compares its cells with (the same offset, by the
#: exposure's log, in the kernel's per-row intercept; a centered term, with missing rows
#: and no intercept: X is not centered). A centered intercept taking Intercept over in
#: the kernel's per-row intercept is checked against brms's form in tests/test_parts.py.
EXACTNESS = {
    "poisson_offset": ("yc ~ C(a) + offset(log(expo)) + (1 + c | g)", "poisson", "centered",
                       count_data),
    "bernoulli_centered": ("ybm ~ 0 + C(a) + c + (c - 1 | g)", "bernoulli", "centered",
                           count_data),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.log_density
def test_the_kernel_keeps_the_log_density(case) -> None:
    formula, family, param, _ = CASES[case]
    df = rows()
    if case in EXACTNESS:
        formula, family, param, data = EXACTNESS[case]
        df = data()
    plain = sb.Model(formula, df, family=family, parameterization=param, rewrites="none",
                     glm="never")
    kernel = sb.Model(formula, df, family=family, parameterization=param, rewrites="none")
    assert kernel.plan.likelihood.glm and not plain.plan.likelihood.glm
    assert_constant_gap(plain, kernel)
