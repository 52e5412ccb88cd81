"""The rows with one group intercept integrated out (`passes.marginalize`): the rows'
density with the term's effects integrated out by its kind (`marginals`), in slices of
the term's levels on several threads where the kind allows (`passes.threads`; the rows
then come sorted by level). Template: ``strategies/marginal.stan.j2``, which writes the
linear predictor and calls the kind's template for the rest."""

from __future__ import annotations

from dataclasses import dataclass

from ..marginals import Marginal
from .base import Strategy

__all__ = ["MarginalRows"]


@dataclass(frozen=True)
class MarginalRows(Strategy):
    name = "marginal"
    rewritten_as = "marginal"

    marginal: Marginal
    threads: int = 1
    grainsize: int = 0
