"""The likelihood: one object that owns the outcome and writes itself where it appears.

It appears three times in a program: the model statement (observed rows), the pointwise
``log_lik`` (one value per observed row) and the posterior predictive ``y_rep`` (every
row). Writing all three from one family row keeps them consistent. How the model
statement is written is the likelihood's one `strategies.Strategy` (the rows, cells,
sufficient statistics, or the rows with a group intercept integrated out): the
rewrites and threading replace the strategy instead of touching the parts.

Addition terms change what a row contributes, brms's conventions throughout:

* ``cens(c)``: an exact row adds its log density; a row censored on the right adds
  ``log P(Y > y)`` (``_lccdf(y | ...)``, or the family row's `Family.lccdf` where Stan's
  loses the upper tail), on the left ``log P(Y <= y)`` (``_lcdf``), in an interval
  ``log P(y < Y <= y2)``: the difference of the CDFs, or of the upper tails where y lies
  above the median (brms's difference of CDFs rounds to -inf far in the upper tail). For
  an integer outcome "right" is strictly above y, as in brms: a count known to be at
  least y (demand on a day the stock of y ran out) is right-censored at y - 1. Stan has no
  CDF of ``poisson_log`` and the like, so censored rows are written through the natural
  parameter (``poisson_lccdf(y | exp(eta))``).
* ``weights(w)``: each row's log density (censored or not, and renormalized to its
  truncation bounds) times its weight; ``log_lik`` is weighted too. brms weights the
  same, but with ``cens()`` and ``trunc()`` together it subtracts the bounds' log
  probability unweighted (the header says so). It is not a survey design correction:
  the posterior treats a weight of 2 as a row seen twice.
* ``trunc(lb, ub)``: each row's density divided by ``P(lb <= Y <= ub)``, for an integer
  outcome ``P(Y > lb - 1)``, as brms; a bound is a number or a column (`ColumnBound`,
  each row its own). ``y_rep`` (and a prediction's ``y_new``) is drawn within its row's
  bounds by the inverse CDF where the family row has it (`Family.truncated_rng`: the
  gaussian's, through inv_Phi), else redrawn until it falls within them, at most
  `MAX_TRIES` times: a draw whose bounds hold a tiny share of its predictive mass stops
  generated quantities with a message rather than loop on. New rows read bounds from
  columns in the new data (``lb_new``, `predict.encode`). In a bound column -inf (lb)
  or inf (ub) leaves that side of its row unbounded, as in brms: such rows' normalizer
  is the other side's alone (`Likelihood.bounded_cases`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import formula
from .declarations import Declaration
from .families import Family
from .marginals import Marginal
from .parts import NO_UPPER_INT, Output, Part, Rows, bound_data
from .spec import ColumnBound
from .strategies import Cells, Strategy

__all__ = ["CENSORING_KINDS", "NO_UPPER_INT", "Likelihood"]

#: The censoring kinds a row may have: (name, brms's code), exact first.
CENSORING_KINDS = (("exact", 0), ("right", 1), ("left", -1), ("interval", 2))
#: Draws of a truncated outcome tried before generated quantities gives up on a row.
MAX_TRIES = 10000


@dataclass(frozen=True)
class RowCases:
    """Row ``i``'s log density with its addition terms (`Likelihood.row_cases`)."""

    cases: tuple[tuple[str | None, str], ...]  # (condition on cens[i], value) per kind
    normalizer: str | None  # the truncation bounds' log probability, subtracted
    weight: str | None  # what the log density is multiplied by
    #: bounds of each row's own, some of them infinite (no bound on that side): the
    #: normalizer per case instead, (condition, value) with None for no normalizer
    #: (both sides unbounded) and the last condition None (the rest)
    bounded: tuple[tuple[str | None, str | None], ...] = ()


