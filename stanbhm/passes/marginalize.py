"""Integrate one group intercept out of the likelihood, by one of the kinds in
`stanbhm.marginals`: exactly for a gaussian model (the normal kind), a gamma-Poisson or
a beta-binomial; approximately by Stan's Laplace method. The kind's module holds its
math; this pass only chooses the term and the kind, and replaces the likelihood's
strategy by the rows with that term integrated out (`strategies.MarginalRows`).

The effects come back in generated quantities, one draw from their conditional
posterior per posterior draw (unless `passes.outputs.Effects` leaves them out).

Only one factor can be integrated out; under "auto" it is the intercept term with the
most levels (the most parameters removed), and only for terms whose parameterization is
"auto": asking for a parameterization keeps the level effects. "auto" integrates a
gaussian intercept out exactly (the normal kind), and a non-gaussian one by adaptive
quadrature only where that kind's rule (`marginals.quadrature.Quadrature.auto_reason`)
finds it both cheaper than sampling the effects and accurate on the data: an
approximation, which the header says with the check's numbers. The other kinds change
the model for the effects (gamma, beta) or approximate it without such a check
(Laplace), so they are asked for by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import formula
from ..errors import PlanError
from ..marginals import KINDS, Kind, Marginal, by_rewrite
from ..marginals.normal import NORMAL
from ..rewrites import term_choice
from ..strategies import MarginalRows
from .base import Decision, InSteps
from .parameterization import choice_for
from .threads import by_level

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

SUBJECT = "marginalization"


def additions_reason(spec: ModelSpec, kind: Kind = NORMAL) -> str:
    """Why no group intercept is integrated out of censored, weighted or truncated rows
    by `kind` ("" when the rows have no such addition term, or only weights and the kind
    takes them), naming each term as the formula writes it: "the rows have cens(c, y2),
    and ..."."""
    terms = spec.formula.addition_texts
    if not terms:
        return ""
    f = spec.formula
    if f.cens is None and f.trunc is None:  # weighted rows alone
        if kind.weighted:
            return ""
        return (f"the rows have {' and '.join(terms)}, and only the normal kind integrates "
                "the effects out of weighted rows")
    return (f"the rows have {' and '.join(terms)}, and the marginal kinds integrate the "
            "effects out of plain rows only" + (" (the normal kind, of weighted ones too)"
                                                if f.weights is not None else ""))


def auto_kind(spec: ModelSpec) -> Kind:
    """The kind "auto" integrates a group intercept out by for `spec`'s family: the
    first that serves it of those "auto" may choose (the exact normal first), or the
    normal kind, whose reason then says why none serves it."""
    return next((k for k in KINDS if k.by_auto and not k.family_reason(spec.family_row)),
                NORMAL)


def weighted_note(spec: ModelSpec) -> str:
    """What the header's decision adds for weighted rows ("" without weights)."""
    if spec.formula.weights is None:
        return ""
    return (f"; {formula.weights_text(spec.formula.weights)}: each row's log density times "
            "its weight, so the weights are precisions: the level sums weighted, the "
            "weights' sum counting the rows in log(sigma), the effects drawn back with "
            "precision W / sigma^2 + 1 / sd^2")


