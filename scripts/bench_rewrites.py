"""The exact rewrites against the plain program, side by side in one run.

Four tables, each measured in this process on this machine:

1. ``y ~ x + (1 + x | g)``, gaussian, 1000 levels (--groups), N = 10k / 100k / 1M rows:
   time per gradient of the plain program and of the sufficient-statistics one (CmdStan's
   own sampling time of a short run less that of a fixed_param run of as many iterations,
   over the leapfrog steps: data loading and writing draws are left out),
   and min ESS bulk of the hyper-parameters per second of sampler time for full fits
   (4 chains x (1000 + 1000)); the plain program's full fit only up to --plain-rows.
   Both programs use --parameterization ("auto" by default, which centers the term once
   the levels hold many rows, so the program's shape changes with N; "noncentered" keeps
   it, which is what the gradient-against-N comparison needs).
2. Bernoulli rows with categorical predictors (5 x 4 categories, 30 groups), N = 300k
   (--bernoulli-rows): time per gradient plain vs collapsed into cells, ESS per second
   of the collapsed fit (and of the plain one up to --plain-rows).
3. Eight schools centered, non-centered and with the school effects integrated out:
   4 chains x (1000 + 5000), divergences, ESS bulk of sd_school (tau), sampler seconds.
4. An election-like gaussian model (`stanbhm.datasets.election`: 40 covariates, 50
   states, respondents with about 3 rows each) with and without the respondent effects
   integrated out: time per gradient and, with --election-ess, ESS per second.

Sampler seconds are CmdStan's warmup + sampling time summed over chains (not wall time,
which depends on how many chains ran at once).

    python scripts/bench_rewrites.py [--sizes 10000,100000,1000000] [--plain-rows 10000]
        [--bernoulli-rows 300000] [--election-rows 300000] [--election-ess]
        [--sections statistics,collapse,eight_schools,election] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import arviz as az
import numpy as np
import pandas as pd

import stanbhm as sb
from stanbhm.datasets import eight_schools, election, election_formula, varying_slopes

HYPER = ("Intercept", "b", "sigma")


def sampler_seconds(fit) -> float:
    return float(sum(t["warmup"] + t["sampling"] for t in fit.cmdstan.time))


def gradient_ms(model: sb.Model, iterations: int, seed: int = 1) -> float:
    """Milliseconds per gradient: CmdStan's sampling time of a short one-chain run, less
    the time a fixed_param run of as many iterations takes from its last draw (writing
    draws and generated quantities), over the run's leapfrog steps."""
    fit = model.fit(chains=1, iter_warmup=50, iter_sampling=iterations, max_treedepth=6,
                    seed=seed)
    steps = int(fit.cmdstan.method_variables()["n_leapfrog__"].sum())
    names = model.compile().src_info()["parameters"]
    last = {n: np.asarray(fit.cmdstan.stan_variable(n)[-1]).tolist() for n in names}
    idle = model.fit(chains=1, iter_warmup=0, adapt_engaged=False, fixed_param=True,
                     iter_sampling=iterations, inits=last, seed=seed)
    busy = float(fit.cmdstan.time[0]["sampling"]) - float(idle.cmdstan.time[0]["sampling"])
    return 1000 * busy / steps


def min_ess(fit, names: list[str]) -> tuple[float, int]:
    idata = fit.to_arviz()
    present = [v for v in names if v in idata.posterior]
    summary = az.summary(idata, var_names=present, kind="diagnostics")
    return float(summary["ess_bulk"].min()), int(idata.sample_stats["diverging"].sum())


def full_fit(model: sb.Model, names: list[str], sampling: int = 1000, seed: int = 1) -> dict:
    fit = model.fit(chains=4, parallel_chains=2, iter_warmup=1000, iter_sampling=sampling,
                    seed=seed)
    ess, divergences = min_ess(fit, names)
    seconds = sampler_seconds(fit)
    return {"ess": ess, "seconds": seconds, "ess_per_s": ess / seconds,
            "divergences": divergences}