@dataclass(frozen=True, eq=False)
class Likelihood(Part):
    """The outcome, its modifiers (``se()``, ``trials()``) and the likelihood statements."""

    family: Family
    strategy: Strategy  # how the fitted rows' density is written: exactly one
    response: str
    y: np.ndarray  # observed outcome values
    n: int
    obs: np.ndarray  # 0-based indices of the observed rows
    se: np.ndarray | None
    trials: np.ndarray | None
    log_lik: bool
    y_rep: bool
    se_expr: str = ""
    trials_expr: str = ""
    #: log_lik="marginal": log_lik has the integrated-out term's effects integrated out
    #: (per row when no level has two rows, else per level)
    log_lik_integrated: bool = False
    kind: str = "likelihood"
    cens: np.ndarray | None = None  # every row's censoring code (brms's), cens(c)
    y2: np.ndarray | None = None  # every row's interval upper bound, cens(c, y2)
    weights: np.ndarray | None = None  # every row's weight, weights(w)
    lb: float | ColumnBound | None = None  # truncation bounds, trunc(lb, ub)
    ub: float | ColumnBound | None = None
    cens_expr: str = ""
    y2_expr: str = ""
    weights_expr: str = ""
    #: an ordinal outcome's categories, in order (the outcome is 1 to N_cat)
    categories: tuple[str, ...] = ()

    # -- addition terms

    @property
    def kinds(self) -> tuple[str, ...]:
        """The censoring kinds among the fitted rows, exact first; () without cens()."""
        if self.cens is None:
            return ()
        codes = self.cens[self.obs]
        return tuple(name for name, code in CENSORING_KINDS if (codes == code).any())

    @property
    def max_tries(self) -> int:
        return MAX_TRIES

    @property
    def censored(self) -> bool:
        """Whether some fitted row is censored."""
        return any(k != "exact" for k in self.kinds)

    @property
    def truncated(self) -> bool:
        return self.lb is not None or self.ub is not None

    @property
    def column_bounds(self) -> tuple[ColumnBound, ...]:
        """The truncation bounds read from columns, each row its own."""
        return tuple(b for b in (self.lb, self.ub) if isinstance(b, ColumnBound))

    @property
    def looped(self) -> bool:
        """Whether the fitted rows' density is written one row at a time: a weight per
        row, a two-sided truncation whose normalizer differs per row, or bounds of each
        row's own; otherwise each kind of censored rows is one vectorized statement."""
        return (self.weights is not None or (self.lb is not None and self.ub is not None)
                or bool(self.column_bounds))

    def trunc_text(self) -> str:
        return formula.trunc_text(*(b.column if isinstance(b, ColumnBound) else b
                                    for b in (self.lb, self.ub)))

    def bound(self, name: str, row_data: Callable[[str], str]) -> str:
        """Truncation bound `name` (``lb``, ``ub``) as the rows read it: the constant's
        name, or each row's through `row_data` (``lb_obs[i]``)."""
        return row_data(name) if isinstance(getattr(self, name), ColumnBound) else name

    def cens_text(self) -> str:
        """``cens(c)`` or ``cens(c, y2)``, as the formula writes it."""
        return formula.cens_text(self.cens_expr, self.y2_expr or None)

    @property
    def additions(self) -> tuple[str, ...]:
        """What the addition terms make of the rows, each named as the formula writes it,
        for the passes' skip reasons (``"censored (cens(c, y2))"``); () without any."""
        out = []
        if self.cens is not None:
            out.append(f"censored ({self.cens_text()})")
        if self.weights is not None:
            out.append(f"weighted ({formula.weights_text(self.weights_expr)})")
        if self.truncated:
            out.append(f"truncated ({self.trunc_text()})")
        return tuple(out)

    @property
    def addition_reason(self) -> str:
        """Why a rewrite of the rows cannot take them: "the rows are censored (cens(c))"
        ("" without addition terms)."""
        if not self.additions:
            return ""
        return "the rows are " + " and ".join(self.additions)

    def header_lines(self) -> tuple[str, ...]:
        """The header's account of the addition terms, one line each."""
        out = []
        if self.cens is not None:
            codes = self.cens[self.obs]
            counts = ", ".join(f"{int((codes == c).sum())} {k}" for k, c in CENSORING_KINDS
                               if (codes == c).any())
            out.append(f"{self.cens_text()}: {counts} fitted rows; an exact row adds its "
                       "log density, a right-censored one log P(Y > y) (_lccdf), a "
                       "left-censored one log P(Y <= y) (_lcdf), an interval one "
                       "log P(y < Y <= y2), as brms" + ("; Stan has no CDF of "
                       f"{self.family.dist}, so censored rows use {self.family.cdf}"
                       if self.family.cdf != self.family.dist else "")
                       + ("; an interval above the median is the difference of the upper "
                          "tails (brms's difference of the CDFs rounds to -inf far out)"
                          if "interval" in self.kinds else "")
                       + (self._lccdf_note("y") if {"right", "interval"} & set(self.kinds)
                          else ""))
        if self.weights is not None:
            out.append(self._weights_line())
        if self.truncated:
            lower = "lb - 1" if self.family.integer else "lb"
            span = {(True, False): f"P(Y > {lower})", (False, True): "P(Y <= ub)",
                    (True, True): f"P({lower} < Y <= ub)"}[(self.lb is not None,
                                                              self.ub is not None)]
            own = [f"{name} from column {formula.column_text(b.column)}"
                   for name, b in (("lb", self.lb), ("ub", self.ub))
                   if isinstance(b, ColumnBound)]
            rows = f" ({' and '.join(own)}, each row its own)" if own else ""
            within = "its row's" if own else "the"
            draw = (f"y_rep drawn within {within} bounds by the inverse CDF "
                    f"({self.family.truncated_rng}_rng)" if self.family.truncated_rng else
                    f"y_rep redrawn until it falls within {within} bounds (at most "
                    f"{MAX_TRIES} tries a row: a draw whose bounds hold less of its "
                    "predictive mass fails with a message)")
            columns = " and ".join(formula.column_text(b.column) for b in self.column_bounds)
            count = int(np.logical_or.reduce([np.isinf(b.values[self.obs])
                                              for b in self.column_bounds]).sum()) if own else 0
            out.append(f"{self.trunc_text()}: each row's density divided by {span}{rows}, "
                       f"as brms; {draw}"
                       + (f"; y_new within each new row's bounds, read from the new "
                          f"data's {columns}" if own else "")
                       + (f"; -inf as lb or inf as ub leaves that side of a row unbounded, "
                          f"as in brms: {count} fitted rows" if count else "")
                       + (self._lccdf_note("lb") if self.ub is None else ""))
        return tuple(out)

    def _lccdf_note(self, value: str) -> str:
        """The header's note on a family whose log P(Y > y) is not Stan's ``_lccdf``."""
        if self.family.lccdf is None:
            return ""
        return (f"; log P(Y > {value}) is {self.family.lccdf.split('(')[0]} of -{value} "
                f"about -mu (Stan's {self.family.cdf}_lccdf loses the upper tail)")

    def _weights_line(self) -> str:
        """The header's line on weights(): what stanbhm weights, and where brms differs."""
        text = formula.weights_text(self.weights_expr)
        tail = "; a weight of 2 counts a row twice, not a survey design correction"
        if not self.truncated:
            return f"{text}: each row's log density times its weight, log_lik too, as brms{tail}"
        what = "log density or log probability" if self.cens is not None else "log density"
        line = (f"{text}: each row's {what} less the log probability of its truncation "
                "bounds, all times its weight, log_lik too")
        if self.cens is None:
            return f"{line}, as brms{tail}"
        return (f"{line}; brms, with cens() and trunc() together, weights the {what} alone "
                f"and subtracts the bounds' log probability unweighted{tail}")

    def _cdf(self, which: str, value: str, eta: str, row_data: Callable[[str], str]) -> str:
        args = ", ".join(self.fill(t, eta, row_data) for t in self.family.cdf_args)
        return f"{self.family.cdf}_{which}({value} | {args})"

    def _upper(self, value: str, eta: str, row_data: Callable[[str], str]) -> str:
        """log P(Y > value): the family's `Family.lccdf` where it has one, else Stan's
        ``_lccdf``."""
        if self.family.lccdf is None:
            return self._cdf("lccdf", value, eta, row_data)
        negated = f"({value})" if " " in value else value  # the template writes -{y}
        return self.fill(self.family.lccdf.replace("{y}", negated), eta, row_data)

    def normalizer(self, eta: str, row_data: Callable[[str], str]) -> str:
        """The log probability of the truncation bounds, over rows or of one row."""
        lb, ub = self.bound("lb", row_data), self.bound("ub", row_data)
        lower = f"{lb} - 1" if self.family.integer else lb
        if self.ub is None:
            return self._upper(lower, eta, row_data)
        if self.lb is None:
            return self._cdf("lcdf", ub, eta, row_data)
        return (f"log_diff_exp({self._cdf('lcdf', ub, eta, row_data)}, "
                f"{self._cdf('lcdf', lower, eta, row_data)})")

    def unbounded_rows(self) -> dict[str, np.ndarray]:
        """Per side read from a column whose value on some fitted row leaves that side
        unbounded (-inf lb, inf ub, as brms reads them), whether each fitted row does. An
        integer outcome's -inf lb is 0 in the data, which bounds nothing (its CDF below 0
        is 0), so only its inf ub is said."""
        out = {}
        for side in ("lb", "ub"):
            bound = getattr(self, side)
            if not isinstance(bound, ColumnBound) or (side == "lb" and self.family.integer):
                continue
            rows = np.isinf(bound.values[self.obs])
            if rows.any():
                out[side] = rows
        return out

    def _unbounded(self, side: str, row_data: Callable[[str], str]) -> str:
        """The condition that a row's `side` is unbounded: inf, or the integer outcome's
        `NO_UPPER_INT`."""
        value = self.bound(side, row_data)
        return f"{value} == {NO_UPPER_INT}" if self.family.integer else f"is_inf({value})"

    def bounded_cases(self, eta: str, row_data: Callable[[str], str],
                      ) -> tuple[tuple[str | None, str | None], ...]:
        """The truncation's log normalizer of a row whose bounds come from columns, some
        of them infinite (`unbounded_rows`): (condition, value) for each case among the
        fitted rows (value None: both sides unbounded), the last one's condition None;
        () when no fitted row has an infinite bound."""
        unbounded = self.unbounded_rows()
        if not unbounded:
            return ()
        n = len(self.obs)
        low = unbounded.get("lb", np.zeros(n, dtype=bool))
        high = unbounded.get("ub", np.zeros(n, dtype=bool))
        lower = f"{self.bound('lb', row_data)} - 1" if self.family.integer else \
            self.bound("lb", row_data)
        lb, ub = self._unbounded("lb", row_data), self._unbounded("ub", row_data)
        if self.lb is None:  # one-sided, above
            found = [(ub, high.any(), None),
                     (None, (~high).any(), self._cdf("lcdf", self.bound("ub", row_data), eta,
                                                     row_data))]
        elif self.ub is None:  # one-sided, below
            found = [(lb, low.any(), None),
                     (None, (~low).any(), self._upper(lower, eta, row_data))]
        else:
            found = [(f"{lb} && {ub}", (low & high).any(), None),
                     (ub, (high & ~low).any(), self._upper(lower, eta, row_data)),
                     (lb, (low & ~high).any(), self._cdf("lcdf", self.bound("ub", row_data),
                                                          eta, row_data)),
                     (None, (~low & ~high).any(), self.normalizer(eta, row_data))]
        cases = [(condition, value) for condition, present, value in found if present]
        return (*cases[:-1], (None, cases[-1][1]))

    def kind_density(self, kind: str, y: str, y2: str, eta: str,
                     row_data: Callable[[str], str], suffix: str = "") -> str:
        """The log density of rows of one censoring kind (their sum when vectorized); an
        exact row's with `suffix` (``lupmf`` drops constants) or the family's own."""
        if kind == "exact":
            args = self.fill(", ".join(self.family.args), eta, row_data)
            return f"{self.family.dist}_{suffix or self.family.suffix()}({y} | {args})"
        if kind == "right":
            return self._upper(y, eta, row_data)
        if kind == "left":
            return self._cdf("lcdf", y, eta, row_data)
        # log P(y < Y <= y2) from both ends' CDFs and upper tails (the function of
        # parts/likelihood.stan.j2 takes the upper tails' difference above the median)
        ends = (self._cdf("lcdf", y, eta, row_data), self._cdf("lcdf", y2, eta, row_data),
                self._upper(y, eta, row_data), self._upper(y2, eta, row_data))
        return f"log_interval({', '.join(ends)})"

    def row_cases(self, eta: str, row_data: Callable[[str], str]) -> RowCases:
        """Fitted row ``i``'s log density with its addition terms: (condition, value) per
        censoring kind among the fitted rows (condition None when there is one), the
        truncation's log normalizer (or None) and the weight (or None)."""
        kinds = self.kinds if self.censored else ("exact",)
        cases = []
        for kind in kinds:
            value = self.kind_density(kind, "y[i]", "y2[i]", eta, row_data)
            code = dict(CENSORING_KINDS)[kind]
            cases.append((None if len(kinds) == 1 else f"cens[i] == {code}", value))
        bounded = self.bounded_cases(eta, row_data)
        return RowCases(tuple(cases),
                        self.normalizer(eta, row_data) if self.truncated and not bounded
                        else None,
                        "weights[i]" if self.weights is not None else None, bounded)

    def censored_cell_cases(self) -> RowCases:
        """Censored cell ``i``'s log probability (`strategies.Cells`, after its cells of
        exact rows): (condition on cens_cell[i], value) per censoring kind among its cells,
        times its rows (``n_cell[i]``, weighted: their weights summed); a poisson cell's
        ``eta`` carries its rows' offset (``log_exposure_cell``)."""
        cells = self.cells
        names = {code: kind for kind, code in CENSORING_KINDS}
        kinds = cells.censored_kinds
        cases = []
        for code in kinds:
            value = self.kind_density(names[code], "y_cell[i]", "y2_cell[i]", "eta[i]",
                                      lambda name: f"{name}_cell[i]")
            cases.append((None if len(kinds) == 1 else f"cens_cell[i] == {code}", value))
        return RowCases(tuple(cases), None, "n_cell[i]")

    def fitted_cases(self, rows: Rows) -> RowCases:
        """`row_cases` in the model block, over the fitted `rows`."""
        return self.row_cases("eta[i]", lambda name: f"{rows.take(name)}[i]")

    def kind_statements(self, rows: Rows) -> list[tuple[str, str]]:
        """(kind, the log density of its fitted rows) for each kind but interval, one
        vectorized statement each (the exact rows' is written ``~``)."""
        out = []
        unnormalized = "lupmf" if self.family.integer else "lupdf"
        for kind in self.kinds:
            if kind != "interval":
                at = f"[{kind}]"
                out.append((kind, self.kind_density(kind, f"y{at}", "", f"eta{at}",
                                                    lambda name, at=at: rows.take(name) + at,
                                                    unnormalized)))
        return out

    def interval_density(self, rows: Rows) -> str:
        """Interval-censored fitted row ``i``'s log density (a loop over them: Stan's
        CDFs sum over rows, and log_diff_exp of sums is not a sum)."""
        return self.kind_density("interval", "y[i]", "y2[i]", "eta[i]",
                                 lambda name: f"{rows.take(name)}[i]")

    def truncation_density(self, rows: Rows) -> str:
        """Minus the log probability of the (one-sided) bounds, summed over the fitted rows."""
        return f"-{self.normalizer('eta', rows.take)}"

    def row_draw(self, rows: Rows) -> str:
        """A predictive draw of row ``i`` of `rows`."""
        return self.fill(self.family.rng, "eta[i]", lambda name: f"{rows.take(name)}[i]")

    def truncated_draw(self, rows: Rows) -> str | None:
        """A draw of row ``i`` of `rows` within its truncation bounds by the family's
        inverse CDF (`Family.truncated_rng`), or None where it has none (redrawn while
        outside them): a side without a bound is infinite."""
        name = self.family.truncated_rng
        if name is None:
            return None

        def row(data: str) -> str:
            return f"{rows.take(data)}[i]"

        args = self.fill(", ".join(self.family.args), "eta[i]", row)
        lb = self.bound("lb", row) if self.lb is not None else "negative_infinity()"
        ub = self.bound("ub", row) if self.ub is not None else "positive_infinity()"
        return f"{name}_rng({args}, {lb}, {ub})"

    def outside(self, value: str, rows: Rows) -> str:
        """The condition that `value` is outside row ``i``'s truncation bounds."""
        def bound(name: str) -> str:
            return self.bound(name, lambda data: f"{rows.take(data)}[i]")

        sides = ([f"{value} < {bound('lb')}"] if self.lb is not None else []) + \
            ([f"{value} > {bound('ub')}"] if self.ub is not None else [])
        return " || ".join(sides)

    @property
    def marginal(self) -> Marginal | None:
        """The group intercept the strategy integrates out, if any."""
        return self.strategy.marginal

    @property
    def cells(self) -> Cells | None:
        """The cells the rows were collapsed into, when that is the strategy: the parts
        then copy their row data for the rows standing for the cells."""
        return self.strategy if isinstance(self.strategy, Cells) else None

    @property
    def threads(self) -> int:
        return self.strategy.threads

    @property
    def glm(self) -> bool:
        return self.strategy.glm

    def with_strategy(self, strategy: Strategy) -> Likelihood:
        """This likelihood written another way: a pass's one change to it."""
        return dataclasses.replace(self, strategy=strategy)

    @property
    def level_ordered(self) -> bool:
        """Whether the fitted rows are sorted by level of the term integrated out
        (`passes.threads`), not in the data's order."""
        return self.marginal is not None and self.marginal.sorted_rows

    @property
    def missing(self) -> bool:
        """Whether the fitted rows are listed in ``obs``: some rows have no observed
        outcome, or the rows are fitted in another order than the data's."""
        return len(self.obs) < self.n or self.level_ordered

    @property
    def n_obs(self) -> int:
        return len(self.obs)

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"N": self.n}
        if self.missing:
            out["N_obs"] = self.n_obs
            out["obs"] = self.obs + 1
        if self.family.cutpoints:
            out["N_cat"] = len(self.categories)
        out["y"] = self.y.astype(np.int64) if self.family.integer else self.y
        if self.se is not None:
            out["se"] = self.se
        if self.trials is not None:
            out["trials"] = self.trials
        out.update(self.addition_data())
        out.update(self.strategy.data())
        out.update(self.strategy.level_data())
        out["prior_only"] = 0
        return out

    def addition_data(self) -> dict[str, Any]:
        """The addition terms' data, over the fitted rows (in their order, ``obs``)."""
        out: dict[str, Any] = {}
        obs = self.obs
        if self.censored:
            codes = self.cens[obs]
            out["cens"] = codes.astype(np.int64)
            if "interval" in self.kinds:
                bound = self.y2[obs]
                out["y2"] = bound.astype(np.int64) if self.family.integer else bound
            if not self.looped and self.cells is None:
                for kind, code in CENSORING_KINDS:
                    if kind in self.kinds:
                        rows = np.flatnonzero(codes == code) + 1
                        out[f"N_{kind}"] = len(rows)
                        out[kind] = rows
        if self.weights is not None:
            out["weights"] = self.weights[obs]
        for name in ("lb", "ub"):
            bound = getattr(self, name)
            if isinstance(bound, ColumnBound):
                out[name] = self.bound_values(name, bound)
            elif bound is not None:
                out[name] = int(bound) if self.family.integer else float(bound)
        return out

    def bound_values(self, name: str, bound: ColumnBound) -> np.ndarray:
        """Every row's bound from its column (over all rows: y_rep draws within them); a
        row without an outcome whose value is missing, or whose value is infinite, has
        none on that side: -inf or inf, for an integer outcome (never below 0) 0 or
        `NO_UPPER_INT` (`parts.bound_data`)."""
        return bound_data(bound.values, name, self.family.integer)

    def addition_declarations(self, n: str) -> list[Declaration]:
        """The data of the addition terms, over the `n` fitted rows."""
        out = []
        integer = self.family.integer
        if self.censored:
            out.append(Declaration("data", f"array[{n}] int<lower=-1, upper=2>", "cens",
                                   f"censoring: {self.cens_expr}; 0 none, 1 right, -1 left, "
                                   "2 interval"))
            if "interval" in self.kinds:
                out.append(Declaration("data", f"array[{n}] int" if integer else f"vector[{n}]",
                                       "y2", f"upper bound of the interval-censored rows: "
                                       f"{self.y2_expr}"))
            if not self.looped and self.cells is None:
                for kind in self.kinds:
                    what = "exact" if kind == "exact" else f"censored: {kind}"
                    out.append(Declaration("data", "int<lower=0>", f"N_{kind}",
                                           f"fitted rows {what}"))
                    out.append(Declaration("data", f"array[N_{kind}] int<lower=1, upper={n}>",
                                           kind, "their numbers among the fitted rows"))
        if self.weights is not None:
            out.append(Declaration("data", f"vector<lower=0>[{n}]", "weights",
                                   f"row weights: {self.weights_expr}"))
        for name, what in (("lb", "lower"), ("ub", "upper")):
            bound = getattr(self, name)
            if isinstance(bound, ColumnBound):
                out.append(Declaration("data", "array[N] int" if integer else "vector[N]",
                                       name, f"{what} truncation bound of each row: "
                                       f"{formula.column_text(bound.column)}"))
            elif bound is not None:
                out.append(Declaration("data", "int" if integer else "real", name,
                                       f"{what} truncation bound"))
        return out

    def declarations(self, p: Any) -> tuple[Declaration, ...]:
        """Its own: the rows, the outcome and its modifiers, what threads slice, the
        observed rows' copies (the strategy and the kind integrated out list theirs)."""
        out = [Declaration("data", "int<lower=1>", "N", "rows")]
        if self.missing:
            out.append(Declaration("data", "int<lower=0>", "N_obs",
                                   "rows with an observed outcome"))
        if self.family.cutpoints:
            out.append(Declaration("data", "int<lower=2>", "N_cat",
                                   f"categories of {self.response}"))
        m = self.marginal
        if p.rows_given:
            if self.missing:
                order = f", by level of {m.name}" if self.level_ordered else ""
                out.append(Declaration("data", "array[N_obs] int<lower=1, upper=N>", "obs",
                                       f"their row numbers{order}"))
            n = p.fit_rows.n
            outcome = {"binary": f"array[{n}] int<lower=0, upper=1>",
                       "positive": f"vector<lower=0>[{n}]",
                       "proportion": f"vector<lower=0, upper=1>[{n}]",
                       "ordinal": f"array[{n}] int<lower=1, upper=N_cat>",
                       }.get(self.family.outcome)
            if outcome is None:
                outcome = f"array[{n}] int<lower=0>" if self.family.integer else f"vector[{n}]"
            out.append(Declaration("data", outcome, "y", f"outcome: {self.response}"))
            if self.se is not None:
                out.append(Declaration("data", "vector<lower=0>[N]", "se",
                                       f"known standard errors: {self.se_expr}"))
            if self.trials is not None:
                out.append(Declaration("data", "array[N] int<lower=0>", "trials",
                                       f"trials: {self.trials_expr}"))
            out += self.addition_declarations(n)
        threaded = self.threads > 1
        if threaded:
            what = f"levels of {m.name}" if m is not None else "fitted rows"
            out.append(Declaration("data", "int<lower=1>", "grainsize",
                                   f"{what} per reduce_sum slice, at least"))
        if not p.rows_given:
            return tuple(out)
        td = "transformed data"
        if threaded:
            n = f"N_{m.ident}" if m is not None else p.fit_rows.n
            name = "level_index" if m is not None else "row_index"
            out.append(Declaration(td, f"array[{n}] int", name, "what reduce_sum slices",
                                   f"linspaced_int_array({n}, 1, {n})"))
        if self.missing and self.se is not None:
            out.append(Declaration(td, "vector[N_obs]", "se_obs",
                                   "standard errors of the observed rows", "se[obs]"))
        if self.missing and self.trials is not None:
            out.append(Declaration(td, "array[N_obs] int", "trials_obs",
                                   "trials of the observed rows", "trials[obs]"))
        for bound, name, what in ((self.lb, "lb", "lower"), (self.ub, "ub", "upper")):
            if self.missing and isinstance(bound, ColumnBound):
                kind = "array[N_obs] int" if self.family.integer else "vector[N_obs]"
                out.append(Declaration(td, kind, f"{name}_obs",
                                       f"{what} truncation bounds of the observed rows",
                                       f"{name}[obs]"))
        return tuple(out)

    def row_data(self) -> tuple[str, ...]:
        # the integrated-out term's level summaries are read only beside the rows
        return ("obs", "y", "se", "trials", *self.addition_data(),
                *self.strategy.level_data())

    def outputs(self) -> tuple[Output, ...]:
        out = []
        if self.log_lik:
            per_level = self.log_lik_integrated and not self.marginal.per_row
            out.append(Output("log_lik", (self.marginal.name,) if per_level else ("obs_id",)))
        if self.y_rep:
            out.append(Output("y_rep", ("row",)))
        return tuple(out)

    def coords(self) -> dict[str, list[str]]:
        # only for the outputs that have these dims: at 3M rows each list takes a second
        coords = {}
        if self.log_lik:
            coords["obs_id"] = self.obs.astype(str).tolist()
        if self.y_rep:
            coords["row"] = np.arange(self.n).astype(str).tolist()
        return coords

    def fill(self, template: str, eta: str, row_data: Callable[[str], str]) -> str:
        """A family template with ``{eta}`` and the row data filled in: ``{sigma}`` is
        the known standard errors when given, else sigma; `row_data` names row-level
        data (``se`` -> ``se_obs``, ``se[i]``)."""
        sd = row_data("se") if self.se is not None else "sigma"
        return template.format(eta=eta, sigma=sd, trials=row_data("trials"))

    def density(self, rows: Rows, design: tuple[str, str] | None = None,
                alpha: str = "eta") -> tuple[str, list[str]]:
        """(distribution, its arguments after the outcome) over the fitted `rows`: the
        family's own around the linear predictor `alpha`, or with `design` (x, beta) its
        GLM kernel's, whose (x, alpha, beta) take the linear predictor's place."""
        eta = [alpha] if design is None else [design[0], alpha, design[1]]
        args = []
        for template in self.family.args:
            args += eta if template == "{eta}" else [self.fill(template, alpha, rows.take)]
        return (self.family.dist if design is None else self.family.glm), args

    def slice_density(self, rows: Rows, design: tuple[str, str] | None = None,
                      alpha: str = "eta") -> tuple[str, tuple[str, ...]]:
        """The log density of one reduce_sum slice of the fitted rows, constants dropped
        as ``~`` drops them: the function and its arguments (the first is ``y | ...``)."""
        dist, (first, *rest) = self.density(rows, design, alpha)
        suffix = "lupmf" if self.family.integer else "lupdf"
        return f"{dist}_{suffix}", (f"y[{rows.window}] | {first}", *rest)

    def pointwise_cases(self) -> list[tuple[str | None, str]]:
        """`row_cases` inside the ``log_lik`` loop over the observed rows, as `pointwise`
        (``eta`` covers every row)."""
        row = "obs[i]" if self.missing else "i"
        return self.row_cases(f"eta[{row}]", lambda name: f"{name}[{row}]")

    def pointwise(self) -> str:
        """The log density of observed row ``i``, inside the ``log_lik`` loop over the
        observed rows, with ``eta`` covering every row when some are unobserved."""
        row = "obs[i]" if self.missing else "i"
        args = self.fill(", ".join(self.family.args), f"eta[{row}]",
                          lambda name: f"{name}[{row}]")
        return f"{self.family.dist}_{self.family.suffix()}(y[i] | {args})"

    def rng(self, rows: Rows) -> str:
        """A posterior predictive draw of each of `rows` (generated quantities)."""
        return self.fill(self.family.rng, "eta", rows.take)

    def mean(self, rows: Rows) -> str:
        """The expected outcome of each of `rows` given the linear predictor."""
        return self.fill(self.family.mean, "eta", rows.take)

    @property
    def y_rep_type(self) -> str:
        return "int" if self.family.integer else "real"
