"""Joint sufficient statistics: every coefficient of a gaussian model at once.

Let phi hold every coefficient of the linear predictor: the population ones and, for
each kept group term, one per level and effect (P in all). Over the fitted rows eta =
Z phi + offset, and with A the triangular factor of [Z, y - offset] (A'A = [Z y]'[Z y]),

    sum_i (y_i - eta_i)^2 = |A [phi; -1]|^2 = |R phi - q|^2        (R, q: A's columns)

for every phi, rank-deficient Z included. With one group intercept integrated out
(`marginalize`), level j of it (n_j rows, sums t_j of y and S_j of Z's rows) adds
-(tau^2 / sigma^2) s_j^2 / (2 v_j) with s_j = t_j - S_j phi and v_j = sigma^2 + n_j tau^2,
which depends on j through n_j alone. So its levels fall into classes of one row count,
and each class's sum of squared s_j is again |R_k phi - q_k|^2, from the factor of its
levels' [S t] rows. A gradient then costs one dense product with the stacked factors,
O((1 + classes) P^2), whatever the number of rows or levels: the election model's 300k
rows and 100k respondents become about 1500 x 140 numbers. Crossed factors, and an
integrated-out factor that is not nested in the kept one, need nothing more.

Where the per-level statistics (`statistics`) apply they are cheaper for many levels
(G P^2 against (G P)^2); they hand over to these when these cost less than half as much.
The factors are computed once in float64, a block of rows at a time: each block's
centered cross-product (one symmetric BLAS call, a tenth of a QR's time) gives a factor
by its eigendecomposition, its column means times sqrt(rows) a row more, and the
blocks' factors are folded by QR. Centering keeps the means' scale out of the squares
(an outcome of 10,000 +- 1 keeps its residual's digits); the squares of the centered
columns lose digits only where a block's columns are nearly collinear, as lme4's
Cholesky factor of the cross-products does. Exact: the log density changes by a
constant only.
Weighted rows (`weights(w)`) enter as [Z, y - offset] times sqrt(w_i), the weights' sum
standing for the row count in the log(sigma) term.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse

from ..arrays import one_blas_thread
from ..design import (
    Design,
    DesignRows,
    level_design,
    row_scale,
    unfit_reason,
    weight_sum,
    weighted_note,
)
from ..rewrites import named
from ..strategies import Joint, Segment
from .base import Decision

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

SUBJECT = "joint statistics"
#: Costs per gradient in nanoseconds, measured on the development VM (2-core AMD EPYC,
#: Stan 2.39): the per-row program per row and design column, the per-level statistics
#: per stored entry of their sparse factors, these per entry of their dense factors.
ROW_NS, SPARSE_NS, DENSE_NS = 3.0, 2.0, 1.0
#: Below this many nanoseconds per gradient the rows are left as they are: nothing to
#: gain that a reader of the program would notice.
LEAST_NS = 1e5
#: The stacked factors are dense P x P blocks: offered up to this many coefficients.
MOST_COEFFICIENTS = 1500
#: The QR of the fitted rows' design costs about rows x P^2 multiply-adds, once.
MOST_SETUP = 2e11
#: Numbers of the design built and folded into the factor at a time (32 MB).
CHUNK = 1 << 22


@dataclass(frozen=True, eq=False)
class Layout:
    """Where each column of the design lands in phi: its population coefficient at
    ``pop[c]`` (or -1), each (term, effect) that varies it at offset ``levels[c]``."""

    segments: tuple[Segment, ...]
    pop: np.ndarray  # (columns,) phi index of each column's population coefficient, or -1
    levels: tuple[tuple[tuple[int, np.ndarray], ...], ...]  # per column: (offset, level of row)
    level_values: np.ndarray | None = None  # per column: added to D's values for level effects

    @property
    def P(self) -> int:
        return sum(s.width for s in self.segments)


def layout(design: Design, obs: np.ndarray, k: int) -> Layout:
    """phi's segments: the population coefficients in column order (a run of b's `k`
    coefficients as one), then each level effect column by column."""
    segments: list[Segment] = []
    pop = np.full(len(design.labels), -1)
    at = c = 0
    while c < len(design.labels):
        expr, end = design.pops[c], c + 1
        if not expr:
            c += 1
            continue
        if expr.startswith("b["):  # a run of consecutive coefficients of b
            first = int(expr[2:-1])
            while end < len(design.labels) and design.pops[end] == f"b[{first + end - c}]":
                end += 1
            last = first + end - c - 1
            if last > first:  # else b[first] stays: phi[i] is a real, b a vector
                expr = "b" if first == 1 and last == k else f"b[{first} : {last}]"
        labels = design.labels[c:end]
        comment = labels[0] if len(labels) == 1 else f"{labels[0]} ... {labels[-1]}"
        segments.append(Segment(expr, end - c, comment))
        pop[c:end] = np.arange(at, at + end - c)
        at += end - c
        c = end
    levels: list[list[tuple[int, np.ndarray]]] = [[] for _ in design.labels]
    for c, owners in enumerate(design.owners):
        for g, e in owners:
            segments.append(Segment(g.level_column(e), g.n_levels,
                                    f"{g.term_name}: {g.effects[e]}, per level of {g.name}",
                                    levels=f"N_{g.ident}"))
            levels[c].append((at, g.index[obs] - 1))
            at += g.n_levels
    return Layout(segments=tuple(segments), pop=pop,
                  levels=tuple(tuple(parts) for parts in levels),
                  level_values=design.level_offsets)


def design_block(lay: Layout, D: np.ndarray | DesignRows, rows: np.ndarray, extra: int = 0,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The joint design Z of the fitted `rows` (0-based), over the columns of phi that
    these rows can touch: (the block, rows x columns, then `extra` columns for the caller
    to fill; each column's place in phi). The block is the design's own columns (their
    place is their population coefficient's, or -1 where they have none:
    `block_factor` leaves those out) followed by one column per level these rows touch of each
    level effect. A block of one level's rows touches that level's columns and the
    population ones, a fraction of P: building, summing and factoring only those is the
    bulk of the setup's time, and the design's rows are written into the block where
    they stay, not copied into it."""
    owned = [(c, offset, np.unique(level[rows]), level)
             for c, owners in enumerate(lay.levels) for offset, level in owners]
    spread = sum(len(present) for _, _, present, _ in owned)
    room = spread + extra
    Z = D.block(rows, room) if isinstance(D, DesignRows) else _with_room(D[rows], room)
    places = [lay.pop]
    at = len(lay.pop)
    span = np.arange(len(rows))
    for c, offset, present, level in owned:
        column = Z[:, c]
        if lay.level_values is not None and lay.level_values[c]:
            column = column + lay.level_values[c]  # level slopes take the raw covariate
        spread_over = Z[:, at:at + len(present)]
        spread_over[:] = 0.0
        spread_over[span, np.searchsorted(present, level[rows])] = column
        places.append(offset + present)
        at += len(present)
    return Z, np.concatenate(places).astype(int)


