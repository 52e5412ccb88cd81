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

With a group intercept of the same factor integrated out (`marginalize`), its marginal
needs per level the sum of the residuals, sum(y) - sum(D) theta_j, so two more
statistics (the per-level sums of y and of each column) keep the cost O(levels).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..likelihood import Statistics
from .base import Decision, once
from .rewrites import allowed

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

SUBJECT = "sufficient statistics"
#: Applied when the rows per level are at least this many times the design's columns:
#: below that the per-level quadratic forms cost about what the rows do.
ROWS_PER_COLUMN = 2


@dataclass(frozen=True)
class SufficientStatistics:
    """Replaces a gaussian likelihood's rows by per-level statistics."""

    rewrites: Any
    _made: dict = field(default_factory=dict, compare=False, repr=False)

    def skip_reason(self, spec: ModelSpec, plan: Plan) -> str:
        lik = plan.likelihood
        if not allowed(self.rewrites, "sufficient_statistics"):
            return f"rewrites={self.rewrites!r} requested"
        if lik.family.collapse != "sufficient statistics":
            return f"the {lik.family.name} family has no sufficient statistics"
        if lik.se is not None:
            return "known standard errors: the rows are already the statistics"
        if lik.strategy not in ("rowwise", "marginal"):
            return f"the likelihood is already rewritten ({lik.strategy})"
        factors = sorted({g.name for g in plan.groups})
        if not factors:
            return "no group term (a model without one is not built yet)"
        if len(factors) > 1:
            return f"group terms on {len(factors)} factors ({', '.join(factors)}); one is needed"
        return ""

    def design(self, plan: Plan) -> Design:
        """The levels' design, built once per plan (applies and apply both ask)."""
        return once(self._made, plan, lambda: _design(plan))

    def statistics(self, plan: Plan) -> Statistics:
        """The per-level statistics; computed only when the rewrite applies."""
        d = self.design(plan)
        lik = plan.likelihood
        obs = lik.obs
        first = plan.groups[0]
        n_levels = first.n_levels
        y = lik.y - (plan.offset.values[obs] if plan.offset else 0.0)
        index = first.index[obs] - 1
        bhat, R, rss = level_statistics(d.D, y, index, n_levels)
        sums = None
        if lik.marginal is not None:  # per level: sums of y and of each column
            sums = (np.bincount(index, weights=y, minlength=n_levels),
                    np.column_stack([np.bincount(index, weights=c, minlength=n_levels)
                                     for c in d.D.T]))
        return Statistics(ident=first.ident, name=first.name, labels=d.labels, theta=d.theta,
                          bhat=bhat, R=R, rss=rss, sums=sums, whole=d.whole)

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        why = self.skip_reason(spec, plan)
        if why:
            return Decision(SUBJECT, "not applied", why, applied=False)
        factor = plan.groups[0]
        p, g, n = len(self.design(plan).labels), factor.n_levels, plan.likelihood.n_obs
        cost = f"{n} rows, {g} levels of {factor.name}, {p} columns per level"
        if n < ROWS_PER_COLUMN * p * g:
            return Decision(SUBJECT, "not applied", f"{cost}: fewer than {ROWS_PER_COLUMN} "
                            "rows per column and level, so the rows cost no more", applied=False)
        return Decision(SUBJECT, "per level of " + factor.name,
                        f"{cost}: a gradient costs O(levels x columns^2), not O(rows)")

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        stats = self.statistics(plan)
        lik = plan.likelihood
        groups = plan.groups
        marginal = lik.marginal
        if marginal is not None:  # its level sums now come from the statistics
            marginal = dataclasses.replace(marginal, from_statistics=True)
            groups = tuple(dataclasses.replace(g, margin=marginal) if g.marginalized else g
                           for g in groups)
        likelihood = dataclasses.replace(lik, strategy="statistics", statistics=stats,
                                         marginal=marginal)
        return dataclasses.replace(plan, likelihood=likelihood, groups=groups)


