"""How much the data say about each level of a group term, before sampling.

The rule behind ``parameterization="auto"``. For the normal hierarchical model
``y_ij ~ N(theta_j, s_j)``, ``theta_j ~ N(mu, tau)``, the fraction of centering that
makes a level's sampled variable independent of ``mu`` a posteriori is

    w_j = I_j / (I_j + 1 / tau^2),    I_j the data precision about theta_j

(Papaspiliopoulos, Roberts & Skold 2007): w_j near 1 (well-informed levels) calls for
centering, near 0 (the eight-schools funnel) for non-centering. Here I_j and tau^2 are
estimated in one pass over the data, with numpy and no Stan run:

- a pooled fit without the group term: least squares for gaussian-like families, a few
  iteratively reweighted least squares steps for the link families;
- its working residuals r_i and weights v_i (1/sigma^2 with sigma^2 the pooled
  within-level residual variance; 1/se_i^2 for known standard errors; n p (1 - p),
  mu, mu / (1 + mu / phi) or the gamma shape for the link families);
- per level and effect column z: I_j = sum v z^2 and the estimate
  b_j = sum v z r / I_j of the level's deviation, every group term's effects fitted in
  turn (backfitting) so that one term's residual does not hold the others' effects;
- tau^2 by the DerSimonian-Laird moment estimator over the levels, floored at 0.

The same pooled fit, with each coefficient's prior, gives the population coefficients'
approximate posterior sds (`posterior_sds`). Passes (`passes.parameterization`,
`passes.scale`) and the initial metric (`metric`) all read these numbers, so they live
outside `passes`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .families import LINKS

if TYPE_CHECKING:
    from .priors import Prior
    from .spec import GroupEffects, ModelSpec

#: IRLS steps for the pooled fit of the link families, at most (it need not be precise);
#: it stops sooner once no linear predictor moves by more than `IRLS_TOLERANCE`.
IRLS_STEPS = 8
IRLS_TOLERANCE = 1e-6
#: Rows the IRLS steps run on, at most (`_irls`).
IRLS_ROWS = 100_000
#: Rows per block of ``X' W X``, so that no weighted copy of a large X is made.
BLOCK = 65536


@dataclass(frozen=True, eq=False)
class LevelInformation:
    """Per level: data precision about one effect; the estimated prior variance."""

    effect: str
    precision: np.ndarray
    tau2: float

    @property
    def weights(self) -> np.ndarray:
        """The fraction of centering that suits each level (0 when tau^2 is 0)."""
        return self.precision * self.tau2 / (1 + self.precision * self.tau2)

    def cells(self) -> tuple[str, str, str, str]:
        """The numbers behind the choice, for one row of the header's table."""
        w, p = self.weights, self.precision
        return (self.effect, f"{np.sqrt(self.tau2):.3g}", f"{p.min():.3g} to {p.max():.3g}",
                f"{w.min():.2f} to {w.max():.2f}")


def information_table(info: tuple[LevelInformation, ...]) -> tuple[str, ...]:
    """One aligned line per effect, under a heading: a term with 23 effects reads as a
    table, where one line of them ran to 1,840 characters."""
    rows = [("effect", "tau ~", "data precision per level", "weights"),
            *(i.cells() for i in info)]
    widths = [max(len(row[c]) for row in rows) for c in range(3)]
    return tuple("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)),
                            row[3]]) for row in rows)


def _design(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Observed rows: the pooled design's columns of X (the intercept, when the model has
    one, is implied: see `_block`) and the offset. No copy when every row is observed."""
    X = spec.fitted_X
    offset = spec.offset[spec.observed] if spec.offset is not None else np.zeros(len(X))
    return X, offset


def _gram(X: np.ndarray, intercept: bool, w: np.ndarray,
          known: np.ndarray | None = None) -> np.ndarray:
    """A'WA of the pooled design A = [1, X] (or X) and the weights w, a block of rows of X
    at a time: the design is never built whole (3M rows x 41 columns is 1 GB). Equal
    weights take A'A from `known` (`FixedEffects.gram`) when given."""
    k, first = X.shape[1], int(intercept)
    same = len(w) > 0 and bool(np.all(w == w[0]))  # then X'X, half the work of X'(wX)
    if same and known is not None:
        return known * w[0]
    G = np.zeros((k + first, k + first))
    for start in range(0, len(X), BLOCK):
        rows = X[start:start + BLOCK]
        weighted = rows if same else rows * w[start:start + BLOCK, None]
        G[first:, first:] += weighted.T @ rows
    if same:
        G *= w[0]
    if intercept:
        G[0, 0] = w.sum()
        G[0, 1:] = G[1:, 0] = _cross(X, False, w)
    return G


