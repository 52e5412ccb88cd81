"""What the test build (``STANBHM_TEST_BUILD=1``, C++ -O1) saves against the user build
(-O3) on eight schools: a cold compile's wall and compiler CPU seconds, and sampling.

    python scripts/test_build_cost.py [--repeat 2]

Each compile runs in a new ``STANBHM_HOME`` holding only a link to the built toolchain,
so the model cache is empty and nothing else changes. The test build's launcher variant
(built once per toolchain, about two minutes) is built before anything is timed. Run it
on a quiet machine: the figures are seconds of this machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROGRAMS = {"default (marginalized)": {}, "non-centered": {"parameterization": "noncentered",
                                                           "rewrites": "none"}}

ONE = """
import json, resource, sys, time
from stanbhm import Model
from stanbhm.datasets import eight_schools
options = json.loads(sys.argv[1])
model = Model("y | se(sigma) ~ 1 + (1 | school)", eight_schools(), **options)
model.stan_code()
def cpu():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime
start, used = time.perf_counter(), cpu()
model.compile()
compile_s, compile_cpu = time.perf_counter() - start, cpu() - used
fit = model.fit(chains=4, parallel_chains=1, iter_warmup=1000, iter_sampling=1000, seed=1,
                show_progress=False, advice=False)
sampler = sum(t["warmup"] + t["sampling"] for t in fit.cmdstan.time)
print(json.dumps({"compile_s": compile_s, "compile_cpu_s": compile_cpu,
                  "sampler_s": sampler}))
"""


def fresh_home(root: Path) -> Path:
    from stanbhm.toolchain import ensure_cmdstan
    from stanbhm.toolchain.paths import offline_dir

    home = Path(tempfile.mkdtemp(prefix="home-", dir=root))
    offline_dir(home).symlink_to(ensure_cmdstan())
    return home


def measure(options: dict, test_build: bool, root: Path) -> dict:
    env = dict(os.environ, STANBHM_HOME=str(fresh_home(root)),
               STANBHM_TEST_BUILD="1" if test_build else "0")
    out = subprocess.run([sys.executable, "-c", ONE, json.dumps(options)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="stanbhm-test-build-"))
    start = time.perf_counter()
    measure({}, True, root)  # builds the test build's launcher variant, untimed
    print(f"test build's launcher variant ready ({time.perf_counter() - start:.0f} s, "
          "0 when it was built before)", file=sys.stderr)
    print("| program | build | compile wall s | compile CPU s | sampler s (4 x 2000) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for label, options in PROGRAMS.items():
        for test_build in (False, True):
            runs = [measure(options, test_build, root) for _ in range(args.repeat)]
            cells = [", ".join(f"{r[k]:.2f}" for r in runs)
                     for k in ("compile_s", "compile_cpu_s", "sampler_s")]
            build = "test (-O1)" if test_build else "user (-O3)"
            print(f"| {label} | {build} | " + " | ".join(cells) + " |")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"\n{time.perf_counter() - start:.0f} s in all, "
          f"{usage.ru_utime + usage.ru_stime:.0f} s of CPU", file=sys.stderr)
    shutil.rmtree(root)  # the homes' links go, not what they point to


if __name__ == "__main__":
    main()
