"""The program to write, as data: its parts, its likelihood and every decision behind them.

A `Plan` is built by `planner.make_plan` and then only read: templates loop and branch
on its fields, and each `Decision` it holds is a line of the program's header. This
module imports nothing that makes decisions (the passes, predictions, reduce_sum), so
every module that reads a plan can import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .declarations import Declaration
from .errors import PlanError
from .families import Family
from .likelihood import Likelihood
from .marginals.quadrature import DEFAULT_POINTS
from .parts import AuxPart, Call, FixedPart, GroupPart, OffsetPart, Part, PredictionPart, Rows
from .priors import PriorStatement
from .strategies import CELL_ROWS

__all__ = ["NEW_ROWS", "Decision", "Options", "Plan", "PlanError"]

#: The rows of the prediction block's generated quantities (`predict`).
NEW_ROWS = Rows("N_new", "_new", False, new=True)


@dataclass(frozen=True)
class Decision:
    """One line of the program header: ``subject: choice; reason``.

    ``applied`` is False for a pass that looked and did nothing; the line still says why,
    so a reader learns what was considered, not only what was done.
    """

    subject: str
    choice: str
    reason: str
    applied: bool = True
    table: tuple[str, ...] = ()  # aligned lines printed under it: the numbers behind it

    def __str__(self) -> str:
        return f"{self.subject}: {self.choice}; {self.reason}"


@dataclass(frozen=True)
class Options:
    """The user's requests: what `Model` accepts besides formula, data, priors
    (`planner.validate` checks them)."""

    parameterization: Any = "auto"
    rewrites: Any = "auto"
    glm: Any = "auto"
    threads: int | None = None
    opencl: Any = False
    log_lik: Any = "auto"
    grainsize: int | None = None
    y_rep: Any = "auto"
    effects: Any = "auto"
    scale_b: Any = "auto"
    initial_metric: Any = "auto"
    quadrature_points: Any = DEFAULT_POINTS  # nodes per level, a term integrated out by quadrature


@dataclass(frozen=True, eq=False)
class Plan:
    """The program to write: its parts, its likelihood and the decisions behind them."""

    formula: str
    family: Family
    n: int
    n_obs: int
    fixed: FixedPart
    aux: AuxPart
    groups: tuple[GroupPart, ...]
    offset: OffsetPart | None
    likelihood: Likelihood
    options: Options
    decisions: tuple[Decision, ...] = ()
    #: (the pass's decision subject, or its class without one; seconds it took), in the
    #: order they ran: how the plan was made, never part of the program
    pass_seconds: tuple[tuple[str, float], ...] = ()
    notes: tuple[str, ...] = field(default=())
    information: dict[str, Any] = field(default_factory=dict)  # "auto"'s numbers per term
    #: new rows to predict, declared and computed (`predict.with_predictions`)
    prediction: PredictionPart | None = None
    rows_given: bool = True  # False: no per-row data (`passes.outputs.RowData`)
    #: opencl="auto": the GLM kernel is large enough for a GPU (`passes.glm.Opencl`);
    #: `Model` looks for one on its machine (plans do not depend on the hardware)
    gpu_wanted: bool = False

    @property
    def new_rows(self) -> Rows:
        """The new rows the program predicts (`predict`), given as data."""
        return NEW_ROWS

    @property
    def missing(self) -> bool:
        """Whether the fitted rows are listed in ``obs``: some rows have no observed
        outcome (they are predicted, not fitted), or they are fitted in another order."""
        return self.likelihood.missing

    @property
    def model_parts(self) -> tuple[Part, ...]:
        """The parts of the model, likelihood first, in the order the data block declares
        them."""
        offset = (self.offset,) if self.offset else ()
        return (self.likelihood, self.fixed, *offset, *self.groups, self.aux)

    @property
    def output_parts(self) -> tuple[Part, ...]:
        """Parts that only read the model (the new rows to predict): declared at the end
        of the data block and computed at the end of generated quantities."""
        return (self.prediction,) if self.prediction else ()

    @property
    def parts(self) -> tuple[Part, ...]:
        """Every part: the data, the priors and the outputs' dims come from these."""
        return (*self.model_parts, *self.output_parts)

    def eta_terms(self, rows: Rows, design: bool = True) -> tuple[str, ...]:
        """The linear predictor over `rows`, one term per part in order; the fixed part
        drops out when centered terms took all of it over, and a group term whose effects
        are integrated out is left out of the fitted rows (the likelihood holds it).
        ``design=False`` leaves out ``X * b``: what remains is a GLM kernel's intercept."""
        terms = []
        scalar = self.fixed.fitted_intercept
        fixed = self.fixed.eta(rows) if design else scalar
        if fixed is not None:
            terms.append(fixed)
        for g in self.groups:
            if not (rows.fitted and g.marginalized):
                terms += g.eta(rows)
        cells = self.likelihood.cells
        exposure = rows.cell and cells is not None and cells.rule == "poisson sum"
        if self.offset and not exposure:  # a poisson cell carries its rows' exposure
            terms.append(self.offset.eta(rows))
        if not design and scalar is not None and terms[0] == scalar and len(terms) > 1:
            if isinstance(terms[1], Call):  # a slice's term: one call a statement
                terms[0] = f"rep_vector({scalar}, {rows.n})"
            else:
                terms[:2] = [f"{scalar} + {terms[1]}"]
        return tuple(terms) or (f"rep_vector(0, {rows.n})",)

    def glm_alpha(self, rows: Rows) -> str | None:
        """A GLM kernel's intercept when it is one number (`FixedPart.fitted_intercept`
        or 0); None when it varies by row and the program builds it as ``eta``."""
        terms = self.eta_terms(rows, design=False)
        scalar = self.fixed.fitted_intercept
        if scalar is not None and terms == (scalar,):
            return scalar
        if terms == (f"rep_vector(0, {rows.n})",):
            return "0"
        return None

    @property
    def fit_rows(self) -> Rows:
        return Rows("N_obs", "_obs", True) if self.missing else Rows("N", "", True)

    @property
    def cell_rows(self) -> Rows:
        """Rows standing for the cells of a collapsed likelihood."""
        return CELL_ROWS

    @property
    def all_rows(self) -> Rows:
        """Rows for generated quantities: every row, population part plus deviations."""
        return Rows("N", "", False, raw_x=self.missing)

    def declarations(self) -> tuple[Declaration, ...]:
        """Every variable the program declares at the top of a block, as the parts, the
        likelihood's strategy, the term integrated out and the priors list them: within
        each block in the program's order."""
        lik = self.likelihood
        m = lik.marginal
        kind = m.declarations(lik, self) if m is not None and self.rows_given else ()
        out: list[Declaration] = []
        for part in self.model_parts:
            out += part.declarations(self)
            if part is lik:  # what transformed data builds for the term integrated out
                out += [d for d in kind if d.block != "data"]
            elif part in self.groups and part.marginalized:  # its level data
                out += [d for d in kind if d.block == "data"]
        out += lik.strategy.declarations(lik, self)
        out += [d.declaration for s in self.prior_statements for d in s.data]
        out += [d for part in self.output_parts for d in part.declarations(self)]
        return tuple(out)

    @property
    def prior_statements(self) -> tuple[PriorStatement, ...]:
        """Every prior statement of the parts, in the data block's order."""
        return tuple(s for part in self.parts for s in part.prior_statements)

    @property
    def vector_priors(self) -> tuple[PriorStatement, ...]:
        """Vector priors written as functions (the program's functions block)."""
        return tuple(s for s in self.prior_statements if s.rhs is None)

    @property
    def cpp_options(self) -> dict[str, Any]:
        """Compiler flags: threads let CmdStanPy run all chains in one process; a marginal
        kind's C++ (`marginals.Kind.cpp_header`) is compiled with the program."""
        header = self.cpp_header
        return {"STAN_THREADS": True, **({"USER_HEADER": str(header)} if header else {})}

    @property
    def stanc_options(self) -> dict[str, Any]:
        """stanc's flags: the functions a kind's C++ defines are declared without a body."""
        return {"allow-undefined": True} if self.cpp_header else {}

    @property
    def cpp_header(self) -> Path | None:
        m = self.likelihood.marginal
        return None if m is None else m.kind.cpp_header

    def data(self) -> dict[str, Any]:
        """The data dictionary, derived from the parts."""
        out: dict[str, Any] = {}
        for part in self.parts:
            out.update(part.data())
        for statement in self.prior_statements:
            out.update(statement.data_values())
        if not self.rows_given:
            for part in self.parts:
                for name in part.row_data():
                    out.pop(name, None)
            out.update(self.fixed.moments(self.likelihood.obs))
        return out

    def prior_data(self) -> dict[str, Any]:
        """What replaces `data`'s entries when the program samples the prior alone."""
        out: dict[str, Any] = {}
        for part in self.parts:
            out.update(part.prior_data())
        return out
