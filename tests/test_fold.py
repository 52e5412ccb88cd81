"""The sd of an integrated-out intercept sampled with its sign (`passes.fold`): when it is
chosen, and proof that the folded program has the same density as the log-scale one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from exact import log_density
from rewrite_cases import decision, grouped
from scipy import stats

import stanbhm as sb

SCHOOLS = "y | se(sigma) ~ 1 + (1 | school)"


def test_eight_schools_is_folded_as_cochrans_q_does_not_reject(eight_schools_df) -> None:
    model = sb.Model(SCHOOLS, eight_schools_df)
    y, se = eight_schools_df["y"].to_numpy(), eight_schools_df["sigma"].to_numpy()
    w = 1 / se**2
    q = float(np.sum(w * (y - np.sum(w * y) / np.sum(w)) ** 2))
    assert decision(model, "sd of school") == (
        f"sd of school: folded, sd_school = |sd_school_signed|; Cochran's Q = {q:.3g} on 7 "
        f"df: p = {stats.chi2.sf(q, 7):.2g}, sd = 0 is plausible; the likelihood depends on "
        "it through its square alone")
    code = model.stan_code()
    assert "  real sd_school_signed; // sd_school with a sign: sd_school = " \
           "|sd_school_signed|\n" in code
    assert "  real<lower=0> sd_school = abs(sd_school_signed); // sd of the effects of " \
           "school\n" in code
    assert "  sd_school ~ student_t(3, 0, prior_scale_sd_school);\n" in code
    assert model.stan_data()["prior_scale_sd_school"] == 26.1
    names = [o.name for o in model.plan.groups[0].outputs()]
    assert names[:2] == ["sd_school_signed", "sd_school"]


def test_levels_that_differ_keep_the_log_scale() -> None:
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"g": np.repeat(list("abcdef"), 20)})
    df["y"] = np.repeat(np.arange(6.0), 20) + rng.normal(size=120)
    model = sb.Model("y ~ 1 + (1 | g)", df)
    f, p = stats.f_oneway(*(df["y"][df["g"] == g] for g in "abcdef"))
    assert decision(model, "sd of g") == (
        f"sd of g: log scale; one-way F = {f:.3g} on 5 and 114 df: p = {p:.2g}, the levels "
        "differ, so its posterior stays clear of 0")
    assert "sd_g_signed" not in model.stan_code()


def test_other_requests_and_priors() -> None:
    df = grouped()
    kinked = {"sd_g": "exponential(1)"}
    cases = [
        (sb.Model("y ~ x + (1 | g)", df, rewrites=["marginalize"]),
         "sd of g: log scale; rewrites=['marginalize'] requested"),
        (sb.Model("y ~ x + (1 | g)", df, priors=kinked),
         "sd of g: log scale; its prior exponential(1) is not a normal, student_t or cauchy "
         "centered at 0"),
        (sb.Model("y ~ x + (1 | g)", df, priors=kinked, rewrites=["marginalize", "fold"]),
         "sd of g: folded, sd_g = |sd_g_signed|; 'fold' requested; the likelihood depends on "
         "it through its square alone"),
    ]
    for model, line in cases:
        assert decision(model, "sd of g") == line
    # nothing integrated out: no sd enters the likelihood squared alone
    model = sb.Model("y ~ x + (1 | g)", df, rewrites="none")
    assert all(not d.subject.startswith("sd of") for d in model.plan.decisions)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["eight_schools", "rows_missing"])
def test_folded_density_is_the_log_scale_one_at_either_sign(case, eight_schools_df) -> None:
    """At 20 posterior draws, the folded program at sd_signed = +sd and -sd and the
    log-scale program at sd differ by one constant (jacobian off: both are densities of
    the constrained values)."""
    if case == "eight_schools":
        formula, df, g = SCHOOLS, eight_schools_df, "school"
    else:
        formula, df, g = "y ~ x + (1 | g)", grouped(seed=2, n=90, missing=True), "g"
    plain = sb.Model(formula, df, rewrites=["marginalize"])
    folded = sb.Model(formula, df, rewrites=["marginalize", "fold"])
    assert folded.plan.groups[0].folded and not plain.plan.groups[0].folded
    draws = plain.fit(chains=1, iter_warmup=150, iter_sampling=20, seed=3, advice=False,
                      show_progress=False).cmdstan
    names = [n for n in plain.compile().src_info()["parameters"] if n != f"sd_{g}"]
    gaps, scale = [], 0.0
    for i in range(20):
        point = {n: np.asarray(draws.stan_variable(n)[i]).tolist() for n in names}
        sd = float(draws.stan_variable(f"sd_{g}")[i])
        base = log_density(plain, {**point, f"sd_{g}": sd}, prior_only=False)
        for sign in (1, -1):
            gaps.append(log_density(folded, {**point, f"sd_{g}_signed": sign * sd},
                                    prior_only=False) - base)
        scale = max(scale, abs(base))
    assert max(gaps) - min(gaps) < 1e-8 * scale, (gaps, scale)
