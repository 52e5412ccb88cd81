"""The comparison of a generated program with a hand-written one in brms's form
(``tests/stan/brms_*.stan``): their log densities, without Jacobians, differ by one
constant over a set of points. Shared by tests/test_addition_terms.py (a weighted,
censored negative binomial) and tests/test_families.py (the families of issue 31)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cache

from conftest import STAN_DIR
from exact import log_density

import stanbhm as sb
from stanbhm import toolchain


@cache
def reference(name: str):
    """The compiled hand-written program ``tests/stan/<name>.stan`` (once a session; the
    executable comes from stanbhm's content cache)."""
    return toolchain.compile_model((STAN_DIR / f"{name}.stan").read_text())


def reference_density(program, params: dict, data: dict) -> float:
    """The hand-written program's log density at `params`, no Jacobian."""
    frame = program.log_prob(params=params, data=data, jacobian=False, sig_figs=18)
    return float(frame["lp__"].iloc[0])


def assert_brms_form(model: sb.Model, program, data: dict,
                     points: Iterable[tuple[dict, dict]]) -> list[float]:
    """At each (stanbhm's parameters, the reference's) of `points`, the generated
    program's log density less the reference's (with `data`) is finite and one constant:
    the gaps spread less than 1e-8 of the largest reference value. Returns the gaps."""
    gaps, scale = [], 0.0
    for ours, theirs in points:
        ref = reference_density(program, theirs, data)
        gap = log_density(model, ours, prior_only=False) - ref
        assert math.isfinite(gap), (ours, ref, gap)  # nan would compare as no spread
        gaps.append(gap)
        scale = max(scale, abs(ref))
    assert max(gaps) - min(gaps) < 1e-8 * scale, (gaps, scale)
    return gaps
