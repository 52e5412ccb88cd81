"""Which centered group term takes over each population coefficient.

Hierarchical centering declares a term's level coefficients around the population
coefficient, which then leaves the likelihood. Only one term can take a coefficient
over: when several centered terms share an effect (crossed factors, ``(1 | a/b)``), the
one whose levels have the most rows each does, and the others stay centered at 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import Decision, InSteps

if TYPE_CHECKING:
    from ..parts import GroupPart
    from ..plan import Plan
    from ..spec import ModelSpec


@dataclass(frozen=True)
class Absorb(InSteps):
    """Gives one population coefficient (``Intercept`` or ``b[j]``) to one centered term."""

    coefficient: str
    label: str  # how the header names it: "Intercept", "b_x"

    def candidates(self, plan: Plan) -> tuple[GroupPart | None, list[GroupPart]]:
        """The term that takes the coefficient over (fewest levels, so most rows per
        level; None when no centered term has it) and the other centered ones."""
        found = [g for g in plan.groups if not g.noncentered and not g.marginalized
                 and self.coefficient in g.population]
        if not found:
            return None, []
        best = min(found, key=lambda g: g.n_levels)
        return best, [g for g in found if g is not best]

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        best, found = self.candidates(plan)
        if best is None:
            return Decision(self.label, "stays in the likelihood",
                            "no centered term has this effect", applied=False)
        others = [g.term_name for g in found]
        how = "centered" if best.centered else "partially centered"
        reason = f"{best.term_name} is {how}"
        if others:
            reason += (f" and has the most rows per level; {', '.join(others)} stay"
                       f"{'s' if len(others) == 1 else ''} centered at 0")
        return Decision(self.label, f"taken over by {best.term_name}", reason)

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        best, _ = self.candidates(plan)
        groups = tuple(
            dataclasses.replace(g, location=tuple(
                self.coefficient if p == self.coefficient else m
                for p, m in zip(g.population, g.location, strict=True)))
            if g is best else g
            for g in plan.groups
        )
        fixed = plan.fixed
        if self.coefficient == "Intercept":
            fixed = dataclasses.replace(fixed, absorbed_intercept=True)
        else:
            column = int(self.coefficient[2:-1]) - 1
            fixed = dataclasses.replace(fixed, absorbed=(*fixed.absorbed, column))
        return dataclasses.replace(plan, groups=groups, fixed=fixed)
