"""Exactness checks shared by the tests of program rewrites: two programs for one model
must have log densities a constant apart."""

from __future__ import annotations

import numpy as np

import stanbhm as sb


def assert_constant_gap(plain: sb.Model, rewritten: sb.Model) -> None:
    """The two programs' log densities differ by a constant at 20 draws of the plain one
    (spread below 1e-8 of the largest value). The draws follow a short warmup: they are
    points where the posterior has mass, which is all the identity needs, and the
    programs of these tests are built at -O0 (the ``log_density`` marker), where each
    iteration costs about 20 times more."""
    draws = plain.fit(chains=1, iter_warmup=60, iter_sampling=20, seed=3, advice=False,
                      show_progress=False).cmdstan
    names = list(plain.compile().src_info()["parameters"])
    gaps, scale = [], 0.0
    for i in range(20):
        point = {n: np.asarray(draws.stan_variable(n)[i]).tolist() for n in names}
        base = log_density(plain, point, prior_only=False)
        gaps.append(log_density(rewritten, point, prior_only=False) - base)
        scale = max(scale, abs(base))
    assert max(gaps) - min(gaps) < 1e-8 * scale, (gaps, scale)


def log_density(model: sb.Model, params: dict, prior_only: bool) -> float:
    return float(_log_prob(model, params, prior_only, jacobian=False)["lp__"])


def gradient(model: sb.Model, params: dict) -> dict[str, float]:
    """The gradient of the log density, Jacobian included, in the unconstrained
    coordinates the sampler moves in (log sd for an sd), by parameter name."""
    row = _log_prob(model, params, prior_only=False, jacobian=True)
    return {name[2:]: float(value) for name, value in row.items() if name.startswith("g_")}


def _log_prob(model: sb.Model, params: dict, prior_only: bool, jacobian: bool):
    """CmdStan's log_prob method at one point: lp__ and the gradient (g_*)."""
    frame = model.compile().log_prob(params=params, data=model.stan_data(prior_only=prior_only),
                                     jacobian=jacobian, sig_figs=18)
    return frame.iloc[0]
