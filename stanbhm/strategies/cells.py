"""Cells: the fitted rows of identical linear predictor summed (counts) or averaged
(gaussian) into one cell each (`passes.collapse`), exact up to a constant. With a term
integrated out, each cell lies in one of its levels and its level sums run over the
cells; for the beta-binomial the cells are its levels. Censored rows (`cens()`) are
never summed into a cell of exact rows: they come after those, in cells of their own
(one linear predictor, censoring kind and outcome each), each adding its log
probability times its rows. Template: ``strategies/cells.stan.j2``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..declarations import Declaration
from ..marginals import Marginal
from ..parts import Rows
from .base import Strategy

__all__ = ["CELL_ROWS", "Cells"]

#: The rows the collapsed likelihood works on: one row standing for each cell.
CELL_ROWS = Rows("N_cell", "_cell", True, cell=True)


@dataclass(frozen=True, eq=False)
class Cells(Strategy):
    """Rows summed over cells of identical linear predictor (`passes.collapse`)."""

    name = "cells"
    rewritten_as = "cells"

    #: the collapse rule: "binomial", "poisson sum", "gaussian cells" or "negative
    #: binomial cells"
    rule: str
    row: np.ndarray  # 0-based fitted row that stands for each cell
    y: np.ndarray  # the outcome summed over each cell (gaussian: its mean)
    counts: np.ndarray  # rows per cell
    trials: np.ndarray | None  # summed trials (binomial)
    log_exposure: np.ndarray | None  # poisson: log of the summed exp(offset) per cell
    within: float = 0.0  # gaussian: the sum of squares of the rows about their cell means
    #: negative binomial: the outcome's distinct values over the fitted rows, and how many
    #: rows have each
    histogram: tuple[np.ndarray, np.ndarray] | None = None
    #: the beta-binomial's term when the cells are its levels, in order: its own data
    #: (``first_<g>``, ``Y_<g>``, ``T_<g>``) already hold their rows and totals, so the
    #: program names them ``cell`` and ``N_cell`` in transformed data instead
    level_of: str = ""
    marginal: Marginal | None = None  # the term integrated out, its level sums over the cells
    #: gaussian cells of weighted rows (weights(w)): the rows' weights summed, their count
    #: in the log(sigma) term; `counts` then hold each cell's weights summed, `y` its
    #: weighted mean and `within` the weighted sum of squares. None for plain rows
    weight_sum: float | None = None
    #: censored rows (`cens()`): the cells of the exact rows come first, `n_exact` of
    #: them, then the censored rows' own cells, `cens` (brms's code, 0 for the exact
    #: cells) and `y2` (an interval's upper bound, 0 elsewhere; None without intervals)
    #: per cell; `y` holds a censored cell's outcome, `counts` its rows (weights summed),
    #: `trials` its rows' trials and `log_exposure` its rows' offset
    n_exact: int | None = None
    cens: np.ndarray | None = None
    y2: np.ndarray | None = None
    #: gaussian cells with censored rows: the exact rows' weights summed (their count
    #: when unweighted), their count in the log(sigma) term
    exact_weight: float | None = None

    @property
    def n(self) -> int:
        return len(self.row)

    @property
    def n_censored(self) -> int:
        """The cells of censored rows, after the `n_exact` of exact rows."""
        return 0 if self.n_exact is None else self.n - self.n_exact

    @property
    def censored_kinds(self) -> tuple[int, ...]:
        """brms's codes of the censoring kinds among the censored cells, in order."""
        if not self.n_censored:
            return ()
        present = set(self.cens[self.n_exact:].tolist())
        return tuple(code for code in (1, -1, 2) if code in present)

    def declarations(self, lik: Any, p: Any) -> tuple[Declaration, ...]:
        if self.level_of:  # the beta-binomial's own data hold its levels' rows and totals
            return ()
        gaussian = self.rule == "gaussian cells"
        negative_binomial = self.rule == "negative binomial cells"
        censored = self.n_censored > 0
        fitted = p.fit_rows.n
        heading = ("cells: observed rows with identical linear predictor, their outcomes "
                   + ("averaged" if gaussian else "summed"),)
        if censored:
            heading = ("cells: observed rows with identical linear predictor: first the "
                       "N_exact_cell", "of exact rows, their outcomes "
                       + ("averaged" if gaussian else "summed") + ", then the censored "
                       "rows' own cells,", "each of rows with one censoring kind and outcome")
        out = [Declaration("data", "int<lower=1>", "N_cell", "cells", heading=heading),
               Declaration("data", f"array[N_cell] int<lower=1, upper={fitted}>", "cell",
                           "an observed row standing for each")]
        if censored:
            integer = lik.family.integer
            out += [Declaration("data", "int<lower=0, upper=N_cell>", "N_exact_cell",
                                "cells of exact rows, the first ones"),
                    Declaration("data", "array[N_cell] int<lower=-1, upper=2>", "cens_cell",
                                f"censoring of each cell's rows: {lik.cens_expr}; 0 none, 1 "
                                "right, -1 left, 2 interval")]
            if self.y2 is not None:
                out.append(Declaration("data", "array[N_cell] int" if integer
                                       else "vector[N_cell]", "y2_cell",
                                       "upper bound of an interval-censored cell's rows: "
                                       f"{lik.y2_expr}"))
            out += self._censored_declarations(lik)
            return tuple(out)
        if gaussian and self.weight_sum is not None:
            out += [Declaration("data", "vector[N_cell]", "y_cell",
                                "weighted mean outcome of each cell"),
                    Declaration("data", "vector<lower=0>[N_cell]", "n_cell",
                                "weights summed over each cell"),
                    Declaration("data", "real<lower=0>", "ss_cell",
                                "weighted sum of squares of the rows about their cell's mean"),
                    Declaration("data", "real<lower=0>", "wsum_cell",
                                "the rows' weights summed: their count in the log(sigma) term")]
        elif gaussian:
            out += [Declaration("data", "vector[N_cell]", "y_cell", "mean outcome of each cell"),
                    Declaration("data", "vector<lower=1>[N_cell]", "n_cell", "rows in each cell"),
                    Declaration("data", "real<lower=0>", "ss_cell",
                                "sum of squares of the rows about their cell's mean")]
        elif negative_binomial:  # read as a vector: S t - (n phi + S) log1p_exp(t)
            out.append(Declaration("data", "vector<lower=0>[N_cell]", "y_cell",
                                   "outcome summed over each cell"))
        else:
            out.append(Declaration("data", "array[N_cell] int<lower=0>", "y_cell",
                                   "outcome summed over each cell"))
        if gaussian:
            pass
        elif negative_binomial:
            out += [Declaration("data", "vector<lower=1>[N_cell]", "n_cell", "rows in each cell"),
                    Declaration("data", "int<lower=1>", "N_value", "distinct values",
                                heading=("the outcome's distinct values over the observed "
                                         "rows",)),
                    Declaration("data", "vector<lower=0>[N_value]", "value", "each value"),
                    Declaration("data", "vector<lower=1>[N_value]", "value_count",
                                "rows with each value")]
        elif self.rule == "poisson sum":
            out.append(Declaration("data", "vector[N_cell]", "log_exposure_cell",
                                   "log of the summed exposure, exp(offset), of each cell"))
        elif self.trials is not None:
            out.append(Declaration("data", "array[N_cell] int<lower=0>", "trials_cell",
                                   "trials summed over each cell"))
        else:
            out.append(Declaration("data", "array[N_cell] int<lower=1>", "n_cell",
                                   "rows in each cell"))
        m = self.marginal
        if m is not None and m.needs_sums:
            g = m.ident
            out += [Declaration("data", "array[N_cell] int<lower=1, upper=N_cell>", f"rows_{g}",
                                f"cells sorted by level of {m.name}"),
                    Declaration("data", f"array[N_{g} + 1] int<lower=1>", f"start_{g}",
                                f"where each level's cells start in rows_{g}")]
        return tuple(out)

    def _censored_declarations(self, lik: Any) -> list[Declaration]:
        """The cells' outcome, rows and the rule's data with censored cells among them."""
        rule = self.rule
        gaussian = rule == "gaussian cells"
        weighted = self.weight_sum is not None
        if gaussian:
            outcome = Declaration("data", "vector[N_cell]", "y_cell",
                                  f"{'weighted ' if weighted else ''}mean outcome of each "
                                  "cell of exact rows, a censored cell's outcome")
        else:
            outcome = Declaration("data", "array[N_cell] int<lower=0>", "y_cell",
                                  "outcome summed over each cell of exact rows, a censored "
                                  "cell's outcome")
        rows = ("weights summed over each cell" if weighted else "rows in each cell")
        if gaussian or rule == "negative binomial cells":
            counts = Declaration("data", "vector<lower=0>[N_cell]", "n_cell", rows)
        else:
            counts = Declaration("data", "array[N_cell] int<lower=1>", "n_cell", rows)
        out = [outcome, counts]
        if gaussian:
            what = ("weighted sum of squares" if weighted else "sum of squares")
            out += [Declaration("data", "real<lower=0>", "ss_cell",
                                f"{what} of the exact rows about their cell's mean"),
                    Declaration("data", "real<lower=0>", "wsum_cell",
                                "the exact rows' weights summed: their count in the "
                                "log(sigma) term" if weighted else
                                "the exact rows: their count in the log(sigma) term")]
        elif rule == "negative binomial cells":
            out += [Declaration("data", "int<lower=1>", "N_value", "distinct values",
                                heading=("the exact rows' distinct outcomes",)),
                    Declaration("data", "vector<lower=0>[N_value]", "value", "each value"),
                    Declaration("data", "vector<lower=1>[N_value]", "value_count",
                                "rows with each value")]
        elif rule == "poisson sum":
            out.append(Declaration("data", "vector[N_cell]", "log_exposure_cell",
                                   "log of the summed exposure, exp(offset), of each cell "
                                   "of exact rows, a censored cell's rows' offset"))
        elif self.trials is not None:
            out.append(Declaration("data", "array[N_cell] int<lower=0>", "trials_cell",
                                   "trials summed over each cell of exact rows, a censored "
                                   "cell's rows' trials"))
        return out

    def own_data(self) -> dict[str, Any]:
        if self.level_of:
            return {}
        out: dict[str, Any] = {"N_cell": self.n, "cell": self.row + 1, "y_cell": self.y}
        if self.n_censored:
            out["N_exact_cell"] = self.n_exact
            out["cens_cell"] = self.cens
            if self.y2 is not None:
                out["y2_cell"] = self.y2
            out["n_cell"] = (self.counts.astype(float) if self.rule in (
                "gaussian cells", "negative binomial cells") else self.counts)
            if self.rule == "gaussian cells":
                out["ss_cell"] = self.within
                out["wsum_cell"] = self.exact_weight
            elif self.rule == "negative binomial cells":
                values, counts = self.histogram
                out.update({"N_value": len(values), "value": values.astype(float),
                            "value_count": counts.astype(float)})
            elif self.rule == "poisson sum":
                out["log_exposure_cell"] = self.log_exposure
            elif self.trials is not None:
                out["trials_cell"] = self.trials
            return out
        if self.rule == "gaussian cells":
            out["n_cell"] = self.counts.astype(float)
            out["ss_cell"] = self.within
            if self.weight_sum is not None:
                out["wsum_cell"] = self.weight_sum
        elif self.rule == "negative binomial cells":
            values, counts = self.histogram
            out.update({"n_cell": self.counts.astype(float), "N_value": len(values),
                        "value": values.astype(float), "value_count": counts.astype(float)})
        elif self.rule == "poisson sum":
            out["log_exposure_cell"] = self.log_exposure
        elif self.trials is not None:
            out["trials_cell"] = self.trials
        else:
            out["n_cell"] = self.counts
        return out
