"""Whether the likelihood is summed over slices of rows on several threads (reduce_sum).

Threads pay where the per-row work is large: a row-wise likelihood over many rows.
The rewritten likelihoods (sufficient statistics, cells, marginal sums) already cost
little per gradient or need each level's rows together, so they stay on one thread and
the header says so; chains still run in parallel either way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..reduce import grainsize
from .base import Decision

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

SUBJECT = "threads"


@dataclass(frozen=True)
class Threads:
    """Writes the likelihood as reduce_sum over slices of the fitted rows."""

    threads: int | None
    grainsize: int | None

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        lik = plan.likelihood
        if self.threads in (None, 1):
            return Decision(SUBJECT, "one per chain",
                            "pass threads=k for reduce_sum over slices of rows", applied=False)
        if lik.strategy != "rowwise":
            return Decision(SUBJECT, "one per chain",
                            f"the likelihood is rewritten ({lik.strategy}), not a sum over rows "
                            "that slices can share", applied=False)
        size = self.size(plan)
        how = (f"grainsize={size} requested" if self.grainsize is not None else
               f"grainsize {size}: {plan.n_obs} fitted rows over 4 slices per thread")
        return Decision(SUBJECT, f"{self.threads} per chain",
                        f"reduce_sum over slices of the fitted rows; {how}")

    def size(self, plan: Plan) -> int:
        return self.grainsize if self.grainsize is not None else grainsize(plan.n_obs,
                                                                          self.threads or 1)

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        likelihood = dataclasses.replace(plan.likelihood, threads=self.threads or 1,
                                         grainsize=self.size(plan))
        return dataclasses.replace(plan, likelihood=likelihood)
