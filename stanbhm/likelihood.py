"""The likelihood: one object that owns the outcome and writes itself where it appears.

It appears three times in a program: the model statement (observed rows), the pointwise
``log_lik`` (one value per observed row) and the posterior predictive ``y_rep`` (every
row). Writing all three from one family row and one strategy keeps them consistent;
the rewrites (sufficient statistics, collapsed counts, marginalization) and threading
add strategies here instead of touching the parts. Strategies: ``"rowwise"`` (one term
per row), ``"marginal"`` (one group intercept integrated out, `parts.Marginal`) and
``"statistics"`` (gaussian sufficient statistics per level, `Statistics`) and ``"cells"``
(counts summed over rows of identical linear predictor, `Cells`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .families import Family
from .parts import Marginal, Output, Part, Rows

__all__ = ["Cells", "Joint", "Likelihood", "NestedCells", "Segment", "Statistics"]

#: The rows the collapsed likelihood works on: one row standing for each cell.
CELL_ROWS = Rows("N_cell", "_cell", True, cell=True)


@dataclass(frozen=True, eq=False)
class Cells:
    """Count rows summed over cells of identical linear predictor (`passes.collapse`)."""

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

    @property
    def n(self) -> int:
        return len(self.row)

    def data(self) -> dict[str, Any]:
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

    def statement(self, fitted: str = "N") -> str:
        """The cells' likelihood; `fitted` counts the rows they stand for."""
        if self.rule == "gaussian cells":
            # a cell's mean is normal with sd sigma / sqrt(n); the rows about the means
            # add their sum of squares and the other N - N_cell factors of 1 / sigma
            return (f"target += -({fitted} - N_cell) * log(sigma) - 0.5 * ss_cell / "
                    "square(sigma);\n    y_cell ~ normal(eta, sigma ./ sqrt(n_cell));")
        if self.rule == "poisson sum":
            return "y_cell ~ poisson_log(eta + log_exposure_cell);"
        size = "trials_cell" if self.trials is not None else "n_cell"
        return f"y_cell ~ binomial_logit({size}, eta);"


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
    untransposed order (a wrong log density, found by tests/test_rewrites.py)."""
    p, cells, _ = R.shape
    cols = [np.arange(k, p) * cells + c for c in range(cells) for k in range(p)]
    values = [R[k, c, k:] for c in range(cells) for k in range(p)]
    lengths = np.tile(np.arange(p, 0, -1), cells)
    starts = np.concatenate([[0], np.cumsum(lengths)]) + 1
    return np.concatenate(values), np.concatenate(cols) + 1, starts


@dataclass(frozen=True, eq=False)
class Statistics:
    """Per-level sufficient statistics of a gaussian likelihood (`passes.statistics`)."""

    ident: str  # the factor's term identifier: N_<ident> levels
    name: str  # the factor, for comments
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

    def data(self) -> dict[str, Any]:
        w, v, u = block_csr(self.R)
        out = {"ss_cols": len(self.labels), "ss_bhat": self.bhat, "ss_nnz": len(w),
               "ss_w": w, "ss_v": v, "ss_u": u, "ss_rss": self.rss}
        if self.sums is not None:
            out["ss_ysum"], out["ss_xsum"] = self.sums
        if self.nested is not None:
            out.update(self.nested.data())
        return out


@dataclass(frozen=True)
class Segment:
    """Consecutive coefficients of the joint statistics' vector: a Stan expression of
    `width` numbers (a population coefficient, a run of b, one effect over the levels)."""

    expr: str
    width: int
    comment: str
    levels: str = ""  # the program's name of `width` when it is a level count (N_g)


@dataclass(frozen=True, eq=False)
class Joint:
    """Sufficient statistics over every coefficient at once (`passes.joint`): blocks of
    rows whose sums of squares are |R phi - q|^2, the first over the fitted rows, then one
    per class of the integrated-out factor's levels with one row count."""

    segments: tuple[Segment, ...]  # the coefficient vector phi, in order
    R: np.ndarray  # (rows of the factors, P): the blocks' triangular factors, stacked
    q: np.ndarray  # (rows of the factors): their right-hand sides
    start: np.ndarray  # 0-based first row of each block, then the end
    rows: np.ndarray  # per class: rows of each of its levels (empty without a marginal)
    members: np.ndarray  # per class: its levels

    @property
    def P(self) -> int:
        return sum(s.width for s in self.segments)

    @property
    def blocks(self) -> int:
        return len(self.start) - 1

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"js_P": self.P, "js_B": self.blocks, "js_M": len(self.q),
                               "js_start": self.start + 1, "js_R": self.R, "js_q": self.q}
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


