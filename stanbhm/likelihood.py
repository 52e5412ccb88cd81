"""The likelihood: one object that owns the outcome and writes itself where it appears.

It appears three times in a program: the model statement (observed rows), the pointwise
``log_lik`` (one value per observed row) and the posterior predictive ``y_rep`` (every
row). Writing all three from one family row keeps them consistent. How the model
statement is written is the likelihood's one `strategies.Strategy` (the rows, cells,
sufficient statistics, or the rows with a group intercept integrated out): the
rewrites and threading replace the strategy instead of touching the parts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .declarations import Declaration
from .families import Family
from .marginals import Marginal
from .parts import Output, Part, Rows
from .strategies import Cells, Strategy

__all__ = ["Likelihood"]


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
        out["y"] = self.y.astype(np.int64) if self.family.integer else self.y
        if self.se is not None:
            out["se"] = self.se
        if self.trials is not None:
            out["trials"] = self.trials
        out.update(self.strategy.data())
        out.update(self.strategy.level_data())
        out["prior_only"] = 0
        return out

    def declarations(self, p: Any) -> tuple[Declaration, ...]:
        """Its own: the rows, the outcome and its modifiers, what threads slice, the
        observed rows' copies (the strategy and the kind integrated out list theirs)."""
        out = [Declaration("data", "int<lower=1>", "N", "rows")]
        if self.missing:
            out.append(Declaration("data", "int<lower=0>", "N_obs",
                                   "rows with an observed outcome"))
        m = self.marginal
        if p.rows_given:
            if self.missing:
                order = f", by level of {m.name}" if self.level_ordered else ""
                out.append(Declaration("data", "array[N_obs] int<lower=1, upper=N>", "obs",
                                       f"their row numbers{order}"))
            n = p.fit_rows.n
            outcome = {"binary": f"array[{n}] int<lower=0, upper=1>",
                       "positive": f"vector<lower=0>[{n}]"}.get(self.family.outcome)
            if outcome is None:
                outcome = f"array[{n}] int<lower=0>" if self.family.integer else f"vector[{n}]"
            out.append(Declaration("data", outcome, "y", f"outcome: {self.response}"))
            if self.se is not None:
                out.append(Declaration("data", "vector<lower=0>[N]", "se",
                                       f"known standard errors: {self.se_expr}"))
            if self.trials is not None:
                out.append(Declaration("data", "array[N] int<lower=0>", "trials",
                                       f"trials: {self.trials_expr}"))
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
        return ("obs", "y", "se", "trials", *self.strategy.level_data())

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
