"""Marginal kinds: the ways a group intercept's level effects are integrated out of the
likelihood, each one module here and one template in ``stan_templates/marginals/``
behind the protocol of `base.Kind`. Adding a kind = one module, one template, one test
file, and a line in `KINDS`."""

from __future__ import annotations

from .base import Kind, Marginal
from .beta import BETA
from .gamma import GAMMA
from .laplace import LAPLACE
from .normal import NORMAL
from .quadrature import QUADRATURE

__all__ = ["KINDS", "Kind", "Marginal", "by_rewrite", "reserved_names"]

#: Every kind, the exact ones first.
KINDS: tuple[Kind, ...] = (NORMAL, GAMMA, BETA, LAPLACE, QUADRATURE)


def by_rewrite() -> dict[str, Kind]:
    """The kinds by the ``rewrites={term: ...}`` value that asks for each."""
    return {kind.rewrite: kind for kind in KINDS}


def reserved_names(ident: str) -> tuple[str, ...]:
    """Every name some kind may use for term `ident`: a term reserves them all, since
    its names are claimed before any kind is chosen."""
    return tuple(name for kind in KINDS for name in kind.names(ident))
