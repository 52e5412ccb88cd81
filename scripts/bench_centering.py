"""Min ESS per second with and without centered predictors, on a negative binomial model.

The review that led to X being centered saw corr(Intercept, b_x2) = -0.92 for a
negbinomial model whose predictor x2 has mean 10: an uncentered intercept is the value
at x2 = 0, far outside the data, and the sampler has to walk along that ridge. This
script fits the same seeded data with whichever stanbhm is importable and prints one
table row; ``--compare CHECKOUT`` also runs the same fit with the stanbhm of another
checkout (in a child process, one after the other) and prints both rows and the ratios:

    python scripts/bench_centering.py --compare /path/to/checkout/before/centering
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import arviz as az
import numpy as np
import pandas as pd

import stanbhm as sb


def simulate(seed: int = 42, groups: int = 20, rows: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, size=rows)
    x1 = rng.normal(0, 1, size=rows)
    x2 = rng.normal(10, 2, size=rows)
    r = rng.normal(0, 0.3, size=groups)
    mu = np.exp(-1.0 + 0.3 * x1 + 0.15 * x2 + r[g])
    phi = 5.0
    y = rng.negative_binomial(phi, phi / (phi + mu))
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": [f"s{k:02d}" for k in g]})


HEADER = ("| run | min ESS bulk | seconds | min ESS/s | leapfrog steps | "
          "corr(Intercept, b_x2) |\n| --- | --- | --- | --- | --- | --- |")


def measure(label: str, seed: int) -> tuple[float, float, int, float]:
    """(min ESS bulk, seconds, leapfrog steps, corr) for the importable stanbhm."""
    model = sb.Model("y ~ x1 + x2 + (1 | g)", simulate(), family="negbinomial",
                     parameterization="noncentered")
    model.compile()
    start = time.perf_counter()
    fit = model.fit(chains=4, parallel_chains=4, seed=seed, iter_warmup=1000,
                    iter_sampling=1000)
    seconds = time.perf_counter() - start
    idata = fit.to_arviz()
    names = ["Intercept", "b", "sd_g", "phi"]
    ess = az.ess(idata, var_names=names, method="bulk")
    ess_min = min(float(np.min(ess[v].values)) for v in names)
    post = idata.posterior
    b_x2 = post["b"].values.reshape(-1, 2)[:, 1]
    corr = float(np.corrcoef(post["Intercept"].values.ravel(), b_x2)[0, 1])
    steps = int(idata.sample_stats["n_steps"].values.sum())
    print(f"| {label} | {ess_min:.0f} | {seconds:.1f} | {ess_min / seconds:.0f} | {steps} | "
          f"{corr:.2f} |", flush=True)
    return ess_min, seconds, steps, corr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--compare", help="another checkout to run first, as 'before'")
    parser.add_argument("--row-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.row_only:
        print(HEADER, flush=True)
    if args.compare:
        env = {**os.environ, "PYTHONPATH": args.compare}
        child = subprocess.run(
            [sys.executable, __file__, "--row-only", "--label", f"before: {args.compare}",
             "--seed", str(args.seed)], env=env, capture_output=True, text=True, check=True)
        row = next(line for line in child.stdout.splitlines() if line.startswith("| before"))
        print(row, flush=True)
        before = [float(v) for v in row.strip("| ").split(" | ")[1:5]]
    ess, seconds, steps, _ = measure(args.label, args.seed)
    if args.compare:
        print(f"| ratio after/before | {ess / before[0]:.2f} | {seconds / before[1]:.2f} | "
              f"{(ess / seconds) / (before[2]):.2f} | {steps / before[3]:.2f} | |")


if __name__ == "__main__":
    main()