def _cross(X: np.ndarray, intercept: bool, v: np.ndarray) -> np.ndarray:
    """A'v of the pooled design A = [1, X] (or X)."""
    out = X.T @ v
    return np.concatenate([[v.sum()], out]) if intercept else out


def _fitted(X: np.ndarray, intercept: bool, beta: np.ndarray) -> np.ndarray:
    """A beta of the pooled design A."""
    return X @ beta[int(intercept):] + (beta[0] if intercept else 0.0)


def _lstsq(X: np.ndarray, intercept: bool, y: np.ndarray, w: np.ndarray,
           known: np.ndarray | None = None) -> np.ndarray:
    """Weighted least squares by the normal equations, their columns scaled to unit
    diagonal, with one step of iterative refinement. The pooled fit only steers the
    parameterization rule; this way it takes one product with the rows (0.3 s at 1M rows
    x 41 columns here, against 2.7 s for numpy's SVD of the rows), and the refinement
    brings well-conditioned designs to the SVD's answer. A rank-deficient design gets
    the minimum-norm solution of the scaled equations."""
    if X.shape[1] + int(intercept) == 0:
        return np.zeros(0)
    G = _gram(X, intercept, w, known)
    d = np.sqrt(np.diag(G))
    d[d == 0] = 1.0
    scaled = G / np.outer(d, d)

    def solve(v: np.ndarray) -> np.ndarray:
        return np.linalg.lstsq(scaled, v / d, rcond=None)[0] / d

    beta = solve(_cross(X, intercept, w * y))
    return beta + solve(_cross(X, intercept, w * (y - _fitted(X, intercept, beta))))


def working_residuals(spec: ModelSpec,
                      ) -> tuple[np.ndarray, np.ndarray, bool, np.ndarray | None]:
    """(residuals on the link scale, their weights, whether sigma^2 is still to be
    estimated, the linear predictor of a family with a link function or None) from the
    pooled fit without group terms."""
    fam = spec.family_row
    obs = spec.observed
    y = spec.y[obs]
    X, offset = _design(spec)
    intercept = spec.fixed.intercept
    if fam.cutpoints:
        return (*_latent_residuals(X, intercept, y - offset), None)
    if fam.identity_scale:
        target = np.log(y) if fam.log_outcome else y
        w = 1 / spec.se[obs] ** 2 if spec.se is not None else np.ones(len(y))
        beta = _lstsq(X, intercept, target - offset, w, spec.fixed.gram)
        return target - offset - _fitted(X, intercept, beta), w, spec.se is None, None
    trials = spec.trials[obs].astype(float) if spec.trials is not None else None
    start = fam.intercept_location(y, trials, spec.offset[obs] if spec.offset is not None
                                   else None)
    beta = _irls(fam.link, X, intercept, y, offset, trials, start)
    eta = _fitted(X, intercept, beta) + offset
    mu, dmu, var = _moments(fam.link, eta, trials)
    if fam.pooled_variance is not None:
        var = fam.pooled_variance(y, mu, dmu)
    w = np.maximum(dmu**2 / var, 1e-12)
    return (y - mu) / dmu, w, False, eta


