"""The quadrature marginal (`marginals.quadrature`): a group intercept integrated out by
adaptive Gauss-Hermite quadrature in C++ compiled with the program. Checked on its
decision, refusals and text; on each level's integral against scipy's at 20 parameter
points per family; on its gradient against finite differences of its own log density;
and, an approximation, on a posterior within Monte Carlo error of the exact program's.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from exact import assert_constant_gap, gradient, log_density
from rewrite_cases import _agree, count_data, decision, grouped
from scipy import integrate, special, stats

import stanbhm as sb
from stanbhm import toolchain
from stanbhm.errors import PlanError
from stanbhm.marginals import quadrature
from stanbhm.marginals.quadrature import HEADER

#: Calls each family's per-level function on data: every level's log integral at P
#: parameter points (eta for every row, the sd, the negative binomial's phi).
LEVELS_PROGRAM = """
functions {
  vector agq_bernoulli_levels(array[] int y, vector eta, array[] int start,
                                           real sd, int nodes);
  vector agq_binomial_levels(array[] int y, array[] int trials, vector eta,
                                          array[] int start, real sd, int nodes);
  vector agq_poisson_levels(array[] int y, vector eta, array[] int start,
                                       real sd, int nodes);
  vector agq_negbinomial_levels(array[] int y, vector eta, real phi,
                                              array[] int start, real sd, int nodes);
}
data {
  int N; int L; int P; int Q;
  array[N] int binary; array[N] int count; array[N] int trials;
  array[L + 1] int start; matrix[P, N] eta; vector[P] sd; vector[P] phi;
}
generated quantities {
  array[4] matrix[P, L] levels;
  for (p in 1:P) {
    vector[N] e = eta[p]';
    levels[1, p] = agq_bernoulli_levels(binary, e, start, sd[p], Q)';
    levels[2, p] = agq_binomial_levels(count, trials, e, start, sd[p], Q)';
    levels[3, p] = agq_poisson_levels(count, e, start, sd[p], Q)';
    levels[4, p] = agq_negbinomial_levels(count, e, phi[p], start, sd[p], Q)';
  }
}
"""

#: Rows per level: none, one, a few, many; the binary outcomes of the 3-row and 12-row
#: levels are all 1 and all 0 (a mode far out when the sd is large).
SIZES = (0, 1, 2, 3, 5, 12, 40)


def _rows_data(rng: np.random.Generator, points: int, nodes: int) -> dict:
    start = np.concatenate([[0], np.cumsum(SIZES)]) + 1
    n = int(start[-1] - 1)
    binary = rng.integers(0, 2, size=n)
    binary[start[3] - 1:start[4] - 1] = 1
    binary[start[5] - 1:start[6] - 1] = 0
    trials = rng.integers(1, 8, size=n)
    count = rng.binomial(trials, 0.4)
    eta = rng.normal(-0.3, 1.0, size=(points, n))
    return {"N": n, "L": len(SIZES), "P": points, "Q": nodes, "binary": binary,
            "count": count, "trials": trials, "start": start, "eta": eta,
            "sd": rng.uniform(0.1, 1.0, size=points), "phi": rng.uniform(0.5, 20, size=points)}


def _row_logpmf(family: int, d: dict, rows: slice, eta: np.ndarray, phi: float) -> np.ndarray:
    """Each row's log density at linear predictor `eta` (rows x nodes), by scipy."""
    if family == 0:
        return stats.bernoulli.logpmf(d["binary"][rows, None], special.expit(eta))
    count = d["count"][rows, None]
    if family == 1:
        return stats.binom.logpmf(count, d["trials"][rows, None], special.expit(eta))
    if family == 2:
        return stats.poisson.logpmf(count, np.exp(eta))
    mu = np.exp(eta)
    return stats.nbinom.logpmf(count, phi, phi / (phi + mu))


