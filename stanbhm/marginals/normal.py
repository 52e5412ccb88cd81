"""The normal marginal: a gaussian group intercept integrated out exactly.

With e the residuals before the term and w_i the rows' precisions (1 / sigma^2, or
1 / se_i^2 with known standard errors), level j's rows are N(0, W^-1 + tau^2 11'), and
the matrix determinant lemma gives their log density from per-level sums,
S_j = sum w_i e_i and P_j = sum w_i (up to a constant):

    -1/2 [log(1 + tau^2 P_j) + sum w_i e_i^2 - tau^2 S_j^2 / (1 + tau^2 P_j)]

so the per-gradient cost stays O(rows) and the level effects leave the sampler. The
effect is drawn back from u_j ~ N(tau^2 S_j / v_j, tau / sqrt(v_j)), v_j = 1 + tau^2 P_j.
When no level has more than one row the rows are independent and the statement is
``y ~ normal(eta, sqrt(var + tau^2))``.

The level sums come from the rows, from cells of rows with one linear predictor (a
gaussian cell c of n_c rows with mean ybar_c adds n_c (ybar_c - eta_c) to its level's
sum and n_c (ybar_c - eta_c)^2 to the squares, besides its rows' squares about their
mean), or from sufficient statistics; the rows' density can be sliced by level for
reduce_sum. Its template: ``stan_templates/marginals/normal.stan.j2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..declarations import Declaration
from .base import Kind, Marginal, level_rows, ones

if TYPE_CHECKING:
    from ..families import Family

__all__ = ["NORMAL"]


class Normal(Kind):
    name = "normal"
    rewrite = "marginalize"
    conjugate = "normal"
    cell_rule = "gaussian cells"
    threads = True
    foldable = True
    integrated_log_lik = True
    prefixes = ("n", "W", "rows", "start", "sum", "prec", "v", "m", "ones", "count",
                "logvar", "sq")

    def family_reason(self, family: Family) -> str:
        others = {"gamma": "'gamma_poisson' integrates out gamma multipliers",
                  "beta": "'beta_binomial' integrates out beta probabilities"}
        if family.conjugate_intercept in others:
            return (f"the {family.title} family has no exact normal marginal; "
                    f"{others[family.conjugate_intercept]} instead (a different model for "
                    "the effects, asked for by name)")
        if family.conjugate_intercept != "normal":
            return (f"the {family.title} family has no exact normal marginal; group "
                    "intercepts are integrated out of gaussian outcomes only")
        return ""

    def decision(self, term: str) -> str:
        return ("gaussian rows with a group intercept: exact normal-normal "
                "marginalization; the level effects are drawn back in generated quantities")

    def per_row(self, m: Marginal) -> bool:
        return not m.from_statistics and int(m.counts.max(initial=0)) <= 1

    def declarations(self, m: Marginal, lik: Any, p: Any) -> tuple[Declaration, ...]:
        g = m.ident
        out = level_rows(m, p)
        if m.per_row:
            pass
        elif m.precision is None:
            out.append(Declaration("data", f"vector<lower=0>[N_{g}]", f"n_{g}",
                                   "fitted rows of each level"))
        else:
            out.append(Declaration("data", f"vector<lower=0>[N_{g}]", f"W_{g}",
                                   "per level: sum of 1 / se^2 over its fitted rows"))
        if lik.se is not None and not m.per_row:
            fit = p.fit_rows
            out.append(Declaration("transformed data", f"vector[{fit.n}]", "inv_var",
                                   "1 / se^2 of each fitted row", f"inv_square(se{fit.suffix})"))
        return (*out, *ones(m, lik, p))

    def level_data(self, m: Marginal) -> dict[str, Any]:
        if m.per_row:
            return {}
        if m.precision is None:
            return {f"n_{m.ident}": m.counts}
        return {f"W_{m.ident}": m.precision}


NORMAL = Normal()