@dataclass(frozen=True, eq=False)
class Likelihood(Part):
    """The outcome, its modifiers (``se()``, ``trials()``) and the likelihood statements."""

    family: Family
    strategy: str  # "rowwise", "marginal", "statistics" or "cells"
    response: str
    y: np.ndarray  # observed outcome values
    n: int
    obs: np.ndarray  # 0-based indices of the observed rows
    se: np.ndarray | None
    trials: np.ndarray | None
    log_lik: bool
    y_rep: bool
    se_expr: str = ""
    trials_expr: str = ""
    marginal: Marginal | None = None  # strategy "marginal": the term integrated out
    #: log_lik="marginal": log_lik has the integrated-out term's effects integrated out
    #: (per row when no level has two rows, else per level)
    log_lik_integrated: bool = False
    statistics: Statistics | None = None  # strategy "statistics"
    cells: Cells | None = None  # strategy "cells"
    joint: Joint | None = None  # strategy "statistics", over every coefficient at once
    glm: bool = False  # rowwise through the family's GLM kernel (`passes.glm`)
    threads: int = 1  # > 1: reduce_sum over slices of the fitted rows, or of the levels of
    # the term integrated out (`passes.threads`)
    grainsize: int = 0  # rows (levels) per slice, at least, when threaded
    kind: str = "likelihood"

    @property
    def level_ordered(self) -> bool:
        """Whether the fitted rows are sorted by level of the term integrated out
        (`passes.threads`), not in the data's order."""
        return self.marginal is not None and self.marginal.sorted_rows

    @property
    def missing(self) -> bool:
        """Whether the fitted rows are listed in ``obs``: some rows have no observed
        outcome, or the rows are fitted in another order than the data's."""
        return len(self.obs) < self.n or self.level_ordered

    @property
    def n_obs(self) -> int:
        return len(self.obs)

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"N": self.n}
        if self.missing:
            out["N_obs"] = self.n_obs
            out["obs"] = self.obs + 1
        out["y"] = self.y.astype(np.int64) if self.family.integer else self.y
        if self.se is not None:
            out["se"] = self.se
        if self.trials is not None:
            out["trials"] = self.trials
        if self.statistics is not None:
            out.update(self.statistics.data())
        if self.cells is not None:
            out.update(self.cells.data())
        if self.joint is not None:
            out.update(self.joint.data())
        if self.threads > 1:
            out["grainsize"] = self.grainsize
        out["prior_only"] = 0
        return out

    def row_data(self) -> tuple[str, ...]:
        return ("obs", "y", "se", "trials")

    def outputs(self) -> tuple[Output, ...]:
        out = []
        if self.log_lik:
            per_level = self.log_lik_integrated and not self.marginal.per_row
            out.append(Output("log_lik", (self.marginal.name,) if per_level else ("obs_id",)))
        if self.y_rep:
            out.append(Output("y_rep", ("row",)))
        return tuple(out)

    def coords(self) -> dict[str, list[str]]:
        coords = {"obs_id": [str(i) for i in self.obs]}
        if self.y_rep:
            coords["row"] = [str(i) for i in range(self.n)]
        return coords

    def _fill(self, template: str, eta: str, row_data: Callable[[str], str]) -> str:
        """A family template with ``{eta}`` and the row data filled in, known standard
        errors standing for ``sigma``; `row_data` names row-level data (``se`` ->
        ``se_obs``, ``se[i]``)."""
        if self.se is not None:
            template = template.replace("sigma", "{se}")
        return template.format(eta=eta, se=row_data("se"), trials=row_data("trials"))

    def density(self, rows: Rows, design: tuple[str, str] | None = None,
                alpha: str = "eta") -> tuple[str, list[str]]:
        """(distribution, its arguments after the outcome) over the fitted `rows`: the
        family's own around the linear predictor `alpha`, or with `design` (x, beta) its
        GLM kernel's, whose (x, alpha, beta) take the linear predictor's place."""
        eta = [alpha] if design is None else [design[0], alpha, design[1]]
        args = []
        for template in self.family.args:
            args += eta if template == "{eta}" else [self._fill(template, alpha, rows.take)]
        return (self.family.dist if design is None else self.family.glm), args

    def statement(self, rows: Rows, design: tuple[str, str] | None = None,
                  alpha: str = "eta") -> str:
        """``y ~ dist(...)`` over the fitted rows (see `density`)."""
        dist, args = self.density(rows, design, alpha)
        return f"y ~ {dist}({', '.join(args)});"

    def slice_density(self, rows: Rows, design: tuple[str, str] | None = None,
                      alpha: str = "eta") -> tuple[str, tuple[str, ...]]:
        """The log density of one reduce_sum slice of the fitted rows, constants dropped
        as ``~`` drops them: the function and its arguments (the first is ``y | ...``)."""
        dist, (first, *rest) = self.density(rows, design, alpha)
        suffix = "lupmf" if self.family.integer else "lupdf"
        return f"{dist}_{suffix}", (f"y[{rows.window}] | {first}", *rest)

    def pointwise(self) -> str:
        """The log density of observed row ``i``, inside the ``log_lik`` loop over the
        observed rows, with ``eta`` covering every row when some are unobserved."""
        row = "obs[i]" if self.missing else "i"
        args = self._fill(", ".join(self.family.args), f"eta[{row}]",
                          lambda name: f"{name}[{row}]")
        return f"{self.family.dist}_{self.family.suffix()}(y[i] | {args})"

    def laplace_extra(self) -> tuple[list[str], list[str]]:
        """What the rows' likelihood needs besides y, eta and the levels: (declarations,
        names) of the family's row data and parameters."""
        decl = ["array[] int trials"] if self.trials is not None else []
        decl += [f"real {a}" for a in self.family.aux_names(self.se is not None)]
        return decl, [d.split()[-1] for d in decl]

    def laplace_functions(self, g: str) -> list[str]:
        """The functions ``laplace_marginal`` needs for term `g`, as program lines: the
        rows' log likelihood given the effects u, their prior covariance, and wrappers
        for the marginal density and the draws of u."""
        decl, names = self.laplace_extra()
        y = "array[] int y" if self.family.integer else "vector y"
        args = self._fill(", ".join(self.family.args), "eta + u[J]", str)
        inner = ", ".join(["y", "eta", "J", *names])
        outer = [y, "vector eta", "array[] int J", *decl, "real sd", "int n"]
        return [
            f"  // The log likelihood of the rows given the effects u of {g}.",
            *signature(f"  real lik_{g}(",
                       ["vector u", y, "vector eta", "array[] int J", *decl], ") {"),
            f"    return {self.family.dist}_{self.family.suffix()}(y | {args});",
            "  }",
            "  // The prior covariance of those effects: sd^2 on the diagonal.",
            f"  matrix cov_{g}(real sd, int n) {{",
            "    return diag_matrix(rep_vector(square(sd), n));",
            "  }",
            "  // The rows' log density with the effects integrated out (approximately).",
            *signature(f"  real laplace_{g}(", outer, ") {"),
            f"    return laplace_marginal(lik_{g}, ({inner}), 1, cov_{g}, (sd, n));",
            "  }",
            "  // A draw of the effects from that approximation of their posterior.",
            *signature(f"  vector laplace_{g}_rng(", outer, ") {"),
            f"    return laplace_latent_rng(lik_{g}, ({inner}), 1, cov_{g}, (sd, n));",
            "  }",
        ]

    def laplace_arguments(self, rows: Rows, g: str) -> str:
        """The arguments of ``laplace_<g>`` and ``laplace_<g>_rng`` over the fitted rows."""
        _, names = self.laplace_extra()
        extra = [f"{n}{rows.suffix}" if n == "trials" else n for n in names]
        return ", ".join(["y", "eta", f"J_{g}{rows.suffix}", *extra, f"sd_{g}", f"N_{g}"])

    def rng(self, rows: Rows) -> str:
        """A posterior predictive draw of each of `rows` (generated quantities)."""
        return self._fill(self.family.rng, "eta", rows.take)

    def mean(self, rows: Rows) -> str:
        """The expected outcome of each of `rows` given the linear predictor."""
        return self._fill(self.family.mean, "eta", rows.take)

    @property
    def y_rep_type(self) -> str:
        return "int" if self.family.integer else "real"


