"""Compare every golden program built with stanc's default and with its O1 optimization:
log density and gradient at a few posterior draws must agree to round-off.

stanc's O1 stores a parameter matrix as one autodiff node, and Stan 2.39 has been seen
to compute some expressions of such nodes wrongly (`to_vector(M')` flattened M in the
untransposed order) or not to compile them (`rep_matrix` of a row of parameters). The
test suite checks the rewrites' exactness under O1 through their log densities; this
script checks all golden programs at once, which costs two compiles each (about an hour
on 2 cores the first time, seconds when cached), so it is run by hand after a change to
the templates or to Stan's version:

    python scripts/o1_audit.py [name ...]

It prints one line per program and exits 1 when any disagrees.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_render import ALL, build  # noqa: E402

from stanbhm import toolchain  # noqa: E402
from stanbhm.datasets import eight_schools  # noqa: E402


def draws(exe, data: dict) -> list[dict]:
    """Three draws of a short run of the default build: points the sampler visits."""
    fit = exe.sample(data=data, chains=1, iter_warmup=100, iter_sampling=3, seed=11,
                     show_progress=False, show_console=False)
    names = list(exe.src_info()["parameters"])
    return [{n: np.asarray(fit.stan_variable(n)[i]).tolist() for n in names} for i in range(3)]


def audit(name: str) -> tuple[bool, str]:
    model = build(name, eight_schools())
    if model.device is not None:
        return True, "skipped: built for an OpenCL device"
    cpp = dict(model.program.cpp_options)
    code = model.stan_code()
    plain = toolchain.compile_model(code, cpp_options=cpp)
    optimized = toolchain.compile_model(code, cpp_options=cpp, stanc_options=toolchain.OPTIMIZED)
    data = model.stan_data()
    worst = 0.0
    for point in draws(plain, data):
        a, b = (exe.log_prob(params=point, data=data, jacobian=True, sig_figs=18).to_numpy()[0]
                for exe in (plain, optimized))
        worst = max(worst, float(np.max(np.abs(a - b) / (1 + np.abs(a)))))
    return worst < 1e-9, f"largest relative gap {worst:.1e}"


def main(names: list[str]) -> int:
    failed = 0
    for name in names or ALL:
        ok, what = audit(name)
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {what}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
