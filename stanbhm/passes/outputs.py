"""Whether the pointwise ``log_lik`` and the predictive ``y_rep`` are written.

Each adds one value per row to every draw: at N = 1M rows and 4 x 1000 draws that is
4 billion numbers per output in the CSV files. So under ``"auto"`` they are written up
to `MAX_ROWS` rows and left out above, and the header says how to switch them on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import Decision

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

#: Rows up to which log_lik and y_rep are written by default (documented in the README).
MAX_ROWS = 5000


@dataclass(frozen=True)
class OutputPass:
    """Switches one per-row output (``log_lik`` or ``y_rep``) on or off."""

    output: str
    requested: Any  # True, False or "auto"

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        rows = spec.n_obs if self.output == "log_lik" else spec.n
        what = "observed rows" if self.output == "log_lik" else "rows"
        meaning = self.meaning(plan)
        if self.requested is True:
            return Decision(self.output, "on", f"{self.output}=True requested{meaning}")
        if self.requested is False:
            return Decision(self.output, "off", f"{self.output}=False requested", applied=False)
        if rows <= MAX_ROWS:
            return Decision(self.output, "on", f"{rows} {what}, at most {MAX_ROWS}{meaning}")
        return Decision(
            self.output, "off",
            f"{rows} {what}, over {MAX_ROWS}; pass {self.output}=True to write it",
            applied=False,
        )

    def meaning(self, plan: Plan) -> str:
        """What log_lik holds when the likelihood was rewritten: still one value per
        observed row, as in the plain program, so az.loo compares the two."""
        lik = plan.likelihood
        if self.output != "log_lik" or lik.strategy == "rowwise":
            return ""
        if lik.marginal is not None:
            return (f"; one value per row given the drawn effects of {lik.marginal.name}, "
                    "as in the plain program")
        return "; one value per row, from the rows, as in the plain program"

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        likelihood = dataclasses.replace(plan.likelihood, **{self.output: True})
        return dataclasses.replace(plan, likelihood=likelihood)
