"""The inverse metric NUTS's warmup starts from: each unconstrained parameter's
approximate posterior variance, known before sampling.

CmdStan starts warmup with a unit metric and keeps it through the initial buffer and
the first window (about 100 iterations). Where the parameters' posterior scales differ
by orders of magnitude (a log sd a hundred times narrower than its level effects),
every early tree has to cross the widest at the step size the narrowest allows, at
the maximum tree depth. Started from this guess instead, warmup's first trees are as
short as those of the metric a full warmup adapts (docs/benchmark-history.md, "The
initial metric", has the bernoulli election model's numbers). Adaptation still runs and
replaces the guess at the end of each window, so the posterior is the same: only the
start of warmup changes.

Started from the guess, a chain reaches the posterior's bulk within about ten
iterations (the bernoulli election model at 300k rows: its log density from -193,500 to
-173,050 by the tenth), so the 75 iterations CmdStan's initial buffer spends before its
first metric window are mostly wasted: `INIT_BUFFER` iterations take their place, and the
metric windows get the rest. At 30k rows, 2 chains x 500 draws, the sampling after 100
warmup iterations so placed (buffers 20 and 20, first window 30) was as efficient as
after 300 with CmdStan's windows (1.09 and 1.16 effective draws per draw, 15.0 and 13.6
leapfrog steps per draw), and after 150 placed so, better than after 150 with CmdStan's
(1.15 against 0.89).

The guesses come from the pooled fit of `information` (working weights, per level
data precision I_j, tau^2 of each effect by DerSimonian-Laird), for the normal
hierarchical model with weights w_j = I_j tau^2 / (1 + I_j tau^2):

- a level's effect: variance V_j = 1 / (I_j + 1 / tau^2), in the units it is sampled
  in (divided by tau^(2 (1 - c_j)) for a fraction c_j of centering);
- the log of an sd: 1 / (2 sum_j w_j^2), the inverse of the marginal likelihood's
  information about log tau (capped at 1, a prior-dominated scale);
- the intercept and a coefficient a term varies: 1 / sum_j 1 / (tau^2 + 1 / I_j) (the
  precision of the levels' mean), or the pooled fit's variance where that is larger;
- a coefficient sampled in units of its sd (`passes.scale`): 1; plainly: its pooled
  variance; log sigma of a gaussian-like family: 1 / (2 N).

Parameters it has no rule for (correlations, the horseshoe, other auxiliary parameters,
a term whose tau^2 estimate is 0, bounds other than a lower bound of 0) keep 1, as in
CmdStan's default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .information import (
    LevelInformation,
    PooledFit,
    level_information,
    pooled_fit,
    posterior_sds,
    prior_scale,
)

if TYPE_CHECKING:
    from .parts import FixedPart, GroupPart
    from .plan import Plan
    from .spec import ModelSpec

#: Largest variance guessed for the log of an sd: beyond it the prior rules, and 1 is
#: CmdStan's own start.
MAX_LOG_SD_VARIANCE = 1.0
#: CmdStan's initial adaptation buffer (iterations before the first metric window) when
#: warmup starts from the guess; CmdStan's own is 75.
INIT_BUFFER = 25


@dataclass(frozen=True, eq=False)
class InitialMetric:
    """Per declared parameter, in the program's order: its name and the variance of each
    of its unconstrained coordinates (in Stan's order: column-major, arrays outermost)."""

    names: tuple[str, ...]
    variances: tuple[np.ndarray, ...]

    @property
    def vector(self) -> np.ndarray:
        """The diagonal inverse metric CmdStan reads (``inv_metric``)."""
        return np.concatenate(self.variances)

    def table(self) -> pd.Series:
        """Each parameter's guessed posterior sd on the unconstrained scale (the range
        over its coordinates), for a look in a notebook."""
        rows = {}
        for name, v in zip(self.names, self.variances, strict=True):
            sd = np.sqrt(v)
            rows[name] = f"{sd.min():.3g}" if sd.min() == sd.max() else \
                f"{sd.min():.3g} to {sd.max():.3g}"
        return pd.Series(rows, name="sd, unconstrained")


@dataclass(frozen=True, eq=False)
class TermGuess:
    """One effect of a group term: the variances of its log sd and of its level effects
    as sampled, and of the mean of its levels."""

    log_sd: float
    effects: np.ndarray
    mean: float
    tau2: float

    @classmethod
    def of(cls, info: LevelInformation, centering: np.ndarray) -> TermGuess | None:
        tau2 = info.tau2
        if not tau2 > 0:
            return None
        I = info.precision  # noqa: E741 (the information's usual name)
        w = info.weights
        log_sd = min(1 / max(2 * float(np.sum(w**2)), 1e-12), MAX_LOG_SD_VARIANCE)
        effects = 1 / (I + 1 / tau2) / tau2 ** (1 - centering)
        # each level's estimate informs the mean with precision 1 / (tau^2 + 1 / I_j)
        mean = 1 / max(float(np.sum(I / (1 + I * tau2))), 1e-12)
        return cls(log_sd, effects, mean, tau2)


def initial_metric(spec: ModelSpec, plan: Plan) -> InitialMetric:
    """The guess for `plan`'s program (from the pooled fit the passes made for `spec`)."""
    pooled = pooled_fit(spec)
    guesses: dict[str, list[TermGuess | None]] = {}
    for group, term in zip(spec.groups, plan.groups, strict=True):
        infos = plan.information.get(term.term_name) or level_information(spec, group)
        centering = term.c_levels if term.c_levels is not None else \
            np.full(term.n_levels, float(term.c))
        guesses[term.term_name] = [TermGuess.of(i, centering) for i in infos]
    guessed: dict[str, np.ndarray] = {}

    def add(name: str, v: np.ndarray | float, size: int = 1) -> None:
        guessed[name] = np.broadcast_to(np.asarray(v, dtype=float), (size,)).copy()

    _fixed(spec, plan, plan.fixed, pooled, guesses, add)
    for part in plan.groups:
        _group(part, guesses[part.term_name], add)
    n_obs = int(spec.observed.sum())
    for a in plan.aux.params:
        add(a.name, 1 / (2 * n_obs) if a.name == "sigma" and n_obs else 1.0)
    # in the order the parameters block declares them, which is CmdStan's
    names = tuple(d.name for d in plan.declarations() if d.block == "parameters")
    if set(names) != set(guessed):
        raise AssertionError(f"the initial metric guesses {sorted(guessed)}, but the program "
                             f"declares the parameters {sorted(names)}")
    return InitialMetric(names, tuple(guessed[name] for name in names))


def _fixed(spec: ModelSpec, plan: Plan, x: FixedPart, pooled: PooledFit,
           guesses: dict[str, list[TermGuess | None]], add) -> None:
    """Intercept, and b or the horseshoe's four."""
    means: dict[str, float] = {}  # per effect name: the widest mean of levels varying it
    for g in plan.groups:
        for effect, guess in zip(g.effects, guesses[g.term_name], strict=True):
            if guess is not None:
                means[effect] = max(means.get(effect, 0.0), guess.mean)
    weights = pooled.weights / pooled.sigma2
    if x.cutpoints:  # the first cutpoint and the logs of the gaps: unit scale
        add("Intercept", 1.0, len(x.cutpoints))
    elif x.intercept:
        if x.intercept_bounds.lower > -np.inf or x.intercept_bounds.upper < np.inf:
            add("Intercept", 1.0)
        else:
            pooled_var = 1 / max(float(weights.sum()), 1e-12)
            add("Intercept", max(pooled_var, means.get("Intercept", 0.0)))
    if not x.k:
        return
    if x.horseshoe:
        for name, size in (("hs_z", x.k), ("hs_global", 1), ("hs_local", x.k), ("hs_slab", 1)):
            add(name, 1.0, size)
        return
    if x.scale is not None:
        v = np.ones(x.k)
    else:
        priors = np.array([prior_scale(p) for p in x.b_priors])
        v = posterior_sds(spec.fixed.X[spec.observed], weights, spec.fixed.intercept,
                          priors) ** 2
        v = np.where(np.isfinite(v) & (v > 0), v, 1.0)
    for j, name in enumerate(x.names):
        if name in means:  # a term varies it: sampled in its own units (scale 1)
            v[j] = max(v[j] if x.scale is None else 0.0, means[name])
    add("b", v, x.k)


def _group(x: GroupPart, guesses: list[TermGuess | None], add) -> None:
    """The sd(s), correlations and level effects."""
    g = x.ident
    plain_sd = x.sd_bounds.lower == 0 and x.sd_bounds.upper == np.inf
    log_sd = np.array([q.log_sd if q is not None and plain_sd else 1.0 for q in guesses])
    if x.folded:  # sd_signed lives on the natural scale: var(sd) ~ tau^2 var(log sd)
        q = guesses[0]
        add(f"sd_{g}_signed", q.log_sd * q.tau2 if q is not None else 1.0)
    else:
        add(x.spread, 1.0 if x.concentration else log_sd, x.k)
    if x.k > 1 and x.correlated:
        add(f"L_{g}", 1.0, x.k * (x.k - 1) // 2)
    if x.marginalized:
        return
    n = x.n_levels
    effects = np.ones((n, x.k))  # levels outermost: matrix[k, N] and array[N] row_vector[k]
    for e, q in enumerate(guesses):
        if q is not None:
            effects[:, e] = q.effects
    add(x.level_param, effects.ravel(), n * x.k)
