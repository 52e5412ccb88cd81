"""Count collapse: rows with the same linear predictor become one cell.

Rows whose data enter the linear predictor identically (the same row of X, the same
level and covariates of every group term, the same offset) share eta, and

- Bernoulli rows: their sum is Binomial(n, inv_logit(eta)) (binomial rows: Binomial on
  the summed trials);
- Poisson rows: their sum is Poisson(exp(eta) * sum of the rows' exposures), so the
  offset is not part of the cell and the cell carries log(sum(exp(offset)));

- Gaussian rows: sum_i (y_i - eta)^2 = SS_within + n (ybar - eta)^2 over a cell, so the
  cell's mean is normal(eta, sigma / sqrt(n)) and the rows about their means add
  -SS_within / (2 sigma^2) and the remaining factors of 1 / sigma. This is for crossed
  factors and other designs the per-level sufficient statistics do not cover (they run
  first, and a likelihood they rewrote is left alone); weighted rows (`weights(w)`, each
  row's log density times w_i) likewise with the cell's weights summed for n, its
  weighted mean for ybar and its weighted sum of squares within;

in each case the rows given their sum do not depend on the parameters, so the log
density changes by a constant only.

Censored rows (`cens()`) add log P(Y > y), log P(Y <= y) or log P(y < Y <= y2) of their
own outcome, which no sum of outcomes gives, so they never join a cell of exact rows:
the exact rows collapse as above, and the censored rows of one linear predictor,
censoring kind, outcome and y2 (and, binomial, trials; poisson, offset) are cells of
their own after them, each adding that log probability times its rows (weighted
gaussian rows: their weights summed). Exact, not just a constant apart. Truncated rows
are not collapsed.

A group intercept integrated out (`marginalize`) needs only per-level sums, and each
cell lies in one level, so the cells serve it too: gaussian rows with a normal
intercept (weighted ones too: the cells' weights summed give its level sums' weights),
poisson rows with gamma multipliers. Gaussian cells give way to the joint statistics
(`joint`) where those cost less.

The beta-binomial (beta probabilities integrated out of binomial rows) applies only
when the rest of the linear predictor is constant within each level, and reads it once
per level: there the cells are the levels themselves, a fitted row standing for each,
so a gradient computes the linear predictor for the levels, O(levels x columns), not
for every row. Its density is unchanged: the same numbers enter it.

Negative binomial rows: a sum of NB2(mu, phi) rows is NB2(n mu, n phi), but the rows
given their sum still depend on phi, so the sum alone would change the posterior of
phi. With one phi for every row the rows of a cell share mu, though, and

    sum_i log NB2(y_i | mu, phi) = sum_i lgamma(y_i + phi) - n lgamma(phi)
                                   + S t - (n phi + S) log(1 + exp(t)) + constant

with t = log(mu / phi) and S the cell's total: the first sum does not involve mu, and
over all rows it is sum_v c_v lgamma(v + phi), over the outcome's distinct values v
with their counts c_v. So each cell needs its rows n and total S, and the data set one
histogram of the outcome: O(cells + distinct values) per gradient, exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import formula
from ..arrays import keeps_all
from ..rewrites import allowed
from ..strategies import Cells, MarginalRows, Rowwise
from .base import Decision
from .joint import ROW_NS, RowAnalysis, analysis_of, cheaper_than, row_columns

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

SUBJECT = "collapse"
#: Applied when the cells are at most this share of the rows.
MAX_CELL_SHARE = 0.5
#: The family rows' collapse rules this pass implements.
RULES = ("binomial", "poisson sum", "gaussian cells", "negative binomial cells")


def rule_of(plan: Plan) -> str:
    """The family's collapse rule; a gaussian's per-level statistics become cells here."""
    rule = plan.likelihood.family.collapse
    return "gaussian cells" if rule == "sufficient statistics" else rule


@dataclass(frozen=True)
class Collapse:
    """Replaces count rows by sums over cells of identical linear predictor; `rows` is the
    analysis of the rows it is given (None: it analyses them itself), which it shares
    with the joint statistics (`joint`) to learn whether they serve gaussian rows better."""

    rewrites: Any
    rows: RowAnalysis | None = field(default=None, compare=False, repr=False)

    def skip_reason(self, plan: Plan) -> str:
        lik = plan.likelihood
        if not allowed(self.rewrites, "collapse"):
            return f"rewrites={self.rewrites!r} requested"
        rule = rule_of(plan)
        if rule == "gaussian cells" and lik.se is not None:
            return "known standard errors: the rows are already the statistics"
        if rule not in RULES:
            return f"the {lik.family.title} family has no exact collapse of counts"
        if lik.truncated:
            return (f"{lik.addition_reason}; cells are written for plain, censored or "
                    "(gaussian) weighted rows, not for truncated ones")
        if lik.weights is not None and rule != "gaussian cells":
            return (f"{lik.addition_reason}; only gaussian cells take weights: a weighted "
                    "sum of counts is no count")
        if lik.censored and not (lik.cens[lik.obs] == 0).any():
            return f"{lik.addition_reason}, every fitted row: no exact rows to collapse"
        weighted_marginal = (lik.marginal is not None and lik.marginal.weighted
                             and lik.cens is None)  # normal cells sum weighted levels too
        if lik.additions and lik.marginal is not None and not weighted_marginal:
            return (f"{lik.addition_reason} and the effects of {lik.marginal.name} are "
                    "integrated out: the marginal's level sums are of plain rows only")
        if isinstance(lik.strategy, MarginalRows) and lik.marginal.kind.cell_rule == rule:
            return ""  # the cells give the level sums of the term integrated out
        if not isinstance(lik.strategy, Rowwise):
            return f"the likelihood is already rewritten ({lik.strategy.rewritten_as})"
        return ""

    def decide(self, spec: ModelSpec, plan: Plan) -> tuple[Decision, Plan]:
        why = self.skip_reason(plan)
        if why:
            return Decision(SUBJECT, "not applied", why, applied=False), plan
        found = cells(plan)
        decision = self.decision(plan, found)
        if not decision.applied:
            return decision, plan
        return decision, dataclasses.replace(plan, likelihood=plan.likelihood.with_strategy(found))

    def decision(self, plan: Plan, cells: Cells) -> Decision:
        """Applied when the `cells` of a plan the rewrite can apply to pay."""
        n = plan.likelihood.n_obs
        if cells.level_of:
            name = plan.likelihood.marginal.name
            return Decision(SUBJECT, f"a fitted row for each level of {name}",
                            f"{n} rows in {cells.n} levels of {name}, the linear predictor "
                            "constant within each, as the beta-binomial needs: it is "
                            "computed for the levels, O(levels x columns), not for the rows")
        what = f"{n} rows in {cells.n} cells of identical linear predictor"
        if cells.n_censored:
            lik = plan.likelihood
            censored = int((lik.cens[lik.obs] != 0).sum())
            what += (f", the {censored} censored rows ({lik.cens_text()}) in "
                     f"{cells.n_censored} of them, kept apart from the exact rows: each "
                     "of rows with one censoring kind and outcome"
                     + (" (and y2)" if cells.y2 is not None else ""))
        if cells.n > MAX_CELL_SHARE * n:
            return Decision(SUBJECT, "not applied", f"{what}: too few rows per cell to pay",
                            applied=False)
        if cells.rule == "gaussian cells":  # the joint statistics may serve the rows better
            columns = row_columns(plan)
            joint = cheaper_than(self.rewrites, plan, analysis_of(self.rows, plan),
                                 ROW_NS * cells.n * columns, f"{cells.n} cells x {columns} columns")
            if joint:
                return Decision(SUBJECT, "not applied", f"{what}: {joint}", applied=False)
        how = {"binomial": "binomial on the sums", "poisson sum": "poisson on the sums, "
               "exposures added", "gaussian cells": "normal on the cell means, with the "
               "sum of squares within cells", "negative binomial cells": "negative binomial "
               "from the cells' counts and sums, with the outcome's histogram"}[cells.rule]
        if cells.weight_sum is not None:
            how += ", weighted"
            what += (f"; {formula.weights_text(plan.likelihood.weights_expr)}: weighted cell "
                     "means and sum of squares within cells, each cell weighing its rows' "
                     "weights, the weights' sum counting the rows in log(sigma)")
        if cells.n_censored:
            how += ("; a censored cell adds its rows' log probability (lccdf, lcdf) "
                    "times its rows" + (" (their weights summed)"
                                        if cells.weight_sum is not None else ""))
        return Decision(SUBJECT, f"{how}", f"{what}: exact, a constant apart")


def cells(plan: Plan) -> Cells:
    """The cells of `plan`'s fitted rows, under its family's rule (`rule_of`); with
    censored rows (`cens()`), the cells of the exact rows and then those of the censored
    ones (`censored_cells`)."""
    lik = plan.likelihood
    obs = lik.obs
    rule = rule_of(plan)
    marginal = lik.marginal
    if marginal is not None and marginal.kind.cells_are_levels:  # in order
        return Cells(rule=rule, row=marginal.first, y=marginal.totals,
                     counts=marginal.counts, trials=marginal.trials, log_exposure=None,
                     level_of=marginal.ident, marginal=_over_cells(marginal, marginal.first))
    key = [plan.fixed.X] if plan.fixed.k else []
    for g in plan.groups:
        key += [g.index, g.Z] if g.has_z else [g.index]
    offset = plan.offset.values[obs] if plan.offset else np.zeros(len(obs))
    if not lik.censored:
        return exact_cells(plan, key, offset, np.arange(len(obs)))
    codes = lik.cens[obs]
    exact = exact_cells(plan, key, offset, np.flatnonzero(codes == 0))
    return joined(exact, censored_cells(plan, key, offset, np.flatnonzero(codes != 0)))


def exact_cells(plan: Plan, key: list[np.ndarray], offset: np.ndarray,
                at: np.ndarray) -> Cells:
    """The cells of the fitted rows `at` (positions among the fitted rows; their
    outcomes exact), under the family's rule; `key` holds the linear predictor's columns
    over all rows and `offset` the fitted rows' offsets."""
    lik = plan.likelihood
    rule = rule_of(plan)
    poisson = rule == "poisson sum"
    if not poisson and plan.offset:
        key = [*key, plan.offset.values]
    first, inverse = distinct_rows(key, lik.obs[at])
    row = at[first]
    n_cells = len(first)
    counts = np.bincount(inverse, minlength=n_cells)
    offset, y = offset[at], lik.y[at]
    marginal = lik.marginal
    if rule == "gaussian cells" and lik.weights is not None:
        return weighted_cells(y - offset, lik.weights[lik.obs][at], row, inverse, offset[first],
                              marginal)
    if rule == "gaussian cells":
        y = y - offset  # the offset is part of the key, so one value per cell
        means = np.bincount(inverse, weights=y, minlength=n_cells) / counts
        resid = y - means[inverse]  # about the cell means, never sum(y^2) - n mean^2
        return Cells(rule=rule, row=row, y=means + offset[first], counts=counts,
                     trials=None, log_exposure=None, within=float(resid @ resid),
                     marginal=_over_cells(marginal, row))
    y = np.bincount(inverse, weights=lik.y[at], minlength=n_cells).round().astype(np.int64)
    trials = None
    if lik.trials is not None:
        trials = np.bincount(inverse, weights=lik.trials[lik.obs][at],
                             minlength=n_cells).round().astype(np.int64)
    histogram = None
    if rule == "negative binomial cells":
        histogram = np.unique(lik.y[at].round().astype(np.int64), return_counts=True)
    exposure = None
    if poisson:
        # log(sum(exp(offset))) per cell, shifted by the cell's largest offset
        top = np.full(n_cells, -np.inf)
        np.maximum.at(top, inverse, offset)
        total = np.bincount(inverse, weights=np.exp(offset - top[inverse]),
                            minlength=n_cells)
        exposure = top + np.log(total)
    return Cells(rule=rule, row=row, y=y, counts=counts, trials=trials,
                 log_exposure=exposure, histogram=histogram,
                 marginal=_over_cells(marginal, row))


