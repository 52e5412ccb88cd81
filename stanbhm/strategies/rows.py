"""The rows as they are: one term of the family's density per fitted row, through the
family's GLM kernel where it has one (`passes.glm`), in slices of rows on several
threads where asked (`passes.threads`). Template: ``strategies/rowwise.stan.j2``."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Strategy

__all__ = ["Rowwise"]


@dataclass(frozen=True)
class Rowwise(Strategy):
    name = "rowwise"
    rewritten_as = "rowwise"

    glm: bool = False
    threads: int = 1
    grainsize: int = 0