@dataclass(frozen=True, eq=False)
class Design:
    """The design every level's rows share: its columns over the fitted rows and, per
    column, the Stan expression of the levels' coefficients."""

    labels: tuple[str, ...]
    D: np.ndarray  # (fitted rows, columns)
    theta: tuple[str, ...]
    whole: str  # all of theta as one matrix expression, or ""


def _design(plan: Plan) -> Design:
    groups = [g for g in plan.groups if not g.marginalized]
    fixed = plan.fixed
    lik = plan.likelihood
    obs = lik.obs
    # the design's columns: (label, values over the fitted rows, population coefficient)
    columns: list[tuple[str, np.ndarray, str]] = []
    keys: dict[tuple, int] = {}
    if fixed.intercept or any("Intercept" in g.effects for g in groups):
        # (an intercept integrated out adds nothing to theta: it is in the sums)
        keys[("1",)] = len(columns)
        pop = "Intercept" if fixed.intercept and not fixed.absorbed_intercept else ""
        columns.append(("Intercept", np.ones(len(obs)), pop))
    X = fixed.X[obs]
    for j, name in enumerate(fixed.names):
        keys[("X", name)] = len(columns)
        values = X[:, j] - X[:, j].mean() if fixed.centered else X[:, j]
        pop = f"b[{j + 1}]" if j not in fixed.absorbed else ""
        columns.append((name, values, pop))
    levels: list[list[str]] = [[] for _ in columns]
    for g in groups:
        for e, effect in enumerate(g.effects):
            key = ("1",) if effect == "Intercept" else ("X", effect)
            if key not in keys:  # a varying covariate with no population coefficient
                key = ("Z", g.term_name, effect)
                keys[key] = len(columns)
                columns.append((effect, g.Z[obs, e], ""))
                levels.append([])
            levels[keys[key]].append(g.level_column(e))
    first = plan.groups[0]
    exprs = []
    for (_, _, pop), parts in zip(columns, levels, strict=True):
        if pop and parts:
            exprs.append(" + ".join([pop, *parts]))
        elif parts:
            exprs.append(" + ".join(parts))
        else:
            exprs.append(f"rep_vector({pop}, N_{first.ident})")
    whole = _whole_matrix(groups, columns, levels, first.ident)
    return Design(labels=tuple(c[0] for c in columns),
                  D=np.column_stack([values for _, values, _ in columns]), theta=tuple(exprs),
                  whole=whole)


def level_statistics(
    D: np.ndarray, y: np.ndarray, index: np.ndarray, n_levels: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per level: least-squares coefficients (G, P), the triangular factor as
    R[k, j, :] = row k of level j's R (P, G, P), and the total residual sum of squares."""
    p = D.shape[1]
    bhat = np.zeros((n_levels, p))
    R = np.zeros((p, n_levels, p))
    rss = 0.0
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(n_levels + 1))
    for j in range(n_levels):
        rows = order[bounds[j]:bounds[j + 1]]
        if len(rows) == 0:
            continue
        Dj, yj = D[rows], y[rows]
        coef = np.linalg.lstsq(Dj, yj, rcond=None)[0]
        resid = yj - Dj @ coef
        rss += float(resid @ resid)
        r = np.linalg.qr(Dj, mode="r")
        bhat[j] = coef
        R[: r.shape[0], j, :] = r
    return bhat, R, rss


def _whole_matrix(groups, columns, levels, ident: str) -> str:
    """One matrix expression for the levels' coefficients when a single multi-effect term
    covers every column in order (``rep_matrix([Intercept, b[1]], N_g) + r_g``), else ""."""
    if len(groups) != 1 or groups[0].k < 2 or groups[0].k != len(columns):
        return ""
    g = groups[0]
    if any(parts != [g.level_column(e)] for e, parts in enumerate(levels)):
        return ""
    matrix = f"r_{g.ident}" if g.noncentered else f"to_matrix({g.level_param})"
    pops = [pop or "0" for _, _, pop in columns]
    if all(p == "0" for p in pops):
        return matrix
    return f"rep_matrix([{', '.join(pops)}], N_{ident}) + {matrix}"
