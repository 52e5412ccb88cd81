"""The gaussian rewrites' view of the linear predictor: its columns over the fitted rows.

Every column of the design (the intercept, each column of X, each varying covariate
without a population coefficient) carries a population coefficient, the level effects
of the group terms that vary it, or both. The per-level statistics
(`passes.statistics`) read it level by level; the joint statistics (`passes.joint`)
spread each level effect over one column per level. They, and the cells
(`passes.collapse`) weighing the joint statistics' cost, share one design of a plan's
rows, built at most once by `passes.joint.RowAnalysis`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from . import formula
from .arrays import column_means
from .parts import b_runs
from .rewrites import allowed
from .strategies import MarginalRows, Rowwise

if TYPE_CHECKING:
    from .parts import GroupPart
    from .plan import Plan


@dataclass(frozen=True, eq=False)
class DesignRows:
    """The design's values over the fitted rows, made a block of rows at a time on
    demand (``rows[i]``: the rows at positions ``i`` of the fitted rows), as a matrix
    would give them: the election model's 3M rows x 43 columns would be 1 GB, and each
    reader needs a block at a time. Its columns: ones, X's columns (less `means`), and
    covariates of group terms."""

    X: np.ndarray  # the population columns over all rows
    obs: np.ndarray  # the fitted rows' positions in X
    x_at: int  # the design's column of X's first
    means: np.ndarray  # subtracted from X's columns (zeros when X is not centered)
    ones: tuple[int, ...]  # columns of ones
    others: tuple[tuple[int, np.ndarray], ...]  # (column, values over all rows)
    width: int

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.obs), self.width)

    def __getitem__(self, at: np.ndarray | slice) -> np.ndarray:
        return self.block(at)

    def block(self, at: np.ndarray | slice, room: int = 0) -> np.ndarray:
        """``self[at]`` followed by `room` columns left unset, for a caller to fill."""
        rows = self.obs[at]
        out = np.empty((len(rows), self.width + room))
        x = out[:, self.x_at:self.x_at + self.X.shape[1]]
        x[:] = self.X[rows]
        x -= self.means
        out[:, list(self.ones)] = 1.0
        for c, values in self.others:
            out[:, c] = values[rows]
        return out


@dataclass(frozen=True, eq=False)
class Design:
    """The design every level's rows share: its columns over the fitted rows and, per
    column, the Stan expression of the levels' coefficients."""

    labels: tuple[str, ...]
    rows: DesignRows  # its values, a block of fitted rows at a time
    #: the statements filling the levels' coefficients, column by column: (1-based
    #: columns, expression), a run of columns holding only consecutive population
    #: coefficients as one
    theta_columns: tuple[tuple[str, str], ...]
    whole: str  # all the levels' coefficients as one matrix expression, or ""
    whole_pops: str  # with `whole`: the row of population coefficients each level adds, or ""
    pops: tuple[str, ...] = ()  # per column: its population coefficient in Stan, or ""
    owners: tuple[tuple[tuple[GroupPart, int], ...], ...] = ()  # per column: (term, effect)
    #: per column: what the level effects' covariate adds to D's values (X's column mean
    #: where X is centered: level slopes multiply the raw covariate)
    level_offsets: np.ndarray | None = None

    @cached_property
    def D(self) -> np.ndarray:
        """The whole matrix (fitted rows x columns), for the per-level statistics."""
        return self.rows[:]


def unfit_reason(rewrites: Any, name: str, plan: Plan) -> str:
    """Why the rows of `plan` cannot give way to gaussian statistics under the request
    for rewrite `name` ("" when they can)."""
    lik = plan.likelihood
    if not allowed(rewrites, name):
        return f"rewrites={rewrites!r} requested"
    if lik.family.collapse != "sufficient statistics":
        return f"the {lik.family.name} family has no sufficient statistics"
    if lik.se is not None:
        return "known standard errors: the rows are already the statistics"
    if not isinstance(lik.strategy, Rowwise | MarginalRows):
        return f"the likelihood is already rewritten ({lik.strategy.rewritten_as})"
    if lik.cens is not None or lik.truncated:
        return f"{lik.addition_reason}; the statistics stand for plain or weighted rows only"
    if lik.weights is not None and lik.marginal is not None:
        return (f"{lik.addition_reason} and the effects of {lik.marginal.name} are "
                "integrated out: the marginal's level sums are of plain rows only")
    if not plan.groups:
        return "no group term (a model without one is not built yet)"
    return ""


def row_scale(plan: Plan) -> np.ndarray | None:
    """The square root of each fitted row's weight (`weights(w)`), in the fitted rows'
    order, or None without weights. A weighted gaussian row adds w_i times its log
    density, -w_i (y_i - eta_i)^2 / (2 sigma^2) - w_i log(sigma): its design row and
    outcome times sqrt(w_i) give the weighted sum of squares as a plain one, and the
    weights' sum (`weight_sum`) stands for the row count in the log(sigma) term."""
    lik = plan.likelihood
    if lik.weights is None:
        return None
    return np.sqrt(lik.weights[lik.obs])


def weight_sum(plan: Plan) -> float | None:
    """The fitted rows' weights summed (None without weights): their count in a weighted
    likelihood's log(sigma) term."""
    lik = plan.likelihood
    return None if lik.weights is None else float(lik.weights[lik.obs].sum())