def _level_integral(family: int, d: dict, p: int, j: int) -> float:
    """log ∫ Π_rows p(y | eta + u) normal(u | 0, sd) du by adaptive quadrature (scipy),
    about the integrand's peak, which a grid finds."""
    rows = slice(d["start"][j] - 1, d["start"][j + 1] - 1)
    eta, sd, phi = d["eta"][p, rows], d["sd"][p], d["phi"][p]

    def log_f(u: np.ndarray) -> np.ndarray:
        u = np.atleast_1d(u)
        out = _row_logpmf(family, d, rows, eta[:, None] + u[None, :], phi).sum(axis=0)
        return out + stats.norm.logpdf(u, 0, sd)

    grid = np.linspace(-12 * sd - 10, 12 * sd + 10, 40001)
    values = log_f(grid)
    peak = values.max()
    inside = grid[values > peak - 60]
    found, _ = integrate.quad(lambda u: math.exp(log_f(u)[0] - peak), inside[0], inside[-1],
                              points=[grid[values.argmax()]], epsabs=0, epsrel=1e-13,
                              limit=500)
    return peak + math.log(found)


@pytest.fixture(scope="module")
def levels_program(cmdstan):
    return toolchain.compile_model(LEVELS_PROGRAM, cpp_options={"USER_HEADER": str(HEADER)},
                                   stanc_options={"allow-undefined": True})


@pytest.mark.slow
@pytest.mark.log_density
def test_each_level_is_the_integral_with_25_nodes(levels_program):
    """Q = 25: every level's log integral equals scipy's to 1e-8, for every family, at 20
    parameter points (sd from 0.1 to 1, phi from 0.5 to 20). Larger sds make the
    integrand of a level with one or two counts skewed (a gaussian on one side, a
    double exponential on the other), and the error grows: with sds up to 1.5 a poisson
    level of one row was off by 1.9e-7 at Q = 25, up to 3 by 1.2e-4 (docs/models.md)."""
    data = _rows_data(np.random.default_rng(11), points=20, nodes=25)
    fit = levels_program.sample(data=data, fixed_param=True, iter_sampling=1, chains=1,
                                seed=1, show_progress=False, sig_figs=18)
    levels = fit.stan_variable("levels")[0]
    for family in range(4):
        for p in range(20):
            for j in range(len(SIZES)):
                want = _level_integral(family, data, p, j)
                assert abs(levels[family, p, j] - want) < 1e-8, (family, p, j, want)


@pytest.mark.slow
@pytest.mark.log_density
def test_fewer_nodes_approximate_and_one_node_is_laplace(levels_program):
    """Fewer nodes, more error: Q = 1, Laplace's approximation as the header says (checked
    against Laplace's formula by hand), is off by more than Q = 7, and Q = 7 by more
    than Q = 25, on the same levels."""
    rng = np.random.default_rng(11)
    data = _rows_data(rng, points=20, nodes=1)
    laplace = levels_program.sample(data=data, fixed_param=True, iter_sampling=1, chains=1,
                                    seed=1, show_progress=False, sig_figs=18)
    seven = levels_program.sample(data={**data, "Q": 7}, fixed_param=True, iter_sampling=1,
                                  chains=1, seed=1, show_progress=False, sig_figs=18)
    one, q7 = (f.stan_variable("levels")[0] for f in (laplace, seven))
    exact = np.array([[[_level_integral(f, data, p, j) for j in range(len(SIZES))]
                       for p in range(20)] for f in range(4)])
    q25 = levels_program.sample(data={**data, "Q": 25}, fixed_param=True, iter_sampling=1,
                                chains=1, seed=1, show_progress=False, sig_figs=18)
    q25 = q25.stan_variable("levels")[0]
    errors = [np.abs(q - exact).max() for q in (one, q7, q25)]
    assert errors[0] > 10 * errors[1] > 100 * errors[2], errors
    # Laplace's approximation by hand at the bernoulli level of one row: log f(m) +
    # log(sqrt(2 pi) s), with m and s found by scipy
    d, p, j = data, 0, 1
    rows = slice(d["start"][j] - 1, d["start"][j + 1] - 1)

    def log_f(u: float) -> float:
        return float(_row_logpmf(0, d, rows, d["eta"][p, rows][:, None] + u, 1.0).sum()
                     + stats.norm.logpdf(u, 0, d["sd"][p]))

    from scipy import optimize

    m = optimize.minimize_scalar(lambda u: -log_f(u), bracket=(-1, 1), tol=1e-12).x
    h = 1e-4
    curvature = (log_f(m + h) - 2 * log_f(m) + log_f(m - h)) / h**2
    by_hand = log_f(m) + 0.5 * math.log(2 * math.pi / -curvature)
    assert abs(one[0, p, j] - by_hand) < 1e-6


