"""Integrate one group intercept out of a gaussian model, exactly.

With e = y - (the rest of the linear predictor), the rows of level j are jointly normal,
N(e_j | 0, V_j + tau^2 11') with V_j the rows' own variances (sigma^2 or known se^2),
so the level's effect u_j leaves the sampler and its log density needs only per-level
sums (matrix determinant lemma; the math is in `stanbhm.likelihood.Marginal`). The
effects come back exactly in generated quantities, one draw from u_j's conditional
posterior per posterior draw, so the output is the plain program's.

Only one factor can be integrated out this way; under "auto" it is the intercept term
with the most levels (the most parameters removed), and only for terms whose
parameterization is "auto": asking for a parameterization keeps the level effects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import PlanError
from ..parts import Marginal
from .base import Decision
from .parameterization import choice_for
from .rewrites import term_choice

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

SUBJECT = "marginalization"


@dataclass(frozen=True)
class Marginalize:
    """Integrates out the level effects of one gaussian group intercept."""

    rewrites: Any
    parameterization: Any

    def candidates(self, spec: ModelSpec) -> tuple[list[str], str]:
        """Terms that may be integrated out, and why none may when the list is empty."""
        wanted = {g.term_name: term_choice(self.rewrites, g.term_name) for g in spec.groups}
        asked = [t for t, c in wanted.items() if c == "marginalize"]
        for term in asked:
            why = self.impossible(spec, term)
            if why:
                raise PlanError(f"rewrites[{term!r}] = 'marginalize': {why}")
        if len(asked) > 1:
            raise PlanError(f"rewrites: only one group term can be integrated out, and "
                            f"{', '.join(asked)} were asked for")
        if asked:
            return asked, ""
        if not spec.groups:
            return [], "no group term"
        if self.rewrites == "none":
            return [], "rewrites='none' requested"
        family = self.family_reason(spec)
        if family:
            return [], family
        found, reasons = [], []
        for g in spec.groups:
            why = self.impossible(spec, g.term_name)
            if wanted[g.term_name] == "none":
                why = "rewrites='none' requested for it"
            elif not why and choice_for(g.term_name, self.parameterization) != "auto":
                why = (f"its parameterization was requested; pass rewrites="
                       f"{{'{g.term_name}': 'marginalize'}} to integrate it out")
            if why:
                reasons.append(f"{g.term_name}: {why}")
            else:
                found.append(g.term_name)
        return found, "; ".join(reasons)

    @staticmethod
    def family_reason(spec: ModelSpec) -> str:
        fam = spec.family_row
        if fam.conjugate_intercept != "normal":
            return (f"the {fam.name} family has no exact normal marginal; group intercepts "
                    "are integrated out of gaussian outcomes only")
        return ""

    def impossible(self, spec: ModelSpec, term: str) -> str:
        """Why the term's effects cannot be integrated out exactly ("" when they can)."""
        group = next(g for g in spec.groups if g.term_name == term)
        if self.family_reason(spec):
            return self.family_reason(spec)
        if group.effect_names != ("Intercept",):
            return "it has slopes; only a group intercept, (1 | factor), is integrated out"
        return ""

    def chosen(self, spec: ModelSpec) -> tuple[str | None, str]:
        found, why = self.candidates(spec)
        if not found:
            return None, why
        levels = {g.term_name: len(g.levels) for g in spec.groups}
        best = max(found, key=lambda t: levels[t])
        others = [t for t in found if t != best]
        reason = ("gaussian rows with a group intercept: exact normal-normal "
                  "marginalization; the level effects are drawn back in generated quantities")
        if others:
            reason += f"; one factor at most, so {', '.join(others)} keep their effects"
        return best, reason

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        best, reason = self.chosen(spec)
        if best is None:
            return Decision(SUBJECT, "not applied", reason, applied=False)
        return Decision(SUBJECT, f"effects of {best} integrated out", reason)

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        best, _ = self.chosen(spec)
        group = next(g for g in plan.groups if g.term_name == best)
        lik = plan.likelihood
        index = group.index[lik.obs] - 1  # 0-based level of each fitted row
        counts = np.bincount(index, minlength=group.n_levels)
        precision = None
        if lik.se is not None:
            precision = np.bincount(index, weights=1 / lik.se[lik.obs] ** 2,
                                    minlength=group.n_levels)
        marginal = Marginal(ident=group.ident, name=group.name, index=index, counts=counts,
                            precision=precision)
        groups = tuple(dataclasses.replace(g, margin=marginal) if g is group else g
                       for g in plan.groups)
        likelihood = dataclasses.replace(lik, strategy="marginal", marginal=marginal)
        return dataclasses.replace(plan, groups=groups, likelihood=likelihood)
