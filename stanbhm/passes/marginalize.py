"""Integrate one group intercept out of the likelihood: exactly for a gaussian model
(below), a gamma-poisson or a beta-binomial; approximately by Stan's Laplace method.

With e = y - (the rest of the linear predictor), the rows of level j are jointly normal,
N(e_j | 0, V_j + tau^2 11') with V_j the rows' own variances (sigma^2 or known se^2),
so the level's effect u_j leaves the sampler and its log density needs only per-level
sums (matrix determinant lemma; the math is in `stanbhm.likelihood.Marginal`). The
effects come back exactly in generated quantities, one draw from u_j's conditional
posterior per posterior draw, so the output is the plain program's.

Only one factor can be integrated out this way; under "auto" it is the intercept term
with the most levels (the most parameters removed), and only for terms whose
parameterization is "auto": asking for a parameterization keeps the level effects.

``"gamma_poisson"``, by name only since it changes the model for the effects: poisson
rows with each level's rate multiplied by u_j ~ gamma(a, a), a = 1 / sd^2 (mean 1, sd
sd). Given the rest, level j's rows have the density (up to a constant)

    sum_i y_i eta_i + a log a - lgamma(a) + lgamma(a + Y_j) - (a + Y_j) log(a + M_j)

with Y_j the level's total count and M_j = sum_i exp(eta_i); u_j is drawn back from
gamma(a + Y_j, a + M_j).

``"beta_binomial"``, by name only for the same reason: bernoulli or binomial rows whose
level j has one success probability p_j ~ beta(mu_j k, (1 - mu_j) k), mu_j =
inv_logit(eta_j), with eta_j the rest of the linear predictor, which must then be the
same on all of the level's rows (covariates of the level, not of the rows). The level's
successes Y_j in T_j trials are beta-binomial, exactly; p_j is drawn back from
beta(mu_j k + Y_j, (1 - mu_j) k + T_j - Y_j), and r_g = logit(p_j) - eta_j. The spread
parameter is then the concentration k (``kappa_<g>``), not an sd, with its own default
prior `CONCENTRATION_PRIOR`: at p = 1/2 a beta of concentration k has the variance of a
logit-normal of sd about 2 / sqrt(k + 1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import PlanError
from ..parts import Marginal
from ..priors import Prior
from ..rewrites import term_choice
from .base import Decision
from .parameterization import choice_for

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

SUBJECT = "marginalization"
#: The rewrite names that integrate a term out, and the conjugate pair each one uses.
#: The beta-binomial's concentration: mean 20, mode 10, 0.5% of its mass below 1.
CONCENTRATION_PRIOR = Prior("gamma", ("2", "0.1"))
KINDS = {"marginalize": "normal", "gamma_poisson": "gamma", "beta_binomial": "beta",
         "laplace": "laplace"}
#: Stan 2.39's embedded Laplace works on a dense covariance of the effects and factors a
#: dense matrix of that size in each Newton step, so it is offered up to this many levels.
LAPLACE_MAX_LEVELS = 2000


@dataclass(frozen=True)
class Marginalize:
    """Integrates out the level effects of one gaussian group intercept."""

    rewrites: Any
    parameterization: Any

    def candidates(self, spec: ModelSpec) -> tuple[dict[str, str], str]:
        """Terms that may be integrated out with how (`KINDS`), and why none may when
        there are none."""
        wanted = {g.term_name: term_choice(self.rewrites, g.term_name) for g in spec.groups}
        asked = {t: KINDS[c] for t, c in wanted.items() if c in KINDS}
        for term, kind in asked.items():
            why = self.impossible(spec, term, kind)
            if why:
                raise PlanError(f"rewrites[{term!r}] = {wanted[term]!r}: {why}")
        if len(asked) > 1:
            raise PlanError(f"rewrites: only one group term can be integrated out, and "
                            f"{', '.join(asked)} were asked for")
        if asked:
            return asked, ""
        if not spec.groups:
            return {}, "no group term"
        if self.rewrites == "none":
            return {}, "rewrites='none' requested"
        family = self.family_reason(spec, "normal")
        if family:
            return {}, family
        found, reasons = {}, []
        for g in spec.groups:
            why = self.impossible(spec, g.term_name, "normal")
            if wanted[g.term_name] == "none":
                why = "rewrites='none' requested for it"
            elif not why and choice_for(g.term_name, self.parameterization) != "auto":
                why = (f"its parameterization was requested; pass rewrites="
                       f"{{'{g.term_name}': 'marginalize'}} to integrate it out")
            if why:
                reasons.append(f"{g.term_name}: {why}")
            else:
                found[g.term_name] = "normal"
        return found, "; ".join(reasons)

    @staticmethod
    def family_reason(spec: ModelSpec, kind: str) -> str:
        fam = spec.family_row
        if kind == "laplace":
            if fam.conjugate_intercept == "normal":
                return ("a gaussian outcome's effects are integrated out exactly; use "
                        "'marginalize'")
            return ""
        if kind == "gamma":
            if fam.conjugate_intercept != "gamma":
                return (f"gamma multipliers are conjugate to poisson rows, not to the "
                        f"{fam.name} family")
            return ""
        if kind == "beta":
            if fam.conjugate_intercept != "beta":
                return (f"beta probabilities are conjugate to bernoulli and binomial rows, "
                        f"not to the {fam.name} family")
            return ""
        if fam.conjugate_intercept in ("gamma", "beta"):
            other = {"gamma": "'gamma_poisson' integrates out gamma multipliers",
                     "beta": "'beta_binomial' integrates out beta probabilities"}
            return (f"the {fam.name} family has no exact normal marginal; "
                    f"{other[fam.conjugate_intercept]} instead (a different model for the "
                    "effects, asked for by name)")
        if fam.conjugate_intercept != "normal":
            return (f"the {fam.name} family has no exact normal marginal; group intercepts "
                    "are integrated out of gaussian outcomes only")
        return ""

    def impossible(self, spec: ModelSpec, term: str, kind: str) -> str:
        """Why the term's effects cannot be integrated out exactly ("" when they can)."""
        group = next(g for g in spec.groups if g.term_name == term)
        family = self.family_reason(spec, kind)
        if family:
            return family
        if group.effect_names != ("Intercept",):
            return "it has slopes; only a group intercept, (1 | factor), is integrated out"
        if kind == "beta":
            varying = _varies_within(spec, group)
            if varying:
                return (f"{varying} varies within its levels; the beta-binomial needs the "
                        "rest of the linear predictor to be the level's own")
            fitted = np.bincount(group.index[spec.observed] - 1, minlength=len(group.levels))
            if (fitted == 0).any():
                empty = group.levels[int(np.argmin(fitted))]
                return f"level {empty!r} has no observed row, so it has no probability to draw"
        if kind == "laplace" and len(group.levels) > LAPLACE_MAX_LEVELS:
            return (f"{len(group.levels)} levels: Stan's embedded Laplace builds and factors "
                    f"dense {len(group.levels)} x {len(group.levels)} matrices; it is offered "
                    f"up to {LAPLACE_MAX_LEVELS} levels")
        return ""

    def chosen(self, spec: ModelSpec) -> tuple[str | None, str, str]:
        found, why = self.candidates(spec)
        if not found:
            return None, "", why
        levels = {g.term_name: len(g.levels) for g in spec.groups}
        best = max(found, key=lambda t: levels[t])
        others = [t for t in found if t != best]
        kind = found[best]
        if kind == "laplace":
            reason = ("'laplace' requested: an APPROXIMATION, not exact: Stan's embedded "
                      "Laplace approximation integrates the effects out and "
                      "laplace_latent_rng draws them back")
        elif kind == "beta":
            reason = ("'beta_binomial' requested: each level has one probability p ~ "
                      f"beta(mu kappa, (1 - mu) kappa), mu = inv_logit(eta), integrated out "
                      f"exactly; r_{best} = logit(p) - eta is drawn back in generated "
                      f"quantities; kappa_{best} is a concentration, not an sd (default "
                      f"prior {CONCENTRATION_PRIOR}: mean 20, 0.5% below 1, where the "
                      "level probabilities would pile up at 0 and 1); at p = 1/2 it gives "
                      "the variance of a logit-normal of sd about 2 / sqrt(kappa + 1)")
        elif kind == "gamma":
            reason = ("'gamma_poisson' requested: each level multiplies the rate by "
                      f"u ~ gamma(1 / sd_{best}^2, 1 / sd_{best}^2) (mean 1), integrated out "
                      f"exactly; r_{best} = log(u) is drawn back in generated quantities")
        else:
            reason = ("gaussian rows with a group intercept: exact normal-normal "
                      "marginalization; the level effects are drawn back in generated "
                      "quantities")
        if others:
            reason += f"; one factor at most, so {', '.join(others)} keep their effects"
        return best, kind, reason

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        best, _, reason = self.chosen(spec)
        if best is None:
            return Decision(SUBJECT, "not applied", reason, applied=False)
        return Decision(SUBJECT, f"effects of {best} integrated out", reason)

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        best, kind, _ = self.chosen(spec)
        group = next(g for g in plan.groups if g.term_name == best)
        lik = plan.likelihood
        index = group.index[lik.obs] - 1  # 0-based level of each fitted row
        counts = np.bincount(index, minlength=group.n_levels)
        precision = None
        if lik.se is not None:
            precision = np.bincount(index, weights=1 / lik.se[lik.obs] ** 2,
                                    minlength=group.n_levels)
        totals = trials = first = None
        if kind in ("gamma", "beta"):
            totals = np.bincount(index, weights=lik.y, minlength=group.n_levels)
        if kind == "beta":
            per_row = lik.trials[lik.obs] if lik.trials is not None else np.ones(len(index))
            trials = np.bincount(index, weights=per_row, minlength=group.n_levels)
            first = np.full(group.n_levels, len(index))
            np.minimum.at(first, index, np.arange(len(index)))  # a fitted row of each level
        marginal = Marginal(ident=group.ident, name=group.name, index=index, counts=counts,
                            precision=precision, kind=kind, totals=totals, trials=trials,
                            first=first)
        changes: dict[str, Any] = {"margin": marginal}
        if kind == "beta":
            if ("sd", group.term_name) in spec.priors:  # the user's, for this term's sd
                raise PlanError(
                    f"prior 'sd_{group.term_name}' is for an sd, but rewrites asks for "
                    f"{group.term_name}'s effects to be beta-binomial, whose spread is the "
                    f"concentration kappa_{group.ident} (default prior "
                    f"{CONCENTRATION_PRIOR}); drop that prior")
            changes["sd_priors"] = (CONCENTRATION_PRIOR,)
        groups = tuple(dataclasses.replace(g, **changes) if g is group else g
                       for g in plan.groups)
        likelihood = dataclasses.replace(lik, strategy="marginal", marginal=marginal)
        return dataclasses.replace(plan, groups=groups, likelihood=likelihood)


def _varies_within(spec: ModelSpec, group) -> str:
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