def wrap(head: str, items: list[str], tail: str, width: int = 77,
         indent: int | None = None) -> list[str]:
    """``head`` + comma-separated `items` + ``tail`` as stanc --auto-format lays out a
    call: one line when it fits in `width` columns, otherwise broken after the last item
    that fits, continued under the first item (or at column `indent`)."""
    lines, line = [], head
    pad = " " * (len(head) if indent is None else indent)
    for k, item in enumerate(items):
        piece = item + ("," if k < len(items) - 1 else tail)
        if line != head and len(line) + 1 + len(piece) > width:
            lines.append(line)
            line = pad + piece
        else:
            line += ("" if line == head else " ") + piece
    return [*lines, line]


def _top_level(term: str):
    """(position, character) of each character of `term` outside brackets."""
    depth = 0
    for i, char in enumerate(term):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            yield i, char


def _operator_break(term: str) -> int:
    """Where stanc --auto-format breaks an expression too long for its line: before its
    last operator outside brackets, a sum's before a product's; -1 when it has none."""
    found: dict[int, int] = {}
    for i, char in _top_level(term):
        if char == " ":
            for op, rank in ((" + ", 0), (" - ", 0), (" .* ", 1), (" * ", 1)):
                if term.startswith(op, i):
                    found[rank] = i
    return found[min(found)] if found else -1


