"""The gamma-Poisson marginal: each level multiplies a poisson row's rate by
u_j ~ gamma(a, a), a = 1 / sd^2 (mean 1, sd sd), integrated out exactly.

Asked for by name only (``rewrites={term: "gamma_poisson"}``), since it changes the
model for the effects. Given the rest, level j's rows have the density (up to a
constant)

    sum_i y_i eta_i + a log a - lgamma(a) + lgamma(a + Y_j) - (a + Y_j) log(a + M_j)

with Y_j the level's total count and M_j = sum_i exp(eta_i); u_j is drawn back from
gamma(a + Y_j, a + M_j) and reported as r_g = log(u_j). Cells of rows with one linear
predictor serve it too: a cell adds its summed count and its rate times its summed
exposure. Its template: ``stan_templates/marginals/gamma.stan.j2``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..declarations import Declaration
from .base import Kind, Marginal, level_rows, ones

__all__ = ["GAMMA"]


class Gamma(Kind):
    name = "gamma"
    rewrite = "gamma_poisson"
    conjugate = "gamma"
    cell_rule = "poisson sum"
    prefixes = ("Y", "mu", "shape", "a", "rows", "start", "ones")

    def family_reason(self, family) -> str:
        if family.conjugate_intercept != "gamma":
            return (f"gamma multipliers are conjugate to poisson rows, not to the "
                    f"{family.title} family")
        return ""

    def decision(self, term: str) -> str:
        return ("'gamma_poisson' requested: each level multiplies the rate by "
                f"u ~ gamma(1 / sd_{term}^2, 1 / sd_{term}^2) (mean 1), integrated out "
                f"exactly; r_{term} = log(u) is drawn back in generated quantities")

    def summaries(self, index, n_levels, y, trials) -> dict[str, Any]:
        return {"totals": np.bincount(index, weights=y, minlength=n_levels)}

    def declarations(self, m: Marginal, lik: Any, p: Any) -> tuple[Declaration, ...]:
        g = m.ident
        out = [*level_rows(m, p),
               Declaration("data", f"array[N_{g}] int<lower=0>", f"Y_{g}",
                           "outcome summed over each level's fitted rows")]
        counts, n = ("y_cell", "N_cell") if lik.cells else ("y", p.fit_rows.n)
        of = " of each cell" if lik.cells else ""
        out += [Declaration("transformed data", f"vector[{n}]", f"{counts}_vec",
                            f"the outcome{of}, as a vector", f"to_vector({counts})"),
                Declaration("transformed data", f"vector[N_{g}]", f"Y_{g}_vec",
                            "the outcome summed over each level, as a vector",
                            f"to_vector(Y_{g})")]
        return (*out, *ones(m, lik, p))

    def level_data(self, m: Marginal) -> dict[str, Any]:
        return {f"Y_{m.ident}": m.totals.round().astype(np.int64)}

    def names(self, ident: str) -> tuple[str, ...]:
        return (*super().names(ident), f"Y_{ident}_vec")


GAMMA = Gamma()