def test_the_planning_check_computes_the_integral_with_25_nodes() -> None:
    """The header's accuracy check computes each level's integral in numpy
    (`quadrature.log_integrals`): with Q = 25 and the rows' constant terms added back, it
    equals scipy's to 1e-8 for every family at 5 parameter points, levels of 0 to 40
    rows included."""
    data = _rows_data(np.random.default_rng(5), points=5, nodes=25)
    index = np.repeat(np.arange(len(SIZES)), SIZES)
    dists = ("bernoulli_logit", "binomial_logit", "poisson_log", "neg_binomial_2_log")
    for family, dist in enumerate(dists):
        y = (data["binary"] if family == 0 else data["count"]).astype(float)
        trials = data["trials"].astype(float) if family == 1 else None
        for p in range(5):
            eta, sd, phi = data["eta"][p], data["sd"][p], data["phi"][p]
            rows = slice(0, data["N"])
            constant = _row_logpmf(family, data, rows, eta[:, None], phi)[:, 0] - \
                quadrature._rows(dist, y, trials, eta, phi)[0]
            got, = quadrature.log_integrals(dist, y, trials, eta, index, len(SIZES), sd,
                                            phi, (25,))
            got += np.bincount(index, weights=constant, minlength=len(SIZES))
            want = [_level_integral(family, data, p, j) for j in range(len(SIZES))]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)


def test_the_planning_check_grows_with_the_sd_and_falls_with_q(monkeypatch) -> None:
    """The check's figures move as an error does: larger where the effects' sd is, smaller
    with more nodes; beyond `CHECK_LEVELS` levels it samples them and scales the sum up."""
    df = _binary(levels=60)
    spec = sb.Model("yb ~ x + (1 | g)", df, family="bernoulli", rewrites="none").spec
    group = spec.groups[0]
    few, many = (quadrature.Check.of(spec, group, q) for q in (3, 9))
    assert few.largest > 10 * many.largest > 0
    assert few.sampled == few.levels == 60 and few.total >= few.largest
    wide = _binary(levels=60, sd=3.0)
    spread = sb.Model("yb ~ x + (1 | g)", wide, family="bernoulli", rewrites="none").spec
    assert quadrature.Check.of(spread, spread.groups[0], 3).largest > few.largest
    monkeypatch.setattr(quadrature, "CHECK_LEVELS", 20)
    sample = quadrature.Check.of(spec, group, 3)
    assert (sample.sampled, sample.levels) == (20, 60)
    assert 0 < sample.largest <= few.largest and 0.2 < sample.total / few.total < 5
    assert "(its linear predictor, sd_g 0.608 and 1.22, 20 of 60 levels, a random sample)" \
        in sample.text("g")


def _binary(seed: int = 4, levels: int = 30, rows: int = 4, sd: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(levels), rows)
    x = rng.normal(size=g.size)
    u = rng.normal(0, sd, size=levels)
    p = special.expit(-0.4 + 0.7 * x + u[g])
    df = pd.DataFrame({"yb": rng.binomial(1, p), "x": x, "g": [f"s{i:02d}" for i in g]})
    return df.sample(frac=1, random_state=seed).reset_index(drop=True)


