"""Parameterization: centered, non-centered, half-centered and "auto", side by side.

For each case and each choice, one fit of 4 chains with a fixed seed, rewrites off (they
would integrate some of these terms out; see the rewrites suite): divergences, leapfrog
steps, min ESS bulk of the hyper-parameters (everything but level effects), that ESS per
second of CmdStan's sampler time, the largest R-hat among them, and what "auto" chose.
The second table gives, per case, auto's min ESS/s against the better of centered and
non-centered, and the time auto took to decide against the sampler time.

Two cases carry the peers suite's priors (each sd ~ half-normal(0, 2)), because auto once
seemed to follow the sd's prior: it chose non-centered in the peers suite's 30-group
regression and centered in this suite's. The rule reads the data alone; the two runs had
different data. ``regression_30_peer_priors`` is this suite's regression (every level
well informed) under the peers' priors, so its rows sit beside ``regression_30``'s;
``peers_regression_30`` is the peers suite's data, formula and priors, where the slope's
median level weight is about 1/2, the rule's boundary for a multi-effect term. That term
has two effects, which half-centering does not take, so it runs centered, non-centered
and auto.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ...datasets import eight_schools, wide_regression
from ...model import Model
from ..harness import Ratio, Run
from ..measure import fit_figures
from . import peers

CHOICES = ("centered", "noncentered", 0.5, "auto")
DEFAULTS: dict[str, object] = {
    "cases": "eight_schools,intercept_20x500,mixed_5x1000_50x3,regression_30,"
             "regression_30_peer_priors,peers_regression_30,bernoulli_40,horseshoe_100x500",
    "draws": 1000}
QUICK: dict[str, object] = {"cases": "eight_schools,regression_30", "draws": 300}


def varying_intercept(rng, sizes, tau=0.5, sigma=1.0) -> pd.DataFrame:
    g = np.repeat(np.arange(len(sizes)), sizes)
    u = rng.normal(0, tau, size=len(sizes))
    x = rng.normal(size=len(g))
    y = 1.0 + 0.3 * x + u[g] + rng.normal(0, sigma, size=len(g))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k:02d}" for k in g]})


def regression_30(rng) -> pd.DataFrame:
    """30 groups of 20-50 rows whose intercepts and slopes the data pin down well."""
    sizes = rng.integers(20, 51, size=30)
    g = np.repeat(np.arange(30), sizes)
    a = rng.normal(0, 1.0, size=30)
    b = rng.normal(0, 0.5, size=30)
    x = rng.normal(size=len(g))
    y = 1.0 + a[g] + (0.5 + b[g]) * x + rng.normal(0, 0.2, size=len(g))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k:02d}" for k in g]})


def bernoulli_40(rng) -> pd.DataFrame:
    sizes = rng.integers(5, 201, size=40)
    g = np.repeat(np.arange(40), sizes)
    u = rng.normal(0, 0.8, size=40)
    x = rng.normal(size=len(g))
    p = 1 / (1 + np.exp(-(-0.3 + 0.6 * x + u[g])))
    return pd.DataFrame({"y": rng.binomial(1, p), "x": x, "g": [f"g{k:02d}" for k in g]})


def choices(case: dict) -> tuple:
    """The choices a case is fitted with: all of `CHOICES` unless it names fewer (a
    multi-effect term refuses half-centering; the horseshoe case times auto alone)."""
    return case.get("choices", CHOICES)


def cases() -> dict[str, dict]:
    rng = np.random.default_rng(20261123)
    hs, _ = wide_regression(rng)
    # drawn in this order whatever cases run, so that each case's data stay the same
    intercept_20 = varying_intercept(rng, [500] * 20)
    mixed = varying_intercept(rng, [1000] * 5 + [3] * 50)
    regression = regression_30(rng)
    bernoulli = bernoulli_40(rng)
    peer = peers.case_data("regression_30")
    return {
        "eight_schools": {"formula": "y | se(sigma) ~ 1 + (1 | school)", "data": eight_schools()},
        "intercept_20x500": {"formula": "y ~ x + (1 | g)", "data": intercept_20},
        "mixed_5x1000_50x3": {"formula": "y ~ x + (1 | g)", "data": mixed},
        # (1 + x || g) written as two single-effect terms, the same model, so that the
        # half-centered choice applies to each.
        "regression_30": {"formula": "y ~ 1 + x + (1 | g) + (0 + x | g)", "data": regression},
        "regression_30_peer_priors": {"formula": "y ~ 1 + x + (1 | g) + (0 + x | g)",
                                      "data": regression, "priors": peers.PRIORS},
        "peers_regression_30": {"formula": peer["formula"], "data": peer["df"],
                                "priors": peer["priors"],
                                "choices": ("centered", "noncentered", "auto")},
        "bernoulli_40": {"formula": "y ~ x + (1 | g)", "data": bernoulli,
                         "family": "bernoulli"},
        "horseshoe_100x500": {"formula": "y ~ " + " + ".join(hs.columns[:-1]), "data": hs,
                              "priors": {"b": "horseshoe(df=1, scale_global=0.0025)"},
                              "fit": {"adapt_delta": 0.95}, "choices": ("auto",)},
    }


def run(bench: Run, options: dict[str, object]) -> None:
    wanted = str(options["cases"]).split(",")
    draws = int(options["draws"])
    every = cases()
    unknown = [c for c in wanted if c not in every]
    if unknown:
        raise ValueError(f"unknown parameterization case(s) {', '.join(unknown)}; "
                         f"known: {', '.join(every)}")
    fits = bench.table(
        "fits", f"Each case and choice, 4 chains x ({draws} warmup + {draws} draws)",
        {"case": "case", "program": "choice", "divergences": "divergences",
         "leapfrog": "leapfrog steps", "ess_bulk": "min ESS bulk", "sampler_s": "sampler s",
         "ess_per_s": "min ESS/s", "rhat_max": "R-hat max", "chose": "auto chose"},
        ratios=[Ratio("ESS/s vs non-centered", "ess_per_s", "noncentered", group="case")])
    summary = bench.table(
        "auto", "auto against the better of centered and non-centered",
        {"case": "case", "auto_ess_per_s": "auto ESS/s", "program": "best fixed choice",
         "ess_per_s": "its ESS/s", "decide_s": "auto's decision s",
         "decide_share": "share of sampler time"},
        ratios=[Ratio("auto / best", "auto_ess_per_s", over="ess_per_s")])
    for name in wanted:
        case = every[name]
        found = {}
        for choice in choices(case):
            start = time.perf_counter()
            model = Model(case["formula"], case["data"], family=case.get("family", "gaussian"),
                          priors=case.get("priors"), parameterization=choice,
                          log_lik=False, y_rep=False, rewrites="none")
            decide = time.perf_counter() - start
            figures = fit_figures(model, chains=4, parallel_chains=4, seed=bench.seed,
                                  iter_warmup=draws, iter_sampling=draws, **case.get("fit", {}))
            chose = "; ".join(f"{d.subject.removeprefix('parameterization of ')}: {d.choice}"
                              for d in model.plan.decisions
                              if d.subject.startswith("parameterization"))
            found[str(choice)] = fits.add(case=name, program=str(choice), decide_s=decide,
                                          chose=chose if choice == "auto" else "", **figures)
        auto = found["auto"]
        pair = [found[c] for c in ("centered", "noncentered") if c in found] or [auto]
        best = max(pair, key=lambda r: r["ess_per_s"])
        summary.add(case=name, auto_ess_per_s=auto["ess_per_s"], program=best["program"],
                    ess_per_s=best["ess_per_s"], decide_s=auto["decide_s"],
                    decide_share=auto["decide_s"] / auto["sampler_s"])
