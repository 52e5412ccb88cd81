"""Scale: per-row cost, GLM kernels, threads and data files.

1. ``predictor``: gaussian ``y ~ 1 + x + (1 + x || g)``, `rows` rows, 1000 groups,
   non-centered, log_lik and y_rep off: time per gradient of an idiomatic hand-written
   Stan program (``a[g] + b[g] .* x`` on column vectors, built with stanbhm's options),
   of stanbhm's program without the GLM kernel and of stanbhm's default
   (``normal_id_glm``).
2. ``retail``: the retail-demand negative binomial (`stanbhm.datasets.retail`, 22
   features, every coefficient varying by store, uncorrelated, closed days unobserved)
   at `stores` x `days` and, with `full`, at 1000 x 942: the plain program (no GLM
   kernel, one thread), the GLM kernel, and the GLM kernel with reduce_sum on each of
   `threads`; time per gradient, speedup over the plain program, passes applied.
3. ``marginal``: the gaussian election-like model (`stanbhm.datasets.election`) at
   `marginal_rows` rows with its respondents integrated out over the rows (the rewrite
   list ``["marginalize"]``, so the rows stay: what a model too big for the joint
   statistics gets), on each of `threads`: reduce_sum over slices of the respondents;
   time per gradient and speedup.
4. ``counts``: a negative binomial with categorical features only (promotion x weekday,
   a store intercept) on the retail data at `stores` x `days`: the rows (GLM kernel)
   against the negative binomial cells (store x promotion x weekday), time per gradient.
5. ``block``: block products (`passes.block`) against a gather per effect, with the
   GLM kernel on one thread: the gaussian ``y ~ 1 + x + (1 + x || g)`` at `rows` rows
   (2 effects) and the retail model at `stores` x `days` (23 effects); time per
   gradient.
6. ``data``: building the model and writing its data file at the retail sizes: formula
   to plan, plan to data, the data file through stanbhm's writer and through CmdStanPy's,
   and the process's peak memory (before CmdStanPy's writer runs) against the
   DataFrame's size; run this section alone for a clean peak.
7. ``build``: the data path at millions of rows: the gaussian election model at each of
   `build_rows` rows and the retail model at 1000 x 942 (`stores` x `days` under
   --quick), from the DataFrame to the data file written: formula to plan (the spec and
   every pass), the program's text, the data written where a fit writes it
   (`datafile.data_file`: in memory where there is room); the peak RSS while building
   (the high-water mark reset once the DataFrame exists, so the generator's own peak
   is left out) against the DataFrame's size; and, in a second table, each pass's
   seconds.
8. ``quadrature``: the election-like bernoulli model at `quadrature_rows` rows with
   the respondents' effects sampled, and integrated out by adaptive quadrature
   (`marginals.quadrature`) with 7 nodes and with 1 (Laplace's approximation): time per
   gradient on one thread and the parameters the sampler moves.
"""

from __future__ import annotations

import gc
import os
import resource
import tempfile
import time

from cmdstanpy.utils import write_stan_json

from ... import toolchain
from ...datafile import data_file, write_data
from ...datasets import election, election_formula, retail, retail_formula, varying_slopes
from ...model import Model
from ..harness import Ratio, Run, Target, run_sections
from ..measure import gradient_ms, iterations_for, model_gradient_ms

DEFAULTS: dict[str, object] = {"sections": "predictor,retail,marginal,counts,block,data,"
                                           "quadrature",
                               "rows": 100_000,
                               "stores": 200, "days": 365, "full": False, "threads": "1,2",
                               "marginal_rows": 300_000,
                               "build_rows": "300000,1000000,3000000",
                               "quadrature_rows": 300_000}
QUICK: dict[str, object] = {"rows": 10_000, "stores": 20, "days": 60, "marginal_rows": 6000,
                            "build_rows": "3000", "quadrature_rows": 6000}

HAND_WRITTEN = """\
data {
  int<lower=1> N;
  vector[N] y;
  int<lower=1> K;
  matrix[N, K] X;
  int<lower=1> N_g;
  array[N] int<lower=1, upper=N_g> J_g;
}
transformed data {
  vector[N] x = X[ : , 1] - mean(X[ : , 1]);
}
parameters {
  real alpha;
  real beta;
  vector<lower=0>[2] tau;
  vector[N_g] z_a;
  vector[N_g] z_b;
  real<lower=0> sigma;
}
model {
  vector[N_g] a = tau[1] * z_a;
  vector[N_g] b = tau[2] * z_b;
  alpha ~ student_t(3, 1, 3);
  beta ~ normal(0, 3);
  tau ~ student_t(3, 0, 3);
  z_a ~ std_normal();
  z_b ~ std_normal();
  sigma ~ student_t(3, 0, 3);
  y ~ normal(alpha + beta * x + a[J_g] + b[J_g] .* x, sigma);
}
"""


