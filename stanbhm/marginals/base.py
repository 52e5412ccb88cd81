"""What every marginal kind shares: the state of the term integrated out (`Marginal`)
and the protocol a kind implements (`Kind`).

A kind is one way of integrating a group intercept's level effects out of the
likelihood: the normal (exact, gaussian rows), the gamma-Poisson and the
beta-binomial (exact, conjugate to count rows) and Stan's embedded Laplace
(approximate). Each is one module beside this one and one template,
``stan_templates/marginals/<name>.stan.j2``, holding its density in every strategy it
supports and its draw back side by side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..declarations import Declaration

if TYPE_CHECKING:
    from ..families import Family
    from ..priors import Prior
    from ..spec import GroupEffects, ModelSpec

__all__ = ["Kind", "Marginal", "level_rows", "ones", "summed_rows"]


class Kind:
    """The protocol of a marginal kind; one instance per kind (`marginals.KINDS`)."""

    name: str  # as the header and error messages say it: "normal"
    rewrite: str  # the value of ``rewrites={term: ...}`` that asks for it
    conjugate: str | None  # the family's ``conjugate_intercept`` it serves (None: any)
    #: the collapse rule (`passes.collapse`) whose cells give its level sums exactly
    cell_rule: str | None = None
    threads: bool = False  # its rows' density can be sliced by level (reduce_sum)
    #: it reads the linear predictor once per level: the collapsed likelihood's cells are
    #: then its levels, a fitted row standing for each
    cells_are_levels: bool = False
    exact: bool = True
    #: its density reads the sd through its square alone, so the sd may be sampled on
    #: the whole line and folded (`passes.fold`)
    foldable: bool = False
    #: it writes log_lik="marginal", the rows' density with the effects integrated out
    integrated_log_lik: bool = False
    #: the parameter saying how far the levels spread: "sd", or "kappa" (a concentration)
    spread: str = "sd"
    spread_name: str = "the sd"  # how a message names it: "the concentration"
    spread_prior: Prior | None = None  # its default prior when the spread is not an sd
    #: every program name the kind may use for term ``<g>``, as prefixes of ``_<g>``
    prefixes: tuple[str, ...] = ()
    #: it integrates the effects out of weighted rows (`weights(w)`) too
    weighted: bool = False
    #: it reads each level's rows as one run, so the fitted rows come sorted by level
    needs_sorted_rows: bool = False
    #: it integrates with ``quadrature_points`` nodes per level (`Marginal.points`)
    takes_points: bool = False
    #: C++ compiled with its programs (CmdStan's USER_HEADER), or None
    cpp_header: Path | None = None

    @property
    def template(self) -> str:
        return f"marginals/{self.name}.stan.j2"

    def family_reason(self, family: Family) -> str:
        """Why the family's rows cannot have a group intercept integrated out this way
        ("" when they can)."""
        if family.conjugate_intercept != self.conjugate:
            return f"{self.name} effects are not integrated out of the {family.name} family"
        return ""

    def term_reason(self, spec: ModelSpec, group: GroupEffects) -> str:
        """Why this term's effects cannot (beyond the family; "" when they can)."""
        return ""

    def decision(self, term: str) -> str:
        """The header's reason for integrating `term` out this way."""
        raise NotImplementedError

    #: "auto" may choose it, where `auto_reason` finds nothing against it; the other
    #: kinds are asked for by name
    by_auto: bool = False

    def auto_reason(self, spec: ModelSpec, group: GroupEffects, points: int | None) -> str:
        """Why "auto" leaves `group`'s effects sampled although this kind could integrate
        them out ("" when it integrates them out); asked after the family and the term
        pass."""
        return ""

    def auto_decision(self, spec: ModelSpec, group: GroupEffects) -> str:
        """The header's reason when "auto" chose this kind for `group`."""
        return self.decision(group.term_name)

    def checked(self, spec: ModelSpec, group: GroupEffects, ident: str,
                points: int | None) -> str:
        """What the header adds about an approximation's accuracy on these data, checked
        at planning time ("" for an exact kind)."""
        return ""

    def summaries(self, index: np.ndarray, n_levels: int, y: np.ndarray,
                  trials: np.ndarray | None) -> dict[str, Any]:
        """The per-level numbers of the observed rows it reads besides their counts
        (`Marginal` fields), from each fitted row's 0-based level."""
        return {}

    def per_row(self, m: Marginal) -> bool:
        """Whether the rows are independent given the rest (no per-level data)."""
        return False

    def level_data(self, m: Marginal) -> dict[str, Any]:
        """The per-level data it declares (besides the level sums' row order)."""
        return {}

    def slice_data(self, m: Marginal) -> list[str]:
        """The per-level data a reduce_sum slice of the levels reads (`reduce.level_slice`),
        for a kind with `threads`: where each level's rows start, and its summaries."""
        g = m.ident
        return [f"start_{g}", f"n_{g}" if m.precision is None else f"W_{g}"]

    def needs_sums(self, m: Marginal) -> bool:
        """Whether the program sums rows per level through ``rows_<g>``/``start_<g>``."""
        return not m.from_statistics and not self.per_row(m)

    def names(self, ident: str) -> tuple[str, ...]:
        return tuple(f"{prefix}_{ident}" for prefix in self.prefixes)

    def declarations(self, m: Marginal, lik: Any, p: Any) -> tuple[Declaration, ...]:
        """What it declares: its per-level data (in its term's place in the data block)
        and what transformed data builds for it (after the likelihood's); `lik` is the
        plan `p`'s likelihood."""
        return ()


