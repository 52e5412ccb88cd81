"""Centered, non-centered, half-centered and "auto" side by side, on six cases.

For each case and each choice, one fit of 4 chains x (1000 warmup + 1000 draws) with a
fixed seed, rewrites off (they would integrate some of these terms out; see
bench_rewrites.py), and one table row: divergences, total leapfrog steps, min ESS bulk of the
hyper-parameters (Intercept, b, sd_*, sigma, the family's parameters: everything but
level effects), that ESS per second of sampling, the largest R-hat among them, and what
"auto" chose. The last table gives, per case, auto's min ESS/s against the better of
centered and non-centered, and the time auto took to decide against the sampling time.

    python scripts/bench_parameterization.py [--cases eight_schools,...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
import pandas as pd

import stanbhm as sb
from stanbhm.datasets import wide_regression

CHOICES = ("centered", "noncentered", 0.5, "auto")


def eight_schools() -> pd.DataFrame:
    return pd.DataFrame({"school": list("ABCDEFGH"), "y": [28, 8, -3, 7, -1, 1, 18, 12],
                         "sigma": [15, 10, 16, 11, 9, 11, 10, 18]})


def varying_intercept(rng, sizes, tau=0.5, sigma=1.0) -> pd.DataFrame:
    g = np.repeat(np.arange(len(sizes)), sizes)
    u = rng.normal(0, tau, size=len(sizes))
    x = rng.normal(size=len(g))
    y = 1.0 + 0.3 * x + u[g] + rng.normal(0, sigma, size=len(g))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k:02d}" for k in g]})


def regression_30(rng) -> pd.DataFrame:
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


def cases() -> dict[str, dict]:
    rng = np.random.default_rng(20261123)
    hs, _ = wide_regression(rng)
    return {
        "eight_schools": {"formula": "y | se(sigma) ~ 1 + (1 | school)", "data": eight_schools()},
        "intercept_20x500": {"formula": "y ~ x + (1 | g)",
                             "data": varying_intercept(rng, [500] * 20)},
        "mixed_5x1000_50x3": {"formula": "y ~ x + (1 | g)",
                              "data": varying_intercept(rng, [1000] * 5 + [3] * 50)},
        # (1 + x || g) written as two single-effect terms, the same model, so that the
        # half-centered choice applies to each.
        "regression_30": {"formula": "y ~ 1 + x + (1 | g) + (0 + x | g)",
                          "data": regression_30(rng)},
        "bernoulli_40": {"formula": "y ~ x + (1 | g)", "data": bernoulli_40(rng),
                         "family": "bernoulli"},
        "horseshoe_100x500": {"formula": "y ~ " + " + ".join(hs.columns[:-1]), "data": hs,
                              "priors": {"b": "horseshoe(df=1, scale_global=0.0025)"},
                              "fit": {"adapt_delta": 0.95}},
    }


@dataclass
class Row:
    case: str
    choice: str
    divergences: int
    leapfrog: int
    ess_min: float
    seconds: float
    ess_per_s: float
    rhat_max: float
    chose: str
    decide_s: float


def hyper(idata) -> list[str]:
    """Everything but level effects and the horseshoe's per-column scales."""
    skip = ("r_", "z_", "coef_", "L_", "Cor_", "hs_", "log_lik", "y_rep", "b_Intercept")
    return [v for v in idata.posterior.data_vars if not v.startswith(skip)]


def run(name: str, case: dict, choice, seed: int) -> Row:
    start = time.perf_counter()
    model = sb.Model(case["formula"], case["data"], family=case.get("family", "gaussian"),
                     priors=case.get("priors"), parameterization=choice,
                     log_lik=False, y_rep=False, rewrites="none")
    decide = time.perf_counter() - start
    model.compile()
    start = time.perf_counter()
    fit = model.fit(chains=4, parallel_chains=4, seed=seed, iter_warmup=1000,
                    iter_sampling=1000, **case.get("fit", {}))
    seconds = time.perf_counter() - start
    idata = fit.to_arviz()
    names = hyper(idata)
    summary = az.summary(idata, var_names=names, kind="diagnostics")
    stats = idata.sample_stats
    chose = "; ".join(f"{d.subject.removeprefix('parameterization of ')}: {d.choice}"
                      for d in model.plan.decisions if d.subject.startswith("parameterization"))
    ess = float(summary["ess_bulk"].min())
    return Row(name, str(choice), int(stats["diverging"].sum()), int(stats["n_steps"].sum()),
               ess, seconds, ess / seconds, float(summary["r_hat"].max()),
               chose or "no group terms", decide)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", help="comma-separated subset of the cases")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write every row to this file")
    args = parser.parse_args()
    selected = cases()
    if args.cases:
        selected = {k: v for k, v in selected.items() if k in args.cases.split(",")}
    rows: list[Row] = []
    print("| case | choice | divergences | leapfrog steps | min ESS bulk | s | min ESS/s "
          "| ESS per 1k steps | R-hat max | auto chose |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, case in selected.items():
        choices = CHOICES if "priors" not in case else ("auto",)
        for choice in choices:
            row = run(name, case, choice, args.seed)
            rows.append(row)
            print(f"| {row.case} | {row.choice} | {row.divergences} | {row.leapfrog} | "
                  f"{row.ess_min:.0f} | {row.seconds:.1f} | {row.ess_per_s:.1f} | "
                  f"{1000 * row.ess_min / row.leapfrog:.1f} | {row.rhat_max:.3f} | "
                  f"{row.chose if choice == 'auto' else ''} |", flush=True)
    print()
    print("| case | auto ESS/s | best of centered, non-centered | ratio | auto divergences "
          "| theirs | decide s | share of sampling |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in selected:
        mine = {r.choice: r for r in rows if r.case == name}
        auto = mine["auto"]
        pair = [mine[c] for c in ("centered", "noncentered") if c in mine] or [auto]
        best = max(pair, key=lambda r: r.ess_per_s)
        print(f"| {name} | {auto.ess_per_s:.1f} | {best.ess_per_s:.1f} ({best.choice}) | "
              f"{auto.ess_per_s / best.ess_per_s:.2f} | {auto.divergences} | "
              f"{best.divergences} | {auto.decide_s:.3f} | "
              f"{auto.decide_s / auto.seconds:.1%} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([asdict(r) for r in rows], fh, indent=1)


if __name__ == "__main__":
    main()
