"""Election: full Bayes on lmer-scale panel data, beside lme4 when R has it.

The seeded election-like generator (`stanbhm.datasets.election`: 50 states, respondents
with about 3 rows each, 40 covariates) at each of `sizes` rows (`sizes_bernoulli` for
the bernoulli outcome), gaussian and bernoulli,
``y ~ V1 + ... + V40 + (1 | state) + (1 | respondent) + (age - 1 | state)``. stanbhm
fits it with every lever that applies (its defaults: rewrites, GLM kernels; threads per
chain = cores / chains when there are cores to spare), `chains` chains (4 unless set) x
(`warmup` + `draws`), chains in parallel up to the core count. Reported: the model's
build and compile seconds, the fit's wall seconds, min ESS bulk over the hyper-parameters
(Intercept, b, sigma and the three sds) and the wall seconds to 400 of it: the build
(data to program, with the rewrites' statistics) plus the fit's warmup plus the sampling
share that 400 effective draws take at the run's rate (the run's own ESS when it stopped
short of 400 is extrapolated; "reached" says which). The compile is left out (a program
is compiled once and cached by content), and shown. When R with lme4 is installed (Debian
``r-cran-lme4``), ``lmer`` / ``glmer`` fit the same data in the same run, timed inside
R (``system.time`` around the fit, reading the CSV left out), as the reference; otherwise
that row is skipped with a message. lme4 runs before stanbhm at each size, while this
process holds only the data; a failed lme4 fit is recorded as skipped with its exit
status, and ``lme4=0`` skips the reference. ``nagq`` is glmer's ``nAGQ``: 1, its default
Laplace approximation, or 0 (`GLMER`); the quick run uses 0. An lme4 fit still running
after ``lme4_limit`` seconds is stopped, and its row shows the limit as a lower bound.
``scale_b`` and ``initial_metric`` list the model's settings of those options to fit
side by side, every combination (e.g. ``scale_b=auto,never``: coefficients sampled in
units of their approximate posterior sd, or plainly; ``initial_metric=auto,unit``: warmup
started from the guessed metric or CmdStan's unit one); a row is named by the settings
that differ from the default, e.g. ``stanbhm, initial_metric=unit``;
``respondent=none,quadrature`` fits the model with the respondents' effects sampled and
with them integrated out by adaptive quadrature, ``quadrature_points`` nodes per
respondent (a comma-separated list fits each; an approximation); ``auto`` leaves the
choice to the model ("auto" takes the quadrature from 6,000 respondents). A second
table compares every stanbhm fit after the first with the first at each size: each
hyper-parameter's mean difference in units of its Monte Carlo error (sqrt of the two
MCSEs squared, summed), so an approximation's bias shows beside the exact fit's noise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...datasets import election, election_formula
from ...marginals.quadrature import DEFAULT_POINTS
from ...model import Model
from ..harness import Ratio, Run, Target
from ..measure import fit_figures, levers, seconds_to_ess

DEFAULTS: dict[str, object] = {"sizes": "30000,300000,3000000",
                               "sizes_bernoulli": "30000,300000,3000000",
                               "families": "gaussian,bernoulli", "warmup": 1000,
                               "draws": 1000, "chains": 4, "goal": 400, "lme4": True, "nagq": 1,
                               "lme4_limit": 3600.0, "scale_b": "auto",
                               "initial_metric": "auto", "respondent": "auto",
                               "quadrature_points": str(DEFAULT_POINTS)}
QUICK: dict[str, object] = {"sizes": "3000", "sizes_bernoulli": "3000", "warmup": 200,
                            "draws": 200, "nagq": 0}
#: glmer's approximations by its ``nAGQ``: the Laplace approximation optimizes the fixed
#: effects with the variances (its default; 221 s for 3000 election rows here), while
#: nAGQ = 0 fits them in the penalized least squares (1.4 s, a cruder approximation).
#: More quadrature points need a single scalar random effect, which this model lacks.
GLMER = {1: "glmer (Laplace)", 0: "glmer (nAGQ = 0)"}
HYPER = ["Intercept", "b", "sigma", "sd_state", "sd_respondent", "sd_state_age"]

R_SCRIPT = """\
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
head <- names(read.csv(args[1], nrows = 1))
d <- read.csv(args[1], colClasses = ifelse(head %in% c("state", "respondent"), "character",
                                            "numeric"))