def weighted_cells(y: np.ndarray, w: np.ndarray, row: np.ndarray, inverse: np.ndarray,
                   offset: np.ndarray, marginal=None) -> Cells:
    """Gaussian cells of weighted rows (`y` less the offset, weights `w`; `row` the
    fitted row standing for each cell, `offset` its offset): with W_c the cell's weights
    summed and m_c their weighted mean, sum_i w_i (y_i - eta_c)^2 =
    sum_i w_i (y_i - m_c)^2 + W_c (m_c - eta_c)^2, so each cell is a row of mean m_c
    and weight W_c. A cell whose weights are all 0 adds nothing and is left out. A
    normal intercept integrated out (`marginal`) reads its levels' weighted sums from
    the cells: W_c (m_c - eta_c) and W_c (m_c - eta_c)^2 besides the squares within."""
    n_cells = len(row)
    total = np.bincount(inverse, weights=w, minlength=n_cells)
    kept = total > 0
    means = np.bincount(inverse, weights=w * y, minlength=n_cells) / np.where(kept, total, 1)
    resid = y - means[inverse]  # about the weighted cell means
    return Cells(rule="gaussian cells", row=row[kept], y=means[kept] + offset[kept],
                 counts=total[kept], trials=None, log_exposure=None,
                 within=float(np.sum(w * resid**2)), weight_sum=float(w.sum()),
                 marginal=_over_cells(marginal, row[kept]))