@dataclass(frozen=True)
class Marginalize(InSteps):
    """Integrates out the level effects of one gaussian group intercept."""

    rewrites: Any
    parameterization: Any
    quadrature_points: int

    def candidates(self, spec: ModelSpec) -> tuple[dict[str, Kind], str]:
        """Terms that may be integrated out with their kind, and why none may when there
        are none."""
        kinds = by_rewrite()
        wanted = {g.term_name: term_choice(self.rewrites, g.term_name) for g in spec.groups}
        asked = {t: kinds[c] for t, c in wanted.items() if c in kinds}
        for term, kind in asked.items():
            plan_reason = additions_reason(spec, kind)
            if plan_reason:
                raise PlanError(f"rewrites[{term!r}] = {wanted[term]!r}: {plan_reason}")
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
        kind = auto_kind(spec)
        plan_reason = additions_reason(spec, kind)
        if plan_reason:
            return {}, plan_reason
        if self.rewrites == "none":
            return {}, "rewrites='none' requested"
        family = kind.family_reason(spec.family_row)
        if family:
            return {}, family
        intercepts = [g.term_name for g in spec.groups if g.effect_names == ("Intercept",)]
        if spec.formula.weights is not None and spec.se is None and intercepts:
            return {}, (f"the rows have {formula.weights_text(spec.formula.weights)}: the "
                        "per-level or joint statistics serve weighted rows in O(levels), "
                        "and they take no integrated-out intercept; name a term "
                        f"(rewrites={{'{intercepts[-1]}': 'marginalize'}}) to integrate it "
                        "out")
        found, reasons = {}, []
        if kind is not NORMAL:  # what the exact kind would say comes first
            reasons.append(NORMAL.family_reason(spec.family_row))
        for g in spec.groups:
            why = self.impossible(spec, g.term_name, kind)
            if wanted[g.term_name] == "none":
                why = "rewrites='none' requested for it"
            elif not why and choice_for(g.term_name, self.parameterization) != "auto":
                why = (f"its parameterization was requested; pass rewrites="
                       f"{{'{g.term_name}': '{kind.rewrite}'}} to integrate it out")
            if not why:
                why = kind.auto_reason(spec, g, self.quadrature_points)
            if why:
                reasons.append(f"{g.term_name}: {why}")
            else:
                found[g.term_name] = kind
        return found, "; ".join(reasons)

    @staticmethod
    def impossible(spec: ModelSpec, term: str, kind: Kind) -> str:
        """Why the term's effects cannot be integrated out by `kind` ("" when they can)."""
        group = next(g for g in spec.groups if g.term_name == term)
        family = kind.family_reason(spec.family_row)
        if family:
            return family
        if group.effect_names != ("Intercept",):
            return "it has slopes; only a group intercept, (1 | factor), is integrated out"
        return kind.term_reason(spec, group)

    def chosen(self, spec: ModelSpec) -> tuple[str | None, Kind | None, str]:
        found, why = self.candidates(spec)
        if not found:
            return None, None, why
        levels = {g.term_name: len(g.levels) for g in spec.groups}
        best = max(found, key=lambda t: levels[t])
        others = [t for t in found if t != best]
        kind = found[best]
        group = next(g for g in spec.groups if g.term_name == best)
        asked = term_choice(self.rewrites, best) == kind.rewrite
        reason = (kind.decision(best) if asked else kind.auto_decision(spec, group)) \
            + weighted_note(spec)
        if others:
            reason += f"; one factor at most, so {', '.join(others)} keep their effects"
        return best, kind, reason

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        best, kind, reason = self.chosen(spec)
        if best is None:
            return Decision(SUBJECT, "not applied", reason, applied=False)
        group = next(g for g in spec.groups if g.term_name == best)
        part = next(g for g in plan.groups if g.term_name == best)
        reason += kind.checked(spec, group, part.ident, self.quadrature_points)
        return Decision(SUBJECT, f"effects of {best} integrated out", reason)

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        best, kind, _ = self.chosen(spec)
        group = next(g for g in plan.groups if g.term_name == best)
        lik = plan.likelihood
        index = group.index[lik.obs] - 1  # 0-based level of each fitted row
        weights = None if lik.weights is None else lik.weights[lik.obs]
        precision = level_weights = None
        if weights is not None:  # a kind that takes them (`additions_reason`)
            level_weights = np.bincount(index, weights=weights, minlength=group.n_levels)
        if lik.se is not None:
            precision = np.bincount(index, weights=(1.0 if weights is None else weights)
                                    / lik.se[lik.obs] ** 2, minlength=group.n_levels)
        trials = lik.trials[lik.obs] if lik.trials is not None else None
        marginal = Marginal(kind=kind, ident=group.ident, name=group.name, index=index,
                            counts=np.bincount(index, minlength=group.n_levels),
                            precision=precision, level_weights=level_weights,
                            points=self.quadrature_points if kind.takes_points else None,
                            **kind.summaries(index, group.n_levels, lik.y, trials))
        changes: dict[str, Any] = {"marginal_kind": kind}
        if kind.spread_prior is not None:
            if ("sd", group.term_name) in spec.priors:  # the user's, for this term's sd
                raise PlanError(
                    f"prior 'sd_{group.term_name}' is for an sd, but rewrites asks for "
                    f"{group.term_name}'s effects to be {kind.rewrite.replace('_', '-')}, "
                    f"whose spread is {kind.spread_name} {kind.spread}_{group.ident} "
                    f"(default prior {kind.spread_prior}); drop that prior")
            changes["sd_priors"] = (kind.spread_prior,)
        groups = tuple(dataclasses.replace(g, **changes) if g is group else g
                       for g in plan.groups)
        likelihood = lik.with_strategy(MarginalRows(marginal))
        plan = dataclasses.replace(plan, groups=groups, likelihood=likelihood)
        return by_level(plan) if kind.needs_sorted_rows else plan