def _call(term: str) -> tuple[str, list[str]] | None:
    """(function, arguments) when `term` is one call ``f(a, b)``, else None."""
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\((.*)\)", term)
    if not match or _operator_break(term) >= 0:
        return None
    inner, args, start = match.group(2), [], 0
    for i, char in _top_level(inner):
        if char == ",":
            args.append(inner[start:i].strip())
            start = i + 1
    return match.group(1), [*args, inner[start:].strip()]


def statement(head: str, term: str, tail: str, width: int = 78) -> list[str]:
    """``head`` + `term` + ``tail`` laid out as stanc --auto-format does: one line when it
    fits; a call broken between its arguments (one argument alone goes to the next
    line, under the call's parenthesis); an expression broken before an operator."""
    if len(head) + len(term) + len(tail) <= width:
        return [head + term + tail]
    call = _call(term)
    if call is not None:
        function, args = call
        if len(args) == 1:
            return [f"{head}{function}(", " " * len(head + function) + " " + args[0] + ")" + tail]
        return wrap(f"{head}{function}(", args, ")" + tail, width)
    cut = _operator_break(term)
    if cut < 0:
        return [head + term + tail]
    op, _, operand = term[cut + 1:].partition(" ")
    return [head + term[:cut], *statement(" " * len(head) + op + " ", operand, tail, width)]


def signature(head: str, items: list[str], tail: str) -> list[str]:
    """A function's signature as stanc --auto-format lays it out: like a call when that
    takes at most two lines, otherwise one argument per line."""
    lines = wrap(head, items, tail)
    if len(lines) <= 2:
        return lines
    pad = " " * len(head)
    return [head + items[0] + ",", *(pad + i + "," for i in items[1:-1]), pad + items[-1] + tail]
