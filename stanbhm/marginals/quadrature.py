"""The quadrature marginal: a group intercept of a bernoulli, binomial, poisson or
negative binomial model integrated out level by level by adaptive Gauss-Hermite
quadrature, as glmer does with ``nAGQ > 1`` for one scalar term. APPROXIMATE: Q nodes
per level (``quadrature_points``, default `DEFAULT_POINTS`); Q = 1 is the Laplace
approximation, and the error falls fast as Q grows. The header says so and names Q.

Given the rest of the linear predictor, each level's rows are independent of the other
levels', so the likelihood is a sum over levels of one-dimensional integrals,
``log ∫ Π_rows p(y | eta + u) normal(u | 0, sd) du``. The program calls C++ functions
compiled with it (``quadrature.hpp`` beside this module, CmdStan's ``USER_HEADER``):
the mode of each level's integrand by Newton steps, Q nodes about it scaled by its
curvature, and the gradient of that rule including how the mode and the curvature move
with the parameters, in double, with no autodiff through the Newton steps. The effects
are drawn back exactly from each level's conditional (rejection from an envelope of the
concave log integrand), and ``log_lik="marginal"`` gives each level's integral, for LOO
that leaves out a level.

The rows come sorted by level (`passes.threads.by_level`), so a level is one run of
rows, ``start_<g>[j]`` to ``start_<g>[j + 1] - 1``. Its template:
``stan_templates/marginals/quadrature.stan.j2``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from ..declarations import Declaration
from ..information import level_information, pooled_fit
from .base import Kind, Marginal, level_rows

if TYPE_CHECKING:
    from ..families import Family
    from ..spec import GroupEffects, ModelSpec

__all__ = ["DEFAULT_POINTS", "HEADER", "QUADRATURE", "SERVED", "Check", "log_integrals"]

#: The C++ the programs are compiled with (USER_HEADER).
HEADER = Path(__file__).with_name("quadrature.hpp")
#: Stan's densities on the link scale whose rows the C++ integrates (``agq_<family>_*``
#: there, adaptive Gauss quadrature): the log density's first three derivatives in eta
#: are written out for each.
SERVED = ("bernoulli_logit", "binomial_logit", "poisson_log", "neg_binomial_2_log")
#: Nodes per level unless ``quadrature_points`` says otherwise.
DEFAULT_POINTS = 7
#: Levels the planning-time check evaluates at most (a random sample beyond), so that it
#: costs a fraction of a second at 100k levels.
CHECK_LEVELS = 20_000
#: "auto" integrates a term out by quadrature from this many levels: below it the
#: sampled effects cost no more seconds per effective draw (the bernoulli election
#: model, 2 chains: 4759 respondents as fast, 9502 1.7x faster, 95k 3x and more;
#: docs/models.md)
AUTO_LEVELS = 6_000
#: ... where the levels' median share of their information from their own rows,
#: I_j tau^2 / (1 + I_j tau^2), is at most this: mostly prior, the funnel NUTS crosses
#: with many steps per draw when they are sampled
AUTO_WEIGHT = 0.5
#: ... and where Q and 2Q nodes differ by at most this in every checked level's log
#: integral (`Check`)
AUTO_TOLERANCE = 1e-4


def _rows(dist: str, y: np.ndarray, trials: np.ndarray | None, x: np.ndarray,
          phi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's log density at linear predictor `x`, less its terms without x, and its
    first two derivatives in x (quadrature.hpp's families)."""
    if dist in ("bernoulli_logit", "binomial_logit"):
        n = 1.0 if trials is None else trials
        p = special.expit(x)
        return y * x - n * np.logaddexp(0.0, x), y - n * p, -n * p * (1 - p)
    if dist == "poisson_log":
        e = np.exp(x)
        return y * x - e, y - e, -e
    log_e_phi = np.logaddexp(x, np.log(phi))  # neg_binomial_2_log
    q = np.exp(x - log_e_phi)
    return y * x - (y + phi) * log_e_phi, y - (y + phi) * q, -(y + phi) * q * (1 - q)


