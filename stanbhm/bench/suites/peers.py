"""Peers: stanbhm beside NumPyro and PyMC on identical models, priors and draw budgets.

Cases: eight schools (2 chains x (1000 warmup + 5000 draws) and 4 x (1000 + 1000)), the
30-group hierarchical regression ``y ~ 1 + x + (1 + x || g)`` (uncorrelated varying
intercept and slope, 20-50 rows per group) and the gaussian scale case (the same
formula, N = 100k, 1000 groups), 4 x (1000 + 1000). Priors, the same in every system:
Intercept ~ normal(0, 5) at the predictors' means (x is centered in every program),
b ~ normal(0, 5), each sd ~ half-normal(0, 2) (eight schools: half-cauchy(0, 5)), sigma ~
half-normal(0, 2). stanbhm runs with its defaults (rewrites, parameterization and
kernels chosen from the data, listed in the table) and, for eight schools, centered and
non-centered with rewrites off; NumPyro and PyMC run the centered (level coefficients
drawn around the population value) and the non-centered program, written as their
documentation writes them.

Per program, three runs: 10 warmup + 10 draws (its wall seconds are the compile/JIT column
for NumPyro and PyMC, which compile or trace on a run; for stanbhm that column is the C++
compile, 0 when cached), the budget, and the budget with five times the draws and the
same seed. The last two differ only in post-warmup draws, so a quarter of their
difference in wall seconds is the budget's post-warmup sampling time with every fixed
cost cancelled (starting processes, tracing and compiling, which NumPyro repeats on
every run, reading output). Reported: the budget run's wall seconds, that sampling time,
divergences, min ESS bulk over the hyper-parameters (ArviZ, the same call for every
system) and that ESS per second of post-warmup sampling (left empty when the fixed costs
varied more than the extra draws cost, which happens to NumPyro on a loaded machine).
Chains run in parallel in every system (stanbhm and PyMC one process per core, NumPyro
one XLA device per chain). ``systems`` names the peers to run (default both).
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from typing import Any

import arviz as az
import numpy as np

from ...datasets import eight_schools, varying_slopes
from ...model import Model
from ..harness import Ratio, Run
from ..measure import levers

DEFAULTS: dict[str, object] = {"cases": "eight_schools_2x5000,eight_schools_4x1000,"
                                        "regression_30,scale_100k", "draws": 0,
                               "systems": "NumPyro,PyMC"}
QUICK: dict[str, object] = {"cases": "eight_schools_4x1000,regression_30", "draws": 300}

PRIORS = {"Intercept": "normal(0, 5)", "b": "normal(0, 5)", "sd": "normal(0, 2)",
          "sigma": "normal(0, 2)"}
SCHOOL_PRIORS = {"Intercept": "normal(0, 5)", "sd": "cauchy(0, 5)"}
SCHOOLS_HYPER = ["Intercept", "sd_school"]
REGRESSION_HYPER = ["Intercept", "b", "sd_g", "sigma"]
CASES = {
    "eight_schools_2x5000": {"chains": 2, "warmup": 1000, "draws": 5000},
    "eight_schools_4x1000": {"chains": 4, "warmup": 1000, "draws": 1000},
    "regression_30": {"chains": 4, "warmup": 1000, "draws": 1000},
    "scale_100k": {"chains": 4, "warmup": 1000, "draws": 1000},
}


def available() -> list[str]:
    return [name for name, module in (("NumPyro", "numpyro"), ("PyMC", "pymc"))
            if importlib.util.find_spec(module) is not None]


def case_data(name: str) -> dict[str, Any]:
    """The case's DataFrame, formula and arrays as the peers' programs take them."""
    if name.startswith("eight_schools"):
        df = eight_schools()
        return {"df": df, "formula": "y | se(sigma) ~ 1 + (1 | school)", "priors": SCHOOL_PRIORS,
                "hyper": SCHOOLS_HYPER, "y": df["y"].to_numpy(float),
                "sigma": df["sigma"].to_numpy(float)}
    if name == "regression_30":
        df, _ = varying_slopes(seed=1, rows=1000, groups=30)
    else:
        df, _ = varying_slopes(seed=1, rows=100_000, groups=1000)
    levels, g = np.unique(df["g"].to_numpy(), return_inverse=True)
    x = df["x"].to_numpy(float)
    return {"df": df, "formula": "y ~ 1 + x + (1 + x || g)", "priors": PRIORS,
            "hyper": REGRESSION_HYPER, "y": df["y"].to_numpy(float), "xc": x - x.mean(),
            "g": g, "groups": len(levels)}


def stanbhm_rows(name: str, data: dict[str, Any], budget: dict[str, int],
                 seed: int) -> list[dict[str, Any]]:
    variants: list[tuple[str, dict[str, Any]]] = [("stanbhm default", {})]
    if name.startswith("eight_schools"):
        variants += [("stanbhm centered", {"parameterization": "centered", "rewrites": "none"}),
                     ("stanbhm non-centered", {"parameterization": "noncentered",
                                               "rewrites": "none"})]
    rows = []
    for label, options in variants:
        model = Model(data["formula"], data["df"], priors=data["priors"], log_lik=False,
                      y_rep=False, **options)
        start = time.perf_counter()
        model.compile()
        compile_s = time.perf_counter() - start

        def sample(warmup: int, draws: int, key: int, model: Model = model) -> tuple[Any, int]:
            fit = model.fit(chains=budget["chains"], seed=key, iter_warmup=warmup,
                            iter_sampling=draws, show_progress=False, advice=False,
                            parallel_chains=min(budget["chains"], os.cpu_count() or 1))
            idata = fit.to_arviz()
            return idata, int(idata.sample_stats["diverging"].sum())

        row = timed_runs(sample, budget, seed, data["hyper"])
        row["compile_s"] = compile_s
        rows.append({"program": label, **row, "notes": levers(model)})
    return rows


def timed_runs(sample: Callable[[int, int, int], tuple[Any, int]], budget: dict[str, int],
               seed: int, hyper: list[str]) -> dict[str, Any]:
    """Three runs of one program: 10 + 10 iterations (which compiles or traces it), the
    budget, and the budget with five times the draws and the same seed, so the same
    warmup. The last two differ only in their post-warmup draws, so their difference over
    the extra draws is the time per draw with every fixed cost (processes, tracing,
    compiling, output) cancelled; sampling seconds are that times the budget's draws. ESS
    comes from the budget's run."""
    draws = budget["draws"]
    times, found = [], []
    for warmup, n, key in ((10, 10, seed + 1000), (budget["warmup"], draws, seed),
                           (budget["warmup"], 5 * draws, seed)):
        start = time.perf_counter()
        found.append(sample(warmup, n, key))
        times.append(time.perf_counter() - start)
    first, wall, longer = times
    idata, divergences = found[1]
    # None when the fixed costs varied more than the extra draws cost (seen with NumPyro
    # under load): no sampling time can be read off, and none is made up
    sampling = (longer - wall) / 4 if longer > wall else None
    summary = az.summary(idata, var_names=[v for v in hyper if v in idata.posterior],
                         kind="diagnostics")
    ess = float(summary["ess_bulk"].min())
    return {"compile_s": first, "wall_s": wall, "sample_s": sampling, "ess_bulk": ess,
            "ess_per_s": None if sampling is None else ess / sampling,
            "divergences": divergences}