d$state <- factor(d$state)
d$respondent <- factor(d$respondent)
f <- as.formula(args[2])
said <- character()
cat("fitting\\n")
flush(stdout())
elapsed <- system.time(withCallingHandlers(
  m <- if (args[3] == "gaussian") lmer(f, data = d) else
    glmer(f, data = d, family = binomial, nAGQ = as.integer(args[4])),
  warning = function(w) {
    said <<- c(said, conditionMessage(w))
    invokeRestart("muffleWarning")
  }))[["elapsed"]]
cat("seconds", elapsed, "\\n")
for (w in said) cat("warning", gsub("[[:space:]]+", " ", w), "\\n")
vc <- as.data.frame(VarCorr(m))
for (i in seq_len(nrow(vc))) cat("sd", vc$grp[i], vc$var1[i], vc$sdcor[i], "\\n")
"""


def lme4_missing() -> str | None:
    """Why lme4 cannot run here, or None when it can."""
    if shutil.which("Rscript") is None:
        return "Rscript is not installed (Debian: apt-get install r-cran-lme4)"
    found = subprocess.run(["Rscript", "-e", "library(lme4)"], capture_output=True, text=True)
    if found.returncode != 0:
        return "R has no lme4 package (Debian: apt-get install r-cran-lme4)"
    return None


def lme4_fit(df, formula: str, family: str, nagq: int = 1,
             limit: float | None = None) -> dict[str, Any]:
    """lmer/glmer on ``df``: the fit's elapsed seconds, its sd estimates, its warnings
    (convergence) and the R process's peak resident memory (``memory_gb``, reading the
    CSV included). The CSV is read with every column's type given: left to guess,
    ``read.csv`` reads each column as text first (at 300k rows the process then peaked at
    1.9 GB, against 1.2 GB). A fit still running `limit` seconds after it started is
    stopped: its ``seconds`` are then the limit, a lower bound, and ``stopped`` is True."""
    with tempfile.TemporaryDirectory() as folder:
        csv, script = Path(folder) / "data.csv", Path(folder) / "fit.R"
        out, err = Path(folder) / "out.txt", Path(folder) / "err.txt"
        df.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(["Rscript", str(script), str(csv), formula.replace(
                "(age - 1 | state)", "(0 + age | state)"), family, str(nagq)], stdout=stdout,
                stderr=stderr)
            # wait4, not wait: the R process's own peak resident memory (kB on Linux)
            deadline, stopped = None, False
            try:
                while True:
                    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                    if pid:
                        break
                    if deadline is None and limit is not None and \
                            "fitting" in out.read_text():
                        deadline = time.monotonic() + limit
                    if deadline is not None and time.monotonic() > deadline and not stopped:
                        process.kill()
                        stopped = True
                    time.sleep(0.5)
            except BaseException:  # interrupted: leave no R process behind
                process.kill()
                process.wait()
                raise
            process.returncode = os.waitstatus_to_exitcode(status)
        stdout_text, stderr_text = out.read_text(), err.read_text()
    memory_gb = usage.ru_maxrss / 2**20
    if stopped:
        return {"memory_gb": memory_gb, "seconds": limit, "stopped": True,
                "warnings": f"stopped at the {limit:.0f} s limit: the fit takes longer"}
    if process.returncode != 0:
        killed = " (killed: the kernel's out-of-memory killer, most likely)" \
            if process.returncode in (-9, 137) else ""
        raise RuntimeError(f"lme4 failed on {len(df)} rows, exit status "
                           f"{process.returncode}{killed}: {stderr_text.strip()[-2000:]}")
    found: dict[str, Any] = {"memory_gb": memory_gb, "stopped": False}
    for line in stdout_text.splitlines():
        parts = line.split()
        if parts[:1] == ["seconds"]:
            found["seconds"] = float(parts[1])
        elif parts[:1] == ["warning"]:
            found["warnings"] = "; ".join(filter(None, (found.get("warnings"),
                                                        " ".join(parts[1:]))))
        elif parts[:1] == ["sd"]:
            found[f"sd {parts[1]} {parts[2]}"] = float(parts[3])
    return found


def run(bench: Run, options: dict[str, object]) -> None:
    goal = float(options["goal"])
    nagq = int(options["nagq"])
    if nagq not in GLMER:
        raise ValueError(f"option 'nagq' takes 1 (glmer's Laplace) or 0, not {nagq}")
    cores = os.cpu_count() or 1
    chains = int(options["chains"])
    if chains < 1:
        raise ValueError(f"option 'chains' takes a positive count, not {chains}")
    threads = max(1, cores // chains)
    settings = variants(options)
    missing = lme4_missing() if options["lme4"] else "lme4=0 requested"
    if missing:
        bench.skip(f"lme4 reference: {missing}")
    for family in str(options["families"]).split(","):
        key = "sizes" if family == "gaussian" else f"sizes_{family}"
        sizes = [int(s) for s in str(options[key]).split(",")]
        table = bench.table(
            f"election_{family}", f"election-like {family} model: stanbhm to {goal:.0f} ESS "
            f"against lme4, {chains} chains x ({options['warmup']} + {options['draws']})",
            {"N": "N", "program": "system", "levers": "levers", "build_s": "build s",
             "compile_s": "compile s", "wall_s": "fit wall s",
             "warmup_s": "warmup s, all chains", "ess_bulk": "min ESS bulk",
             "seconds": f"s to {goal:.0f} ESS (lme4: fit s)", "reached": "reached",
             "sd_respondent": "sd respondent", "sigma": "sigma",
             "memory_gb": "lme4 peak GB", "warnings": "lme4 warnings"},
            ratios=[Ratio("vs lme4", "seconds", "lme4", group="N")],
            targets=[Target(f"full Bayes at N = {sizes[-1]} in less time than lme4",
                            "stanbhm", "vs lme4", "<=", 1.0)])
        # with one stanbhm fit per size there is nothing to compare
        accuracy = None if len(settings) < 2 else bench.table(
            f"election_{family}_accuracy", f"election-like {family} model: each fit's "
            "posterior means against the first stanbhm fit's at the same N, as differences "
            "in units of their Monte Carlo error (|z| up to about 3 is noise)",
            {"N": "N", "program": "system", "reference": "against",
             "z_sd_respondent": "z sd respondent", "z_sd_state": "z sd state",
             "z_sd_state_age": "z sd state_age", "z_largest": "largest |z|",
             "largest_at": "at", "sd_respondent": "sd respondent",
             "reference_sd_respondent": "reference's"})
        for n in sizes:
            df, _ = election(seed=1, rows=n, family=family)
            first: tuple[str, dict] | None = None
            # lme4 first, while this process holds the data alone: at 3M rows lmer peaked
            # at 9.8 GB here, and the model's arrays take 3 GB more
            if missing is None:
                try:
                    found = lme4_fit(df, election_formula(), family, nagq,
                                     float(options["lme4_limit"]))
                    lever = "lmer" if family == "gaussian" else GLMER[nagq]
                    table.add(N=n, program="lme4", seconds=found["seconds"],
                              levers=lever + (", stopped at the limit: its time is a lower "
                                              "bound" if found["stopped"] else ""),
                              memory_gb=found["memory_gb"], warnings=found.get("warnings"),
                              sd_respondent=found.get("sd respondent (Intercept)"),
                              sigma=found.get("sd Residual NA"))
                except RuntimeError as exc:
                    bench.skip(f"lme4 reference at N = {n}: {exc}")
            for setting in settings:
                changed = [f"{k}={v}" for k, v in setting.items() if str(v) != str(DEFAULTS[k])]
                name = ", ".join(["stanbhm", *changed])
                figures = stanbhm_figures(df, family, threads, setting, chains, cores,
                                          options, goal, bench.seed)
                estimates = figures.pop("estimates")
                table.add(N=n, program=name, **figures)
                if first is None:
                    first = (name, estimates)
                elif accuracy is not None:
                    accuracy.add(N=n, program=name, reference=first[0],
                                 **agreement(estimates, first[1]))


def agreement(fit: dict[str, tuple[float, float]], reference: dict[str, tuple[float, float]]
              ) -> dict[str, Any]:
    """Each shared coordinate's mean difference over its Monte Carlo error, the sds' by
    name and the largest |z| with where it is."""
    z = {}
    for label, (mean, mcse) in fit.items():
        if label in reference:
            error = float(np.hypot(mcse, reference[label][1]))
            if error > 0:
                z[label] = (mean - reference[label][0]) / error
    at = max(z, key=lambda label: abs(z[label]))
    return {"z_sd_respondent": z.get("sd_respondent"), "z_sd_state": z.get("sd_state"),
            "z_sd_state_age": z.get("sd_state_age"), "z_largest": abs(z[at]),
            "largest_at": at, "sd_respondent": fit.get("sd_respondent", (None,))[0],
            "reference_sd_respondent": reference.get("sd_respondent", (None,))[0]}


#: The model options the suite can fit side by side, and the settings each takes.
VARIANTS = {"scale_b": ("auto", "never"), "initial_metric": ("auto", "unit"),
            "respondent": ("auto", "quadrature", "none")}


def variants(options: dict[str, object]) -> list[dict[str, Any]]:
    """Every combination of the settings listed for `VARIANTS` (e.g. ``scale_b=auto,never``),
    a quadrature fit once per listed ``quadrature_points``."""
    combos: list[dict[str, Any]] = [{}]
    for name, allowed in VARIANTS.items():
        listed = str(options[name]).split(",")
        if any(v not in allowed for v in listed):
            several = "both" if len(allowed) == 2 else "several"
            raise ValueError(f"option '{name}' takes {' or '.join(allowed)} (or {several}, "
                             f"comma-separated), not {options[name]}")
        combos = [{**c, name: v} for c in combos for v in listed]
    points = [int(q) for q in str(options["quadrature_points"]).split(",")]
    expanded: list[dict[str, Any]] = []
    for c in combos:
        if c.get("respondent") == "quadrature":
            expanded += [{**c, "quadrature_points": q} for q in points]
        else:
            expanded.append(c)
    return expanded


def stanbhm_figures(df, family: str, threads: int, setting: dict[str, str], chains: int,
                    cores: int, options: dict[str, object], goal: float, seed: int
                    ) -> dict[str, Any]:
    """One stanbhm fit of the election model (`setting`: its `VARIANTS` options) and what
    its row reports."""
    start = time.perf_counter()
    kwargs: dict[str, Any] = dict(setting)
    respondent = kwargs.pop("respondent", "auto")
    if respondent != "auto":  # the respondents' effects integrated out by name
        kwargs.update(rewrites={"respondent": respondent})
    model = Model(election_formula(), df, family=family, log_lik=False, y_rep=False,
                  threads=threads, **kwargs)
    model.stan_data()
    build = time.perf_counter() - start
    start = time.perf_counter()
    model.compile()
    compile_s = time.perf_counter() - start
    figures = fit_figures(model, HYPER, chains=chains, parallel_chains=min(chains, cores),
                          iter_warmup=int(options["warmup"]),
                          iter_sampling=int(options["draws"]), seed=seed)
    fit_means = figures.pop("means")
    wall = build + figures["wall_s"] * seconds_to_ess(figures, goal) / figures["sampler_s"]
    return dict(levers=levers(model), build_s=build, compile_s=compile_s, seconds=wall,
                reached=figures["ess_bulk"] >= goal, sd_respondent=fit_means.get("sd_respondent"),
                sigma=fit_means.get("sigma"), **figures)