def censored_cells(plan: Plan, key: list[np.ndarray], offset: np.ndarray,
                   at: np.ndarray) -> Cells:
    """The cells of the censored fitted rows `at` (positions among the fitted rows):
    rows of one linear predictor, censoring kind, outcome (and, interval-censored, upper
    bound y2), and for binomial rows trials, each adding its log probability, the same
    for all, so a cell adds it times its rows (weighted: its rows' weights summed;
    a cell of weight 0 is left out). A censored row is never summed into a count: the
    poisson's cells carry their rows' offset, not a summed exposure."""
    lik = plan.likelihood
    obs = lik.obs
    y = np.zeros(lik.n)
    y[obs] = lik.y
    key = [*key, lik.cens, y]
    if plan.offset:
        key.append(plan.offset.values)
    if "interval" in lik.kinds:
        key.append(lik.y2)
    if lik.trials is not None:
        key.append(lik.trials)
    first, inverse = distinct_rows(key, obs[at])
    row = at[first]
    counts = np.bincount(inverse, minlength=len(first)).astype(float)
    if lik.weights is not None:
        counts = np.bincount(inverse, weights=lik.weights[obs][at], minlength=len(first))
    kept = counts > 0
    row = row[kept]
    integer = lik.family.integer
    outcome = lik.y[row].round().astype(np.int64) if integer else lik.y[row]
    y2 = None
    if "interval" in lik.kinds:
        y2 = lik.y2[obs][row]
        y2 = y2.round().astype(np.int64) if integer else y2
    rule = rule_of(plan)
    return Cells(rule=rule, row=row, y=outcome,
                 counts=counts[kept] if lik.weights is not None or rule == "gaussian cells"
                 else counts[kept].round().astype(np.int64),
                 trials=None if lik.trials is None else lik.trials[obs][row],
                 log_exposure=offset[row] if rule == "poisson sum" else None,
                 cens=lik.cens[obs][row], y2=y2)


