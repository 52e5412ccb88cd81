"""Block products: a group term's part of the fitted rows' linear predictor as one sparse
product, not one gather per effect.

A term with k effects adds, for every fitted row i of level j, sum_e Z[i, e] r[j, e]. As
k gathers (``r[J, e] .* Z[ : , e]``) that is k vectors of N autodiff nodes. The same
numbers are one product of a sparse matrix with the levels' effects: row i holds Z[i, ]
in the columns of level j's effects, so ``csr_matrix_times_vector`` with the effects as
one vector gives every row at once, one node (the retail model's 23 effects:
docs/benchmarks.md, section scale). The sparse matrix is data, built once in
transformed data. The log density is unchanged (tests/test_block.py: ``log_prob`` a
constant apart from the gathers' program, for each family and parameterization that
uses it). Every row holds k values, so a reduce_sum slice of rows a to b is the
product of the rows' own stretch of values, ``csr_w[(a - 1) k + 1 : b k]``, with the
same effects; cells and generated quantities keep the gathers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..rewrites import allowed
from ..strategies import MarginalRows, Rowwise
from .base import Decision, InSteps

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

SUBJECT = "block products"
#: Terms with at least this many effects are multiplied as a block (measured: the scale
#: suite's ``block`` section).
MIN_EFFECTS = 2


@dataclass(frozen=True)
class BlockProducts(InSteps):
    """Writes the fitted rows' part of each term with several effects as one product."""

    rewrites: Any

    def terms(self, plan: Plan) -> list:
        return [g for g in plan.groups if g.k >= MIN_EFFECTS and not g.marginalized]

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision | None:
        terms = self.terms(plan)
        if not terms:
            return None  # no term has several effects
        lik = plan.likelihood
        if not allowed(self.rewrites, "block_products"):
            return Decision(SUBJECT, "not used", f"rewrites={self.rewrites!r} requested",
                            applied=False)
        if not isinstance(lik.strategy, Rowwise | MarginalRows):
            return Decision(SUBJECT, "not used", f"the likelihood is rewritten "
                            f"({lik.strategy.rewritten_as}), not a sum over the rows",
                            applied=False)
        names = ", ".join(f"{g.term_name} ({g.k} effects)" for g in terms)
        where = ("; each reduce_sum slice over its own rows" if lik.threads > 1 else "")
        return Decision(SUBJECT, f"for {names}",
                        f"over {lik.n_obs} fitted rows, one sparse product of the rows' "
                        f"covariates with the levels' effects (csr_matrix_times_vector{where})"
                        " instead of a gather per effect, each an autodiff node per row")

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        chosen = {g.ident for g in self.terms(plan)}
        groups = tuple(dataclasses.replace(g, block=True) if g.ident in chosen else g
                       for g in plan.groups)
        return dataclasses.replace(plan, groups=groups)