def test_auto_integrates_out_by_quadrature_only_where_it_pays_and_checks(monkeypatch) -> None:
    """"auto" takes quadrature for many levels mostly informed by the prior, when Q and 2Q
    agree on every checked level; otherwise it says which condition failed."""
    df = _binary(levels=60)
    few = sb.Model("yb ~ x + (1 | g)", df, family="bernoulli")
    exact_note = ("the bernoulli family has no exact normal marginal; 'beta_binomial' "
                  "integrates out beta probabilities instead (a different model for the "
                  "effects, asked for by name); g: ")
    name_it = "name it, rewrites={'g': 'quadrature'}, to integrate it out"
    assert decision(few, "marginalization") == (
        f"marginalization: not applied; {exact_note}60 levels: 'auto' integrates a "
        "non-gaussian intercept out by adaptive quadrature (an approximation) from 6000 "
        f"levels, where it costs less than sampling them; {name_it}")
    monkeypatch.setattr(quadrature, "AUTO_LEVELS", 50)
    auto = sb.Model("yb ~ x + (1 | g)", df, family="bernoulli")
    assert decision(auto, "marginalization") == (
        "marginalization: effects of g integrated out; chosen by 'auto' for 60 levels mostly "
        "informed by the prior (median share of a level's information from its rows 0.26; "
        "sampled, they make NUTS take many steps per draw), Q and 2Q agreeing to 0.0001 in "
        "every checked level: an APPROXIMATION, not exact: each level's effect integrated "
        "out by adaptive Gauss-Hermite quadrature with Q_g nodes about its mode (Q = 1 is "
        "Laplace's approximation; C++ compiled with the program, stanbhm's "
        "marginals/quadrature.hpp), and drawn back exactly from its conditional in "
        "generated quantities; checked at the pooled fit (its linear predictor, sd_g 0.608 "
        "and 1.22, all 60 levels): Q_g = 7 and 14 differ by at most 1.7e-05 in a level's "
        "log integral and by 0.00026 over all levels")
    assert "target += agq_bernoulli_lpmf(y | eta, start_g, sd_g, Q_g);" in auto.stan_code()
    kept = sb.Model("yb ~ x + (1 | g)", df, family="bernoulli", parameterization="centered")
    assert decision(kept, "marginalization") == (
        f"marginalization: not applied; {exact_note}its parameterization was requested; "
        "pass rewrites={'g': 'quadrature'} to integrate it out")
    informed = sb.Model("yb ~ x + (1 | g)", _binary(levels=60, rows=40), family="bernoulli")
    assert decision(informed, "marginalization") == (
        f"marginalization: not applied; {exact_note}its levels' rows inform them (median "
        "share of a level's information from its rows 0.84, above 0.5): sampled, they cost "
        f"NUTS few steps; {name_it}")
    monkeypatch.setattr(quadrature, "AUTO_TOLERANCE", 1e-9)
    inexact = sb.Model("yb ~ x + (1 | g)", df, family="bernoulli")
    assert decision(inexact, "marginalization") == (
        f"marginalization: not applied; {exact_note}Q = 7 and 14 nodes differ by 1.7e-05 in "
        "a level's log integral at the pooled fit, above the 1e-09 'auto' accepts; "
        f"{name_it} with more quadrature_points")


def test_quadrature_is_by_name_says_it_approximates_and_refuses_what_it_cannot() -> None:
    df = _binary()
    model = sb.Model("yb ~ x + (1 | g)", df, family="bernoulli",
                     rewrites={"g": "quadrature"}, quadrature_points=9)
    assert decision(model, "marginalization") == (
        "marginalization: effects of g integrated out; 'quadrature' requested: an "
        "APPROXIMATION, not exact: each level's effect integrated out by adaptive "
        "Gauss-Hermite quadrature with Q_g nodes about its mode (Q = 1 is Laplace's "
        "approximation; C++ compiled with the program, stanbhm's marginals/quadrature.hpp), "
        "and drawn back exactly from its conditional in generated quantities; checked at "
        "the pooled fit (its linear predictor, sd_g 0.827 and 1.65, all 30 levels): Q_g = 9 "
        "and 18 differ by at most 4.4e-05 in a level's log integral and by 0.00015 over all "
        "levels")
    code = model.stan_code()
    assert "    target += agq_bernoulli_lpmf(y | eta, start_g, sd_g, Q_g);\n" in code
    assert "    r_g = agq_bernoulli_rng(y, eta, start_g, sd_g);\n" in code
    data = model.stan_data()
    assert data["Q_g"] == 9
    # the fitted rows come sorted by level: level j's rows are start_g[j] .. start_g[j+1]-1
    levels = np.asarray(data["J_g"])[np.asarray(data["obs"]) - 1]
    assert (np.diff(levels) >= 0).all()
    assert list(data["start_g"]) == [1 + 4 * j for j in range(31)]
    assert model.program.cpp_options["USER_HEADER"] == str(HEADER)
    assert model.program.stanc_options == {"allow-undefined": True}
    with pytest.raises(PlanError, match=r"^rewrites\['g'\] = 'quadrature': adaptive quadrature "
                                        r"integrates the effects out of bernoulli, binomial "
                                        r"\(logit link\), poisson, negbinomial \(log link\) "
                                        r"rows, not the gaussian family$"):
        sb.Model("y ~ x + (1 | g)", grouped(), rewrites={"g": "quadrature"})
    with pytest.raises(PlanError, match=r"not the bernoulli \(probit link\) family$"):
        sb.Model("yb ~ x + (1 | g)", df, family="bernoulli", link="probit",
                 rewrites={"g": "quadrature"})
    with pytest.raises(PlanError, match=r"^rewrites\['g'\] = 'quadrature': it has slopes; only "
                                        r"a group intercept, \(1 \| factor\), is integrated "
                                        r"out$"):
        sb.Model("yb ~ x + (1 + x | g)", df, family="bernoulli", rewrites={"g": "quadrature"})
    for bad in (0, 101, 2.5, True):
        with pytest.raises(PlanError, match=rf"^quadrature_points={bad!r}: use a number of "
                                            r"nodes per level from 1 \(Laplace's "
                                            r"approximation\) to 100$"):
            sb.Model("yb ~ x + (1 | g)", df, family="bernoulli",
                     rewrites={"g": "quadrature"}, quadrature_points=bad)