def log_integrals(dist: str, y: np.ndarray, trials: np.ndarray | None, eta: np.ndarray,
                  index: np.ndarray, n_levels: int, sd: float, phi: float,
                  nodes: tuple[int, ...]) -> list[np.ndarray]:
    """Each level's ``log ∫ Π_rows p(y | eta + u) normal(u | 0, sd) du`` by adaptive
    Gauss-Hermite quadrature, once per count of `nodes`, less the rows' terms without eta:
    the rule of quadrature.hpp in numpy, vectorized over the levels (`index`: each row's
    0-based level), for the check at planning time. The modes, by Newton steps kept
    inside the bracket the signs of the derivative give as in the C++, do not depend on
    the count, so they are found once for all of them."""
    def sums(values: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=values, minlength=n_levels)

    s2 = sd * sd
    u = np.zeros(n_levels)
    lo, hi = np.full(n_levels, -np.inf), np.full(n_levels, np.inf)
    for _ in range(200):
        _, d1, d2 = _rows(dist, y, trials, eta + u[index], phi)
        g, h = sums(d1) - u / s2, sums(d2) - 1 / s2
        newton = -g / h
        moving = np.abs(newton) * np.sqrt(-h) >= 1e-10
        if not moving.any():
            break
        lo = np.where(moving & (g > 0), u, lo)
        hi = np.where(moving & (g <= 0), u, hi)
        step = u + newton
        step = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
        u = np.where(moving, step, u)
    scale = np.sqrt(2.0) / np.sqrt(-h)
    out = []
    for count in nodes:
        x, w = special.roots_hermite(count)
        at_nodes = np.empty((count, n_levels))
        for k in range(count):
            z = u + scale * x[k]
            f = sums(_rows(dist, y, trials, eta + z[index], phi)[0])
            at_nodes[k] = np.log(w[k]) + x[k] ** 2 + f - 0.5 * z * z / s2
        out.append(np.log(scale) - np.log(sd) - 0.5 * np.log(2 * np.pi)
                   + special.logsumexp(at_nodes, axis=0))
    return out


@dataclass(frozen=True)
class Check:
    """Q against 2Q at the pooled fit: the largest difference in a level's log integral
    and the difference summed over all levels (scaled up from the sample), at each sd."""

    points: int
    sds: tuple[float, ...]
    sampled: int
    levels: int
    largest: float
    total: float

    def text(self, ident: str) -> str:
        sample = (f"{self.sampled} of {self.levels} levels, a random sample" if
                  self.sampled < self.levels else f"all {self.levels} levels")
        sds = " and ".join(f"{sd:.3g}" for sd in self.sds)
        return (f"; checked at the pooled fit (its linear predictor, sd_{ident} {sds}, "
                f"{sample}): Q_{ident} = {self.points} and {2 * self.points} differ by at "
                f"most {self.largest:.2g} in a level's log integral and by "
                f"{self.total:.2g} over all levels")

    @classmethod
    def of(cls, spec: ModelSpec, group: GroupEffects, points: int) -> Check:
        """At the pooled fit's linear predictor, the other terms' level estimates added,
        and at the sd the pooled fit estimates for the term and twice that (1 and 2 where
        it estimates none); the negative binomial's phi by the method of moments."""
        pooled = pooled_fit(spec)
        obs = spec.observed
        eta = pooled.eta.copy()
        for t, other in enumerate(spec.groups):
            if other is group:
                continue
            rows = other.index[obs] - 1
            for k in range(other.k):
                eta += spec.fitted_Z[t][:, k] * pooled.estimates[(t, k)][rows]
        index = group.index[obs] - 1
        n_levels = group.n_levels
        y = spec.y[obs].astype(float)
        trials = spec.trials[obs].astype(float) if spec.trials is not None else None
        dist = spec.family_row.dist
        phi = 1.0
        if dist == "neg_binomial_2_log":
            mu = np.exp(np.clip(eta, -30, 30))
            extra = float(np.sum((y - mu) ** 2 - mu))
            phi = float(np.clip(np.sum(mu**2) / extra, 0.1, 1e4)) if extra > 0 else 1e4
        if n_levels > CHECK_LEVELS:
            chosen = np.zeros(n_levels, dtype=bool)
            chosen[np.random.default_rng(0).choice(n_levels, CHECK_LEVELS, replace=False)] = True
            keep = chosen[index]
            renumber = np.cumsum(chosen) - 1
            eta, y, index = eta[keep], y[keep], renumber[index[keep]]
            trials = trials[keep] if trials is not None else None
            sampled = CHECK_LEVELS
        else:
            sampled = n_levels
        tau2 = level_information(spec, group)[0].tau2
        sd = float(np.sqrt(tau2)) if tau2 > 0 else 1.0
        largest = total = 0.0
        for at in (sd, 2 * sd):
            few, more = log_integrals(dist, y, trials, eta, index, sampled, at, phi,
                                      (points, 2 * points))
            gap = np.abs(few - more)
            largest = max(largest, float(gap.max(initial=0.0)))
            total = max(total, float(gap.sum()) * n_levels / sampled)
        return cls(points, (sd, 2 * sd), sampled, n_levels, largest, total)


#: The checks made for a spec, by (term, nodes): "auto" and the header ask for the same.
_CHECKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check(spec: ModelSpec, group: GroupEffects, points: int) -> Check:
    """`Check.of`, made once per spec, term and count of nodes."""
    made = _CHECKS.setdefault(spec, {})
    key = (group.term_name, points)
    if key not in made:
        made[key] = Check.of(spec, group, points)
    return made[key]


