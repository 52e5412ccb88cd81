"""Eight schools end to end: Stan program -> compile -> 4 chains -> ArviZ summary and trace plot.

Runs on the toolchain stanbhm finds or builds (``stanbhm.toolchain.ensure_cmdstan``),
so it works on a machine where CmdStan itself cannot be downloaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import arviz as az
import matplotlib
import pandas as pd

from stanbhm import toolchain

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = """\
// Eight schools (Rubin 1981), non-centered: y_j ~ normal(mu + tau * z_j, sigma_j).
data {
  int<lower=1> J;
  vector[J] y;
  vector<lower=0>[J] sigma;
}
parameters {
  real mu;
  real<lower=0> tau;
  vector[J] z;
}
transformed parameters {
  vector[J] theta = mu + tau * z;
}
model {
  mu ~ normal(0, 5);
  tau ~ cauchy(0, 5);
  z ~ std_normal();
  y ~ normal(theta, sigma);
}
"""


def find_data() -> Path:
    for cand in (ROOT.parent / "shared" / "data", ROOT / "shared" / "data"):
        if (cand / "eight_schools.csv").exists():
            return cand / "eight_schools.csv"
    raise SystemExit("eight_schools.csv not found in ../shared/data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/eight_schools"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    df = pd.read_csv(find_data())
    stan_file = args.out / "eight_schools.stan"
    stan_file.write_text(PROGRAM)
    print(f"wrote {stan_file}")

    toolchain.ensure_cmdstan(progress=print)
    model = toolchain.compile_model(PROGRAM, cpp_options={"STAN_THREADS": True})
    data = {"J": len(df), "y": df["y"].tolist(), "sigma": df["sigma"].tolist()}
    fit = model.sample(data=data, chains=4, parallel_chains=4, seed=args.seed,
                       show_progress=False)
    idata = az.from_cmdstanpy(fit, coords={"school": df["school"].tolist()},
                              dims={"theta": ["school"], "z": ["school"]})
    print(az.summary(idata, var_names=["mu", "tau", "theta"]).to_string())
    az.plot_trace(idata, var_names=["mu", "tau"])
    plot = args.out / "trace.png"
    plt.tight_layout()
    plt.savefig(plot, dpi=90)
    print(f"saved {plot}")


if __name__ == "__main__":
    main()