@pytest.mark.slow
def test_threads_slice_the_levels_and_keep_the_log_density() -> None:
    """reduce_sum over slices of the levels: each slice integrates its own levels' rows,
    so the sum is the single-threaded program's (the negative binomial model of the
    gradient test below, whose program this shares)."""
    df, formula = count_data(), "ycm ~ c + (1 | g)"
    single = sb.Model(formula, df, family="negbinomial", rewrites={"g": "quadrature"})
    threaded = sb.Model(formula, df, family="negbinomial", rewrites={"g": "quadrature"},
                        threads=2, grainsize=2)
    assert decision(threaded, "threads") == (
        "threads: 2 per chain; reduce_sum over slices of the levels of g, whose effects are "
        "integrated out (each level's rows together); grainsize=2 requested")
    code = threaded.stan_code()
    assert ("    return agq_negbinomial_lpmf(y[first : last] | eta, phi, at, sd_g, Q_g);\n"
            in code)
    assert "    target += reduce_sum(partial_log_lik_lupmf, level_index, grainsize, y,\n" \
        in code
    assert_constant_gap(single, threaded)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["bernoulli", "negbinomial"])
def test_gradient_is_the_derivative_of_the_log_density(family) -> None:
    """The C++ hands Stan the gradient of its approximation, the mode's and the
    curvature's movement included: central differences of the program's own log density
    agree with it to 1e-6 at three points (in the sampler's coordinates: log sd, log
    phi)."""
    if family == "bernoulli":
        df, formula = _binary(), "yb ~ x + (1 | g)"
    else:
        df, formula = count_data(), "ycm ~ c + (1 | g)"
    model = sb.Model(formula, df, family=family, rewrites={"g": "quadrature"})
    rng = np.random.default_rng(2)
    logs = ["sd_g"] + (["phi"] if family == "negbinomial" else [])
    for _ in range(3):
        point = {"Intercept": float(rng.normal(-0.5, 0.3)), "b": [float(rng.normal(0, 0.3))],
                 "sd_g": float(rng.uniform(0.3, 2.0))}
        if family == "negbinomial":
            point["phi"] = float(rng.uniform(1, 6))
        grad = gradient(model, point)
        h = 1e-5
        for name in ["Intercept", *logs]:
            up, down = dict(point), dict(point)
            if name in logs:  # unconstrained: log, with its Jacobian
                up[name], down[name] = point[name] * math.exp(h), point[name] * math.exp(-h)
                jac = 2 * h
            else:
                up[name], down[name] = point[name] + h, point[name] - h
                jac = 0.0
            diff = (log_density(model, up, False) - log_density(model, down, False) + jac) / (2 * h)
            assert abs(diff - grad[name]) < 1e-6 * max(1.0, abs(diff)), (name, diff, grad[name])


@pytest.mark.slow
def test_posterior_and_drawn_effects_match_the_exact_program() -> None:
    """Q = 7 (the default) against the program that samples every effect: the
    hyper-parameters and each level's drawn effect agree in mean within Monte Carlo error,
    and the effects' posterior sds within 10%."""
    df = _binary()
    formula = "yb ~ x + (1 | g)"
    approx = sb.Model(formula, df, family="bernoulli", rewrites={"g": "quadrature"})
    plain = sb.Model(formula, df, family="bernoulli", rewrites="none")
    fits = [m.fit(chains=4, iter_warmup=500, iter_sampling=1000, seed=5).cmdstan
            for m in (approx, plain)]
    for var in ("Intercept", "b", "sd_g", "r_g"):
        a, b = (f.stan_variable(var) for f in fits)
        a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
        _agree(a, b, var)
        if var == "r_g":
            assert np.allclose(a.std(axis=0), b.std(axis=0), rtol=0.1), var
