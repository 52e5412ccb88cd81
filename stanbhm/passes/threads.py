"""Whether the likelihood is summed over slices on several threads (reduce_sum).

Threads pay where the per-row work is large: a row-wise likelihood over many rows is
sliced by rows; one whose gaussian group intercept is integrated out over the rows
needs each level's rows together, and is sliced by levels (`reduce`). The other
rewritten likelihoods (sufficient statistics, cells, the other conjugate marginals) cost
little per gradient or per row already, so they stay on one thread and the header says
so; chains still run in parallel either way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..marginals import KINDS
from ..reduce import grainsize
from ..strategies import MarginalRows, Rowwise
from .base import Decision, InSteps

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

SUBJECT = "threads"


def sliced_kinds() -> str:
    """The marginal kinds whose levels reduce_sum slices: "normal and quadrature"."""
    return " and ".join(kind.name for kind in KINDS if kind.threads)


def sliced_levels(plan: Plan) -> int | None:
    """The number of levels reduce_sum slices when the likelihood integrates a group
    intercept out over the rows by a kind that slices (None when it does not)."""
    marginal = plan.likelihood.marginal
    if (not isinstance(plan.likelihood.strategy, MarginalRows) or not marginal.kind.threads
            or not marginal.needs_sums):
        return None
    return len(marginal.counts)


@dataclass(frozen=True)
class Threads(InSteps):
    """Writes the likelihood as reduce_sum over slices of the fitted rows."""

    threads: int | None
    grainsize: int | None

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        lik = plan.likelihood
        if self.threads in (None, 1):
            return Decision(SUBJECT, "one per chain",
                            "pass threads=k for reduce_sum over slices of rows", applied=False)
        levels = sliced_levels(plan)
        if isinstance(lik.strategy, MarginalRows) and levels is None:
            return Decision(SUBJECT, "one per chain",
                            f"the effects of {lik.marginal.name} are integrated out "
                            f"({lik.marginal.kind.name}); only the {sliced_kinds()} kinds' "
                            "rows are summed over slices of their levels", applied=False)
        if lik.additions:
            return Decision(SUBJECT, "one per chain",
                            f"{lik.addition_reason}, written by kind of row or one row at a "
                            "time; reduce_sum slices are not written for them", applied=False)
        if not isinstance(lik.strategy, Rowwise) and levels is None:
            return Decision(SUBJECT, "one per chain",
                            f"the likelihood is rewritten ({lik.strategy.rewritten_as}), not a "
                            "sum over rows or levels that slices can share", applied=False)
        if levels is None:
            sliced, what = "the fitted rows", f"{plan.n_obs} fitted rows"
        else:
            name = lik.marginal.name
            sliced = (f"the levels of {name}, whose effects are integrated out (each level's "
                      "rows together)")
            what = f"{levels} levels of {name}"
        size = self.size(plan)
        how = (f"grainsize={size} requested" if self.grainsize is not None else
               f"grainsize {size}: {what} over 4 slices per thread")
        return Decision(SUBJECT, f"{self.threads} per chain",
                        f"reduce_sum over slices of {sliced}; {how}")

    def size(self, plan: Plan) -> int:
        if self.grainsize is not None:
            return self.grainsize
        levels = sliced_levels(plan)
        return grainsize(plan.n_obs if levels is None else levels, self.threads or 1)

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        strategy = dataclasses.replace(plan.likelihood.strategy, threads=self.threads or 1,
                                       grainsize=self.size(plan))
        plan = dataclasses.replace(plan, likelihood=plan.likelihood.with_strategy(strategy))
        return by_level(plan) if sliced_levels(plan) is not None else plan


def by_level(plan: Plan) -> Plan:
    """The plan with its fitted rows sorted by level of the term integrated out, so that
    a slice of levels reads one contiguous run of rows. The order lives in ``obs`` (the
    fitted rows' numbers, as when some outcomes are missing), so ``log_lik`` keeps each
    row's number as its label, and every part reads its fitted rows through ``obs``."""
    lik = plan.likelihood
    marginal = lik.marginal
    order = np.argsort(marginal.index, kind="stable")
    marginal = dataclasses.replace(marginal, index=marginal.index[order], sorted_rows=True)
    strategy = dataclasses.replace(lik.strategy, marginal=marginal)
    likelihood = dataclasses.replace(lik, obs=lik.obs[order], y=lik.y[order],
                                     strategy=strategy)
    return dataclasses.replace(plan, likelihood=likelihood)
