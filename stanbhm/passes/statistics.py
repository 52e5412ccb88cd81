"""Gaussian sufficient statistics: a likelihood whose cost grows with levels, not rows.

When every group term is on one factor, the rows of level j share one coefficient vector
theta_j over the columns D of their design (intercept, the columns of X, the varying
covariates), and

    sum_i (y_i - D_i theta_j)^2 = rss_j + |R_j (theta_j - bhat_j)|^2

where bhat_j is level j's least-squares fit, rss_j its residual sum of squares and R_j
the triangular factor of D_j (R_j'R_j = D_j'D_j). The identity holds for any least-
squares solution, so levels with fewer rows than columns need no special case. The
statistics are computed once with numpy in float64 (QR and the residuals themselves,
never y'y - 2..., which cancels), and a gradient then costs O(levels * columns^2)
whatever the number of rows. Exact: the log density changes by a constant only.
Weighted rows (`weights(w)`) are rows times sqrt(w_i), their weights' sum standing for
the row count in the log(sigma) term (`design.row_scale`).

With a group intercept of the same factor integrated out (`marginalize`), its marginal
needs per level the sum of the residuals, sum(y) - sum(D) theta_j, so two more
statistics (the per-level sums of y and of each column) keep the cost O(levels).

With the intercept of another factor integrated out whose levels are nested in this
factor's (respondents, each living in one state), member m of level j has the residual
sum s_m = t_m - S_m theta_j (t_m, S_m: its rows' sums of y and of D), and the marginal
needs sum_m s_m^2 / v_m with v_m = sigma^2 + n_m tau^2 depending on its row count n_m
alone. So the members are grouped into cells of one level and one row count, and each
cell's sum of squares is again rss_c + |R_c (theta_j - bhat_c)|^2: O(cells * columns^2),
whatever the number of rows or members.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..design import Design, factor_group, row_scale, unfit_reason, weight_sum, weighted_note
from ..strategies import NestedCells, Statistics
from .base import Decision
from .joint import SPARSE_NS, RowAnalysis, analysis_of, cheaper_than

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

SUBJECT = "sufficient statistics"
#: Applied when the rows per level are at least this many times the design's columns:
#: below that the per-level quadratic forms cost about what the rows do.
ROWS_PER_COLUMN = 2


@dataclass(frozen=True)
class SufficientStatistics:
    """Replaces a gaussian likelihood's rows by per-level statistics; `rows` is the
    analysis of the rows it is given (None: it analyses them itself), which it shares
    with the joint statistics (`joint`) to learn whether they cost less."""

    rewrites: Any
    rows: RowAnalysis | None = field(default=None, compare=False, repr=False)

    def decide(self, spec: ModelSpec, plan: Plan) -> tuple[Decision, Plan]:
        why = unfit_reason(self.rewrites, "sufficient_statistics", plan)
        home = None if why else nesting(plan)
        why = why or factors_reason(plan, home)
        if why:
            return Decision(SUBJECT, "not applied", why, applied=False), plan
        rows = analysis_of(self.rows, plan)
        decision = self.decision(plan, rows, home)
        if not decision.applied:
            return decision, plan
        likelihood = plan.likelihood.with_strategy(statistics(plan, rows.design, home))
        return decision, dataclasses.replace(plan, likelihood=likelihood)

    def decision(self, plan: Plan, rows: RowAnalysis, home: np.ndarray | None) -> Decision:
        """Applied when the statistics cost less than the rows and than the joint
        statistics; for a plan the rewrite can apply to."""
        factor = factor_group(plan)
        p, g, n = len(rows.design.labels), factor.n_levels, plan.likelihood.n_obs
        cost = f"{n} rows, {g} levels of {factor.name}, {p} columns per level"
        if n < ROWS_PER_COLUMN * p * g:
            return Decision(SUBJECT, "not applied", f"{cost}: fewer than {ROWS_PER_COLUMN} "
                            "rows per column and level, so the rows cost no more", applied=False)
        marginal = plan.likelihood.marginal
        nested = marginal is not None and marginal.name != factor.name
        cells = len(cell_keys(home, marginal.counts)[0]) if nested else 0
        if nested and n < (cells + g) * p:
            return Decision(
                SUBJECT, "not applied", f"{cost}; {marginal.name}, integrated out, is "
                f"nested in {factor.name}, but its {cells} cells and the {g} levels "
                f"times {p} columns outnumber the rows, so the rows cost no more",
                applied=False)
        entries = (g + cells) * p * (p + 1) / 2
        joint = cheaper_than(self.rewrites, plan, rows, SPARSE_NS * entries,
                             f"{entries:.3g} entries of sparse ones")
        if joint:
            return Decision(SUBJECT, "not applied", f"{cost}: {joint}", applied=False)
        if nested:
            return Decision(
                SUBJECT, f"per level of {factor.name}, and of {marginal.name} per cell",
                f"{cost}; {marginal.name}, integrated out, is nested in {factor.name}: its "
                f"levels' residual sums enter through {cells} cells of one level of "
                f"{factor.name} and one row count: a gradient costs O((levels + cells) x "
                "columns^2), not O(rows)")
        weighted = weighted_note(plan)
        return Decision(SUBJECT, "per level of " + factor.name + (", weighted" if weighted else ""),
                        f"{cost}: a gradient costs O(levels x columns^2), not O(rows)"
                        + weighted)


def factors_reason(plan: Plan, home: np.ndarray | None) -> str:
    """Why the group terms' factors rule the statistics out ("" when they do not), `home`
    being `nesting(plan)`."""
    lik = plan.likelihood
    factors = sorted({g.name for g in plan.groups})
    if len(factors) > 1:
        kept = sorted({g.name for g in plan.groups if not g.marginalized})
        reason = f"group terms on {len(factors)} factors ({', '.join(factors)})"
        if lik.marginal is None or len(kept) != 1:
            return f"{reason}; one is needed"
        if home is None:
            return (f"{reason}; one is needed, or another whose intercept is integrated "
                    f"out and whose levels each lie in one level of {kept[0]}, which "
                    f"{lik.marginal.name}'s do not")
    return ""


def statistics(plan: Plan, d: Design, home: np.ndarray | None) -> Statistics:
    """The per-level statistics of `plan`'s rows, whose design is `d` and whose
    integrated-out factor's levels lie in the kept factor's levels `home` (or None)."""
    lik = plan.likelihood
    obs = lik.obs
    first = factor_group(plan)
    n_levels = first.n_levels
    y = lik.y - (plan.offset.values[obs] if plan.offset else 0.0)
    index = first.index[obs] - 1
    scale = row_scale(plan)
    D = d.D
    if scale is not None:  # weighted rows: each a plain row times sqrt(w)
        D, y = D * scale[:, None], y * scale
    bhat, R, rss = level_statistics(D, y, index, n_levels)
    sums, nested = None, None
    if home is not None:
        nested = nested_cells(D, y, lik.marginal.index, home)
    elif lik.marginal is not None:  # per level: sums of y and of each column
        sums = (np.bincount(index, weights=y, minlength=n_levels),
                np.column_stack([np.bincount(index, weights=c, minlength=n_levels)
                                 for c in D.T]))
    return Statistics(ident=first.ident, factor=first.name, labels=d.labels,
                      theta_columns=d.theta_columns,
                      bhat=bhat, R=R, rss=float(rss.sum()), sums=sums, whole=d.whole,
                      whole_pops=d.whole_pops,
                      nested=nested, weight_sum=weight_sum(plan),
                      marginal=None if lik.marginal is None else lik.marginal.in_statistics())


def nesting(plan: Plan) -> np.ndarray | None:
    """With a factor integrated out and nested in the kept one: the kept factor's 0-based
    level of each of its levels (-1 for a level without fitted rows); else None."""
    marginal = plan.likelihood.marginal
    if marginal is None:
        return None
    kept = factor_group(plan)
    if kept.name == marginal.name:
        return None
    member = marginal.index
    level = kept.index[plan.likelihood.obs] - 1
    home = np.full(len(marginal.counts), -1)
    home[member] = level
    return home if np.array_equal(home[member], level) else None


def nested_cells(D: np.ndarray, y: np.ndarray, member: np.ndarray,
                 home: np.ndarray) -> NestedCells:
    """The members' sums of y and of D's columns, grouped into cells of one level
    (``home``) and one row count, each cell's least-squares statistics taken over its
    members."""
    n_members = len(home)
    counts = np.bincount(member, minlength=n_members)
    t = np.bincount(member, weights=y, minlength=n_members)
    S = np.column_stack([np.bincount(member, weights=c, minlength=n_members) for c in D.T])
    present = counts > 0
    cells, cell_of, width = cell_keys(home, counts)
    bhat, R, rss = level_statistics(S[present], t[present], cell_of, len(cells))
    return NestedCells(level=cells // width, rows=cells % width,
                       members=np.bincount(cell_of, minlength=len(cells)), bhat=bhat, R=R,
                       rss=rss)


def cell_keys(home: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The cells (one key per distinct home level and row count, key = level x width +
    count), the cell of each member with rows, and the width."""
    present = counts > 0
    width = int(counts.max()) + 1
    cells, cell_of = np.unique(home[present] * width + counts[present], return_inverse=True)
    return cells, cell_of, width


def level_statistics(
    D: np.ndarray, y: np.ndarray, index: np.ndarray, n_levels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per level: least-squares coefficients (G, P), the triangular factor as
    R[k, j, :] = row k of level j's R (P, G, P), and the residual sum of squares (G)."""
    p = D.shape[1]
    bhat = np.zeros((n_levels, p))
    R = np.zeros((p, n_levels, p))
    rss = np.zeros(n_levels)
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(n_levels + 1))
    for j in range(n_levels):
        rows = order[bounds[j]:bounds[j + 1]]
        if len(rows) == 0:
            continue
        Dj, yj = D[rows], y[rows]
        coef = np.linalg.lstsq(Dj, yj, rcond=None)[0]
        resid = yj - Dj @ coef
        rss[j] = float(resid @ resid)
        r = np.linalg.qr(Dj, mode="r")
        bhat[j] = coef
        R[: r.shape[0], j, :] = r
    return bhat, R, rss
