"""The beta-binomial marginal: bernoulli or binomial rows whose level j has one success
probability p_j ~ beta(mu_j k, (1 - mu_j) k), mu_j = inv_logit(eta_j), integrated out
exactly.

Asked for by name only (``rewrites={term: "beta_binomial"}``), since it changes the
model for the effects. eta_j, the rest of the linear predictor, must be the same on all
of the level's rows (covariates of the level, not of the rows), so the program reads it
once per level: the levels are the cells of the collapsed likelihood
(`passes.collapse`). The level's successes Y_j in T_j trials are beta-binomial; p_j is
drawn back from beta(mu_j k + Y_j, (1 - mu_j) k + T_j - Y_j), and r_g = logit(p_j) -
eta_j. The spread parameter is the concentration k (``kappa_<g>``), not an sd, with its
own default prior `CONCENTRATION_PRIOR`: at p = 1/2 a beta of concentration k has the
variance of a logit-normal of sd about 2 / sqrt(k + 1). Its template:
``stan_templates/marginals/beta.stan.j2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..declarations import Declaration
from ..priors import Prior
from .base import Kind, Marginal

if TYPE_CHECKING:
    from ..spec import GroupEffects, ModelSpec

__all__ = ["BETA", "CONCENTRATION_PRIOR"]

#: The beta-binomial's concentration: mean 20, mode 10, 0.5% of its mass below 1.
CONCENTRATION_PRIOR = Prior("gamma", ("2", "0.1"))


class Beta(Kind):
    name = "beta"
    rewrite = "beta_binomial"
    conjugate = "beta"
    cell_rule = "binomial"
    cells_are_levels = True
    spread = "kappa"
    spread_name = "the concentration"
    spread_prior = CONCENTRATION_PRIOR
    prefixes = ("Y", "T", "first", "hit", "miss", "a", "b", "mu", "kappa")

    def family_reason(self, family) -> str:
        if family.conjugate_intercept != "beta":
            return (f"beta probabilities are conjugate to bernoulli and binomial rows, "
                    f"not to the {family.title} family")
        return ""

    def term_reason(self, spec: ModelSpec, group: GroupEffects) -> str:
        varying = varies_within(spec, group)
        if varying:
            return (f"{varying} varies within its levels; the beta-binomial needs the "
                    "rest of the linear predictor to be the level's own")
        fitted = np.bincount(group.index[spec.observed] - 1, minlength=len(group.levels))
        if (fitted == 0).any():
            empty = group.levels[int(np.argmin(fitted))]
            return f"level {empty!r} has no observed row, so it has no probability to draw"
        return ""

    def decision(self, term: str) -> str:
        return ("'beta_binomial' requested: each level has one probability p ~ "
                f"beta(mu kappa, (1 - mu) kappa), mu = inv_logit(eta), integrated out "
                f"exactly; r_{term} = logit(p) - eta is drawn back in generated "
                f"quantities; kappa_{term} is a concentration, not an sd (default "
                f"prior {CONCENTRATION_PRIOR}: mean 20, 0.5% below 1, where the "
                "level probabilities would pile up at 0 and 1); at p = 1/2 it gives "
                "the variance of a logit-normal of sd about 2 / sqrt(kappa + 1)")

    def summaries(self, index, n_levels, y, trials) -> dict[str, Any]:
        per_row = trials if trials is not None else np.ones(len(index))
        first = np.full(n_levels, len(index))
        np.minimum.at(first, index, np.arange(len(index)))  # a fitted row of each level
        return {"totals": np.bincount(index, weights=y, minlength=n_levels),
                "trials": np.bincount(index, weights=per_row, minlength=n_levels),
                "first": first}

    def needs_sums(self, m: Marginal) -> bool:
        return False  # the levels are the cells: their totals are data

    def declarations(self, m: Marginal, lik: Any, p: Any) -> tuple[Declaration, ...]:
        g, td = m.ident, "transformed data"
        return (
            Declaration("data", f"array[N_{g}] int<lower=0>", f"Y_{g}",
                        "successes summed over each level's fitted rows"),
            Declaration("data", f"array[N_{g}] int<lower=0>", f"T_{g}", "trials summed over them"),
            Declaration("data", f"array[N_{g}] int<lower=1, upper={p.fit_rows.n}>", f"first_{g}",
                        "a fitted row of each level"),
            Declaration(td, "int", "N_cell", f"cells: the levels of {m.name}", f"N_{g}", heading=(
                "the beta-binomial reads each level's linear predictor (constant within the "
                "level)", "at one of its fitted rows, and the level's totals")),
            Declaration(td, "array[N_cell] int", "cell", "the fitted row standing for each",
                        f"first_{g}"),
            Declaration(td, f"vector[N_{g}]", f"hit_{g}", "successes of each level",
                        f"to_vector(Y_{g})"),
            Declaration(td, f"vector[N_{g}]", f"miss_{g}", "failures of each level",
                        f"to_vector(T_{g}) - hit_{g}"),
            Declaration(td, f"vector[N_{g}]", f"T_{g}_vec", "trials of each level",
                        f"to_vector(T_{g})"))

    def level_data(self, m: Marginal) -> dict[str, Any]:
        g = m.ident
        return {f"Y_{g}": m.totals.round().astype(np.int64),
                f"T_{g}": m.trials.round().astype(np.int64), f"first_{g}": m.first + 1}

    def names(self, ident: str) -> tuple[str, ...]:
        return (*super().names(ident), f"T_{ident}_vec")


def varies_within(spec: ModelSpec, group: GroupEffects) -> str:
    """The first part of the linear predictor (a column of X, another term's level or
    covariate, the offset) that is not constant within the levels of `group`, or ""."""
    index = group.index - 1
    parts: list[tuple[str, np.ndarray]] = []
    if spec.fixed.p:
        parts += [(f"column {name!r}", spec.fixed.X[:, j]) for j, name in
                  enumerate(spec.fixed.names)]
    for other in spec.groups:
        if other is group:
            continue
        parts.append((f"the level of {other.name}", other.index.astype(float)))
        if other.effect_names != ("Intercept",):
            parts += [(f"the covariate {name!r} of {other.term_name}", other.Z[:, e])
                      for e, name in enumerate(other.effect_names) if name != "Intercept"]
    if spec.offset is not None:
        parts.append(("the offset", spec.offset))
    for label, values in parts:
        low = np.full(len(group.levels), np.inf)
        high = np.full(len(group.levels), -np.inf)
        np.minimum.at(low, index, values)
        np.maximum.at(high, index, values)
        if np.any(high - low > 1e-12 * np.maximum(1.0, np.abs(high))):
            return label
    return ""


BETA = Beta()