# --- NumPyro ------------------------------------------------------------------------------

def numpyro_program(name: str, centered: bool) -> Callable[..., None]:
    import numpyro
    import numpyro.distributions as dist

    if name.startswith("eight_schools"):
        def schools(y, sigma):
            mu = numpyro.sample("Intercept", dist.Normal(0, 5))
            tau = numpyro.sample("sd_school", dist.HalfCauchy(5))
            with numpyro.plate("school", len(y)):
                if centered:
                    theta = numpyro.sample("theta", dist.Normal(mu, tau))
                else:
                    theta = mu + tau * numpyro.sample("z", dist.Normal(0, 1))
                numpyro.sample("y", dist.Normal(theta, sigma), obs=y)
        return schools

    def regression(y, xc, g, groups):
        intercept = numpyro.sample("Intercept", dist.Normal(0, 5))
        b = numpyro.sample("b", dist.Normal(0, 5))
        sd = numpyro.sample("sd_g", dist.HalfNormal(2).expand([2]).to_event(1))
        sigma = numpyro.sample("sigma", dist.HalfNormal(2))
        with numpyro.plate("g", groups):
            if centered:
                a = numpyro.sample("a", dist.Normal(intercept, sd[0]))
                s = numpyro.sample("s", dist.Normal(b, sd[1]))
            else:
                a = intercept + sd[0] * numpyro.sample("z_a", dist.Normal(0, 1))
                s = b + sd[1] * numpyro.sample("z_s", dist.Normal(0, 1))
        numpyro.sample("y", dist.Normal(a[g] + s[g] * xc, sigma), obs=y)
    return regression


def numpyro_row(name: str, data: dict[str, Any], budget: dict[str, int], centered: bool,
                seed: int) -> dict[str, Any]:
    import jax
    from numpyro.infer import MCMC, NUTS

    program = numpyro_program(name, centered)
    args = ({"y": data["y"], "sigma": data["sigma"]} if name.startswith("eight_schools")
            else {k: data[k] for k in ("y", "xc", "g", "groups")})
    chains = budget["chains"]
    method = "parallel" if jax.local_device_count() >= chains else "sequential"

    def sample(warmup: int, draws: int, key: int) -> tuple[Any, int]:
        mcmc = MCMC(NUTS(program), num_warmup=warmup, num_samples=draws, num_chains=chains,
                    chain_method=method, progress_bar=False)
        mcmc.run(jax.random.PRNGKey(key), **args, extra_fields=("diverging",))
        jax.block_until_ready(mcmc.get_samples())
        fields = mcmc.get_extra_fields(group_by_chain=True)
        return az.from_numpyro(mcmc), int(np.asarray(fields["diverging"]).sum())

    row = timed_runs(sample, budget, seed, data["hyper"])
    return {"program": f"NumPyro {'centered' if centered else 'non-centered'}", **row,
            "notes": f"chain_method={method}"}