class Quadrature(Kind):
    name = "quadrature"
    rewrite = "quadrature"
    conjugate = None
    exact = False
    integrated_log_lik = True
    needs_sorted_rows = True
    takes_points = True
    prefixes = ("Q", "start")
    cpp_header = HEADER
    by_auto = True
    threads = True

    def family_reason(self, family: Family) -> str:
        if family.dist not in SERVED:
            served = "bernoulli, binomial (logit link), poisson, negbinomial (log link)"
            return (f"adaptive quadrature integrates the effects out of {served} rows, not "
                    f"the {family.title} family")
        return ""

    def decision(self, term: str) -> str:
        return f"'quadrature' requested: {self._approximation(term)}"

    @staticmethod
    def _approximation(term: str) -> str:
        return (f"an APPROXIMATION, not exact: each level's "
                f"effect integrated out by adaptive Gauss-Hermite quadrature with Q_{term} "
                "nodes about its mode (Q = 1 is Laplace's approximation; C++ compiled with "
                "the program, stanbhm's marginals/quadrature.hpp), and drawn back exactly "
                "from its conditional in generated quantities")

    def auto_reason(self, spec: ModelSpec, group: GroupEffects, points: int | None) -> str:
        term, n = group.term_name, len(group.levels)
        name_it = f"name it, rewrites={{'{term}': 'quadrature'}}, to integrate it out"
        if n < AUTO_LEVELS:
            return (f"{n} levels: 'auto' integrates a non-gaussian intercept out by adaptive "
                    f"quadrature (an approximation) from {AUTO_LEVELS} levels, where it "
                    f"costs less than sampling them; {name_it}")
        share = _median_share(spec, group)
        if share > AUTO_WEIGHT:
            return (f"its levels' rows inform them (median share of a level's information "
                    f"from its rows {share:.2f}, above {AUTO_WEIGHT}): sampled, they cost "
                    f"NUTS few steps; {name_it}")
        points = points or DEFAULT_POINTS
        largest = check(spec, group, points).largest
        if largest > AUTO_TOLERANCE:
            return (f"Q = {points} and {2 * points} nodes differ by {largest:.2g} in a "
                    f"level's log integral at the pooled fit, above the {AUTO_TOLERANCE:g} "
                    f"'auto' accepts; {name_it} with more quadrature_points")
        return ""

    def auto_decision(self, spec: ModelSpec, group: GroupEffects) -> str:
        return (f"chosen by 'auto' for {len(group.levels)} levels mostly informed by the "
                f"prior (median share of a level's information from its rows "
                f"{_median_share(spec, group):.2f}; sampled, they make NUTS take many "
                f"steps per draw), Q and 2Q agreeing to {AUTO_TOLERANCE:g} in every "
                f"checked level: {self._approximation(group.term_name)}")

    def checked(self, spec: ModelSpec, group: GroupEffects, ident: str,
                points: int | None) -> str:
        return check(spec, group, points or DEFAULT_POINTS).text(ident)

    def declarations(self, m: Marginal, lik: Any, p: Any) -> tuple[Declaration, ...]:
        g = m.ident
        return (*level_rows(m, p),
                Declaration("data", "int<lower=1>", f"Q_{g}",
                            "quadrature nodes per level (1: Laplace's approximation)"))

    def level_data(self, m: Marginal) -> dict[str, Any]:
        return {f"Q_{m.ident}": m.points}

    def slice_data(self, m: Marginal) -> list[str]:
        return [f"start_{m.ident}", f"Q_{m.ident}"]

    @staticmethod
    def call(lik: Any, rows: Any, g: str, what: str, y: str = "y",
             start: str | None = None) -> tuple[str, str]:
        """(function, arguments) of the C++ function `what` ("lpmf", "levels", "rng")
        over the fitted `rows` (outcome `y`): the family's density arguments around
        ``eta``, then where each level's rows start (`start`, default ``start_<g>``) and
        the sd (and Q but for draws)."""
        _, args = lik.density(rows)
        tail = [start or f"start_{g}", f"sd_{g}"] + ([] if what == "rng" else [f"Q_{g}"])
        function = f"agq_{lik.family.name}_{what}"
        if what == "lpmf":
            first, *rest = args
            return function, ", ".join([f"{y} | {first}", *rest, *tail])
        return function, ", ".join([y, *args, *tail])

    @staticmethod
    def signatures(lik: Any) -> list[tuple[str, list[str]]]:
        """(return type and name, argument declarations) of the functions the program
        declares (defined in `HEADER`)."""
        name, args = f"agq_{lik.family.name}", []
        for template in lik.family.args:
            if template == "{eta}":
                args.append("vector eta")
            elif template == "{trials}":
                args.append("array[] int trials")
            else:
                args.append(f"real {template}")
        head = ["array[] int y", *args, "array[] int start", "real sd"]
        return [(f"real {name}_lpmf", [*head, "int nodes"]),
                (f"vector {name}_levels", [*head, "int nodes"]),
                (f"vector {name}_rng", head)]


def _median_share(spec: ModelSpec, group: GroupEffects) -> float:
    """The levels' median share of their information from their own rows at the pooled
    fit (`information.LevelInformation.weights`)."""
    return float(np.median(level_information(spec, group)[0].weights))


QUADRATURE = Quadrature()
