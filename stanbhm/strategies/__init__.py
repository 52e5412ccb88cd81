"""The likelihood's strategies: how the fitted rows' log density is written, one of a
closed set (`STRATEGIES`); see `base.Strategy`."""

from __future__ import annotations

from .base import Strategy
from .cells import CELL_ROWS, Cells
from .joint import Joint, Segment
from .marginal import MarginalRows
from .rows import Rowwise
from .statistics import NestedCells, Statistics, block_csr

__all__ = ["CELL_ROWS", "STRATEGIES", "Cells", "Joint", "MarginalRows", "NestedCells",
           "Rowwise", "Segment", "Statistics", "Strategy", "block_csr"]

#: Every strategy a likelihood may hold.
STRATEGIES: tuple[type[Strategy], ...] = (Rowwise, MarginalRows, Cells, Statistics, Joint)
