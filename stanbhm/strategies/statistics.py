"""Per-level sufficient statistics of a gaussian likelihood (`passes.statistics`): per
level of one factor, the least-squares fit of its rows and its triangular factor, so a
gradient costs O(levels x columns^2) whatever the number of rows. Template:
``strategies/statistics.stan.j2``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..declarations import Declaration
from ..marginals import Marginal
from .base import Strategy

__all__ = ["NestedCells", "Statistics", "block_csr"]


@dataclass(frozen=True, eq=False)
class NestedCells:
    """The integrated-out factor's levels, nested in the statistics' factor, grouped into
    cells of one level of it and one row count (`passes.statistics`)."""

    level: np.ndarray  # 0-based level of the statistics' factor of each cell
    rows: np.ndarray  # rows of each member of the cell
    members: np.ndarray  # members in the cell
    bhat: np.ndarray  # (cells, columns) least squares of the members' sums
    R: np.ndarray  # (columns, cells, columns): row k of each cell's triangular factor
    rss: np.ndarray  # (cells) residual sum of squares of each cell

    @property
    def n(self) -> int:
        return len(self.level)

    def data(self) -> dict[str, Any]:
        w, v, u = block_csr(self.R)
        return {"N_ms": self.n, "ms_level": self.level + 1, "ms_n": self.rows.astype(float),
                "ms_count": self.members.astype(float), "ms_bhat": self.bhat,
                "ms_nnz": len(w), "ms_w": w, "ms_v": v, "ms_u": u, "ms_rss": self.rss}


def block_csr(R: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stan's CSR form (values, 1-based columns, 1-based row starts) of the matrix with one
    block per cell, the c-th the upper-triangular R[:, c, :]: one sparse product then
    gives every cell's R (theta - bhat), where a product per row of R would make Stan's
    autodiff track each of the cells x columns^2 terms.

    The columns are numbered in the order of `to_vector(dev)` for the (cells, columns)
    matrix `dev`, column-major, so the program needs no `to_vector(dev')`: under stanc's O1
    a parameter matrix is one autodiff node, and Stan 2.39 flattens its transpose in the
    untransposed order (a wrong log density; tests/test_statistics.py checks it)."""
    p, cells, _ = R.shape
    cols = [np.arange(k, p) * cells + c for c in range(cells) for k in range(p)]
    values = [R[k, c, k:] for c in range(cells) for k in range(p)]
    lengths = np.tile(np.arange(p, 0, -1), cells)
    starts = np.concatenate([[0], np.cumsum(lengths)]) + 1
    return np.concatenate(values), np.concatenate(cols) + 1, starts


