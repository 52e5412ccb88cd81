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

Weighted rows (`weights(w)`: row i adds w_i times its log density, as brms) keep the
integrand gaussian in u_j: level j's rows add

    sum_i w_i log N(y_i | m_i + u_j, sigma) = -W_j log(sigma) - (Q_j - 2 u_j S_j
                                              + W_j u_j^2) / (2 sigma^2) + constant

with W_j = sum w_i, S_j = sum w_i r_i, Q_j = sum w_i r_i^2 and r_i = y_i - m_i, so the
weights are precisions: with u_j ~ N(0, tau^2) the integral is

    -(W_j - 1) log(sigma) - 1/2 log(v_j) - Q_j / (2 sigma^2) + tau^2 S_j^2 / (2 sigma^2 v_j)

with v_j = sigma^2 + W_j tau^2: the formula of plain rows with W_j for the row count
(n_<g> holds it), the sums weighted, and the weights' sum (``wsum_<g>``) counting the
rows in log(sigma). u_j's conditional is normal with precision W_j / sigma^2 + 1 /
tau^2 and mean tau^2 S_j / v_j; known standard errors give the rows precisions
w_i / se_i^2. A level of one weighted row is no normal density of that row (the weight
scales its log density, not its variance alone), so weighted rows always take the
level sums, never the per-row statement. log_lik="marginal" is the same integral per
level, its constant -W_j log(2 pi) / 2 and -sum w_i log(var_i) / 2 included.
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
                "logvar", "sq", "wsum")
    weighted = True
    by_auto = True

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
        return (not m.from_statistics and not m.weighted
                and int(m.counts.max(initial=0)) <= 1)

    def declarations(self, m: Marginal, lik: Any, p: Any) -> tuple[Declaration, ...]:
        g = m.ident
        out = level_rows(m, p)
        if m.per_row:
            pass
        elif m.precision is None:
            out.append(Declaration("data", f"vector<lower=0>[N_{g}]", f"n_{g}",
                                   "fitted rows' weights summed per level" if m.weighted
                                   else "fitted rows of each level"))
        else:
            out.append(Declaration("data", f"vector<lower=0>[N_{g}]", f"W_{g}",
                                   "per level: sum of weight / se^2 over its fitted rows"
                                   if m.weighted else
                                   "per level: sum of 1 / se^2 over its fitted rows"))
        fit = p.fit_rows
        if lik.se is not None and not m.per_row and m.weighted:
            out.append(Declaration("transformed data", f"vector[{fit.n}]", "inv_var",
                                   "weight / se^2 of each fitted row: its precision",
                                   f"weights .* inv_square(se{fit.suffix})"))
        elif lik.se is not None and not m.per_row:
            out.append(Declaration("transformed data", f"vector[{fit.n}]", "inv_var",
                                   "1 / se^2 of each fitted row", f"inv_square(se{fit.suffix})"))
        if m.weighted and m.precision is None and m.cell_level is None:
            out.append(Declaration("transformed data", "real", f"wsum_{g}",
                                   "the fitted rows' weights summed: their count in the "
                                   "log(sigma) term", "sum(weights)"))
        return (*out, *ones(m, lik, p))

    def level_data(self, m: Marginal) -> dict[str, Any]:
        if m.per_row:
            return {}
        if m.precision is None:
            return {f"n_{m.ident}": m.counts if m.level_weights is None else m.level_weights}
        return {f"W_{m.ident}": m.precision}


NORMAL = Normal()
