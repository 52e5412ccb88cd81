"""Whether the pointwise ``log_lik``, the predictive ``y_rep`` and the effects of a term
integrated out of the likelihood are written.

Each adds one value per row (or level) to every draw: at N = 1M rows and 4 x 1000 draws
that is 4 billion numbers per output in the CSV files. So under ``"auto"`` they are
written up to `MAX_ROWS` rows (levels) and left out above, and the header says how to
switch them on. The effects of an integrated-out term are drawn back whenever
``log_lik`` or ``y_rep`` is written, since both are computed given them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import PlanError
from ..strategies import Joint, Rowwise
from .base import Decision, InSteps

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

#: Rows up to which log_lik and y_rep are written by default (documented in docs/models.md).
MAX_ROWS = 5000


@dataclass(frozen=True)
class OutputPass(InSteps):
    """Switches one per-row output (``log_lik`` or ``y_rep``) on or off."""

    output: str
    requested: Any  # True, False or "auto"

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        if self.requested == "marginal":
            return self.integrated(plan)
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
        if self.output == "log_lik" and lik.additions:
            return ("; a censored row's is its log probability (lccdf, lcdf), a truncated "
                    "row's renormalized, a weighted row's times its weight, as brms")
        if self.output != "log_lik" or isinstance(lik.strategy, Rowwise):
            return ""
        if lik.marginal is not None:
            return (f"; one value per row given the drawn effects of {lik.marginal.name}, "
                    "as in the plain program")
        return "; one value per row, from the rows, as in the plain program"

    @staticmethod
    def integrated(plan: Plan) -> Decision:
        """log_lik="marginal": the density of the rows with the integrated-out effects
        integrated out, which PSIS-LOO can leave out (one row per level, as in eight
        schools, makes the conditional log_lik's importance weights unreliable)."""
        m = plan.likelihood.marginal
        if m is None or not m.kind.integrated_log_lik:
            what = "integrates no group term out" if m is None else \
                f"integrates {m.name} out as {m.kind.name}, not normal"
            raise PlanError(f"log_lik='marginal' is the log likelihood with a normal group "
                            f"intercept integrated out, and this model {what}; pass "
                            "rewrites={'<term>': 'marginalize'} for a gaussian group "
                            "intercept, or log_lik=True")
        if m.per_row:
            return Decision("log_lik", "marginal", f"one value per observed row, the effect "
                            f"of {m.name} integrated out: no level has two rows, so the rows "
                            "are independent given the rest")
        return Decision("log_lik", "marginal", f"one value per level of {m.name}, its rows' "
                        "joint density with the level's effect integrated out (a level's "
                        f"rows are not independent given the rest): LOO leaves out a level")

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        extra = {"log_lik_integrated": True} if self.requested == "marginal" else {}
        likelihood = dataclasses.replace(plan.likelihood, **{self.output: True}, **extra)
        return dataclasses.replace(plan, likelihood=likelihood)


@dataclass(frozen=True)
class Effects(InSteps):
    """Leaves the effects of the term integrated out undrawn (applied), or lets them be
    drawn back in generated quantities (looked, did nothing); runs after the log_lik and
    y_rep passes, which need them."""

    requested: Any  # True, False or "auto"

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision | None:
        group = next((g for g in plan.groups if g.marginalized), None)
        if group is None:
            return None  # nothing was integrated out: every effect is a parameter
        subject = f"effects of {group.name}"
        lik = plan.likelihood
        needs = [name for name in ("log_lik", "y_rep") if getattr(lik, name)
                 and not (name == "log_lik" and lik.log_lik_integrated)]
        if self.requested is True:
            return Decision(subject, "drawn back", "effects=True requested", applied=False)
        if self.requested is False:
            if needs:
                raise PlanError(f"effects=False: {' and '.join(needs)} are computed given the "
                                f"drawn effects of {group.name}; pass "
                                f"{'=False, '.join(needs)}=False too")
            return Decision(subject, "not drawn", "effects=False requested")
        if needs:
            verb = "need" if len(needs) > 1 else "needs"
            return Decision(subject, "drawn back", f"{' and '.join(needs)} {verb} them",
                            applied=False)
        if group.n_levels <= MAX_ROWS:
            return Decision(subject, "drawn back", f"{group.n_levels} levels, at most "
                            f"{MAX_ROWS}", applied=False)
        return Decision(subject, "not drawn", f"{group.n_levels} levels, over {MAX_ROWS}, and "
                        "neither log_lik nor y_rep needs them; pass effects=True to draw them")

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        groups = tuple(dataclasses.replace(g, draw=False) if g.marginalized else g
                       for g in plan.groups)
        return dataclasses.replace(plan, groups=groups)


@dataclass(frozen=True)
class RowData(InSteps):
    """Leaves the rows out of the data when nothing in the program reads them.

    With the joint sufficient statistics the model block reads only their factors, so
    unless a per-row output or drawn-back effects need the rows, the outcome, X and the
    levels and covariates of every row are dead weight: at 3M rows and 40 columns that
    is a 2 GB data file every chain parses and holds twice (X and its centered copy).
    Then the data keep only the rows' count and X's column moments, computed in float64
    here. Runs last: it looks at every output decision.
    """

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision | None:
        lik = plan.likelihood
        if not isinstance(lik.strategy, Joint):
            return None  # the model block reads the rows: they are always passed
        needs = [name for name in ("log_lik", "y_rep") if getattr(lik, name)]
        needs += [f"the drawn effects of {g.name}" for g in plan.groups
                  if g.marginalized and g.drawn]
        if needs:
            return Decision("row data", "passed", f"computed from them: {', '.join(needs)}",
                            applied=False)
        return Decision("row data", "left out", "the joint statistics hold all the model "
                        "block needs, and nothing per row is written; the data keep the "
                        "row count and X's column moments")

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        return dataclasses.replace(plan, rows_given=False)
