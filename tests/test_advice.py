"""Diagnostics read as advice: exact messages from given numbers, the term a funnel
points at, and the warnings a real funnel raises after sampling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import stanbhm as sb
from stanbhm.advice import SamplingWarning, TermState, advice, funnel_term
from stanbhm.datasets import eight_schools

HEALTHY = {"divergences": 0, "treedepth_hits": 0, "ebfmi_min": 0.9, "rhat_max": 1.002,
           "ess_bulk_min": 1500.0, "ess_tail_min": 1200.0}
WORST = {"rhat": "sd_school", "bulk": "sd_school", "tail": "coef_school[A]"}
SCHOOL = TermState("(1 | school)", "school", "sd_school", "centered")


def test_a_healthy_fit_gets_no_advice() -> None:
    assert advice(HEALTHY, 4, 4000, 10, np.array([0.9, 1.0, 0.8, 1.1]), WORST, None) == []


def test_each_problem_gets_one_message_with_what_to_try() -> None:
    numbers = HEALTHY | {"divergences": 12, "treedepth_hits": 40, "rhat_max": 1.05,
                         "ess_bulk_min": 180.0, "ess_tail_min": 350.0}
    got = advice(numbers, 4, 4000, 10, np.array([0.9, 0.25, 0.8, 0.2]), WORST, SCHOOL)
    assert got == [
        "12 divergences (0.3% of 4000 draws): they sit at small values of sd_school: term "
        "(1 | school) is centered and its data are weak; try parameterization={'school': "
        "'noncentered'} or rewrites='auto'",
        "40 draws (1.0%) hit the maximum tree depth 10: the posterior is strongly correlated "
        "or badly scaled; try metric='dense_e' or max_treedepth=12",
        "E-BFMI below 0.3 in chain 2, 4 (lowest 0.20): the sampler explores the energy "
        "poorly, as in a funnel; try a non-centered parameterization for terms with weakly "
        "informed levels",
        "R-hat up to 1.050 (sd_school), above 1.01: the chains disagree; run more draws "
        "(iter_sampling) and check for several modes",
        "ESS bulk as low as 180 (sd_school), under 100 per chain: its mean is imprecise; run "
        "more draws (iter_sampling)",
        "ESS tail as low as 350 (coef_school[A]), under 100 per chain: its quantiles are "
        "imprecise; run more draws (iter_sampling)",
    ]


def test_one_divergence_in_many_draws_reads_right() -> None:
    got = advice(HEALTHY | {"divergences": 1}, 4, 4000, 10, np.ones(4), WORST, None)
    assert got == ["1 divergence (0.03% of 4000 draws): try adapt_delta=0.95 "
                   "(fit(adapt_delta=0.95))"]


def test_divergences_without_a_term_or_at_a_noncentered_one() -> None:
    numbers = HEALTHY | {"divergences": 3}
    ebfmi = np.ones(2)
    assert advice(numbers, 2, 2000, 10, ebfmi, WORST, None) == [
        "3 divergences (0.1% of 2000 draws): try adapt_delta=0.95 (fit(adapt_delta=0.95))"]
    nc = TermState("(1 + x | g)", "g", "sd_g", "non-centered")
    assert advice(numbers, 2, 2000, 10, ebfmi, WORST, nc) == [
        "3 divergences (0.1% of 2000 draws): they sit at small values of sd_g: term "
        "(1 + x | g) is non-centered; try adapt_delta=0.95, or parameterization={'g': "
        "'centered'} if its levels are well informed"]


def test_the_funnel_is_the_term_whose_sd_shrinks_where_it_diverges() -> None:
    rng = np.random.default_rng(0)
    divergent = np.zeros(400, dtype=bool)
    divergent[:20] = True
    steady = rng.normal(size=400)
    neck = rng.normal(size=400) - 3 * divergent
    assert funnel_term({"a": steady, "b": neck}, divergent) == "b"
    assert funnel_term({"a": steady}, np.zeros(400, dtype=bool)) is None
    assert funnel_term({"a": np.zeros(400) + 3 * divergent}, divergent) is None


@pytest.mark.slow
def test_the_centered_funnel_warns_and_names_its_term() -> None:
    model = sb.Model("y | se(sigma) ~ 1 + (1 | school)", eight_schools(),
                     parameterization="centered", rewrites="none")
    with pytest.warns(SamplingWarning) as caught:
        fit = model.fit(chains=4, seed=11, show_progress=False)
    messages = [str(w.message) for w in caught]
    assert fit.diagnostics()["divergences"] > 0
    assert any(m.startswith(f"{fit.diagnostics()['divergences']} divergence") and
               "term (1 | school) is centered" in m for m in messages), messages
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplingWarning)
        model.fit(chains=4, seed=11, show_progress=False, advice=False)
