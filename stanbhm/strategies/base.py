"""What every strategy shares: the protocol of how the likelihood's rows are written.

A strategy is one of a closed set (`strategies.STRATEGIES`): the rows one term each
(`Rowwise`), the rows with one group intercept integrated out (`MarginalRows`), cells of
rows with one linear predictor (`Cells`), per-level sufficient statistics
(`Statistics`) or sufficient statistics over every coefficient (`Joint`). The
likelihood holds exactly one; a pass that rewrites the likelihood replaces it. Each owns
its data and its template, ``stan_templates/strategies/<name>.stan.j2``, whose macros
write its declarations, its density, and its threaded slice where it has one; the three
that rewrite the rows of a gaussian or count model may carry the term integrated out
(`marginal`), whose kind's template they call for that term's part of the density.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..declarations import Declaration
    from ..marginals import Marginal

__all__ = ["Strategy"]


class Strategy:
    """The protocol; the defaults are those of a strategy on one thread, no kernel and
    no term integrated out."""

    name: ClassVar[str]  # its template: stan_templates/strategies/<name>.stan.j2
    #: how an error message names what the rows became ("statistics", "cells"...)
    rewritten_as: ClassVar[str]
    marginal: Marginal | None = None  # the group intercept integrated out, if any
    threads: int = 1  # > 1: reduce_sum over slices (rows, or levels of `marginal`)
    grainsize: int = 0  # rows (levels) per slice, at least, when threaded
    glm: bool = False  # the rows' density through the family's GLM kernel

    @property
    def template(self) -> str:
        return f"strategies/{self.name}.stan.j2"

    def declarations(self, lik: Any, p: Any) -> tuple[Declaration, ...]:
        """The data it declares after every part's (`lik` is the plan `p`'s likelihood)."""
        return ()

    def own_data(self) -> dict[str, Any]:
        """The data entries of the strategy itself (not its marginal's)."""
        return {}

    def data(self) -> dict[str, Any]:
        out = self.own_data()
        if self.threads > 1:
            out["grainsize"] = self.grainsize
        return out

    def level_data(self) -> dict[str, Any]:
        """The integrated-out term's per-level data, read beside the rows only."""
        return self.marginal.data() if self.marginal is not None else {}