def predictor(bench: Run, options: dict[str, object]) -> None:
    rows = int(options["rows"])
    table = bench.table(
        "predictor", f"gaussian y ~ 1 + x + (1 + x || g), N = {rows}, 1000 groups",
        {"program": "program", "grad_ms": "ms per gradient"},
        ratios=[Ratio("vs hand-written", "grad_ms", "hand-written")],
        targets=[Target("stanbhm's default within 1.1x of the hand-written program",
                        "stanbhm default", "vs hand-written", "<=", 1.1)])
    df, _ = varying_slopes(seed=1, rows=rows, groups=1000)
    formula = "y ~ 1 + x + (1 + x || g)"
    common = {"rewrites": "none", "parameterization": "noncentered", "log_lik": False,
              "y_rep": False}
    plain = Model(formula, df, glm="never", **common)
    kernel = Model(formula, df, **common)
    iterations = iterations_for(rows, 3_000_000, low=10, high=100)
    cpp, stanc = plain.build_options()  # the same compiler options as stanbhm's programs
    hand = toolchain.compile_model(HAND_WRITTEN, cpp_options=cpp, stanc_options=stanc)
    with data_file(plain.stan_data()) as data:
        table.add(program="hand-written", grad_ms=gradient_ms(hand, data, iterations))
    table.add(program="stanbhm, glm='never'", grad_ms=model_gradient_ms(plain, iterations))
    table.add(program="stanbhm default", kernel="normal_id_glm",
              grad_ms=model_gradient_ms(kernel, iterations))


def decisions(model: Model, *subjects: str) -> str:
    return "; ".join(f"{d.subject}: {d.choice}" for d in model.plan.decisions
                     if d.subject in subjects)


def retail_sizes(options: dict[str, object]) -> list[tuple[int, int]]:
    first = (int(options["stores"]), int(options["days"]))
    return [first] + ([(1000, 942)] if options["full"] and first != (1000, 942) else [])


def retail_gradients(bench: Run, options: dict[str, object]) -> None:
    threads = [int(k) for k in str(options["threads"]).split(",")]
    for stores, days in retail_sizes(options):
        df, _ = retail(seed=1, stores=stores, days=days)
        rows = len(df)
        table = bench.table(
            f"retail_{stores}x{days}",
            f"retail negative binomial, {stores} stores x {days} days ({rows} rows), "
            "23 store-varying coefficients",
            {"program": "program", "grad_ms": "ms per gradient", "passes": "passes"},
            ratios=[Ratio("speedup over plain", "grad_ms", "plain", invert=True)],
            targets=[Target("GLM + 2 threads >= 1.8x faster per gradient than plain",
                            "GLM + 2 threads", "speedup over plain", ">=", 1.8)]
            if 2 in threads else [])
        common = {"family": "negbinomial", "rewrites": "none",
                  "parameterization": "noncentered", "log_lik": False, "y_rep": False}
        programs = [("plain", {"glm": "never"}), ("GLM", {})]
        programs += [(f"GLM + {k} threads", {"threads": k}) for k in threads if k > 1]
        iterations = iterations_for(rows, low=3, high=40)
        for label, extra in programs:
            model = Model(retail_formula(), df, **common, **extra)
            table.add(program=label, rows=rows,
                      grad_ms=model_gradient_ms(model, iterations, extra.get("threads", 1)),
                      passes=decisions(model, "glm", "threads"))


def marginal_gradients(bench: Run, options: dict[str, object]) -> None:
    threads = [int(k) for k in str(options["threads"]).split(",")]
    rows = int(options["marginal_rows"])
    df, _ = election(seed=1, rows=rows)
    table = bench.table(
        "marginal", f"election-like gaussian model, N = {rows}, respondents integrated out "
        "over the rows: threads",
        {"program": "program", "grad_ms": "ms per gradient", "passes": "passes"},
        ratios=[Ratio("speedup over 1 thread", "grad_ms", "1 thread", invert=True)])
    for k in threads:
        model = Model(election_formula(), df, rewrites=["marginalize"], log_lik=False,
                      y_rep=False, effects=False, threads=k)
        table.add(program=f"{k} thread{'s' if k > 1 else ''}", rows=rows,
                  grad_ms=model_gradient_ms(model, iterations_for(rows, low=3, high=40), k),
                  passes=decisions(model, "marginalization", "threads"))


