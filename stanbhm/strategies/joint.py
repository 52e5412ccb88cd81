"""Sufficient statistics over every coefficient at once (`passes.joint`): blocks of rows
whose sums of squares are |R phi - q|^2 for any coefficients phi, so a gradient costs
one dense product whatever the number of rows or levels. Template:
``strategies/joint.stan.j2``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..declarations import Declaration
from ..marginals import Marginal
from .base import Strategy

__all__ = ["Joint", "Segment"]


@dataclass(frozen=True)
class Segment:
    """Consecutive coefficients of the joint statistics' vector: a Stan expression of
    `width` numbers (a population coefficient, a run of b, one effect over the levels)."""

    expr: str
    width: int
    comment: str
    levels: str = ""  # the program's name of `width` when it is a level count (N_g)


@dataclass(frozen=True, eq=False)
class Joint(Strategy):
    """Sufficient statistics over every coefficient at once (`passes.joint`): blocks of
    rows whose sums of squares are |R phi - q|^2, the first over the fitted rows, then one
    per class of the integrated-out factor's levels with one row count."""

    name = "joint"
    rewritten_as = "statistics"

    segments: tuple[Segment, ...]  # the coefficient vector phi, in order
    R: np.ndarray  # (rows of the factors, P): the blocks' triangular factors, stacked
    q: np.ndarray  # (rows of the factors): their right-hand sides
    start: np.ndarray  # 0-based first row of each block, then the end
    rows: np.ndarray  # per class: rows of each of its levels (empty without a marginal)
    members: np.ndarray  # per class: its levels
    marginal: Marginal | None = None  # the term integrated out, through its classes
    #: weights(w): the fitted rows' weights summed, their count in the log(sigma) term
    #: (the factors are then of the rows times sqrt(w)); None for plain rows
    weight_sum: float | None = None

    @property
    def P(self) -> int:
        return sum(s.width for s in self.segments)

    @property
    def blocks(self) -> int:
        return len(self.start) - 1

    def declarations(self, lik: Any, p: Any) -> tuple[Declaration, ...]:
        m = self.marginal
        classes = (f", then one per class of levels of {m.name} with one row count"
                   if m is not None else "")
        out = [
            Declaration("data", "int<lower=1>", "js_P", "coefficients in phi", heading=(
                "sufficient statistics of the observed rows over every coefficient at once: "
                "blocks",
                "of rows whose sums of squares are |R phi - q|^2 for any coefficients phi")),
            Declaration("data", "int<lower=1>", "js_B", f"blocks: the rows{classes}"),
            Declaration("data", "int<lower=1>", "js_M", "rows of the blocks' factors, in all"),
            Declaration("data", "array[js_B + 1] int<lower=1>", "js_start",
                        "block k is rows js_start[k] to js_start[k + 1] - 1"),
            Declaration("data", "matrix[js_M, js_P]", "js_R",
                        "the blocks' triangular factors, stacked"),
            Declaration("data", "vector[js_M]", "js_q",
                        "their right-hand sides (the outcome's column of each factor)")]
        if self.weight_sum is not None:
            out.append(Declaration("data", "real<lower=0>", "js_wsum",
                                   "the rows' weights summed: their count in the log(sigma) "
                                   "term (the factors are of the rows times sqrt(weight))"))
        if m is not None:
            out += [Declaration("data", "vector<lower=1>[js_B - 1]", "js_n",
                                "per class: rows of each of its levels"),
                    Declaration("data", "vector<lower=1>[js_B - 1]", "js_count",
                                "per class: its levels")]
        return tuple(out)

    def own_data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"js_P": self.P, "js_B": self.blocks, "js_M": len(self.q),
                               "js_start": self.start + 1, "js_R": self.R, "js_q": self.q}
        if self.weight_sum is not None:
            out["js_wsum"] = self.weight_sum
        if len(self.rows):
            out["js_n"] = self.rows.astype(float)
            out["js_count"] = self.members.astype(float)
        return out

    def phi_lines(self) -> list[tuple[str, str, str]]:
        """(index into phi, expression, comment) assigning each segment. A segment over
        the levels is sized by their count's name, not its value, so another data set
        with other level counts keeps the program."""
        def where(number: int, names: list[str]) -> str:
            return " + ".join([*([str(number)] if number or not names else []), *names])

        lines, number, names = [], 1, []
        for s in self.segments:
            if s.levels:
                index = f"{where(number, names)} : {where(number - 1, [*names, s.levels])}"
                names = [*names, s.levels]
            else:
                index = where(number, names) if s.width == 1 else \
                    f"{where(number, names)} : {where(number + s.width - 1, names)}"
                number += s.width
            lines.append((index, s.expr, s.comment))
        return lines


