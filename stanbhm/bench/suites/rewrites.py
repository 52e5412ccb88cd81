"""Rewrites: the exact rewrites against the plain program.

1. ``statistics``: gaussian ``y ~ x + (1 + x | g)`` with `groups` levels at each of
   `sizes` rows: time per gradient of the plain program and of the sufficient-statistics
   one, and min ESS bulk of the hyper-parameters per second of sampler time for full fits
   (4 chains x (1000 + 1000)); the plain program's full fit only up to `plain_rows`. Both
   use `parameterization` ("noncentered" keeps the program's shape at every N, which is
   what a gradient-against-N comparison needs). Non-centered effects of groups with
   1000 rows each make a poor geometry (at 1M rows: min ESS 11 of 4000 draws),
   so a third row at each N is stanbhm's default, the statistics with parameterization
   "auto", whose ESS column is what a user gets.
2. ``collapse``: Bernoulli rows over categorical predictors (5 x 4 categories, 30 groups,
   at most 600 distinct linear predictors), `bernoulli_rows` rows: plain against the
   rows collapsed into binomial cells.
3. ``eight_schools``: centered, non-centered and with the school effects integrated out
   (stanbhm's default, tau then folded: `stanbhm.passes.fold`), 4 chains x (1000 +
   `schools_draws`): divergences and ESS of tau (sd_school) per second; and a reference
   row, the same run of a program with two parameters and no data, which bounds what any
   program for eight schools can reach per second.
4. ``election``: the election-like gaussian model (`stanbhm.datasets.election`, 40
   covariates, 50 states, respondents with about 3 rows each), `election_rows` rows:
   the plain program, the respondent effects integrated out over the rows, integrated
   out with sufficient statistics per state and per cell of respondents, and with the
   joint statistics over all coefficients (stanbhm's default at 300k rows), each with
   parameterization "auto": time per gradient and, with `election_ess`, min ESS per
   second of full fits.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ...datasets import eight_schools, election, election_formula, varying_slopes
from ...model import Model
from ..harness import Ratio, Run, Target, run_sections
from ..measure import fit_figures, iterations_for, model_gradient_ms, program_figures

HYPER = ["Intercept", "b", "sigma"]
DEFAULTS: dict[str, object] = {
    "sections": "statistics,collapse,eight_schools,election",
    "sizes": "10000,100000,1000000", "groups": 1000, "plain_rows": 10_000,
    "parameterization": "noncentered", "bernoulli_rows": 300_000, "schools_draws": 5000,
    "election_rows": 300_000, "election_ess": False}
QUICK: dict[str, object] = {
    "sizes": "2000,20000", "groups": 100, "plain_rows": 2000, "bernoulli_rows": 20_000,
    "schools_draws": 1000, "election_rows": 3000}

FIT_COLUMNS = {"ess_bulk": "min ESS bulk", "sampler_s": "sampler s", "ess_per_s": "ESS/s",
               "divergences": "divergences"}


def built(*args, **kwargs) -> tuple[Model, float]:
    """A model with its data built, and the seconds that took."""
    start = time.perf_counter()
    model = Model(*args, log_lik=False, y_rep=False, **kwargs)
    model.stan_data()
    return model, time.perf_counter() - start


def full_fit(model: Model, names: list[str], seed: int, draws: int = 1000) -> dict:
    return fit_figures(model, names, chains=4, parallel_chains=2, iter_warmup=1000,
                       iter_sampling=draws, seed=seed)


def statistics(bench: Run, options: dict[str, object]) -> None:
    sizes = [int(s) for s in str(options["sizes"]).split(",")]
    groups, plain_rows = int(options["groups"]), int(options["plain_rows"])
    table = bench.table(
        "statistics", f"gaussian y ~ x + (1 + x | g), {groups} groups: plain against "
        "sufficient statistics",
        {"N": "N", "program": "program", "build_s": "build s", "grad_ms": "ms per gradient",
         **FIT_COLUMNS},
        ratios=[Ratio("plain / this", "grad_ms", "plain", invert=True, group="N"),
                Ratio("vs smallest N", "grad_ms", "sufficient statistics",
                      of="sufficient statistics")],
        targets=[Target(f"sufficient statistics: gradient at N = {sizes[-1]} within 1.2x "
                        f"of N = {sizes[0]}", "sufficient statistics", "vs smallest N",
                        "<=", 1.2),
                 Target(f"plain / sufficient statistics at N = {sizes[-1]} >= 100",
                        "sufficient statistics", "plain / this", ">=", 100)])
    for n in sizes:
        df, _ = varying_slopes(seed=1, rows=n, groups=groups)
        formula = "y ~ x + (1 + x | g)"
        common = {"parameterization": options["parameterization"]}
        plain, plain_build = built(formula, df, rewrites="none", **common)
        fast, fast_build = built(formula, df, **common)
        if fast.plan.likelihood.strategy.name != "statistics":
            raise RuntimeError(f"expected sufficient statistics at N = {n}, got "
                               f"{fast.plan.likelihood.strategy.name}")
        names = [*HYPER, "sd_g", "L_g"]
        row = {"N": n, "program": "plain", "build_s": plain_build,
               "grad_ms": model_gradient_ms(plain, iterations_for(n, low=10))}
        if n <= plain_rows:
            row |= full_fit(plain, names, bench.seed)
        table.add(**row)
        row = {"N": n, "program": "sufficient statistics", "build_s": fast_build,
               "grad_ms": model_gradient_ms(fast, 400),
               **full_fit(fast, names, bench.seed)}
        table.add(**row)
        if options["parameterization"] != "auto":
            default, default_build = built(formula, df)
            table.add(N=n, program="sufficient statistics, parameterization auto",
                      build_s=default_build, grad_ms=model_gradient_ms(default, 400),
                      **full_fit(default, names, bench.seed))


def categorical_bernoulli(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b, g = rng.integers(0, 5, rows), rng.integers(0, 4, rows), rng.integers(0, 30, rows)
    eta = -0.5 + 0.3 * a - 0.2 * b + rng.normal(0, 0.5, 30)[g]
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, "a": a.astype(str), "b": b.astype(str),
                         "g": np.char.add("g", g.astype(str))})


def collapse(bench: Run, options: dict[str, object]) -> None:
    rows = int(options["bernoulli_rows"])
    table = bench.table(
        "collapse", f"bernoulli y ~ C(a) + C(b) + (1 | g), N = {rows}: plain against cells",
        {"program": "program", "cells": "cells", "build_s": "build s",
         "grad_ms": "ms per gradient", **FIT_COLUMNS},
        ratios=[Ratio("plain / this", "grad_ms", "plain", invert=True),
                Ratio("ESS/s vs plain", "ess_per_s", "plain")])
    df = categorical_bernoulli(rows)
    for label, rewrites in (("plain", "none"), ("collapsed", "auto")):
        model, build = built("y ~ C(a) + C(b) + (1 | g)", df, family="bernoulli",
                             rewrites=rewrites)
        row = {"program": label, "build_s": build, "grad_ms": model_gradient_ms(
            model, 400 if label == "collapsed" else iterations_for(rows, low=10))}
        if label == "collapsed":
            row["cells"] = model.plan.likelihood.cells.n
        if label == "collapsed" or rows <= int(options["plain_rows"]):
            row |= full_fit(model, ["Intercept", "b", "sd_g"], bench.seed)
        table.add(**row)


REFERENCE = """parameters {
  real a;
  real<lower=0> s;
}
model {
  a ~ std_normal();
  s ~ std_normal();
}
"""
REFERENCE_LABEL = "reference: a ~ normal(0, 1), s ~ half-normal(0, 1), no data (ESS of s)"


def schools(bench: Run, options: dict[str, object]) -> None:
    draws = int(options["schools_draws"])
    table = bench.table(
        "eight_schools", f"eight schools, 4 chains x (1000 + {draws}): ESS of tau (sd_school)",
        {"program": "program", "divergences": "divergences", "ess_bulk": "ESS bulk of tau",
         "sampler_s": "sampler s", "ess_per_s": "ESS/s"},
        ratios=[Ratio("vs non-centered", "ess_per_s", "non-centered")],
        targets=[Target("marginalized >= 10x the ESS/s of tau of non-centered",
                        "marginalized", "vs non-centered", ">=", 10)])
    formula = "y | se(sigma) ~ 1 + (1 | school)"
    for label, kwargs in (("centered", {"parameterization": "centered", "rewrites": "none"}),
                          ("non-centered", {"parameterization": "noncentered",
                                            "rewrites": "none"}),
                          ("marginalized", {"rewrites": {"school": "marginalize"}})):
        model, _ = built(formula, eight_schools(), **kwargs)
        table.add(program=label, **full_fit(model, ["sd_school"], bench.seed, draws))
    # What the sampler costs and gives on a posterior as simple as two parameters get:
    # no data, a normal and a half-normal. No program for eight schools can do much
    # better per second, so this row bounds what any rewrite can reach.
    table.add(program=REFERENCE_LABEL, **program_figures(
        REFERENCE, ["s"], chains=4, parallel_chains=2, iter_warmup=1000,
        iter_sampling=draws, seed=bench.seed))


def election_gradients(bench: Run, options: dict[str, object]) -> None:
    rows = int(options["election_rows"])
    ess = bool(options["election_ess"])
    table = bench.table(
        "election", f"election-like gaussian model, N = {rows}, 40 covariates, 50 states, "
        f"{rows // 3} respondents",
        {"program": "program", "build_s": "build s", "grad_ms": "ms per gradient",
         **(FIT_COLUMNS if ess else {})},
        ratios=[Ratio("plain / this", "grad_ms", "plain", invert=True)])
    df, _ = election(seed=1, rows=rows)
    for label, rewrites in (("plain", "none"),
                            ("respondent integrated out, rows", ["marginalize"]),
                            ("respondent integrated out, statistics per state and cell",
                             ["marginalize", "sufficient_statistics"]),
                            ("respondent integrated out, joint statistics",
                             ["marginalize", "joint_statistics"])):
        # parameterization "auto" (a requested one keeps the respondents' effects)
        model, build = built(election_formula(), df, rewrites=rewrites)
        if label != "plain" and model.plan.likelihood.marginal is None:
            raise RuntimeError(f"{label}: the respondents were not integrated out")
        row = {"program": label, "build_s": build,
               "grad_ms": model_gradient_ms(model, iterations_for(rows, 3_000_000, low=10))}
        if ess:
            row |= full_fit(model, [*HYPER, "sd_state", "sd_respondent", "sd_state_age"],
                            bench.seed)
        table.add(**row)


SECTIONS = {"statistics": statistics, "collapse": collapse, "eight_schools": schools,
            "election": election_gradients}



def run(bench: Run, options: dict[str, object]) -> None:
    run_sections(bench, options, SECTIONS)
