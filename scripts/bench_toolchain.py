"""Toolchain timings for eight schools, measured side by side in one run.

Prints: cold compile (a program the cache has never seen: stanc + C++ compile of
the model against the prebuilt launcher), cached compile (the same program again),
and sampling (4 chains x 1000 warmup + 1000 draws), each as the median of --repeat
runs, with ratios to the cached compile.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

from stanbhm import toolchain
from stanbhm.datasets import eight_schools

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = (ROOT / "tests" / "stan" / "eight_schools_nc.stan").read_text()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    toolchain.ensure_cmdstan(progress=print)
    df = eight_schools()
    data = {"J": len(df), "y": df["y"].tolist(), "sigma": df["sigma"].tolist()}

    # STAN_THREADS, as stanbhm's model path compiles every program: the variant the
    # install builds, so no launcher build lands inside the first timing.
    threads = {"STAN_THREADS": True}
    cold, cached, sample = [], [], []
    for _ in range(args.repeat):
        code = f"// bench {os.urandom(6).hex()}\n{PROGRAM}"  # unseen by the cache
        cold.append(timed(lambda c=code: toolchain.compile_model(c, cpp_options=threads)))
        cached.append(timed(lambda c=code: toolchain.compile_model(c, cpp_options=threads)))
    model = toolchain.compile_model(PROGRAM, cpp_options=threads)
    for i in range(args.repeat):
        sample.append(timed(lambda s=i: model.sample(data=data, chains=4, parallel_chains=4,
                                                      seed=s + 1, show_progress=False)))

    rows = [("cold compile", cold), ("cached compile", cached), ("sample 4x2000", sample)]
    base = statistics.median(cached)
    print(f"\nmachine: {platform.node()} {os.cpu_count()} cores, {platform.processor() or '?'}")
    print(f"{'step':<16} {'median s':>10} {'min s':>8} {'max s':>8} {'x cached':>10}")
    for name, ts in rows:
        med = statistics.median(ts)
        print(f"{name:<16} {med:>10.3f} {min(ts):>8.3f} {max(ts):>8.3f} {med / base:>10.0f}")


if __name__ == "__main__":
    main()