def _irls(link: str, X: np.ndarray, intercept: bool, y: np.ndarray, offset: np.ndarray,
          trials: np.ndarray | None, start: float) -> np.ndarray:
    """The pooled GLM's coefficients by IRLS from the intercept `start`, on every
    `step`-th row when there are more than `IRLS_ROWS` (the first of each step, so the
    same rows each time): the estimate steers the parameterization rule, for which a
    sample of 100k rows is as good as millions (its noise is a fraction of a percent of
    a coefficient's sd), at a fraction of the cost of each step's weighted product."""
    step = -(-len(y) // IRLS_ROWS)
    if step > 1:
        X, y, offset = np.ascontiguousarray(X[::step]), y[::step], offset[::step]
        trials = trials[::step] if trials is not None else None
    eta = np.full(len(y), start) + offset
    beta = np.zeros(X.shape[1] + int(intercept))
    for _ in range(IRLS_STEPS):
        mu, dmu, var = _moments(link, eta, trials)
        w = np.maximum(dmu**2 / var, 1e-12)
        z = eta - offset + (y - mu) / dmu
        beta = _lstsq(X, intercept, z, w)
        moved, eta = eta, _fitted(X, intercept, beta) + offset
        if np.max(np.abs(eta - moved), initial=0.0) < IRLS_TOLERANCE:
            break
    return beta


def _latent_residuals(X: np.ndarray, intercept: bool, y: np.ndarray,
                      ) -> tuple[np.ndarray, np.ndarray, bool]:
    """An ordinal outcome's pooled fit: least squares on the categories' numbers, its
    residuals rescaled to the logistic latent variable the cutpoints cut (variance
    pi^2 / 3), each row weighing 3 / pi^2. The categories' numbers stand in for the latent
    scale; the rule's weights depend on the ratio of precision to tau^2, which the
    rescaling leaves as it is."""
    resid = y - _fitted(X, intercept, _lstsq(X, intercept, y, np.ones(len(y))))
    sd = float(np.std(resid)) if len(resid) > 1 else 0.0
    latent = np.pi / np.sqrt(3)
    scale = latent / sd if sd > 0 else 1.0
    return resid * scale, np.full(len(y), 1 / latent**2), False


def _moments(link: str, eta: np.ndarray, trials: np.ndarray | None):
    """Mean, d mean / d eta and the variance function of the pooled GLM."""
    if link == "logit":
        p = 1 / (1 + np.exp(-eta))
        n = trials if trials is not None else 1.0
        mu = n * p
        dmu = np.maximum(n * p * (1 - p), 1e-12)
        return mu, dmu, dmu
    if link in ("probit", "cloglog"):  # a probability under another link: binomial
        p = np.clip(LINKS[link].mean(eta), 1e-12, 1 - 1e-12)
        n = trials if trials is not None else 1.0
        return n * p, np.maximum(n * LINKS[link].slope(eta), 1e-12), n * p * (1 - p)
    mu = np.exp(np.clip(eta, -30, 30))
    return mu, mu, mu


#: Backfitting sweeps over every group term's effects (two settle the estimates).
SWEEPS = 2


def _backfit(spec: ModelSpec, r: np.ndarray, w: np.ndarray):
    """Per-level estimates of every effect of every group term, fitted in turn to what
    the others leave (backfitting), and the residual that remains. Without this the
    residual of one term would still hold the others' level effects, and sigma^2 (so
    every precision) would be overestimated for crossed or multi-effect models."""
    obs = spec.observed
    # per effect, what the sweeps share: its levels, covariate and weighted sum of squares
    effects = []
    for t, group in enumerate(spec.groups):
        index = group.index[obs] - 1
        sums = LevelSums(index, group.n_levels)
        covariates = spec.fitted_Z[t].T
        for k in range(group.k):
            z = np.ascontiguousarray(covariates[k])
            effects.append(((t, k), z, sums, sums(w * z * z)))
    estimates: dict[tuple[int, int], np.ndarray] = {}
    squares = {key: S for key, _, _, S in effects}
    resid = r.copy()
    for _ in range(SWEEPS):
        for key, z, sums, S in effects:
            old = estimates.get(key)
            if old is not None:  # the residual with this effect's estimate put back
                resid += z * sums.spread(old)
            T = sums(w * z * resid)
            new = np.where(S > 0, T / np.where(S > 0, S, 1), 0.0)
            estimates[key] = new
            resid -= z * sums.spread(new)
    return estimates, squares, resid


class LevelSums:
    """Sums of values over the rows of each level (0-based `index`, `n_levels` levels):
    where the rows come level by level (the retail data's stores), the sums of runs,
    ten times faster than numpy's bincount at 800k rows; otherwise bincount."""

    def __init__(self, index: np.ndarray, n_levels: int) -> None:
        self.index, self.n_levels = index, n_levels
        self.starts = self.counts = None
        if len(index) and bool(np.all(index[1:] >= index[:-1])):
            self.starts = np.flatnonzero(np.diff(index, prepend=-1))
            self.counts = np.bincount(index, minlength=n_levels)

    def spread(self, per_level: np.ndarray) -> np.ndarray:
        """Each row's level's value: ``per_level[index]``, repeated run by run where the
        rows come level by level (four times faster than the gather at 800k rows)."""
        if self.counts is None:
            return per_level[self.index]
        return np.repeat(per_level, self.counts)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if self.starts is None:
            return np.bincount(self.index, weights=values, minlength=self.n_levels)
        out = np.zeros(self.n_levels)
        out[self.index[self.starts]] = np.add.reduceat(values, self.starts)
        return out


@dataclass(frozen=True, eq=False)
class PooledFit:
    """What every group term's information is read from: the pooled fit's working
    weights, each term's per-level estimates after backfitting and per-level weighted
    sums of its squared covariate (sum of w z^2: its data precision times sigma^2), and
    sigma^2 (1 when the weights already hold the variance)."""

    weights: np.ndarray
    estimates: dict[tuple[int, int], np.ndarray]
    squares: dict[tuple[int, int], np.ndarray]
    sigma2: float
    #: the fitted rows' linear predictor without group terms, for a family with a link
    #: function (None otherwise): the quadrature marginal's accuracy check evaluates
    #: its integrals there
    eta: np.ndarray | None = None


#: Each spec's pooled fit, kept while the spec lives: every group term's parameterization,
#: ScaleCoefficients and the initial metric (`stanbhm.metric`) ask for it.
_POOLED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def pooled_fit(spec: ModelSpec) -> PooledFit:
    """The pooled fit and backfitting, made once per spec: they do not depend on the
    term asked about, and at 300k bernoulli rows they take seconds."""
    if spec not in _POOLED:
        _POOLED[spec] = _pooled_fit(spec)
    return _POOLED[spec]


def _pooled_fit(spec: ModelSpec) -> PooledFit:
    r, w, estimate_sigma, eta = working_residuals(spec)
    estimates, squares, resid = _backfit(spec, r, w)
    sigma2 = 1.0
    if estimate_sigma:
        fitted = sum(int(np.count_nonzero(b)) for b in estimates.values())
        dof = max(len(r) - fitted - spec.fixed.p - 1, 1)
        sigma2 = max(float(np.sum(w * resid**2)) / dof, 1e-12)
    return PooledFit(w, estimates, squares, sigma2, eta)


def level_information(spec: ModelSpec, group: GroupEffects) -> tuple[LevelInformation, ...]:
    """Precision per level and tau^2, for each effect of `group`."""
    pooled = pooled_fit(spec)
    t = next(i for i, g in enumerate(spec.groups) if g is group)
    out = []
    for k, effect in enumerate(group.effect_names):
        S = pooled.squares[(t, k)] / pooled.sigma2
        seen = S > 0
        b = pooled.estimates[(t, k)]
        out.append(LevelInformation(effect, S, _dersimonian_laird(b[seen], S[seen])))
    return tuple(out)


def _dersimonian_laird(b: np.ndarray, S: np.ndarray) -> float:
    """The moment estimate of the between-level variance (0 when the levels agree)."""
    if len(b) < 2:
        return 0.0
    mean = float(np.sum(S * b) / np.sum(S))
    q = float(np.sum(S * (b - mean) ** 2))
    denom = float(np.sum(S) - np.sum(S**2) / np.sum(S))
    return max((q - (len(b) - 1)) / denom, 0.0) if denom > 0 else 0.0


def prior_scale(prior: Prior) -> float:
    """The scale of a coefficient's prior (its last argument: every prior ``b`` accepts
    is a location-scale family on the real line; 1 for std_normal)."""
    return float(prior.args[-1]) if prior.args else 1.0


def posterior_sds(X: np.ndarray, weights: np.ndarray, intercept: bool,
                  prior_sds: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """sd of each coefficient of the weighted least squares posterior with normal priors
    of `prior_sds` (the intercept, first when present, flat and integrated over); `known`
    as `_gram` takes it."""
    p = X.shape[1] + int(intercept)
    A = _gram(X, intercept, weights, known)
    A[np.arange(int(intercept), p), np.arange(int(intercept), p)] += 1 / prior_sds**2
    variance = np.diag(np.linalg.pinv(A, hermitian=True))[int(intercept):]
    return np.sqrt(np.clip(variance, 0.0, None))
