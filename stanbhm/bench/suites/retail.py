"""Retail: stanbhm beside NumPyro on the retail-demand negative binomial.

The model is `stanbhm.datasets.retail` with `stanbhm.datasets.retail_formula`: sales of
each store-day, NB2 with a log link, 22 features, every coefficient (the intercept too)
varying by store, uncorrelated (``||``); closed days have no sales and are not fitted.
It is the shape retailers fit at scale, and at 1000 stores x 942 days (about 800k fitted
rows, 23 000 store effects) the cost of a gradient, and whether an approximation can
stand in for NUTS, decide what is practical.

NumPyro runs the same model: stanbhm's data (its design matrices, the observed rows,
the priors' data-dependent scales), its priors (``Intercept ~ student_t(3, location,
scale)`` at the predictors' means, as the program centers them; ``b ~ normal(0,
scale_b)``; each store sd ~ half-Student-t(3, 0, scale), the program's
``student_t`` on a ``<lower=0>`` sd; ``phi ~ gamma(2, 0.1)``), its parameterization of
the store effects (non-centered ``z_store``, or centered coefficients around the
population values, whichever stanbhm's plan chose for the data; `parameterization`
fixes it) and the same unconstrained coordinates (log for the sds and phi). The suite
checks the generated program's prior statements before it runs, and
tests/test_bench_retail.py checks that the two log densities differ by a constant.

1. ``gradient``: milliseconds per gradient at `stores` x `days`: stanbhm's program with
   block products off (a gather per effect, ``rewrites=[]``), with them on (the
   default, one thread), and with reduce_sum on `threads` threads (each slice one block
   product of its own rows; the passes column says what applied), each by
   `measure.model_gradient_ms`; and NumPyro's
   ``jax.jit(jax.value_and_grad(potential_energy))`` of the same model in float32
   (JAX's default) and in float64, each in a process of its own (64-bit mode is global
   in JAX): the median of single calls, each waited for with ``block_until_ready``,
   after a warm-up call (its seconds, the trace and XLA compile, are the JIT column).
   The data are arguments of the jitted function, not constants folded into it. XLA's
   CPU backend parallelizes what it can over every core; stanbhm's one-thread rows use
   one. Targets from the issue tracker: block products at least 2x faster than gathers
   on one thread; with reduce_sum on 2 threads at most half NumPyro's float64 time and
   no more than its float32 time.
2. ``approximations``: at `ref_stores` x `ref_days`, a NUTS reference (`chains` x
   (`warmup` + `draws`)), then stanbhm's ``method="pathfinder"`` and
   ``method="variational"`` (ADVI, meanfield), each with CmdStan's default settings,
   and NumPyro's SVI (``AutoNormal`` guide, Adam with step `svi_step`, one-particle
   ELBO, in `svi_precision`) run in windows of `svi_window` steps until the window's
   mean loss improves on the previous window's by less than twice the standard error of
   that difference (or `svi_steps` steps), which the steps column reports. Seconds are
   wall seconds to the fit: for stanbhm the ``fit`` call (the compiled program comes
   from the cache, so no C++ compile is counted; writing the data file, CmdStan's
   process and CmdStanPy's check of its output are), for NumPyro from building the SVI
   object to the guide's parameters on the host, tracing and XLA compiles included
   (JAX's import is not; the setup + JIT column is the part before the first step:
   ``SVI.init``, which runs the model eagerly at an XLA compile per operation, and the
   compile of the loop).
   Accuracy against NUTS, for the population coefficients (Intercept and each b) and
   separately for the 23 store sds: the largest |posterior mean difference| in units of
   NUTS's posterior sd (over 0.5 or so, a decision could change), and the median ratio
   of the approximation's posterior sd to NUTS's (under 1: overconfident, the usual
   failing of meanfield); phi's difference likewise. The approximations' means and sds
   come from their draws (pathfinder's PSIS-resampled draws, ADVI's 1000 draws) or, for
   ``AutoNormal``, in closed form (normal, or log-normal for the sds and phi). When
   CmdStan's ADVI doubts its convergence ("may not have converged", which CmdStanPy
   turns into an error by default) its estimates are kept and the notes say so; a
   method that fails gets its error in the table instead of figures.
3. ``approximations_full``: the same three at `stores` x `days`, where NUTS costs hours
   and is not run: seconds, and how far their estimates are apart pairwise (mean
   differences in units of the larger of the two posterior sds).

NumPyro's rows need the optional extra (``pip install 'stanbhm[peers]'``); without it
they are skipped with a message.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...datasets import retail, retail_formula
from ...model import Model
from ..harness import Ratio, Run, Target, run_sections
from ..measure import iterations_for, model_gradient_ms

DEFAULTS: dict[str, object] = {"sections": "gradient,approximations,approximations_full",
                               "stores": 1000, "days": 942, "threads": 2,
                               "parameterization": "auto",
                               "ref_stores": 200, "ref_days": 365,
                               "chains": 2, "warmup": 500, "draws": 500,
                               "svi_step": 0.01, "svi_steps": 20000, "svi_window": 500,
                               "svi_precision": "float32"}
QUICK: dict[str, object] = {"stores": 20, "days": 60, "ref_stores": 10, "ref_days": 60,
                            "warmup": 200, "draws": 200}

#: The store term's effects: the intercept and the 22 features.
EFFECTS = 23
#: The parameters the approximations are judged on.
ESTIMATED = ("Intercept", "b", "sd_store", "phi")
#: The generated program's statements the NumPyro model mirrors; the suite stops if
#: stanbhm's program says anything else.
PROGRAM_LINES = (
    "real Intercept;",
    "vector[K] b;",
    "vector<lower=0>[23] sd_store;",
    "real<lower=0> phi;",
    "Intercept ~ student_t(3, prior_location_Intercept, prior_scale_Intercept);",
    "b ~ normal(0, prior_scale_b);",
    "sd_store ~ student_t(3, 0, prior_scale_sd_store);",
    "phi ~ gamma(2, 0.1);",
)
NONCENTERED_LINES = ("matrix[23, N_store] z_store;", "to_vector(z_store) ~ std_normal();")
CENTERED_LINES = ("array[N_store] row_vector[23] centered_store;",
                  "centered_store[ : , e] ~ normal(mean_store[e], sd_store[e]);")


def numpyro_missing() -> str | None:
    """Why NumPyro's rows cannot run here, or None."""
    for module in ("numpyro", "jax"):
        if importlib.util.find_spec(module) is None:
            return (f"{module} is not installed (pip install 'stanbhm[peers]'); NumPyro's "
                    "rows are left out")
    return None