@dataclass(frozen=True, eq=False)
class Marginal:
    """The group intercept integrated out of the likelihood, as the strategy holds it:
    its kind, each fitted row's level and the per-level summaries the kind reads.

    Strategies that rewrite the rows keep it and say where its level sums come from:
    sufficient statistics (`from_statistics`), cells of the collapsed rows
    (`cell_level`), or the rows sorted by level for reduce_sum (`sorted_rows`)."""

    kind: Kind
    ident: str
    name: str  # the factor, for comments
    index: np.ndarray  # 0-based level of each fitted row
    counts: np.ndarray  # fitted rows per level
    precision: np.ndarray | None  # per level: sum of 1 / se^2 (known standard errors)
    totals: np.ndarray | None = None  # the outcome summed over each level (count kinds)
    trials: np.ndarray | None = None  # the trials summed over each level (beta)
    first: np.ndarray | None = None  # 0-based fitted row standing for each level (beta)
    from_statistics: bool = False  # the level sums come from sufficient statistics
    cell_level: np.ndarray | None = None  # 0-based level of each cell (`passes.collapse`)
    sorted_rows: bool = False  # the fitted rows come sorted by level (`passes.threads`)
    #: weighted rows (`weights(w)`, a kind that takes them): per level, the fitted rows'
    #: weights summed (with known standard errors `precision` is then sum w / se^2)
    level_weights: np.ndarray | None = None
    points: int | None = None  # quadrature nodes per level (a kind that `takes_points`)

    @property
    def weighted(self) -> bool:
        return self.level_weights is not None

    @property
    def per_row(self) -> bool:
        return self.kind.per_row(self)

    @property
    def needs_sums(self) -> bool:
        return self.kind.needs_sums(self)

    def in_statistics(self) -> Marginal:
        """The same term, its level sums now taken from sufficient statistics."""
        return dataclasses.replace(self, from_statistics=True)

    def declarations(self, lik: Any, p: Any) -> tuple[Declaration, ...]:
        """What its kind declares for it (`Kind.declarations`)."""
        return self.kind.declarations(self, lik, p)

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = summed_rows(self) if self.needs_sums else {}
        out.update(self.kind.level_data(self))
        return out


def summed_rows(m: Marginal) -> dict[str, Any]:
    """Where each level's fitted rows (or cells) lie, for ``level_sums``: their order by
    level (unless they come sorted) and where each level's run starts."""
    g = m.ident
    index = m.index if m.cell_level is None else m.cell_level
    members = np.bincount(index, minlength=len(m.counts))
    out: dict[str, Any] = {}
    if not m.sorted_rows:
        out[f"rows_{g}"] = np.argsort(index, kind="stable") + 1
    out[f"start_{g}"] = np.concatenate([[0], np.cumsum(members)]) + 1
    return out


def level_rows(m: Marginal, p: Any) -> list[Declaration]:
    """Where each level's fitted rows lie, for ``level_sums`` (the cells strategy
    declares its cells' own)."""
    g = m.ident
    if not m.needs_sums or m.cell_level is not None:
        return []
    if m.sorted_rows:
        return [Declaration("data", f"array[N_{g} + 1] int<lower=1>", f"start_{g}",
                            "where each level's fitted rows start (they are sorted by level)")]
    n = p.fit_rows.n
    return [Declaration("data", f"array[{n}] int<lower=1, upper={n}>", f"rows_{g}",
                        f"fitted rows sorted by level of {m.name}"),
            Declaration("data", f"array[N_{g} + 1] int<lower=1>", f"start_{g}",
                        f"where each level's rows start in rows_{g}")]


def ones(m: Marginal, lik: Any, p: Any) -> list[Declaration]:
    """The values of ``level_sums``' sparse matrix, built once (one thread only: a
    slice of levels sums its own rows)."""
    if not m.needs_sums or lik.threads > 1:
        return []
    n = "N_cell" if m.cell_level is not None else p.fit_rows.n
    return [Declaration("transformed data", f"vector[{n}]", f"ones_{m.ident}",
                        "a 1 per row: the values of level_sums' sparse matrix",
                        f"rep_vector(1, {n})")]
