"""Measurements the suites share: time per gradient, and what a fit costs and yields.

Time per gradient is CmdStan's own sampling time of a run from fixed initial values (0 on
the unconstrained scale) with a fixed step size of 0.001, tree depth at most 4 and no
adaptation, so every program takes 15 leapfrog steps per iteration and none diverges,
less that of a fixed_param run of as many iterations (writing draws), over the run's
leapfrog steps. Data loading is left out. Threaded runs are timed on the wall clock, as
CmdStan times every run.

A fit's cost is reported twice: the process's wall seconds around ``fit`` (what a user
waits; depends on how many chains ran at once) and CmdStan's own warmup + sampling
seconds summed over chains (what the sampler did).
"""

from __future__ import annotations

import time
from typing import Any

import arviz as az
import numpy as np

from ..datafile import data_file
from ..toolchain import OPTIMIZED, compile_model
from ..toolchain.opencl import selected


def gradient_ms(exe, data: str, iterations: int, threads: int = 1, seed: int = 1) -> float:
    """Milliseconds per gradient of a compiled program on a data file (module docstring)."""
    common = {"data": data, "chains": 1, "iter_warmup": 0, "adapt_engaged": False,
              "iter_sampling": iterations, "seed": seed, "inits": 0,
              "threads_per_chain": threads, "show_progress": False}
    fit = exe.sample(max_treedepth=4, step_size=0.001, **common)
    steps = int(fit.method_variables()["n_leapfrog__"].sum())
    idle = exe.sample(fixed_param=True, **common)
    busy = float(fit.time[0]["sampling"]) - float(idle.time[0]["sampling"])
    return 1000 * busy / steps


def model_gradient_ms(model, iterations: int, threads: int = 1) -> float:
    """`gradient_ms` of a stanbhm Model (compiled first, so no compile is timed)."""
    exe = model.compile()
    with data_file(model.stan_data()) as data, selected(model.device):
        return gradient_ms(exe, data, iterations, threads)


def iterations_for(rows: int, budget: int = 2_000_000, low: int = 5, high: int = 200) -> int:
    """Enough iterations for a steady time, few enough that a large N stays minutes."""
    return max(low, min(high, budget // max(rows, 1)))


def hyper_names(idata, skip: tuple[str, ...] = ()) -> list[str]:
    """Everything but level effects, their raw forms, horseshoe scales and pointwise values."""
    prefixes = ("r_", "z_", "coef_", "centered_", "L_", "Cor_", "hs_", "log_lik", "y_rep",
                "b_Intercept", "mu_", *skip)
    return [v for v in idata.posterior.data_vars if not v.startswith(prefixes)]


def fit_figures(model, names: list[str] | None = None, **options: Any) -> dict[str, Any]:
    """Fit ``model`` (compiled beforehand, so the compile is not timed) and report its
    cost, the min ESS bulk over ``names`` (default: the hyper-parameters) and the
    posterior means of the scalars among them, and of each coordinate its mean and Monte
    Carlo error (``estimates``)."""
    model.compile()
    start = time.perf_counter()
    fit = model.fit(show_progress=False, advice=False, **options)
    wall = time.perf_counter() - start
    idata = fit.to_arviz()
    # outputs whose R-hat and ESS mean nothing (a folded sd's sign) are not figures
    names = names or [v for v in hyper_names(idata) if v not in fit.schema.unchecked]
    return run_figures(fit.cmdstan, idata, names, wall)


def program_figures(code: str, names: list[str], **options: Any) -> dict[str, Any]:
    """`fit_figures` of a Stan program given as text (no data): a reference beside the
    generated programs, compiled as they are."""
    exe = compile_model(code, stanc_options=OPTIMIZED)
    start = time.perf_counter()
    mcmc = exe.sample(show_progress=False, **options)
    wall = time.perf_counter() - start
    return run_figures(mcmc, az.from_cmdstanpy(mcmc), names, wall)


def run_figures(mcmc, idata, names: list[str] | None, wall: float) -> dict[str, Any]:
    """The figures of one CmdStanPy sampling run and its InferenceData; ``estimates``: each
    coordinate's posterior mean and its Monte Carlo standard error, by ArviZ's label."""
    present = [v for v in (names or hyper_names(idata)) if v in idata.posterior]
    summary = az.summary(idata, var_names=present, round_to="none")
    sampler = float(sum(t["warmup"] + t["sampling"] for t in mcmc.time))
    warmup = float(sum(t["warmup"] for t in mcmc.time))
    ess = float(summary["ess_bulk"].min())
    stats = idata.sample_stats
    estimates = {label: (float(row["mean"]), float(row["mcse_mean"]))
                 for label, row in summary.iterrows()}
    return {"wall_s": wall, "sampler_s": sampler, "warmup_s": warmup, "ess_bulk": ess,
            "ess_per_s": ess / sampler, "divergences": int(stats["diverging"].sum()),
            "rhat_max": float(summary["r_hat"].max()),
            "leapfrog": int(np.asarray(stats["n_steps"]).sum()),
            # the scalars' means, as the suites' rows have kept them
            "means": {v: estimates[v][0] for v in present if idata.posterior[v].ndim == 2},
            "estimates": estimates}


def seconds_to_ess(figures: dict[str, Any], goal: float = 400.0) -> float:
    """Sampler seconds to ``goal`` ESS: warmup plus the sampling share that many effective
    draws take at the run's rate (ESS grows linearly with draws at a fixed step size)."""
    sampling = figures["sampler_s"] - figures["warmup_s"]
    return figures["warmup_s"] + sampling * goal / figures["ess_bulk"]


#: Plan decisions that change the program's cost or geometry, as the suites list them.
LEVERS = ("marginalization", "sufficient statistics", "collapse", "joint statistics", "glm",
          "threads", "scale of b")


def levers(model) -> str:
    """The rewrites, kernels, threads and parameterizations a model's plan applied, and
    where warmup's metric started (not a plan decision: it is passed to CmdStan)."""
    applied = [f"{d.subject}: {d.choice}" for d in model.plan.decisions
               if (d.subject in LEVERS or d.subject.startswith("parameterization of"))
               and not d.choice.startswith(("not", "one per chain", "none"))]
    if model.options.initial_metric == "auto":
        applied.append("initial metric: guessed")
    return "; ".join(applied) or "none"