@dataclass(frozen=True, eq=False)
class Statistics(Strategy):
    """Per-level sufficient statistics of a gaussian likelihood (`passes.statistics`)."""

    name = "statistics"
    rewritten_as = "statistics"

    ident: str  # the factor's term identifier: N_<ident> levels
    factor: str  # the factor, for comments
    labels: tuple[str, ...]  # the design's columns
    #: the statements filling each column's coefficients over the levels, in Stan:
    #: (1-based columns, expression), runs of columns of consecutive population
    #: coefficients as one (`design.Design.theta_columns`)
    theta_columns: tuple[tuple[str, str], ...]
    bhat: np.ndarray  # (levels, columns) least-squares coefficients
    R: np.ndarray  # (columns, levels, columns): row k of each level's triangular factor
    rss: float  # total residual sum of squares at the per-level least squares
    sums: tuple[np.ndarray, np.ndarray] | None = None  # per level: sum of y, of D's columns
    whole: str = ""  # the coefficients as one matrix expression, when one term has them all
    whole_pops: str = ""  # the row of population coefficients added to `whole`'s rows, or ""
    nested: NestedCells | None = None  # a factor nested in this one, integrated out
    marginal: Marginal | None = None  # the term integrated out: this factor or `nested`'s
    #: weights(w): the fitted rows' weights summed, their count in the log(sigma) term
    #: (the statistics are then of the rows times sqrt(w)); None for plain rows
    weight_sum: float | None = None

    def declarations(self, lik: Any, p: Any) -> tuple[Declaration, ...]:
        n = f"N_{self.ident}"
        out = [
            Declaration("data", "int<lower=1>", "ss_cols", "columns of each level's design: "
                        + ", ".join(self.labels),
                        heading=(f"sufficient statistics of the observed rows, per level of "
                                 f"{self.factor}",)),
            Declaration("data", f"matrix[{n}, ss_cols]", "ss_bhat",
                        "least-squares coefficients of each level"),
            *sparse_factor("ss", n, (
                "the levels' triangular factors R (R'R = D'D) as one sparse matrix (CSR), a "
                "block per",
                "level; its columns are numbered as the entries of to_vector(ss_dev), column "
                "by column")),
            Declaration("data", "real<lower=0>", "ss_rss",
                        "residual sum of squares at the least-squares coefficients")]
        if self.weight_sum is not None:
            out.append(Declaration("data", "real<lower=0>", "ss_wsum",
                                   "the rows' weights summed: their count in the log(sigma) "
                                   "term (the statistics are of the rows times sqrt(weight))"))
        if self.sums is not None:
            out += [Declaration("data", f"vector[{n}]", "ss_ysum",
                                "sum of the outcome over each level's rows"),
                    Declaration("data", f"matrix[{n}, ss_cols]", "ss_xsum",
                                "sum of each design column over them")]
        if self.nested is not None:
            member = self.marginal.name
            out += [
                Declaration("data", "int<lower=1>", "N_ms", "cells", heading=(
                    f"levels of {member} in cells of one level of {self.factor} and one row "
                    "count",)),
                Declaration("data", f"array[N_ms] int<lower=1, upper={n}>", "ms_level",
                            f"level of {self.factor} of each cell"),
                Declaration("data", "vector<lower=1>[N_ms]", "ms_n",
                            f"rows of each level of {member} in the cell"),
                Declaration("data", "vector<lower=1>[N_ms]", "ms_count",
                            f"levels of {member} in the cell"),
                Declaration("data", "matrix[N_ms, ss_cols]", "ms_bhat",
                            "least squares of their sums of y on their sums of the columns"),
                *sparse_factor("ms", "N_ms", (
                    "the cells' triangular factors R as one sparse matrix (CSR), a block per "
                    "cell; its",
                    "columns are numbered as the entries of to_vector(ms_dev), column by "
                    "column")),
                Declaration("data", "vector<lower=0>[N_ms]", "ms_rss",
                            "residual sum of squares of each cell")]
        return tuple(out)

    def own_data(self) -> dict[str, Any]:
        w, v, u = block_csr(self.R)
        out = {"ss_cols": len(self.labels), "ss_bhat": self.bhat, "ss_nnz": len(w),
               "ss_w": w, "ss_v": v, "ss_u": u, "ss_rss": self.rss}
        if self.weight_sum is not None:
            out["ss_wsum"] = self.weight_sum
        if self.sums is not None:
            out["ss_ysum"], out["ss_xsum"] = self.sums
        if self.nested is not None:
            out.update(self.nested.data())
        return out


def sparse_factor(prefix: str, blocks: str, heading: tuple[str, ...]) -> list[Declaration]:
    """The CSR arrays (`block_csr`) of one triangular factor per block of `blocks`."""
    nnz = f"{prefix}_nnz"
    return [Declaration("data", "int<lower=1>", nnz, "its stored entries", heading=heading),
            Declaration("data", f"vector[{nnz}]", f"{prefix}_w", "their values"),
            Declaration("data", f"array[{nnz}] int<lower=1>", f"{prefix}_v", "their columns"),
            Declaration("data", f"array[{blocks} * ss_cols + 1] int<lower=1>", f"{prefix}_u",
                        "where each row starts")]