def joined(exact: Cells, censored: Cells) -> Cells:
    """The cells of the exact rows, then those of the censored rows (`censored_cells`):
    the program writes the first `Cells.n_exact` by the family's rule and the rest one at
    a time. A gaussian's weight sum (or, unweighted, its count) is the exact rows'."""
    def both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.concatenate([a, b])

    n = exact.n
    weighted = exact.weight_sum is not None
    total = exact.weight_sum if weighted else float(exact.counts.sum())
    return dataclasses.replace(
        exact, row=both(exact.row, censored.row), y=both(exact.y, censored.y),
        counts=both(exact.counts, censored.counts), trials=both(exact.trials, censored.trials),
        log_exposure=both(exact.log_exposure, censored.log_exposure),
        cens=np.concatenate([np.zeros(n, dtype=np.int64), censored.cens]),
        y2=None if censored.y2 is None else np.concatenate(
            [np.zeros(n, dtype=censored.y2.dtype), censored.y2]),
        n_exact=n, exact_weight=total, weight_sum=exact.weight_sum)


def distinct_rows(blocks: list[np.ndarray], rows: np.ndarray,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The distinct `rows` of the `blocks` (columns or matrices over all rows, read at
    `rows`): the position in `rows` of each one's first row, in order, and each row's
    distinct row.

    A first column with no repeated value settles that every row is distinct (a sort of
    one column: millions of rows with continuous covariates). Otherwise one pass hashes
    each row's bits into 64 bits, a block of rows at a time, and a sort of the hashes
    replaces a sort of the whole matrix. Rows that share a hash are
    compared with the first of them, and where they differ (a collision, which the hash
    makes rare) grouped exactly: never a wrong cell.
    """
    n = len(rows)
    at = None if all(keeps_all(rows, len(b)) for b in blocks) else rows
    if blocks and _all_distinct(_bits(blocks[0].reshape(len(blocks[0]), -1)[:, 0],
                                      _at(at, slice(None)))):
        return np.arange(n), np.arange(n)  # one column tells: a continuous covariate
    hashed = row_hashes(blocks, at, n)
    if _all_distinct(hashed):  # every row its own cell
        return np.arange(n), np.arange(n)
    first, inverse = _numbered(hashed)
    clash = np.zeros(n, dtype=bool)
    for span in _spans(n):
        rep = first[inverse[span]]
        for b in blocks:
            here, there = _bits(b, _at(at, span)), _bits(b, _at(at, rep))
            clash[span] |= (here != there).reshape(len(here), -1).any(axis=1)
    if clash.any():  # rows that share a hash but differ: group those exactly
        shared = np.flatnonzero(np.isin(inverse, inverse[clash]))
        table = np.column_stack([inverse[shared], *(_bits(b, _at(at, shared)) for b in blocks)])
        _, exact = np.unique(table, axis=0, return_inverse=True)
        labels = inverse.copy()
        labels[shared] = exact.reshape(-1) + len(first)
        first, inverse = _numbered(labels)
    return first, inverse


#: Rows hashed or compared at a time (keeps the temporary copies to a few MB).
HASH_ROWS = 1 << 16


def row_hashes(blocks: list[np.ndarray], at: np.ndarray | None, n: int) -> np.ndarray:
    """A 64-bit hash of each of the `n` rows `at` (all when None) of the `blocks`: the sum
    of each column's bits, offset by a number of the column's own and mixed (splitmix64's
    finalizer), so that no linear relation between columns collides."""
    hashed = np.zeros(n, dtype=np.uint64)
    for span in _spans(n):
        h = hashed[span]
        column = 0
        for b in blocks:
            bits = _bits(b, _at(at, span)).reshape(h.shape[0], -1)
            k = bits.shape[1]
            bits += _GOLDEN * np.arange(column + 1, column + k + 1, dtype=np.uint64)
            h += _mixed(bits).sum(axis=1, dtype=np.uint64)
            column += k
    return hashed


def _mixed(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place: every output bit depends on every input bit."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


#: splitmix64's increment: column j's bits are offset by j times it.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _spans(n: int) -> list[slice]:
    return [slice(start, min(n, start + HASH_ROWS)) for start in range(0, n, HASH_ROWS)]


def _at(at: np.ndarray | None, where: slice | np.ndarray) -> slice | np.ndarray:
    """Rows `where` of the fitted rows, as rows of the full arrays."""
    return where if at is None else at[where]


def _all_distinct(values: np.ndarray) -> bool:
    ordered = np.sort(values)
    return not (ordered[1:] == ordered[:-1]).any()


def _numbered(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct label's first position and each position's label, the labels
    numbered 0, 1, ... in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse.reshape(-1)]


def _bits(values: np.ndarray, rows: slice | np.ndarray) -> np.ndarray:
    """Rows of a column or matrix as float64 bit patterns, -0.0 read as 0.0 (a copy)."""
    block = np.array(values[rows], dtype=np.float64)
    block += 0.0
    return block.view(np.uint64)


def _over_cells(marginal, first: np.ndarray):
    """The term integrated out, its level sums now over the cells (`first`: the fitted
    row standing for each cell)."""
    if marginal is None:
        return None
    return dataclasses.replace(marginal, cell_level=marginal.index[first])