def _with_room(values: np.ndarray, room: int) -> np.ndarray:
    out = np.empty((len(values), values.shape[1] + room))
    out[:, :values.shape[1]] = values
    return out


def block_factor(rows: np.ndarray, places: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A factor r of `rows` (r'r = rows'rows) over the columns that have a place in phi
    (`places` >= 0), and those places. Up to as many rows as columns, the rows are their
    own factor. Taller blocks (centered in place, so the caller is done with them) give
    the row sqrt(n) times their column means over sqrt(lambda) V' of the eigenvalues and
    vectors of their centered cross-product: r'r = n m m' + C is rows'rows. The
    product is one symmetric BLAS call, a tenth of a QR's time for a block of 30k rows
    x 45 columns. Centering keeps its rounding of the order of the spread, not of the
    means: an outcome of 10,000 +- 1 would otherwise lose the residual's digits. A
    rank-deficient block (a level's intercept beside the population's) gives zero rows;
    rounding's negative eigenvalues are clipped to zero."""
    kept = places >= 0
    if len(rows) <= rows.shape[1]:
        return rows[:, kept], places[kept]
    means = rows.mean(axis=0)
    rows -= means
    values, vectors = np.linalg.eigh(rows.T @ rows)
    r = np.vstack([np.sqrt(len(rows)) * means,
                   np.sqrt(np.clip(values, 0.0, None))[:, None] * vectors.T])
    return r[:, kept], places[kept]


class FactorSum:
    """Factors of blocks of rows, folded into one by a QR when they pile up (every
    block's rows are kept in the sum r'r, so the order of folding does not matter)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.factors: list[np.ndarray] = []  # each block's factor, over the full width
        self.rows = 0

    def add(self, factor: np.ndarray, places: np.ndarray) -> None:
        """Fold in a factor (`block_factor`) whose columns lie at `places`."""
        full = np.zeros((len(factor), self.width))
        full[:, places] = factor
        self.factors.append(full)
        self.rows += len(full)
        if self.rows > 8 * self.width:
            self.factors = [self.result()]
            self.rows = len(self.factors[0])

    def result(self) -> np.ndarray:
        """The upper triangular factor of everything added (a QR's r)."""
        return np.linalg.qr(np.vstack(self.factors), mode="r")


def row_blocks(home: np.ndarray, member: np.ndarray | None, size: int) -> list[tuple[int, int]]:
    """[start, end) of blocks of the ordered rows: one level of `home` at a time, a level
    over `size` rows split between members, never within one."""
    n = len(home)
    starts = np.flatnonzero(np.diff(home, prepend=-1))
    out = []
    for first, last in zip(starts, [*starts[1:], n], strict=True):
        at = int(first)
        while at < last:
            end = min(int(last), at + size)
            if member is not None and end < last:
                end = at + int(np.searchsorted(member[at:last], member[end - 1], side="right"))
            out.append((at, end))
            at = end
    return out


def factors(lay: Layout, D: np.ndarray | DesignRows, y: np.ndarray, member: np.ndarray | None,
            home: np.ndarray | None = None, chunk: int | None = None,
            scale: np.ndarray | None = None,
            ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The triangular factors of [Z, y] over the rows and, per class of members with one
    row count, of their sums; with the classes' row counts and member counts. `D` gives
    the design's values a block of rows at a time (`D[rows]`). With `scale` (a number per
    row, sqrt of its weight) each row of [Z, y] is multiplied by it, so the first factor
    gives the weighted sum of squares; members' sums are of plain rows only, so a scale
    comes without members.

    `home` (a level per row, e.g. of the first kept factor) orders the rows so that each
    block touches few columns; a member's rows go where its first row's level is."""
    n = len(y)
    if scale is not None and member is not None:
        raise ValueError("weighted rows have no members' sums: the rows' weights would "
                         "not weigh their sums")
    chunk = chunk or max(2 * (lay.P + 1), CHUNK // (lay.P + 1))  # rows at a time
    home = np.zeros(n, dtype=int) if home is None else home
    counts = np.zeros(0, dtype=int)
    if member is None:
        order = np.argsort(home, kind="stable")
    else:
        counts = np.bincount(member)
        first = np.full(len(counts), n)
        np.minimum.at(first, member, np.arange(n))
        home = home[first[member]]  # each row goes where its member's first row is
        # by level, then member: one sort of a combined key, a fifth of lexsort's time (a
        # member's rows in any order: they are summed)
        order = np.argsort(home.astype(np.int64) * len(counts) + member)
    ranked = None if member is None else member[order]
    width = lay.P + 1

    def pieces(span: tuple[int, int]) -> tuple[tuple, list[tuple[int, tuple]]]:
        """One block's factor and, per member row count, its members' sums' factor."""
        at, end = span
        rows = order[at:end]
        block, places = design_block(lay, D, rows, extra=1)
        block[:, -1] = y[rows]
        if scale is not None:  # a weighted row: [Z, y] times sqrt(w)
            block *= scale[rows][:, None]
        places = np.append(places, lay.P)  # y is the last column of [Z, y]
        by_count = []
        if ranked is not None:
            starts = np.flatnonzero(np.diff(ranked[at:end], prepend=-1))
            sums = segment_sums(block, starts)  # one row per member
            size = counts[ranked[at:end][starts]]
            by_count = [(int(k), block_factor(sums[size == k], places))
                        for k in np.unique(size)]
        return block_factor(block, places), by_count

    whole = FactorSum(width)
    classes: dict[int, FactorSum] = {}
    for factor, by_count in in_parallel(pieces, row_blocks(home[order], ranked, chunk)):
        whole.add(*factor)
        for k, piece in by_count:
            classes.setdefault(k, FactorSum(width)).add(*piece)
    ks, members = row_classes(counts)  # every member with rows is in its class's block
    return [whole.result(), *(classes[int(k)].result() for k in ks)], ks, members


#: Blocks made at once, each with one thread of BLAS: a block's product of 45 columns
#: gains little from OpenBLAS's own threads (a QR of 16 blocks took 2.0 s with two of
#: them against 0.6 s with one, on the development VM); a block per core uses them all.
WORKERS = max(1, min(8, os.cpu_count() or 1))


def in_parallel(work: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]:
    """`work` of each item, in order, on `WORKERS` threads, BLAS on one thread each
    (numpy's LAPACK calls release the GIL)."""
    with one_blas_thread():
        if WORKERS == 1 or len(items) < 2:
            yield from map(work, items)
            return
        with ThreadPoolExecutor(WORKERS) as pool:
            yield from pool.map(work, items)


def segment_sums(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The sums of the runs of `rows` that begin at `starts` (ascending, the first 0), as
    one sparse product: numpy's reduceat over the rows of a wide block took ten times as
    long."""
    bounds = np.append(starts, len(rows))
    ones = scipy.sparse.csr_matrix((np.ones(len(rows)), np.arange(len(rows)), bounds),
                                   shape=(len(starts), len(rows)))
    return ones @ rows


def row_classes(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct row counts of the levels with rows, and how many levels have each."""
    return np.unique(counts[counts > 0], return_counts=True)


def class_rows(plan: Plan, P: int) -> int:
    """Rows of the stacked factors: at most P + 1 per block."""
    n = min(plan.likelihood.n_obs, P + 1)
    marginal = plan.likelihood.marginal
    if marginal is None:
        return n
    return n + int(np.minimum(row_classes(marginal.counts)[1], P + 1).sum())


def row_columns(plan: Plan) -> int:
    """Columns the per-row program touches for each row: the intercept, X's columns and
    one per group effect."""
    return 1 + plan.fixed.k + sum(g.k for g in plan.groups)


class RowAnalysis:
    """One plan's fitted rows as the gaussian rewrites (`statistics`, `collapse` and these)
    see them: their design (`design.level_design`) and its layout over phi, each built
    on first use and kept: the design of millions of rows takes seconds and gigabytes.

    `planner.make_plan` builds one for the plan these passes start from and gives it to
    each of them, so that the design is built once whichever of them asks. A pass does
    not change the rows it does not rewrite, and one that rewrites them leaves nothing
    gaussian to the others, so every plan they are given has these rows (`serves`)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def serves(self, plan: Plan) -> bool:
        """Whether `plan` has these rows: the same fixed part, group terms and likelihood
        (plans are frozen, and the passes between replace only what they change)."""
        mine = self.plan
        return (plan.fixed is mine.fixed and plan.groups is mine.groups
                and plan.likelihood is mine.likelihood)

    @cached_property
    def design(self) -> Design:
        return level_design(self.plan)

    @cached_property
    def layout(self) -> Layout:
        return layout(self.design, self.plan.likelihood.obs, self.plan.fixed.k)


def analysis_of(rows: RowAnalysis | None, plan: Plan) -> RowAnalysis:
    """`rows` for `plan`: a pass given no analysis makes its own, for one decision."""
    if rows is None:
        return RowAnalysis(plan)
    if not rows.serves(plan):
        raise ValueError("the rows' analysis was made for a plan with other rows (fixed "
                         "part, group terms or likelihood) than the one given")
    return rows


def factor_size(plan: Plan, lay: Layout) -> tuple[int, int, str]:
    """(P, rows of the stacked factors, why they are too big to build or "")."""
    P = lay.P
    n = plan.likelihood.n_obs
    if P > MOST_COEFFICIENTS:
        return P, 0, (f"{P} coefficients: dense {P} x {P} factors are offered up to "
                      f"{MOST_COEFFICIENTS}")
    if n * P * P > MOST_SETUP:
        return P, 0, (f"{n} rows and {P} coefficients: the factor of the rows would take "
                      f"about {n * P * P:.2g} multiply-adds to compute")
    return P, class_rows(plan, P), ""


def factor_cost(plan: Plan, lay: Layout, forced: bool) -> tuple[int, int, str]:
    """`factor_size`, and why the factors do not pay against the rows ("" when they do,
    or when they are `forced`: asked for by name)."""
    P, m, why = factor_size(plan, lay)
    if why or forced:
        return P, m, why
    n, columns = plan.likelihood.n_obs, row_columns(plan)
    rows_ns = ROW_NS * n * columns
    if rows_ns < LEAST_NS:
        return P, m, f"{n} rows x {columns} columns: the rows cost little already"
    if DENSE_NS * m * P > 0.5 * rows_ns:
        return P, m, (f"{n} rows x {columns} columns against factors of {m} x {P}: the "
                      "rows cost no more")
    return P, m, ""


def cheaper_than(rewrites: Any, plan: Plan, rows: RowAnalysis, ns: float, what: str) -> str:
    """Why another rewrite of `plan`'s rows (`rows`), costing about `ns` nanoseconds per
    gradient (`what` says for what), should leave them to the joint statistics under the
    request `rewrites` ("" when it should not)."""
    if unfit_reason(rewrites, "joint_statistics", plan):
        return ""
    P, m, why = factor_size(plan, rows.layout)
    if why:
        return ""
    if named(rewrites, "joint_statistics"):
        return "'joint_statistics' requested"
    if ns < LEAST_NS or DENSE_NS * m * P > 0.5 * ns:
        return ""
    return f"the joint statistics cost less: dense factors of {m} x {P} against {what}"


def joint_statistics(plan: Plan, rows: RowAnalysis) -> Joint:
    """The stacked factors of `plan`'s rows (`rows`), with their marginal, if any."""
    design, lay = rows.design, rows.layout
    lik = plan.likelihood
    y = lik.y - (plan.offset.values[lik.obs] if plan.offset else 0.0)
    member = lik.marginal.index if lik.marginal is not None else None
    kept = [level for parts in lay.levels for _, level in parts]
    blocks, ks, members = factors(lay, design.rows, y, member, kept[0] if kept else None,
                                  scale=row_scale(plan))
    stacked = np.vstack(blocks)
    start = np.concatenate([[0], np.cumsum([len(b) for b in blocks])])
    return Joint(segments=lay.segments, R=stacked[:, :-1], q=stacked[:, -1], start=start,
                 rows=ks, members=members, weight_sum=weight_sum(plan),
                 marginal=None if lik.marginal is None else lik.marginal.in_statistics())


@dataclass(frozen=True)
class JointStatistics:
    """Replaces a gaussian likelihood's rows by triangular factors over every coefficient;
    `rows` is the analysis of the rows it is given (None: it analyses them itself)."""

    rewrites: Any
    rows: RowAnalysis | None = field(default=None, compare=False, repr=False)

    @property
    def forced(self) -> bool:
        return named(self.rewrites, "joint_statistics")

    def decide(self, spec: ModelSpec, plan: Plan) -> tuple[Decision, Plan]:
        why = unfit_reason(self.rewrites, "joint_statistics", plan)
        if why:
            return Decision(SUBJECT, "not applied", why, applied=False), plan
        rows = analysis_of(self.rows, plan)
        P, m, cost = factor_cost(plan, rows.layout, self.forced)
        if cost:
            return Decision(SUBJECT, "not applied", cost, applied=False), plan
        lik = plan.likelihood
        what = (f"{lik.n_obs} rows, {P} coefficients (population, and per level of "
                f"{', '.join(sorted({g.name for g in plan.groups if not g.marginalized}))})")
        if lik.marginal is not None:
            classes = len(row_classes(lik.marginal.counts)[0])
            what += (f"; {lik.marginal.name}, integrated out, enters through its levels' "
                     f"sums in {classes} classes of one row count")
        if self.forced:
            what = f"'joint_statistics' requested; {what}"
        order = "(1 + classes) x coefficients^2" if lik.marginal is not None else "coefficients^2"
        weighted = weighted_note(plan)
        decision = Decision(SUBJECT, f"over all {P} coefficients"
                            + (", weighted" if weighted else ""),
                            f"{what}: factors of {m} x {P}, so a gradient costs O({order}), "
                            "not O(rows)" + weighted)
        likelihood = lik.with_strategy(joint_statistics(plan, rows))
        return decision, dataclasses.replace(plan, likelihood=likelihood)