def weighted_note(plan: Plan) -> str:
    """What the header's decision adds for weighted rows ("" without weights)."""
    lik = plan.likelihood
    if lik.weights is None:
        return ""
    return (f"; {formula.weights_text(lik.weights_expr)}: each row's design and outcome "
            "times sqrt(weight), the weights' sum counting the rows in log(sigma)")


def level_design(plan: Plan) -> Design:
    """The columns of the fitted rows' linear predictor, the integrated-out term left out
    (its effects enter through its level sums instead)."""
    groups = [g for g in plan.groups if not g.marginalized]
    fixed = plan.fixed
    lik = plan.likelihood
    obs = lik.obs
    # the design's columns: (label, values over all rows (None: ones or X's), population
    # coefficient)
    columns: list[tuple[str, np.ndarray | None, str]] = []
    keys: dict[tuple, int] = {}
    if fixed.intercept or any("Intercept" in g.effects for g in groups):
        keys[("1",)] = len(columns)
        columns.append(("Intercept", None, fixed.fitted_intercept or ""))
    first_x = len(columns)
    for j, name in enumerate(fixed.names):
        keys[("X", name)] = len(columns)
        pop = f"b[{j + 1}]" if j not in fixed.absorbed else ""
        columns.append((name, None, pop))
    owners: list[list[tuple[GroupPart, int]]] = [[] for _ in columns]
    for g in groups:
        for e, effect in enumerate(g.effects):
            key = ("1",) if effect == "Intercept" else ("X", effect)
            if key not in keys:  # a varying covariate with no population coefficient
                key = ("Z", g.term_name, effect)
                keys[key] = len(columns)
                columns.append((effect, g.Z[:, e], ""))
                owners.append([])
            owners[keys[key]].append((g, e))
    levels = [[g.level_column(e) for g, e in parts] for parts in owners]
    # a level slope multiplies its raw covariate, X's centered column plus its mean:
    # the mean times the slope joins the intercept column's coefficient
    means = np.zeros(fixed.k)
    if fixed.centered and fixed.k:
        means = column_means(fixed.X, obs)
    offsets = np.zeros(len(columns))
    offsets[first_x:first_x + fixed.k] = means
    rows = DesignRows(X=fixed.X, obs=obs, x_at=first_x, means=means,
                      ones=(keys[("1",)],) if ("1",) in keys else (),
                      others=tuple((c, values) for c, (_, values, _) in enumerate(columns)
                                   if values is not None),
                      width=len(columns))
    for j in range(fixed.k if fixed.centered else 0):
        c = keys[("X", fixed.names[j])]
        levels[keys[("1",)]] += [f"means_X[{j + 1}] * {column}" for column in levels[c]]
    first = factor_group(plan)
    exprs = []
    for (_, _, pop), parts in zip(columns, levels, strict=True):
        if pop and parts:
            exprs.append(" + ".join([pop, *parts]))
        elif parts:
            exprs.append(" + ".join(parts))
        else:
            exprs.append(f"rep_vector({pop}, N_{first.ident})")
    whole, whole_pops = _whole_matrix(groups, columns, levels)
    # a column no level effect varies holds its population coefficient on every level
    pure = [pop if not parts else "" for (_, _, pop), parts in zip(columns, levels, strict=True)]
    return Design(labels=tuple(c[0] for c in columns),
                  rows=rows,
                  theta_columns=_theta_columns(exprs, pure, f"N_{first.ident}"),
                  whole=whole, whole_pops=whole_pops, pops=tuple(c[2] for c in columns),
                  owners=tuple(tuple(parts) for parts in owners), level_offsets=offsets)


def _theta_columns(exprs: list[str], pure: list[str], n: str) -> tuple[tuple[str, str], ...]:
    """One statement per column of the levels' coefficients, except that consecutive
    columns holding only b[j], b[j + 1], ... (no level effect) are one statement, the
    row of them repeated over the `n` levels: the election model's 40 population-only
    covariates are then one line, not 40. The repetition is an outer product with a
    column of ones, as `_whole_matrix` explains."""
    out = []
    for first, last, value in b_runs(pure):
        if first == last:
            out.append((str(first + 1), exprs[first]))
        else:
            out.append((f"{first + 1} : {last + 1}", f"rep_vector(1, {n}) * {value}'"))
    return tuple(out)


def factor_group(plan: Plan):
    """The first group term of the factor whose levels the statistics are taken over: the
    only factor, or the one kept when another is integrated out."""
    if len({g.name for g in plan.groups}) == 1:
        return plan.groups[0]
    return next(g for g in plan.groups if not g.marginalized)


def _whole_matrix(groups, columns, levels) -> tuple[str, str]:
    """The levels' coefficients as one matrix expression when a single multi-effect term
    covers every column in order, with the row of population coefficients added to each
    level (``("r_g", "[Intercept, b[1]]")``, added as ``rep_vector(1, N_g) * [...]``:
    ``rep_matrix`` of that row fails to compile under stanc 2.39's O1, which stanbhm
    uses); ("", "") otherwise."""
    if len(groups) != 1 or groups[0].k < 2 or groups[0].k != len(columns):
        return "", ""
    g = groups[0]
    if any(parts != [g.level_column(e)] for e, parts in enumerate(levels)):
        return "", ""
    matrix = f"r_{g.ident}" if g.noncentered else f"to_matrix({g.level_param})"
    pops = [pop or "0" for _, _, pop in columns]
    if all(p == "0" for p in pops):
        return matrix, ""
    return matrix, f"[{', '.join(pops)}]"
