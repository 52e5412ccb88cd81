"""The likelihood: one object that owns the outcome and writes itself where it appears.

It appears three times in a program: the model statement (observed rows), the pointwise
``log_lik`` (one value per observed row) and the posterior predictive ``y_rep`` (every
row). Writing all three from one family row keeps them consistent. How the model
statement is written is the likelihood's one `strategies.Strategy` (the rows, cells,
sufficient statistics, or the rows with a group intercept integrated out): the
rewrites and threading replace the strategy instead of touching the parts.

Addition terms change what a row contributes, brms's conventions throughout:

* ``cens(c)``: an exact row adds its log density; a row censored on the right adds
  ``log P(Y > y)`` (``_lccdf(y | ...)``), on the left ``log P(Y <= y)`` (``_lcdf``), in an
  interval ``log P(y < Y <= y2)``. For an integer outcome "right" is strictly above y, as
  in brms: a count known to be at least y (demand on a day the stock of y ran out) is
  right-censored at y - 1. Stan has no CDF of ``poisson_log`` and the like, so censored
  rows are written through the natural parameter (``poisson_lccdf(y | exp(eta))``).
* ``weights(w)``: each row's log density (censored or not) times its weight, as brms
  does; ``log_lik`` is weighted too. It is not a survey design correction: the posterior
  treats a weight of 2 as a row seen twice.
* ``trunc(lb, ub)``: each row's density divided by ``P(lb <= Y <= ub)``, for an integer
  outcome ``P(Y > lb - 1)``, as brms; ``y_rep`` (and a prediction's ``y_new``) is
  redrawn until it falls within the bounds, at most `MAX_TRIES` times: a draw whose
  bounds hold a tiny share of its predictive mass stops generated quantities with a
  message rather than loop on.
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
from .parts import Output, Part, Rows
from .strategies import Cells, Strategy

__all__ = ["CENSORING_KINDS", "Likelihood"]

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
    lb: float | None = None  # truncation bounds, trunc(lb, ub)
    ub: float | None = None
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
    def looped(self) -> bool:
        """Whether the fitted rows' density is written one row at a time: a weight per
        row, or a two-sided truncation whose normalizer differs per row; otherwise each
        kind of censored rows is one vectorized statement."""
        return self.weights is not None or (self.lb is not None and self.ub is not None)

    def trunc_text(self) -> str:
        return formula.trunc_text(self.lb, self.ub)

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
                       if self.family.cdf != self.family.dist else ""))
        if self.weights is not None:
            out.append(f"{formula.weights_text(self.weights_expr)}: each row's log density "
                       "times its weight, log_lik too, as brms; a weight of 2 counts a row "
                       "twice, not a survey design correction")
        if self.truncated:
            lower = "lb - 1" if self.family.integer else "lb"
            span = {(True, False): f"P(Y > {lower})", (False, True): "P(Y <= ub)",
                    (True, True): f"P({lower} < Y <= ub)"}[(self.lb is not None,
                                                              self.ub is not None)]
            out.append(f"{self.trunc_text()}: each row's density divided by {span}, as "
                       f"brms; y_rep redrawn until it falls within the bounds (at most "
                       f"{MAX_TRIES} tries a row: a draw whose bounds hold less of its "
                       "predictive mass fails with a message)")
        return tuple(out)

    def _cdf(self, which: str, value: str, eta: str, row_data: Callable[[str], str]) -> str:
        args = ", ".join(self.fill(t, eta, row_data) for t in self.family.cdf_args)
        return f"{self.family.cdf}_{which}({value} | {args})"

    def normalizer(self, eta: str, row_data: Callable[[str], str]) -> str:
        """The log probability of the truncation bounds, over rows or of one row."""
        lower = "lb - 1" if self.family.integer else "lb"
        if self.ub is None:
            return self._cdf("lccdf", lower, eta, row_data)
        if self.lb is None:
            return self._cdf("lcdf", "ub", eta, row_data)
        return (f"log_diff_exp({self._cdf('lcdf', 'ub', eta, row_data)}, "
                f"{self._cdf('lcdf', lower, eta, row_data)})")

    def kind_density(self, kind: str, y: str, y2: str, eta: str,
                     row_data: Callable[[str], str], suffix: str = "") -> str:
        """The log density of rows of one censoring kind (their sum when vectorized); an
        exact row's with `suffix` (``lupmf`` drops constants) or the family's own."""
        if kind == "exact":
            args = self.fill(", ".join(self.family.args), eta, row_data)
            return f"{self.family.dist}_{suffix or self.family.suffix()}({y} | {args})"
        if kind == "right":
            return self._cdf("lccdf", y, eta, row_data)
        if kind == "left":
            return self._cdf("lcdf", y, eta, row_data)
        return (f"log_diff_exp({self._cdf('lcdf', y2, eta, row_data)}, "
                f"{self._cdf('lcdf', y, eta, row_data)})")

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
        return RowCases(tuple(cases),
                        self.normalizer(eta, row_data) if self.truncated else None,
                        "weights[i]" if self.weights is not None else None)

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

    def outside(self, value: str) -> str:
        """The condition that `value` is outside the truncation bounds."""
        sides = ([f"{value} < lb"] if self.lb is not None else []) + \
            ([f"{value} > ub"] if self.ub is not None else [])
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
            if not self.looped:
                for kind, code in CENSORING_KINDS:
                    if kind in self.kinds:
                        rows = np.flatnonzero(codes == code) + 1
                        out[f"N_{kind}"] = len(rows)
                        out[kind] = rows
        if self.weights is not None:
            out["weights"] = self.weights[obs]
        for name in ("lb", "ub"):
            bound = getattr(self, name)
            if bound is not None:
                out[name] = int(bound) if self.family.integer else float(bound)
        return out

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
            if not self.looped:
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
            if getattr(self, name) is not None:
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