# --- PyMC ---------------------------------------------------------------------------------

def pymc_model(name: str, data: dict[str, Any], centered: bool):
    import pymc as pm

    with pm.Model() as model:
        if name.startswith("eight_schools"):
            mu = pm.Normal("Intercept", 0, 5)
            tau = pm.HalfCauchy("sd_school", 5)
            if centered:
                theta = pm.Normal("theta", mu, tau, shape=len(data["y"]))
            else:
                theta = mu + tau * pm.Normal("z", 0, 1, shape=len(data["y"]))
            pm.Normal("y", theta, data["sigma"], observed=data["y"])
        else:
            intercept = pm.Normal("Intercept", 0, 5)
            b = pm.Normal("b", 0, 5)
            sd = pm.HalfNormal("sd_g", 2, shape=2)
            sigma = pm.HalfNormal("sigma", 2)
            groups = data["groups"]
            if centered:
                a = pm.Normal("a", intercept, sd[0], shape=groups)
                s = pm.Normal("s", b, sd[1], shape=groups)
            else:
                a = intercept + sd[0] * pm.Normal("z_a", 0, 1, shape=groups)
                s = b + sd[1] * pm.Normal("z_s", 0, 1, shape=groups)
            g = data["g"]
            pm.Normal("y", a[g] + s[g] * data["xc"], sigma, observed=data["y"])
    return model


def pymc_row(name: str, data: dict[str, Any], budget: dict[str, int], centered: bool,
             seed: int) -> dict[str, Any]:
    import pymc as pm

    chains = budget["chains"]
    cores = min(chains, os.cpu_count() or 1)

    def sample(warmup: int, draws: int, key: int) -> tuple[Any, int]:
        with pymc_model(name, data, centered):
            idata = pm.sample(draws=draws, tune=warmup, chains=chains, cores=cores,
                              random_seed=key, progressbar=False,
                              compute_convergence_checks=False)
        return idata, int(idata.sample_stats["diverging"].sum())

    row = timed_runs(sample, budget, seed, data["hyper"])
    return {"program": f"PyMC {'centered' if centered else 'non-centered'}", **row,
            "notes": f"cores={cores}"}


PEERS = {"NumPyro": numpyro_row, "PyMC": pymc_row}


def run(bench: Run, options: dict[str, object]) -> None:
    wanted = str(options["cases"]).split(",")
    unknown = [c for c in wanted if c not in CASES]
    if unknown:
        raise ValueError(f"unknown peers case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    asked = str(options["systems"]).split(",") if options["systems"] else []
    unknown = [s for s in asked if s not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer system(s) {', '.join(unknown)}; known: "
                         f"{', '.join(PEERS)}")
    systems = [s for s in available() if s in asked]
    for missing in sorted(set(asked) - set(systems)):
        bench.skip(f"{missing} is not installed (pip install 'stanbhm[peers]'); its rows are "
                   "left out")
    for left in sorted(set(PEERS) - set(asked)):
        bench.skip(f"{left} was not asked for (systems={options['systems']!r}); its rows are "
                   "left out")
    if "NumPyro" in systems:
        import numpyro

        # one XLA device per chain, so chains run in parallel as in the other systems
        numpyro.set_host_device_count(max(c["chains"] for c in CASES.values()))
    # stanbhm first, then PyMC, then NumPyro for every case: PyMC forks its chain
    # processes, which is unsafe once JAX has started its threads.
    cases = {}
    for name in wanted:
        budget = dict(CASES[name])
        if int(options["draws"]):
            budget["warmup"] = budget["draws"] = int(options["draws"])
        data = case_data(name)
        table = bench.table(
            name, f"{name}: {budget['chains']} chains x ({budget['warmup']} warmup + "
            f"{budget['draws']} draws), min ESS bulk over {', '.join(data['hyper'])}",
            {"program": "system and program", "compile_s": "compile/JIT s",
             "wall_s": "run wall s", "sample_s": "post-warmup sampling s",
             "divergences": "divergences",
             "ess_bulk": "min ESS bulk", "ess_per_s": "ESS/s", "notes": "notes"},
            ratios=[Ratio("ESS/s vs stanbhm default", "ess_per_s", "stanbhm default")])
        cases[name] = (budget, data, table)
        for row in stanbhm_rows(name, data, budget, bench.seed):
            table.add(**row)
    for system in sorted(systems, key=["PyMC", "NumPyro"].index):
        for name, (budget, data, table) in cases.items():
            for centered in (True, False):
                table.add(**PEERS[system](name, data, budget, centered, bench.seed))