def timed_model(*args, **kwargs) -> tuple[sb.Model, float]:
    start = time.perf_counter()
    model = sb.Model(*args, log_lik=False, y_rep=False, **kwargs)
    model.stan_data()
    return model, time.perf_counter() - start


def statistics_table(sizes: list[int], groups: int, plain_rows: int, parameterization: str,
                     out: list[dict]) -> None:
    print("| N | program | build s | ms per gradient | plain / this | min ESS | "
          "sampler s | ESS/s |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    base = None
    for n in sizes:
        df, _ = varying_slopes(seed=1, rows=n, groups=groups)
        formula = "y ~ x + (1 + x | g)"
        plain, plain_build = timed_model(formula, df, rewrites="none",
                                         parameterization=parameterization)
        fast, fast_build = timed_model(formula, df, parameterization=parameterization)
        assert fast.plan.likelihood.strategy == "statistics"
        names = [*HYPER, "sd_g", "L_g"]
        row_plain = {"section": "statistics", "N": n, "program": "plain",
                     "build_s": plain_build,
                     "grad_ms": gradient_ms(plain, max(20, min(200, 2_000_000 // n)))}
        row_fast = {"section": "statistics", "N": n, "program": "sufficient statistics",
                    "build_s": fast_build, "grad_ms": gradient_ms(fast, 400)}
        row_fast |= full_fit(fast, names)
        if n <= plain_rows:
            row_plain |= full_fit(plain, names)
        base = base or row_fast["grad_ms"]
        row_fast["vs_smallest_N"] = row_fast["grad_ms"] / base
        for row in (row_plain, row_fast):
            ratio = row_plain["grad_ms"] / row["grad_ms"]
            ess = (f"{row['ess']:.0f} | {row['seconds']:.1f} | {row['ess_per_s']:.1f}"
                   if "ess" in row else "not run | | ")
            print(f"| {n} | {row['program']} | {row['build_s']:.1f} | {row['grad_ms']:.3f} | "
                  f"{ratio:.1f} | {ess} |", flush=True)
            out.append(row)
    last = [r for r in out if r["section"] == "statistics"][-1]
    print(f"\nsufficient statistics: gradient at N = {sizes[-1]} is "
          f"{last['vs_smallest_N']:.2f}x the one at N = {sizes[0]} (target <= 1.2); "
          f"plain / rewritten at N = {sizes[-1]}: "
          f"{out[-2]['grad_ms'] / last['grad_ms']:.0f}x (target >= 100)\n")


def categorical_bernoulli(rows: int, seed: int = 1) -> pd.DataFrame:
    """Bernoulli rows over categorical predictors (5 x 4 categories) and 30 groups, so
    at most 600 distinct linear predictors."""
    rng = np.random.default_rng(seed)
    a, b, g = rng.integers(0, 5, rows), rng.integers(0, 4, rows), rng.integers(0, 30, rows)
    eta = -0.5 + 0.3 * a - 0.2 * b + rng.normal(0, 0.5, 30)[g]
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, "a": a.astype(str), "b": b.astype(str),
                         "g": np.char.add("g", g.astype(str))})


def collapse_table(rows: int, plain_rows: int, out: list[dict]) -> None:
    df = categorical_bernoulli(rows)
    formula = "y ~ C(a) + C(b) + (1 | g)"
    print(f"| bernoulli, N = {rows} | build s | ms per gradient | plain / this | min ESS | "
          "sampler s | ESS/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    results = []
    for label, rewrites in (("plain", "none"), ("collapsed", "auto")):
        model, build = timed_model(formula, df, family="bernoulli", rewrites=rewrites)
        row = {"section": "collapse", "N": rows, "program": label, "build_s": build,
               "grad_ms": gradient_ms(model, 400 if label == "collapsed" else 40)}
        if label == "collapsed":
            row["cells"] = model.plan.likelihood.cells.n
        if label == "collapsed" or rows <= plain_rows:
            row |= full_fit(model, ["Intercept", "b", "sd_g"])
        results.append(row)
    for row in results:
        ratio = results[0]["grad_ms"] / row["grad_ms"]
        extra = (f"{row['ess']:.0f} | {row['seconds']:.1f} | {row['ess_per_s']:.1f}"
                 if "ess" in row else "not run | | ")
        name = f"{row['program']} ({row['cells']} cells)" if "cells" in row else row["program"]
        print(f"| {name} | {row['build_s']:.1f} | {row['grad_ms']:.3f} | {ratio:.0f} | {extra} |")
        out.append(row)
    print()


def eight_schools_table(out: list[dict]) -> None:
    print("| eight schools | divergences | ESS bulk of tau | sampler s | ESS/s | "
          "vs non-centered |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    rows = {}
    formula = "y | se(sigma) ~ 1 + (1 | school)"
    for label, kwargs in (("centered", {"parameterization": "centered"}),
                          ("non-centered", {"parameterization": "noncentered"}),
                          ("marginalized", {"rewrites": {"school": "marginalize"}})):
        model, _ = timed_model(formula, eight_schools(), **kwargs)
        rows[label] = {"section": "eight_schools", "program": label,
                       **full_fit(model, ["sd_school"], sampling=5000)}
    for label, row in rows.items():
        ratio = row["ess_per_s"] / rows["non-centered"]["ess_per_s"]
        print(f"| {label} | {row['divergences']} | {row['ess']:.0f} | {row['seconds']:.2f} | "
              f"{row['ess_per_s']:.0f} | {ratio:.1f} |")
        out.append(row | {"vs_noncentered": ratio})
    print("\ntarget: marginalized >= 10x the ESS/s of tau of non-centered\n")


def election_table(rows: int, ess: bool, out: list[dict]) -> None:
    df, _ = election(seed=1, rows=rows)
    formula = election_formula()
    print(f"| election, N = {rows} | build s | ms per gradient | plain / this | min ESS | "
          "sampler s | ESS/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    results = []
    for label, rewrites in (("plain", "none"),
                            ("respondent integrated out", {"respondent": "marginalize"})):
        model, build = timed_model(formula, df, rewrites=rewrites,
                                   parameterization="noncentered")
        row = {"section": "election", "N": rows, "program": label, "build_s": build,
               "grad_ms": gradient_ms(model, max(20, min(200, 3_000_000 // rows)))}
        if ess:
            row |= full_fit(model, [*HYPER, "sd_state", "sd_respondent", "sd_state_age"])
        results.append(row)
    for row in results:
        ratio = results[0]["grad_ms"] / row["grad_ms"]
        extra = (f"{row['ess']:.0f} | {row['seconds']:.0f} | {row['ess_per_s']:.2f}"
                 if "ess" in row else "not run | | ")
        print(f"| {row['program']} | {row['build_s']:.1f} | {row['grad_ms']:.2f} | "
              f"{ratio:.2f} | {extra} |")
        out.append(row)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--parameterization", default="auto",
                        help="of the first table's programs; 'noncentered' keeps the same "
                        "program shape at every N, 'auto' centers once levels hold many rows")
    parser.add_argument("--plain-rows", type=int, default=10_000,
                        help="largest N at which the plain program gets a full fit")
    parser.add_argument("--bernoulli-rows", type=int, default=300_000)
    parser.add_argument("--election-rows", type=int, default=300_000)
    parser.add_argument("--election-ess", action="store_true",
                        help="also run full fits of the election models (hours for plain)")
    parser.add_argument("--sections", default="statistics,collapse,eight_schools,election")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    print(f"machine: {platform.node()}, {platform.processor() or platform.machine()}, "
          f"stanbhm {sb.__version__}, {time.strftime('%Y-%m-%d %H:%M')}\n")
    out: list[dict] = []
    sections = args.sections.split(",")
    if "statistics" in sections:
        statistics_table([int(s) for s in args.sizes.split(",")], args.groups, args.plain_rows,
                         args.parameterization, out)
    if "collapse" in sections:
        collapse_table(args.bernoulli_rows, args.plain_rows, out)
    if "eight_schools" in sections:
        eight_schools_table(out)
    if "election" in sections:
        election_table(args.election_rows, args.election_ess, out)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