# --- the model on both sides -------------------------------------------------------------

def stanbhm_model(df, parameterization: str, **options: Any) -> Model:
    return Model(retail_formula(), df, family="negbinomial", log_lik=False, y_rep=False,
                 parameterization=parameterization, **options)


def parameterization_of(options: dict[str, Any]) -> str:
    value = str(options["parameterization"])
    if value not in ("auto", "centered", "noncentered"):
        raise ValueError(f"parameterization={value!r}: use auto, centered or noncentered")
    return value


def chosen(model: Model) -> str:
    """The parameterization of the store effects in the model's program."""
    return "noncentered" if model.plan.groups[0].noncentered else "centered"


def check_program(model: Model) -> None:
    """RuntimeError unless the program declares and priors what `numpyro_model` mirrors."""
    code = model.stan_code()
    centered = not model.plan.groups[0].noncentered
    expected = (*PROGRAM_LINES, *(CENTERED_LINES if centered else NONCENTERED_LINES))
    missing = [line for line in expected if line not in code]
    if missing:
        raise RuntimeError("stanbhm's retail program no longer says "
                           f"{'; '.join(missing)}: update the NumPyro model of "
                           "stanbhm/bench/suites/retail.py to mirror it")


def numpyro_data(model: Model) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays the NumPyro model takes (the fitted rows only, as the program fits
    them) and its static shape: store count, parameterization, and for each effect after
    the intercept the column of X whose coefficient is its population value (-1 for a
    column lme4's rule dropped from X, whose population value is 0)."""
    data = model.stan_data()
    schema = model.program.schema
    coefs = list(schema.coords["coef"])
    effects = list(schema.coords["store_effect"])
    if len(effects) != EFFECTS or effects[0] != "Intercept" or not set(coefs) <= set(effects):
        raise RuntimeError(f"the retail model's store effects are {effects}, X's columns "
                           f"{coefs}: not the model the NumPyro program mirrors")
    obs = np.asarray(data["obs"]) - 1
    X = np.asarray(data["X"], dtype=float)[obs]
    means = X.mean(axis=0)
    arrays = {"Xc": X - means, "means_X": means, "Z": store_covariates(model, data, X, obs),
              "J": np.asarray(data["J_store"])[obs] - 1,
              "y": np.asarray(data["y"]),
              "location_Intercept": np.asarray(float(data["prior_location_Intercept"])),
              "scale_Intercept": np.asarray(float(data["prior_scale_Intercept"])),
              "scale_b": np.asarray(data["prior_scale_b"], dtype=float).reshape(-1),
              "scale_sd": np.asarray(data["prior_scale_sd_store"], dtype=float)}
    static = {"stores": int(data["N_store"]),
              "centered": not model.plan.groups[0].noncentered,
              "slot": [coefs.index(e) if e in coefs else -1 for e in effects[1:]]}
    return arrays, static


def store_covariates(model: Model, data: dict[str, Any], X: np.ndarray,
                     obs: np.ndarray) -> np.ndarray:
    """The store term's covariates of the fitted rows: the data's ``Z_store``, or where the
    program builds them from X (every effect the intercept's or one of X's columns, so
    the data file carries no copy) the ones and X's columns it names."""
    if "Z_store" in data:
        return np.asarray(data["Z_store"], dtype=float)[obs]
    columns = model.plan.groups[0].z_from_x
    return np.column_stack([np.ones(len(obs)) if j == 0 else X[:, j - 1] for j in columns])


def numpyro_model(stores: int, centered: bool, slot: list[int]):
    """The program as NumPyro writes it: a function of the arrays of `numpyro_data`
    (passed as arguments, so that a jitted function does not fold them into constants).
    Sites and shapes are the Stan program's parameters'."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    slots = np.asarray(slot)

    def model(d: dict[str, Any]) -> None:
        intercept = numpyro.sample("Intercept", dist.StudentT(3.0, d["location_Intercept"],
                                                              d["scale_Intercept"]))
        b = numpyro.sample("b", dist.Normal(0.0, d["scale_b"]).to_event(1))
        # student_t on a <lower=0> sd: the half-t, up to the constant log 2
        sd = numpyro.sample("sd_store", dist.FoldedDistribution(
            dist.StudentT(3.0, 0.0, d["scale_sd"])).to_event(1))
        if centered:
            slopes = jnp.where(slots >= 0, b[np.maximum(slots, 0)], 0.0)
            means = jnp.concatenate([intercept[None], slopes])
            coef = numpyro.sample("centered_store", dist.Normal(means, sd)
                                  .expand([stores, EFFECTS]).to_event(2))
            eta = -jnp.dot(d["means_X"], b) + jnp.sum(d["Z"] * coef[d["J"]], axis=1)
        else:
            z = numpyro.sample("z_store", dist.Normal(0.0, 1.0)
                               .expand([EFFECTS, stores]).to_event(2))
            effects = (sd[:, None] * z).T
            eta = intercept + d["Xc"] @ b + jnp.sum(d["Z"] * effects[d["J"]], axis=1)
        phi = numpyro.sample("phi", dist.Gamma(2.0, 0.1))
        with numpyro.plate("rows", d["y"].shape[0]):
            numpyro.sample("y", dist.NegativeBinomial2(jnp.exp(eta), phi), obs=d["y"])

    return model


def device_arrays(arrays: dict[str, np.ndarray], x64: bool) -> dict[str, Any]:
    """The arrays as JAX takes them: floats in the precision JAX runs at, indices and
    counts as 32-bit integers."""
    import jax.numpy as jnp

    floats = jnp.float64 if x64 else jnp.float32
    return {k: jnp.asarray(v, dtype=jnp.int32 if k in ("J", "y") else floats)
            for k, v in arrays.items()}


def zero_point(static: dict[str, Any], columns: int, x64: bool) -> dict[str, Any]:
    """0 on the unconstrained scale for every parameter: where stanbhm's gradient runs
    start (``inits=0``)."""
    import jax.numpy as jnp

    dtype = jnp.float64 if x64 else jnp.float32
    effects = ("centered_store", (static["stores"], EFFECTS)) if static["centered"] \
        else ("z_store", (EFFECTS, static["stores"]))
    shapes = {"Intercept": (), "b": (columns,), "sd_store": (EFFECTS,),
              effects[0]: effects[1], "phi": ()}
    return {k: jnp.zeros(shape, dtype) for k, shape in shapes.items()}


# --- NumPyro, in a process of its own ----------------------------------------------------

def numpyro_gradient(arrays: dict[str, np.ndarray], static: dict[str, Any], x64: bool,
                     calls: int) -> dict[str, Any]:
    """Milliseconds per ``value_and_grad`` of the potential (median of `calls` single
    calls after a warm-up call) and the warm-up call's seconds (trace and compile)."""
    import jax
    from numpyro.infer.util import potential_energy

    model = numpyro_model(**static)
    d = device_arrays(arrays, x64)
    point = zero_point(static, arrays["Xc"].shape[1], x64)
    step = jax.jit(jax.value_and_grad(
        lambda params, data: potential_energy(model, (data,), {}, params)))
    start = time.perf_counter()
    jax.block_until_ready(step(point, d))
    jit_s = time.perf_counter() - start
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        jax.block_until_ready(step(point, d))
        times.append(time.perf_counter() - start)
    return {"grad_ms": 1000 * float(np.median(times)), "jit_s": jit_s, "calls": calls}


def numpyro_svi(arrays: dict[str, np.ndarray], static: dict[str, Any], x64: bool,
                step_size: float, most: int, window: int, seed: int) -> dict[str, Any]:
    """NumPyro's SVI with an ``AutoNormal`` guide and Adam, in windows of `window` steps
    (a jitted ``lax.scan``) until a window's mean loss improves on the previous one's by
    less than twice the standard error of the difference, or `most` steps: the wall
    seconds from building it to the guide's parameters on the host, the steps taken,
    and the posterior means and sds of `ESTIMATED`."""
    import jax
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal
    from numpyro.optim import Adam

    model = numpyro_model(**static)
    start = time.perf_counter()
    d = device_arrays(arrays, x64)
    guide = AutoNormal(model)
    svi = SVI(model, guide, Adam(step_size), Trace_ELBO())
    # init runs the model eagerly, an XLA compile per operation: part of a user's wait
    state = svi.init(jax.random.PRNGKey(seed), d)

    def run_window(state, data):
        return jax.lax.scan(lambda s, _: svi.update(s, data), state, None, length=window)

    run_window = jax.jit(run_window).lower(state, d).compile()
    jit_s = time.perf_counter() - start
    steps, previous, converged = 0, None, False
    while steps < most:
        state, losses = run_window(state, d)
        losses = np.asarray(losses, dtype=float)
        steps += window
        if not np.all(np.isfinite(losses)):
            raise FloatingPointError(f"SVI's loss is not finite after {steps} steps")
        current = (losses.mean(), losses.var(ddof=1) / len(losses))
        if previous is not None:
            gain = previous[0] - current[0]
            if gain < 2 * np.sqrt(previous[1] + current[1]):
                converged = True
                break
        previous = current
    params = {k: np.asarray(v, dtype=float) for k, v in svi.get_params(state).items()}
    seconds = time.perf_counter() - start
    estimates = {}
    for name in ESTIMATED:
        loc, scale = params[f"{name}_auto_loc"], params[f"{name}_auto_scale"]
        if name in ("sd_store", "phi"):  # log-normal on the constrained scale
            mean = np.exp(loc + scale**2 / 2)
            sd = mean * np.sqrt(np.expm1(scale**2))
        else:
            mean, sd = loc, scale
        estimates[name] = (np.atleast_1d(mean).tolist(), np.atleast_1d(sd).tolist())
    return {"seconds": seconds, "jit_s": jit_s, "steps": steps, "converged": converged,
            "loss": float(current[0]), "estimates": estimates}


def worker(settings_path: str) -> None:
    """Entry point of the NumPyro process: the task named in the settings file, its
    result written as JSON where the settings say."""
    settings = json.loads(Path(settings_path).read_text())
    import jax

    if settings["x64"]:
        jax.config.update("jax_enable_x64", True)
    with np.load(settings["arrays"]) as stored:
        arrays = {k: stored[k] for k in stored.files}
    task = settings["task"]
    if task == "gradient":
        result = numpyro_gradient(arrays, settings["static"], settings["x64"],
                                  settings["calls"])
    elif task == "svi":
        result = numpyro_svi(arrays, settings["static"], settings["x64"],
                             settings["step_size"], settings["most"], settings["window"],
                             settings["seed"])
    else:
        raise ValueError(f"unknown task {task!r}")
    Path(settings["result"]).write_text(json.dumps(result))


def in_process(task: str, arrays: dict[str, np.ndarray], static: dict[str, Any],
               x64: bool, **settings: Any) -> dict[str, Any]:
    """`worker`'s result for one task, run in a fresh Python: JAX's precision is a
    global switch, and each process starts without the others' compiled functions."""
    with tempfile.TemporaryDirectory(prefix="stanbhm-retail-") as folder:
        where = Path(folder)
        np.savez(where / "arrays.npz", **arrays)
        (where / "settings.json").write_text(json.dumps(
            {"task": task, "x64": x64, "static": static, "arrays": str(where / "arrays.npz"),
             "result": str(where / "result.json"), **settings}))
        done = subprocess.run(
            [sys.executable, "-c", "import sys\nfrom stanbhm.bench.suites.retail import "
             "worker\nworker(sys.argv[1])", str(where / "settings.json")],
            capture_output=True, text=True, env=os.environ.copy())
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            raise RuntimeError(f"NumPyro's {task} failed: {lines[-1] if lines else ''}\n"
                               + "\n".join(lines[-20:]))
        return json.loads((where / "result.json").read_text())


# --- section 1: gradients ----------------------------------------------------------------

def decisions(model: Model) -> str:
    subjects = ("parameterization of store", "glm", "block products", "threads")
    return "; ".join(f"{d.subject}: {d.choice}" for d in model.plan.decisions
                     if d.subject in subjects)


def gradients(bench: Run, options: dict[str, Any]) -> None:
    stores, days, threads = int(options["stores"]), int(options["days"]), int(options["threads"])
    df, _ = retail(seed=1, stores=stores, days=days)
    default = stanbhm_model(df, parameterization_of(options))
    # every program the same: what the default chose for these data, or the option
    parameterization = chosen(default)
    rows = int(df["sales"].notna().sum())
    threaded = f"stanbhm block products, {threads} threads"
    targets = [Target("block products >= 2x faster per gradient than gathers (one thread)",
                      "stanbhm block products", "speedup over gathers", ">=", 2.0)]
    if threads == 2:
        targets += [Target("2 threads: at most half NumPyro's float64 time per gradient",
                           threaded, "x NumPyro float64", "<=", 0.5),
                    Target("2 threads: no slower per gradient than NumPyro float32",
                           threaded, "x NumPyro float32", "<=", 1.0)]
    table = bench.table(
        "gradient", f"retail negative binomial, {stores} stores x {days} days ({rows} fitted "
        f"rows), 23 store-varying coefficients, {parameterization}: time per gradient",
        {"program": "program", "grad_ms": "ms per gradient", "jit_s": "JIT s",
         "passes": "passes"},
        ratios=[Ratio("speedup over gathers", "grad_ms", "stanbhm gathers", invert=True),
                Ratio("x NumPyro float64", "grad_ms", "NumPyro float64"),
                Ratio("x NumPyro float32", "grad_ms", "NumPyro float32")],
        targets=targets)
    iterations = iterations_for(rows, low=3, high=40)
    programs = [("stanbhm gathers", {"rewrites": []}), ("stanbhm block products", None)]
    if threads > 1:
        programs.append((threaded, {"threads": threads}))
    for label, extra in programs:
        model = default if extra is None else stanbhm_model(df, parameterization, **extra)
        extra = extra or {}
        check_program(model)
        table.add(program=label, rows=rows,
                  grad_ms=model_gradient_ms(model, iterations, extra.get("threads", 1)),
                  passes=decisions(model))
        if label == "stanbhm block products":
            arrays, static = numpyro_data(model)
    missing = numpyro_missing()
    if missing:
        bench.skip(missing)
        return
    # the gradients stanbhm's runs took: 15 leapfrog steps per iteration
    for precision in ("float32", "float64"):
        found = in_process("gradient", arrays, static, precision == "float64",
                           calls=15 * iterations)
        table.add(program=f"NumPyro {precision}", rows=rows, grad_ms=found["grad_ms"],
                  jit_s=found["jit_s"], passes="jit(value_and_grad(potential_energy)), "
                  f"median of {found['calls']} calls")


# --- section 2: approximations -----------------------------------------------------------

Estimates = dict[str, tuple[np.ndarray, np.ndarray]]


def stan_estimates(fit) -> Estimates:
    """Posterior mean and sd of each entry of `ESTIMATED`, from a stanbhm fit's draws."""
    result = fit.cmdstan
    out = {}
    for name in ESTIMATED:
        value = result.stan_variable(name, mean=False) if fit.method == "variational" \
            else result.stan_variable(name)
        draws = np.asarray(value, dtype=float)
        draws = draws.reshape(draws.shape[0], -1)
        out[name] = (draws.mean(axis=0), draws.std(axis=0, ddof=1))
    return out


def compare(mine: Estimates, reference: Estimates, scale: str = "reference") -> dict[str, Any]:
    """How far `mine` is from `reference`: for the population coefficients (Intercept
    and b) and the store sds, the largest |mean difference| in units of the reference's
    posterior sd (``scale="larger"``: of the larger of the two sds) and the median ratio
    of the sds; phi's |mean difference| likewise."""
    def parts(names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate([np.atleast_1d(np.asarray(e[n][i], dtype=float))
                                     for n in names]) for e in (mine, reference) for i in (0, 1))

    out: dict[str, Any] = {}
    for key, names in (("coef", ("Intercept", "b")), ("sd", ("sd_store",)),
                       ("phi", ("phi",))):
        mean, sd, ref_mean, ref_sd = parts(names)
        unit = ref_sd if scale == "reference" else np.maximum(sd, ref_sd)
        out[f"{key}_err"] = float(np.max(np.abs(mean - ref_mean) / unit))
        if key != "phi":
            out[f"{key}_sd"] = float(np.median(sd / ref_sd))
    return out


#: The accuracy columns (no bar in a heading: it would end the markdown cell).
ACCURACY = {"coef_err": "coefficients: largest mean gap / sd",
            "coef_sd": "coefficients: median sd ratio",
            "sd_err": "store sds: largest mean gap / sd",
            "sd_sd": "store sds: median sd ratio", "phi_err": "phi: mean gap / sd"}


def short(exc: BaseException) -> str:
    """An error as a table cell: its type and first lines, and its cause's."""
    said = []
    while exc is not None and len(said) < 2:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        said.append(f"{type(exc).__name__}: {' / '.join(lines[:3])}")
        exc = exc.__cause__
    return " <- ".join(said)[:300]


def unconverged(fit) -> bool:
    """Whether CmdStan's ADVI said "The algorithm may not have converged" (CmdStanPy's
    test for ``require_converged``)."""
    runset = getattr(fit.cmdstan, "_runset", None) or getattr(fit.cmdstan, "runset", None)
    return any("The algorithm may not have converged" in Path(path).read_text()
               for path in runset.stdout_files)


def approximations_at(bench: Run, options: dict[str, Any], name: str, stores: int,
                      days: int, reference: bool) -> dict[str, Estimates]:
    """One table of approximations at `stores` x `days` (with the NUTS reference when
    `reference`); the estimates of those that ran, by program."""
    df, _ = retail(seed=1, stores=stores, days=days)
    model = stanbhm_model(df, parameterization_of(options))
    check_program(model)
    parameterization = chosen(model)
    rows = int(df["sales"].notna().sum())
    columns = {"program": "program", "seconds": "wall s", "jit_s": "of which setup + JIT s",
               "steps": "SVI steps"}
    if reference:
        columns.update(ACCURACY)
    columns["notes"] = "notes"
    what = "against NUTS" if reference else "without NUTS (hours here)"
    table = bench.table(
        name, f"retail negative binomial, {stores} stores x {days} days ({rows} fitted rows), "
        f"{parameterization}: approximations {what}",
        columns,
        ratios=[Ratio("x NumPyro SVI seconds", "seconds", "NumPyro SVI")])
    model.compile()  # from the cache when built before; never timed
    seed = bench.seed
    found: dict[str, Estimates] = {}
    runs: list[tuple[str, dict[str, Any]]] = []
    if reference:
        chains = int(options["chains"])
        runs.append(("NUTS", {"chains": chains, "parallel_chains": min(chains, os.cpu_count()
                                                                        or 1),
                              "iter_warmup": int(options["warmup"]),
                              "iter_sampling": int(options["draws"]),
                              "show_progress": False, "advice": False}))
    # CmdStanPy refuses ADVI's result when CmdStan doubts convergence; the row keeps the
    # estimates and says so
    runs += [("stanbhm pathfinder", {"method": "pathfinder"}),
             ("stanbhm variational", {"method": "variational", "require_converged": False})]
    for label, fit_options in runs:
        try:
            start = time.perf_counter()
            fit = model.fit(seed=seed, **fit_options)
            seconds = time.perf_counter() - start
            found[label] = stan_estimates(fit)
        except Exception as exc:  # recorded: a failed method is a result here
            table.add(program=label, notes=short(exc))
            continue
        notes = ""
        if label == "NUTS":
            notes = nuts_notes(fit, options)
        elif fit.method == "variational":
            notes = "meanfield; " + ("CmdStan: the algorithm may not have converged"
                                     if unconverged(fit) else "converged")
        table.add(program=label, seconds=seconds, notes=notes,
                  **(compare(found[label], found["NUTS"]) if reference and "NUTS" in found
                     and label != "NUTS" else {}))
    missing = numpyro_missing()
    if missing:
        bench.skip(missing)
    else:
        arrays, static = numpyro_data(model)
        precision = str(options["svi_precision"])
        if precision not in ("float32", "float64"):
            raise ValueError(f"svi_precision={precision!r}: use float32 or float64")
        try:
            svi = in_process("svi", arrays, static, precision == "float64",
                             step_size=float(options["svi_step"]),
                             most=int(options["svi_steps"]), window=int(options["svi_window"]),
                             seed=seed)
        except Exception as exc:
            table.add(program="NumPyro SVI", notes=short(exc))
        else:
            found["NumPyro SVI"] = {k: (np.asarray(m), np.asarray(s))
                                    for k, (m, s) in svi["estimates"].items()}
            stopped = "converged" if svi["converged"] else "stopped at svi_steps"
            table.add(program="NumPyro SVI", seconds=svi["seconds"], jit_s=svi["jit_s"],
                      steps=svi["steps"],
                      notes=f"AutoNormal, Adam({options['svi_step']}), {precision}, "
                            f"{stopped}, loss {svi['loss']:.6g}",
                      **(compare(found["NumPyro SVI"], found["NUTS"])
                         if reference and "NUTS" in found else {}))
    return found


def nuts_notes(fit, options: dict[str, Any]) -> str:
    """The reference's budget and health over the judged parameters."""
    import arviz as az

    idata = fit.to_arviz()
    summary = az.summary(idata, var_names=list(ESTIMATED), kind="diagnostics")
    divergences = int(idata.sample_stats["diverging"].sum())
    return (f"{options['chains']} x ({options['warmup']} + {options['draws']}); "
            f"{divergences} divergences, R-hat max {float(summary['r_hat'].max()):.3f}, "
            f"ESS bulk min {float(summary['ess_bulk'].min()):.0f}")


def approximations(bench: Run, options: dict[str, Any]) -> None:
    approximations_at(bench, options, "approximations", int(options["ref_stores"]),
                      int(options["ref_days"]), reference=True)


def approximations_full(bench: Run, options: dict[str, Any]) -> None:
    stores, days = int(options["stores"]), int(options["days"])
    found = approximations_at(bench, options, "approximations_full", stores, days,
                              reference=False)
    table = bench.table(
        "agreement",
        f"{stores} stores x {days} days: the approximations against each other (mean "
        "differences in units of the larger of the two posterior sds; sd ratio: first / "
        "second)",
        {"program": "pair", **ACCURACY})
    names = list(found)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            table.add(program=f"{first} vs {second}",
                      **compare(found[first], found[second], scale="larger"))
    if not table.rows:
        table.notes.append("Fewer than two approximations ran: nothing to compare.")


SECTIONS = {"gradient": gradients, "approximations": approximations,
            "approximations_full": approximations_full}


def run(bench: Run, options: dict[str, Any]) -> None:
    run_sections(bench, options, SECTIONS)
