"""Toolchain: what compiling and running a model costs.

A cold compile (a program the cache has never seen: stanc and the C++ compile of the
model against the prebuilt launcher), a cached compile (the same program again: a hash
lookup, no compiler) and sampling eight schools (non-centered, 4 chains x (1000 warmup +
1000 draws)), each repeated; ratios to the cached compile.
"""

from __future__ import annotations

import os

from ... import toolchain
from ...datafile import data_file
from ...datasets import eight_schools
from ...model import Model
from ..harness import Ratio, Run, repeat

DEFAULTS: dict[str, object] = {"draws": 1000}
QUICK: dict[str, object] = {"draws": 200}


def run(bench: Run, options: dict[str, object]) -> None:
    model = Model("y | se(sigma) ~ 1 + (1 | school)", eight_schools(),
                  parameterization="noncentered", rewrites="none")
    cpp, stanc = model.build_options()
    code = model.stan_code()
    exe = model.compile()  # warms the launcher variant, so no one-time build is timed

    def cold() -> None:
        # unseen by the cache: a make variable that nothing reads is part of the cache
        # key (a comment is not), so the same program is compiled again, as users build it
        nonce = {**cpp, "STANBHM_BENCH_NONCE": os.urandom(6).hex()}
        toolchain.compile_model(code, cpp_options=nonce, stanc_options=stanc)

    def cached() -> None:
        toolchain.compile_model(code, cpp_options=cpp, stanc_options=stanc)

    draws = int(options["draws"])
    with data_file(model.stan_data()) as data:
        def sample() -> None:
            exe.sample(data=data, chains=4, parallel_chains=4, iter_warmup=draws,
                       iter_sampling=draws, seed=bench.seed, show_progress=False)

        steps = {"cold compile": repeat(cold, bench.repeat),
                 "cached compile": repeat(cached, bench.repeat),
                 f"sample 4 x ({draws} + {draws})": repeat(sample, bench.repeat)}
    table = bench.table("toolchain", "Eight schools through the toolchain",
                      {"program": "step", "seconds": "seconds"},
                      ratios=[Ratio("x cached compile", "seconds", "cached compile")])
    for label, timing in steps.items():
        table.add(program=label, seconds=timing)
