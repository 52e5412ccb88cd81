"""reduce_sum: the fitted rows' log likelihood as a sum of slices that threads add up.

Stan's ``reduce_sum`` calls a function for contiguous slices of the fitted rows on
several threads and adds the results; functions see only their arguments, so every
name the slice's linear predictor and density use is passed in. The function body is
the same linear predictor and the same density (GLM kernel or not) as the
single-threaded program, each row-level name cut to ``[start : end]``, so the two
programs' log densities are equal. Shared parameters are copied once per slice, which
is why slices are not too small: see `grainsize`.

A likelihood with a group intercept integrated out (`marginals.Marginal`) is not a sum
over rows: each level's rows enter together, through their sums. It is a sum over
levels, though, so there reduce_sum slices the levels; the fitted rows are sorted by
level (``obs``, `passes.threads`), so a slice's rows are one contiguous run, ``first :
last`` (X is column-major: gathering a slice's rows through an index reads every column
row by row; docs/benchmark-history.md has the measurement), and it adds their marginal
log density. The slices' sum is the single-threaded program's expression term by term.

Each strategy's template writes its own slice function (`row_slice` for the rows,
`level_slice` for the levels of the term integrated out) from the `PartialSum` here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .parts import Rows
    from .plan import Plan

#: The slice of fitted rows one call covers.
WINDOW = "start : end"
#: Slices per thread under the default grainsize: enough for the threads to even out
#: uneven slices, few enough that copying the shared parameters stays cheap.
SLICES_PER_THREAD = 4


def grainsize(rows: int, threads: int) -> int:
    """Rows per slice, at least: the fitted rows over 4 slices per thread, rounded up.
    (Stan's scheduler may cut slices larger, never smaller.)"""
    return max(1, math.ceil(rows / (SLICES_PER_THREAD * threads)))


@dataclass(frozen=True)
class PartialSum:
    """The slice function's parts, for the template: its arguments after (slice, start,
    end), the linear predictor lines over the slice and the density it returns."""

    arguments: tuple[tuple[str, str], ...]  # (Stan type, name)
    eta: tuple[str, ...]
    density: tuple[str, tuple[str, ...]] | None  # the rows' density function and arguments
    levels: str = ""  # the term integrated out, whose levels are sliced; "": rows are
    rows: Rows | None = None  # the rows of one slice, as the density's names take them

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for _, name in self.arguments)

    @property
    def call(self) -> list[str]:
        """reduce_sum's arguments: the function, what it slices, the grainsize, the rest."""
        sliced = "level_index" if self.levels else "row_index"
        return ["partial_log_lik_lupmf", sliced, "grainsize", *self.names]

    @property
    def declared(self) -> list[str]:
        """The function's arguments as its signature declares them."""
        return ["array[] int slice", "int start", "int end",
                *(f"{kind} {name}" for kind, name in self.arguments)]


def row_slice(plan: Plan) -> PartialSum:
    """The slice function of a row-wise likelihood, with or without a GLM kernel."""
    lik = plan.likelihood
    rows = dataclasses.replace(plan.fit_rows, n="end - start + 1", window=WINDOW)
    design = plan.fixed.design(rows) if lik.glm else None
    alpha = plan.glm_alpha(rows) if lik.glm else None
    eta = () if alpha is not None else plan.eta_terms(rows, design=not lik.glm)
    density = lik.slice_density(rows, design, alpha or "eta")
    return PartialSum(_arguments(plan), eta, density)


def level_slice(plan: Plan) -> PartialSum:
    """The slice function of a likelihood whose group intercept is integrated out:
    slices of its levels, each reading its levels' contiguous rows."""
    rows = dataclasses.replace(plan.fit_rows, n="n_rows", window="first : last")
    g = plan.likelihood.marginal.ident
    return PartialSum(_arguments(plan), plan.eta_terms(rows), None, levels=g, rows=rows)


def _arguments(plan: Plan) -> tuple[tuple[str, str], ...]:
    """Everything the slice's linear predictor and density read, in the data block's
    order then the parameters', each with its type as its declaration gives it."""
    fit = plan.fit_rows
    lik = plan.likelihood
    names = ["y"]
    if lik.se is not None and lik.marginal is not None:  # 1 / se^2, from transformed data
        names.append("inv_var")
    elif lik.se is not None:
        names.append("se" + fit.suffix)
    if lik.trials is not None:
        names.append("trials" + fit.suffix)
    design = plan.fixed.design(fit)
    if design is not None:
        names.append(design[0])
    shift = plan.fixed.absorbed_shift
    if shift:
        names.append("means_X")
    if plan.offset is not None:
        names.append("offs" + fit.suffix)
    groups = [g for g in plan.groups if not g.marginalized]
    for g in groups:
        if g.block:  # the rows' covariates and levels as the sparse product's data
            names += [f"N_{g.ident}", f"csr_w_{g.ident}", f"csr_v_{g.ident}",
                      f"csr_u_{g.ident}"]
            continue
        names.append(f"J_{g.ident}{fit.suffix}")
        if g.has_z:
            names.append(g.z_name + fit.suffix)
    marginal = lik.marginal
    if marginal is not None:  # where each level's rows start, and the level summaries
        names += marginal.kind.slice_data(marginal)
    if plan.fixed.intercept and not plan.fixed.absorbed_intercept:
        names.append("Intercept")
    if design is not None or shift:
        names.append("b")
    names += [g.level_param if not g.noncentered else f"r_{g.ident}" for g in groups]
    names += lik.family.aux_names(lik.se is not None)
    if marginal is not None:
        names.append(f"sd_{marginal.ident}")
    types = {d.name: d.argument for d in plan.declarations()}
    return tuple((types[name], name) for name in names)
