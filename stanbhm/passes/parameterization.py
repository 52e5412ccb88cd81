"""How each group term's level effects are parameterized: the fraction c of centering.

``"centered"`` is c = 1 (hierarchical centering: the levels' coefficients around the
population coefficient), ``"noncentered"`` c = 0, a number in [0, 1] partial centering
(single-effect terms only; a multi-effect term is centered or not as a whole), and
``"auto"`` decides from the data before sampling (`information` gives the rule):

- every level well informed (weight w_j >= `CENTER_ABOVE`): centered;
- every level weakly informed (w_j <= `NONCENTER_BELOW`): non-centered;
- levels that disagree (a few large and many tiny groups): a single-effect term is
  partially centered per level, c_j = w_j, through a data vector; a multi-effect term is
  centered when the median level's weight of its least informed effect is at least 1/2.

The sds' priors take no part: the weights come from the data alone, so a term gets the
same choice, and the header the same numbers, under any prior on its sd. A prior's
scale standing in for tau^2 where DerSimonian-Laird gives 0 would turn eight schools'
funnel (every weight 0) partially centered under its half-cauchy(0, 5) (weights 0.07 to
0.24). An auto choice that differs between two runs comes from their data (issue 27,
item 18: the peers and parameterization bench suites' 30-group regressions differ).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..information import LevelInformation, information_table, level_information
from .base import Decision

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

#: The choices a term accepts besides a fraction in [0, 1].
CHOICES = ("centered", "noncentered", "auto")
#: Under "auto", a term whose levels all have weights at least this is centered...
CENTER_ABOVE = 0.9
#: ...and one whose levels all have weights at most this is non-centered.
NONCENTER_BELOW = 0.1


def choice_for(term: str, requested: Any) -> Any:
    """The choice requested for `term`: its dict entry, or the model-wide value."""
    if isinstance(requested, dict):
        return requested.get(term, "auto")
    return requested


@dataclass(frozen=True)
class Choice:
    """What a term gets: a fraction of centering, per term or per level."""

    c: float
    c_levels: np.ndarray | None
    label: str
    reason: str
    information: tuple[LevelInformation, ...] = ()


@dataclass(frozen=True)
class Parameterize:
    """Sets one group term's fraction of centering, from the request or the data."""

    term: str
    requested: Any

    def choose(self, spec: ModelSpec) -> Choice:
        """The term's choice: the request, or under "auto" the data's."""
        group = next(g for g in spec.groups if g.term_name == self.term)
        choice = choice_for(self.term, self.requested)
        where = f"[{self.term!r}]" if isinstance(self.requested, dict) else ""
        if choice == "centered":
            return Choice(1.0, None, "centered", f'parameterization{where}="centered" requested')
        if choice == "noncentered":
            return Choice(0.0, None, "non-centered",
                          f'parameterization{where}="noncentered" requested')
        if choice != "auto":
            c = float(choice)
            label = {0.0: "non-centered", 1.0: "centered"}.get(c, f"partially centered, c = {c:g}")
            return Choice(c, None, label, f"parameterization{where}={c:g} requested")
        info = level_information(spec, group)
        weights = [i.weights for i in info]
        if all(w.min() >= CENTER_ABOVE for w in weights):
            return Choice(1.0, None, "centered", '"auto": every level is well informed', info)
        if all(w.max() <= NONCENTER_BELOW for w in weights):
            return Choice(0.0, None, "non-centered", '"auto": every level is weakly informed',
                          info)
        if group.k == 1:
            return Choice(float(np.mean(weights[0])), weights[0], "partially centered per level",
                          '"auto": levels differ, each centered by its weight', info)
        median = min(float(np.median(w)) for w in weights)
        if median >= 0.5:
            return Choice(1.0, None, "centered", '"auto": the median level is well informed',
                          info)
        return Choice(0.0, None, "non-centered", '"auto": the median level is weakly informed',
                      info)

    def decide(self, spec: ModelSpec, plan: Plan) -> tuple[Decision, Plan]:
        if any(g.marginalized for g in plan.groups if g.term_name == self.term):
            return Decision(f"parameterization of {self.term}", "none",
                            "its level effects are integrated out", applied=False), plan
        choice = self.choose(spec)
        table = information_table(choice.information) if choice.information else ()
        decision = Decision(f"parameterization of {self.term}", choice.label, choice.reason,
                            table=table)
        groups = tuple(
            dataclasses.replace(g, c=choice.c, c_levels=choice.c_levels)
            if g.term_name == self.term else g
            for g in plan.groups
        )
        information = {**plan.information, self.term: choice.information}
        return decision, dataclasses.replace(plan, groups=groups, information=information)