#: Promotion and the six weekday indicators of `retail`'s data: categorical features only.
COUNTS_FORMULA = "sales ~ x2 + x4 + x5 + x6 + x7 + x8 + x9 + (1 | store)"


def count_cells(bench: Run, options: dict[str, object]) -> None:
    stores, days = int(options["stores"]), int(options["days"])
    df, _ = retail(seed=1, stores=stores, days=days, features=9)
    rows = int(df["sales"].notna().sum())
    table = bench.table(
        "counts", f"negative binomial {COUNTS_FORMULA}, {stores} stores x {days} days "
        f"({rows} observed rows)",
        {"program": "program", "grad_ms": "ms per gradient", "passes": "passes"},
        ratios=[Ratio("speedup over the rows", "grad_ms", "rows (GLM kernel)", invert=True)],
        targets=[Target("cells >= 5x faster per gradient than the rows", "cells",
                        "speedup over the rows", ">=", 5)])
    common = {"family": "negbinomial", "parameterization": "noncentered", "log_lik": False,
              "y_rep": False}
    iterations = iterations_for(rows, low=3, high=40)
    for label, extra in (("rows (GLM kernel)", {"rewrites": "none"}), ("cells", {})):
        model = Model(COUNTS_FORMULA, df, **common, **extra)
        table.add(program=label, rows=rows, grad_ms=model_gradient_ms(model, iterations),
                  passes=decisions(model, "collapse", "glm"))


def block_products(bench: Run, options: dict[str, object]) -> None:
    rows = int(options["rows"])
    stores, days = int(options["stores"]), int(options["days"])
    slopes, _ = varying_slopes(seed=1, rows=rows, groups=1000)
    sales, _ = retail(seed=1, stores=stores, days=days)
    cases = [(f"gaussian, 2 effects, N = {rows}", "y ~ 1 + x + (1 + x || g)", slopes,
              "gaussian"),
             (f"retail, 23 effects, {stores} x {days}", retail_formula(), sales, "negbinomial")]
    table = bench.table(
        "block", "block products against a gather per effect (GLM kernel, one thread)",
        {"model": "model", "program": "program", "grad_ms": "ms per gradient",
         "passes": "passes"},
        ratios=[Ratio("speedup over gathers", "grad_ms", "gathers", invert=True,
                      group="model")],
        # the last block-products row is the retail model's
        targets=[Target("retail: block products >= 1.5x faster per gradient",
                        "block products", "speedup over gathers", ">=", 1.5)])
    for label, formula, df, family in cases:
        common = {"family": family, "parameterization": "noncentered", "log_lik": False,
                  "y_rep": False}
        n = int(df.iloc[:, -1].notna().sum())
        for program, rewrites in (("gathers", []), ("block products", ["block_products"])):
            model = Model(formula, df, rewrites=rewrites, **common)
            table.add(model=label, program=program, rows=n,
                      grad_ms=model_gradient_ms(model, iterations_for(n, low=3, high=40)),
                      passes=decisions(model, "block products", "glm"))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def data_files(bench: Run, options: dict[str, object]) -> None:
    table = bench.table(
        "data", "retail data: build and write",
        {"program": "size", "rows": "rows", "frame_mb": "DataFrame MB",
         "plan_s": "formula to plan s", "data_s": "plan to data s",
         "write_s": "write s (stanbhm)", "cmdstanpy_write_s": "write s (CmdStanPy)",
         "file_mb": "file MB", "peak_rss_mb": "peak RSS MB"},
        ratios=[Ratio("CmdStanPy / stanbhm write", "cmdstanpy_write_s", over="write_s")])
    for stores, days in retail_sizes(options):
        df, _ = retail(seed=1, stores=stores, days=days)
        start = time.perf_counter()
        model = Model(retail_formula(), df, family="negbinomial", log_lik=False, y_rep=False)
        planned = time.perf_counter()
        data = model.stan_data()
        built = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            path = write_data(os.path.join(folder, "ours.json"), data)
            written = time.perf_counter()
            peak = peak_mb()  # before CmdStanPy's writer, whose Python lists dwarf it
            size_mb = path.stat().st_size / 1e6
            path.unlink()
            write_stan_json(os.path.join(folder, "theirs.json"), data)
            slow = time.perf_counter() - written
        table.add(program=f"{stores} x {days}", rows=len(df),
                  frame_mb=df.memory_usage(deep=True).sum() / 1e6, plan_s=planned - start,
                  data_s=built - planned, write_s=written - built, cmdstanpy_write_s=slow,
                  file_mb=size_mb, peak_rss_mb=peak)


def reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux: ``/proc/self/clear_refs``);
    False where that cannot be done (the peak then counts everything before)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def peak_since_reset_mb() -> float:
    """The peak RSS since `reset_peak` (VmHWM), or since the process began."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_mb()


def model_builds(bench: Run, options: dict[str, object]) -> None:
    full = (1000, 942) if not bench.quick else (int(options["stores"]), int(options["days"]))
    cases = [(f"election, {rows} rows", lambda rows=rows: election(seed=1, rows=rows)[0],
              election_formula(), "gaussian")
             for rows in (int(r) for r in str(options["build_rows"]).split(","))]
    cases.append((f"retail, {full[0]} x {full[1]}",
                  lambda: retail(seed=1, stores=full[0], days=full[1])[0], retail_formula(),
                  "negbinomial"))
    largest = cases[-2][0]
    table = bench.table(
        "build", "from the DataFrame to the data file: seconds and peak memory",
        {"program": "model", "rows": "rows", "frame_mb": "DataFrame MB",
         "plan_s": "formula to plan s", "code_s": "program s", "data_s": "data written s",
         "total_s": "total s", "peak_rss_mb": "peak RSS MB", "file_mb": "file MB",
         "strategy": "likelihood written as"},
        ratios=[Ratio("peak RSS / DataFrame", "peak_rss_mb", over="frame_mb")],
        targets=[Target(f"{largest}: built in at most 10 s", largest, "total_s", "<=", 10.0),
                 Target(f"{largest}: peak RSS at most 3x the DataFrame", largest,
                        "peak RSS / DataFrame", "<=", 3.0),
                 Target(f"{cases[-1][0]}: built in at most 3 s", cases[-1][0], "total_s",
                        "<=", 3.0)])
    passes = bench.table("build passes", "seconds per pass while planning (0.01 s or more)",
                         {"program": "model", "pass": "pass", "seconds": "seconds"})
    for label, frame, formula, family in cases:
        df = frame()
        gc.collect()
        if not reset_peak():
            bench.skip("peak RSS since the DataFrame: /proc/self/clear_refs is not writable, "
                       "so the peak includes the generator's")
        start = time.perf_counter()
        model = Model(formula, df, family=family, log_lik=False, y_rep=False)
        planned = time.perf_counter()
        model.stan_code()
        coded = time.perf_counter()
        with data_file(model.stan_data()) as path:  # where a fit writes it
            written = time.perf_counter()
            size_mb = os.path.getsize(path) / 1e6
        table.add(program=label, rows=len(df), frame_mb=df.memory_usage(deep=True).sum() / 1e6,
                  plan_s=planned - start, code_s=coded - planned, data_s=written - coded,
                  total_s=written - start, peak_rss_mb=peak_since_reset_mb(), file_mb=size_mb,
                  strategy=model.plan.likelihood.strategy.name)
        for name, seconds in model.plan.pass_seconds:
            if seconds >= 0.01:
                passes.add(program=label, **{"pass": name}, seconds=seconds)
        del df, model
        gc.collect()


def quadrature_gradients(bench: Run, options: dict[str, object]) -> None:
    rows = int(options["quadrature_rows"])
    df, _ = election(seed=1, rows=rows, family="bernoulli")
    levels = df["respondent"].nunique()
    table = bench.table(
        "quadrature", f"election-like bernoulli model, N = {rows}, {levels} respondents: "
        "their effects sampled, or integrated out by adaptive quadrature (one thread); a "
        "gradient of fewer parameters costs more, and the sampler needs fewer of them",
        {"program": "program", "parameters": "parameters", "grad_ms": "ms per gradient",
         "passes": "passes"},
        ratios=[Ratio("x effects sampled", "grad_ms", "effects sampled")])
    iterations = iterations_for(rows, low=3, high=40)
    for label, extra in (("effects sampled", {}),
                         ("quadrature, Q = 7", {"rewrites": {"respondent": "quadrature"}}),
                         ("quadrature, Q = 1 (Laplace)", {"rewrites": {"respondent": "quadrature"},
                                                          "quadrature_points": 1})):
        # the election suite's program when the effects are sampled
        model = Model(election_formula(), df, family="bernoulli", log_lik=False, y_rep=False,
                      **extra)
        # the guessed metric has one entry per coordinate the sampler moves
        table.add(program=label, rows=rows, parameters=len(model.initial_metric.vector),
                  grad_ms=model_gradient_ms(model, iterations),
                  passes=decisions(model, "marginalization"))


SECTIONS = {"predictor": predictor, "retail": retail_gradients,
            "marginal": marginal_gradients, "counts": count_cells, "block": block_products,
            "data": data_files, "build": model_builds, "quadrature": quadrature_gradients}



def run(bench: Run, options: dict[str, object]) -> None:
    run_sections(bench, options, SECTIONS)
