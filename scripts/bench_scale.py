"""Per-row cost, GLM kernels, threads and data writing, side by side in one run.

Three tables, each measured in this process on this machine:

1. ``predictor``: gaussian ``y ~ 1 + x + (1 + x || g)``, N = 100k (--rows), 1000 groups,
   non-centered, log_lik and y_rep off: time per gradient of an idiomatic hand-written
   Stan program (``a[g] + b[g] .* x`` on column vectors, built with the same STAN_THREADS
   option as stanbhm's), of stanbhm's program without the GLM kernel and of stanbhm's
   default (``normal_id_glm``).
2. ``retail``: the retail-demand negative binomial (`stanbhm.datasets.retail`, 22
   features, every coefficient varying by store, uncorrelated, closed days
   unobserved) at 200 stores x 365 days (--stores/--days) and, with --full, at 1000 x 942:
   the plain program (no GLM kernel, one thread), the GLM kernel, and the GLM kernel
   with reduce_sum on each of --threads; time per gradient and speedup over the plain
   program, and which passes applied.
3. ``data``: building the model and writing its data file at the retail sizes:
   formula to plan, plan to data, and the data file through stanbhm's writer (orjson)
   and through CmdStanPy's, with the process's peak memory (before CmdStanPy's writer
   runs) against the DataFrame's size; run this section alone for a clean peak.

Time per gradient: CmdStan's own sampling time of a run from the same initial values
(0 on the unconstrained scale) with a fixed step size of 0.001, tree depth at most 4 and
no adaptation (so every program takes 15 leapfrog steps per iteration, none diverging),
less that of a fixed_param run of as many iterations (writing draws), over the run's
leapfrog steps; data loading is left out. Threaded runs are timed on the wall clock, as
CmdStan times every run.

    python scripts/bench_scale.py [--sections predictor,retail,data] [--rows 100000]
        [--stores 200 --days 365] [--full] [--threads 1,2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time

from cmdstanpy.utils import write_stan_json

import stanbhm as sb
from stanbhm import toolchain
from stanbhm.datafile import data_file, write_data
from stanbhm.datasets import retail, retail_formula, varying_slopes

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


def gradient_ms(exe, data: str, iterations: int, threads: int = 1, seed: int = 1) -> float:
    """Milliseconds per gradient (see the module docstring)."""
    common = {"data": data, "chains": 1, "iter_warmup": 0, "adapt_engaged": False,
              "iter_sampling": iterations, "seed": seed, "inits": 0,
              "threads_per_chain": threads, "show_progress": False}
    fit = exe.sample(max_treedepth=4, step_size=0.001, **common)
    steps = int(fit.method_variables()["n_leapfrog__"].sum())
    idle = exe.sample(fixed_param=True, **common)
    busy = float(fit.time[0]["sampling"]) - float(idle.time[0]["sampling"])
    return 1000 * busy / steps


def model_gradient_ms(model: sb.Model, iterations: int, threads: int = 1) -> float:
    with data_file(model.stan_data()) as data:
        return gradient_ms(model.compile(), data, iterations, threads)


def decisions(model: sb.Model, *subjects: str) -> str:
    return "; ".join(f"{d.subject}: {d.choice}" for d in model.plan.decisions
                     if d.subject in subjects)


def predictor_table(rows: int, out: list[dict]) -> None:
    df, _ = varying_slopes(seed=1, rows=rows, groups=1000)
    formula = "y ~ 1 + x + (1 + x || g)"
    kwargs = {"rewrites": "none", "parameterization": "noncentered", "log_lik": False,
              "y_rep": False}
    plain = sb.Model(formula, df, glm="never", **kwargs)
    kernel = sb.Model(formula, df, **kwargs)
    iterations = max(10, min(100, 3_000_000 // rows))
    with data_file(plain.stan_data()) as data:
        hand_exe = toolchain.compile_model(HAND_WRITTEN, cpp_options=plain.program.cpp_options)
        hand = gradient_ms(hand_exe, data, iterations)
    found = {"hand-written (a[g] + b[g] .* x)": hand,
             "stanbhm, glm='never'": model_gradient_ms(plain, iterations),
             "stanbhm, default (normal_id_glm)": model_gradient_ms(kernel, iterations)}
    print(f"| gaussian, N = {rows}, 1000 groups | ms per gradient | vs hand-written |")
    print("| --- | ---: | ---: |")
    for label, ms in found.items():
        print(f"| {label} | {ms:.2f} | {ms / hand:.2f} |", flush=True)
        out.append({"section": "predictor", "N": rows, "program": label, "grad_ms": ms,
                    "vs_hand_written": ms / hand})
    print("\ntarget: stanbhm within 1.1x of the hand-written program\n")


def retail_table(stores: int, days: int, threads: list[int], out: list[dict]) -> None:
    df, _ = retail(seed=1, stores=stores, days=days)
    formula = retail_formula()
    common = {"family": "negbinomial", "rewrites": "none", "parameterization": "noncentered",
              "log_lik": False, "y_rep": False}
    programs = [("plain", {"glm": "never"}), ("GLM", {})]
    programs += [(f"GLM + {k} threads", {"threads": k}) for k in threads if k > 1]
    rows = len(df)
    iterations = max(3, min(40, 2_000_000 // rows))
    print(f"| retail, {stores} stores x {days} days ({rows} rows) | ms per gradient | "
          "speedup over plain | passes |")
    print("| --- | ---: | ---: | --- |")
    base = None
    for label, options in programs:
        model = sb.Model(formula, df, **common, **options)
        ms = model_gradient_ms(model, iterations, options.get("threads", 1))
        base = base or ms
        applied = decisions(model, "glm", "threads")
        print(f"| {label} | {ms:.1f} | {base / ms:.2f} | {applied} |", flush=True)
        out.append({"section": "retail", "stores": stores, "days": days, "N": rows,
                    "program": label, "grad_ms": ms, "speedup": base / ms, "passes": applied})
    print("\ntarget: GLM + 2 threads >= 1.8x faster per gradient than plain\n")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def data_table(sizes: list[tuple[int, int]], out: list[dict]) -> None:
    print("| retail data | rows | DataFrame MB | formula to plan s | plan to data s | "
          "write s (stanbhm) | write s (CmdStanPy) | file MB | peak RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for stores, days in sizes:
        df, _ = retail(seed=1, stores=stores, days=days)
        frame_mb = df.memory_usage(deep=True).sum() / 1e6
        start = time.perf_counter()
        model = sb.Model(retail_formula(), df, family="negbinomial", log_lik=False,
                         y_rep=False)
        planned = time.perf_counter()
        data = model.stan_data()
        built = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            path = write_data(os.path.join(folder, "ours.json"), data)
            written = time.perf_counter()
            peak = peak_mb()  # before CmdStanPy's writer, whose Python lists dwarf it
            size_mb = path.stat().st_size / 1e6
            path.unlink()
            theirs = os.path.join(folder, "theirs.json")
            write_stan_json(theirs, data)
            slow = time.perf_counter() - written
        row = {"section": "data", "stores": stores, "days": days, "N": len(df),
               "frame_mb": frame_mb, "plan_s": planned - start, "data_s": built - planned,
               "write_s": written - built, "cmdstanpy_write_s": slow, "file_mb": size_mb,
               "peak_rss_mb": peak}
        print(f"| {stores} x {days} | {len(df)} | {frame_mb:.0f} | {row['plan_s']:.1f} | "
              f"{row['data_s']:.2f} | {row['write_s']:.1f} | {slow:.1f} | {size_mb:.0f} | "
              f"{row['peak_rss_mb']:.0f} |", flush=True)
        out.append(row)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default="predictor,retail,data")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--full", action="store_true", help="also 1000 stores x 942 days")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    sections = args.sections.split(",")
    threads = [int(k) for k in args.threads.split(",")]
    sizes = [(args.stores, args.days)] + ([(1000, 942)] if args.full else [])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}; stanbhm {sb.__version__}\n")
    out: list[dict] = []
    if "predictor" in sections:
        predictor_table(args.rows, out)
    if "retail" in sections:
        for stores, days in sizes:
            retail_table(stores, days, threads, out)
    if "data" in sections:
        data_table(sizes, out)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": {"cpu": platform.processor() or platform.machine(),
                                   "cores": os.cpu_count()}, "rows": out}, fh, indent=1)


if __name__ == "__main__":
    main()
