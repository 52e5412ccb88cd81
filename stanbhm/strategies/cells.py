"""Cells: the fitted rows of identical linear predictor summed (counts) or averaged
(gaussian) into one cell each (`passes.collapse`), exact up to a constant. With a term
integrated out, each cell lies in one of its levels and its level sums run over the
cells; for the beta-binomial the cells are its levels. Template:
``strategies/cells.stan.j2``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

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

    rule: str  # the collapse rule: "binomial", "poisson sum" or "gaussian cells"
    row: np.ndarray  # 0-based fitted row that stands for each cell
    y: np.ndarray  # the outcome summed over each cell (gaussian: its mean)
    counts: np.ndarray  # rows per cell
    trials: np.ndarray | None  # summed trials (binomial)
    log_exposure: np.ndarray | None  # poisson: log of the summed exp(offset) per cell
    within: float = 0.0  # gaussian: the sum of squares of the rows about their cell means
    #: the beta-binomial's term when the cells are its levels, in order: its own data
    #: (``first_<g>``, ``Y_<g>``, ``T_<g>``) already hold their rows and totals, so the
    #: program names them ``cell`` and ``N_cell`` in transformed data instead
    level_of: str = ""
    marginal: Marginal | None = None  # the term integrated out, its level sums over the cells

    @property
    def n(self) -> int:
        return len(self.row)

    def own_data(self) -> dict[str, Any]:
        if self.level_of:
            return {}
        out: dict[str, Any] = {"N_cell": self.n, "cell": self.row + 1, "y_cell": self.y}
        if self.rule == "gaussian cells":
            out["n_cell"] = self.counts.astype(float)
            out["ss_cell"] = self.within
        elif self.rule == "poisson sum":
            out["log_exposure_cell"] = self.log_exposure
        elif self.trials is not None:
            out["trials_cell"] = self.trials
        else:
            out["n_cell"] = self.counts
        return out
