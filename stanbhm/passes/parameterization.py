"""How each group term's effects are parameterized: centered or non-centered.

Non-centered (``r = sd * z`` with ``z ~ std_normal()``) suits terms whose data say
little about each level (the eight-schools funnel); centered (``r ~ normal(0, sd)``)
suits terms whose levels are well informed. The data-driven choice under ``"auto"``
and fractional (partial) centering come with the parameterization issue; until then
``"auto"`` means non-centered and says so in the header.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import Decision

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

#: The choices a term accepts (a float in [0, 1] is validated by the plan's options).
CHOICES = ("centered", "noncentered", "auto")


def choice_for(term: str, requested: Any) -> Any:
    """The choice requested for `term`: its dict entry, or the model-wide value."""
    if isinstance(requested, dict):
        return requested.get(term, "auto")
    return requested


@dataclass(frozen=True)
class Parameterize:
    """Sets one group term's parameterization from the user's request."""

    term: str
    requested: Any

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        choice = choice_for(self.term, self.requested)
        subject = f"parameterization of {self.term}"
        where = f"[{self.term!r}]" if isinstance(self.requested, dict) else ""
        if choice == "centered":
            return Decision(subject, "centered", f'parameterization{where}="centered" requested')
        if choice == "noncentered":
            return Decision(subject, "non-centered",
                            f'parameterization{where}="noncentered" requested')
        return Decision(subject, "non-centered",
                        '"auto" chooses non-centered until the data-driven rule exists')

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        centered = self.applies(spec, plan).choice == "centered"
        groups = tuple(
            dataclasses.replace(g, centered=centered) if g.term_name == self.term else g
            for g in plan.groups
        )
        return dataclasses.replace(plan, groups=groups)
