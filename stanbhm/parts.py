"""The parts of a program: fixed effects, one per group term, auxiliary parameters,
offset, and the new rows to predict. (The likelihood is a part too, in `likelihood`.)

A part owns everything about itself: its data entries (`data`), what it declares
(`declarations`), its Stan code (a template partial in
``stanbhm/stan_templates/parts/<kind>.stan.j2`` with one macro per program block), the
header lines for its priors, and its outputs with their ArviZ dims and coords. The data
dictionary, the header and the ArviZ conversion are all derived from the parts, so they
cannot disagree with the program. Parts are frozen; passes replace
them (``dataclasses.replace``) rather than change them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrays import at_rows, column_means
from .declarations import Declaration
from .marginals import Kind, reserved_names
from .priors import (
    Bounds,
    Horseshoe,
    Prior,
    PriorStatement,
    prior_data_names,
    prior_statement,
)

__all__ = ["NO_UPPER_INT", "AuxPart", "Declaration", "FixedPart", "GroupPart", "OffsetPart",
           "Output", "Part", "PredictionPart", "Rows", "b_runs", "bound_data"]

#: No upper truncation bound on an integer outcome's row (a missing value on a row
#: without an outcome, or inf): the largest int of Stan's data, whose CDF is 1
NO_UPPER_INT = 2**31 - 1


def bound_data(values: np.ndarray, side: str, integer: bool) -> np.ndarray:
    """A truncation bound column's values as the program reads them, `side` "lb" or
    "ub": a missing value (a row without an outcome, drawn without it) or an infinite
    one (brms's -inf lb or inf ub) is no bound on that side: -inf or inf, for an integer
    outcome (never below 0) 0 or `NO_UPPER_INT`, which bound nothing."""
    none = np.isnan(values) | np.isinf(values)
    if not integer:
        return np.where(np.isnan(values), -np.inf if side == "lb" else np.inf, values)
    return np.where(none, 0 if side == "lb" else NO_UPPER_INT, values).astype(np.int64)

#: One population coefficient, as the plan spells it.
_B = re.compile(r"b\[(\d+)\]")


def b_runs(values: Sequence[str]) -> list[tuple[int, int, str]]:
    """`values` (one per column) cut into runs of columns one statement can fill:
    consecutive columns holding ``b[j], b[j + 1], ...`` make one run, read as the slice
    ``b[j : k]``; any other column is a run of its own with its value. Each run is (first
    column, last column, both 0-based, and the slice or value). Retail's 22 store-varying
    features would otherwise be 22 statements of one column each."""
    spans: list[list] = []  # [first column, last column, first j, last j or None, value]
    for c, value in enumerate(values):
        found = _B.fullmatch(value)
        j = int(found.group(1)) if found else None
        prev = spans[-1] if spans else None
        if j is not None and prev is not None and prev[3] is not None and j == prev[3] + 1:
            prev[1], prev[3] = c, j
        else:
            spans.append([c, c, j, j, value])
    return [(first, last, value if first == last else f"b[{j0} : {j1}]")
            for first, last, j0, j1, value in spans]


@dataclass(frozen=True)
class Output:
    """One program output and its ArviZ dims (one per array dimension). An ``internal``
    output is the sampler's working coordinate (a raw z, a Cholesky factor, a signed
    sd) or a matrix with constant cells (a correlation matrix, whose pairs the fit shows
    as ``cor_<term>``), which the fit keeps out of the posterior a user summarizes."""

    name: str
    dims: tuple[str, ...] = ()
    internal: bool = False


class Call(str):
    """A linear-predictor term that is one function call: its text, plus the function and
    arguments, so the template can lay out a long call as stanc formats it without
    parsing the text back."""

    function: str
    args: tuple[str, ...]

    def __new__(cls, function: str, *args: str) -> Call:
        term = super().__new__(cls, f"{function}({', '.join(args)})")
        term.function, term.args = function, args
        return term


@dataclass(frozen=True)
class Rows:
    """Which rows a linear predictor covers, and the names of their data.

    The model block works on the observed rows only (``fitted``: centered X and the
    ``Intercept`` at the means); generated quantities predict every row (raw X and
    ``b_Intercept``). When every row is observed the two coincide and nothing is copied.
    """

    n: str  # "N", "N_obs" or "N_cell"
    suffix: str  # appended to row-level data names: "", "_obs" or "_cell"
    fitted: bool
    cell: bool = False  # one row standing for each cell of a collapsed likelihood

    window: str = ""  # a range of these rows, "start : end" (one reduce_sum slice)
    new: bool = False  # rows given for prediction: their levels may be new ones
    #: rows of generated quantities that X's centered copy does not cover as they stand
    #: (it holds the fitted rows, in their order): their population part reads X raw
    raw_x: bool = False

    @property
    def fitted_suffix(self) -> str:
        """Appended to arrays built over the fitted rows (``Xc``, ``Xc_free``): the cells'
        subset has its own copy; the observed rows are what those arrays already hold."""
        return "_cell" if self.cell else ""

    def take(self, name: str, fitted: bool = False) -> str:
        """Row-level data `name` over these rows: its suffix (``fitted_suffix`` for arrays
        built over the fitted rows), then the window when the rows are one slice."""
        full = name + (self.fitted_suffix if fitted else self.suffix)
        return f"{full}[{self.window}]" if self.window else full

    def column(self, name: str, j: int) -> str:
        """Column `j` (1-based) of row-level matrix `name` over these rows."""
        return f"{name}{self.suffix}[{self.window or ' : '}, {j}]"


class Part:
    """Interface every part implements (documented here, checked by the tests)."""

    kind: str  # the template partial: stanbhm/stan_templates/parts/<kind>.stan.j2

    def data(self) -> dict[str, Any]:
        """The entries this part adds to the data dictionary."""
        return {}

    def declarations(self, p: Any) -> tuple[Declaration, ...]:
        """Every variable it declares in the plan `p` (a `plan.Plan`, not imported: the
        plan imports the parts), in the program's order."""
        return ()

    def prior_data(self) -> dict[str, Any]:
        """Entries that replace `data`'s when the program samples the prior alone."""
        return {}

    def row_data(self) -> tuple[str, ...]:
        """The entries of `data` holding a value per row: left out of the data when
        nothing in the program reads the rows (`passes.outputs.RowData`)."""
        return ()

    def outputs(self) -> tuple[Output, ...]:
        """Every variable this part writes to the output, with its dims."""
        return ()

    def coords(self) -> dict[str, list[str]]:
        """The ArviZ coordinates its dims use."""
        return {}

    def prior_lines(self) -> tuple[str, ...]:
        """``name ~ prior`` lines for the program header."""
        return ()

    @property
    def prior_statements(self) -> tuple[PriorStatement, ...]:
        """The prior statements of its parameters, with the data they read."""
        return ()


@dataclass(frozen=True, eq=False)
class FixedPart(Part):
    """The population-level intercept and coefficients.

    With an intercept, X is centered in transformed data (as brms does): ``Intercept`` is
    then the intercept at the predictors' means, nearly uncorrelated with the slopes, and
    ``b_Intercept`` (at x = 0) is reported in generated quantities. A horseshoe acts on
    the coefficients of standardized columns, so its shrinkage is the same for every
    column whatever its units; ``b`` is reported on the original scale.
    """

    names: tuple[str, ...]
    idents: tuple[str, ...]
    X: np.ndarray
    intercept: bool
    intercept_prior: Prior | None
    intercept_bounds: Bounds
    b_priors: tuple[Prior, ...]
    horseshoe: Horseshoe | None
    absorbed_intercept: bool = False
    absorbed: tuple[int, ...] = ()  # 0-based columns a centered group term took over
    #: the unit each coefficient is sampled in, and under prior_only (`passes.scale`)
    scale: np.ndarray | None = None
    prior_scale: np.ndarray | None = None
    #: an ordinal family's: the labels of its cutpoints ("1|2", ...); ``Intercept`` is
    #: then their ordered vector and the linear predictor has no intercept of its own
    #: (every eta is relative to the cutpoints at the predictors' means)
    cutpoints: tuple[str, ...] = ()
    kind: str = "fixed"

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def centered(self) -> bool:
        """X is centered only with an intercept: without one, centering changes the model."""
        return self.intercept and self.k > 0

    @property
    def intercept_statement(self) -> PriorStatement | None:
        if self.intercept_prior is None:
            return None
        return prior_statement("Intercept", (self.intercept_prior,))

    @property
    def b_prior(self) -> PriorStatement | None:
        """The statement for ``b`` (None with the horseshoe, which has its own)."""
        if not self.k or self.horseshoe:
            return None
        return prior_statement("b", self.b_priors, self.idents, "K")

    @property
    def prior_statements(self) -> tuple[PriorStatement, ...]:
        return tuple(s for s in (self.intercept_statement, self.b_prior) if s is not None)

    @property
    def free(self) -> tuple[int, ...]:
        """1-based columns whose coefficients stay in the likelihood's X * b."""
        return tuple(j + 1 for j in range(self.k) if j not in self.absorbed)

    def fitted_x(self, rows: Rows) -> str:
        """The design the model block multiplies by ``b``: ``Xc`` (centered, observed
        rows) with an intercept, otherwise ``X`` or its observed rows ``X_obs``."""
        return rows.take("Xc", fitted=True) if self.centered else rows.take("X")

    @property
    def absorbed_shift(self) -> str:
        """What the fitted rows subtract for the columns group terms took over: such a
        term multiplies its raw covariate x, and b_j (x - mean) = b_j x - b_j mean, so
        ``mean . b`` over those columns leaves with them ("" when nothing is owed)."""
        columns = [j + 1 for j in sorted(self.absorbed)]
        if not self.centered or not columns:
            return ""
        if len(columns) == 1:
            return f"means_X[{columns[0]}] * b[{columns[0]}]"
        index = "{" + ", ".join(map(str, columns)) + "}"
        return f"dot_product(means_X[{index}], b[{index}])"

    @property
    def fitted_intercept(self) -> str | None:
        """The number the fitted rows' linear predictor adds besides ``X * b``: the
        intercept unless a group term took it over, less `absorbed_shift`; None when
        nothing is left."""
        shift = self.absorbed_shift
        if self.intercept and not self.absorbed_intercept and not self.cutpoints:
            return f"Intercept - {shift}" if shift else "Intercept"
        return f"-{shift}" if shift else None

    @property
    def split(self) -> bool:
        """Whether some but not all columns were taken over (``Xc_free`` is needed)."""
        return 0 < len(self.absorbed) < self.k

    def eta(self, rows: Rows) -> str | None:
        """The fixed part of the linear predictor, or None when nothing is left of it.

        Fitted rows leave out what centered group terms took over; generated quantities
        (``rows.fitted`` False) use the whole population part, as the deviations do.
        """
        if not rows.fitted:
            if self.centered and self.cutpoints:  # relative to the cutpoints at the means
                if rows.new or rows.raw_x:
                    return f"{rows.take('X')} * b - dot_product(means_X, b)"
                return "Xc * b"
            if self.centered:  # new rows come raw, as do rows Xc does not cover
                if rows.new or rows.raw_x:
                    return f"b_Intercept + {rows.take('X')} * b"
                return "Intercept + Xc * b"
            if self.cutpoints:
                return f"{rows.take('X')} * b" if self.k else None
            if self.intercept:
                return f"rep_vector(Intercept, {rows.n})"
            return f"{rows.take('X')} * b" if self.k else f"rep_vector(0, {rows.n})"
        scalar = self.fitted_intercept
        design = self.design(rows)
        if design is None:
            return f"rep_vector({scalar}, {rows.n})" if scalar else None
        product = " * ".join(design)
        return f"{scalar} + {product}" if scalar else product

    def design(self, rows: Rows) -> tuple[str, str] | None:
        """(matrix, coefficients) of the fitted rows' ``X * b``, or None when centered
        group terms took every column: what a GLM kernel takes as its x and beta."""
        if self.split:
            return rows.take("Xc_free", fitted=True), f"b[{{{', '.join(map(str, self.free))}}}]"
        if self.free:
            return self.fitted_x(rows), "b"
        return None

    def declarations(self, p: Any) -> tuple[Declaration, ...]:
        return (*self._data_declarations(p), *self._parameters())

    def _data_declarations(self, p: Any) -> list[Declaration]:
        if not self.k:
            return []
        names = ", ".join(self.names)
        out = [Declaration("data", "int<lower=1>", "K", "fixed-effect columns")]
        if self.scale is not None:
            out.append(Declaration("data", "vector<lower=0>[K]", "scale_b", "unit each "
                                   "coefficient is sampled in: its approximate posterior sd"))
        if p.rows_given:
            out.append(Declaration("data", "matrix[N, K]", "X", f"fixed-effect columns: {names}"))
        else:
            if self.centered:
                out.append(Declaration("data", "vector[K]", "means_X", "column means of X over "
                                       f"the observed rows: {names}"))
            if self.horseshoe:
                out.append(Declaration("data", "vector<lower=0>[K]", "sds_X",
                                       "column sds of X over the observed rows"))
        fit = p.fit_rows
        if p.rows_given:
            td = "transformed data"
            if p.missing and not self.centered:
                out.append(Declaration(td, "matrix[N_obs, K]", "X_obs", "X, observed rows",
                                       "X[obs]"))
            observed = ", observed rows," if p.missing else ""
            if self.centered:
                out += [Declaration(td, "vector[K]", "means_X",
                                    "column means of X over the observed rows"),
                        Declaration(td, f"matrix[{fit.n}, K]", "Xc",
                                    f"X{observed} with centered columns")]
            if self.horseshoe:
                out.append(Declaration(td, "vector[K]", "sds_X",
                                       "column sds of X over the observed rows"))
            free = len(self.free)
            if self.split:
                columns = "{" + ", ".join(map(str, self.free)) + "}"
                out.append(Declaration(td, f"matrix[{fit.n}, {free}]", "Xc_free",
                                       "columns no group term took over",
                                       f"{self.fitted_x(fit)}[ : , {columns}]"))
            if p.likelihood.cells:
                rows = "rows standing for the cells"
                if self.split:
                    out.append(Declaration(td, f"matrix[N_cell, {free}]", "Xc_free_cell", rows,
                                           "Xc_free[cell]"))
                elif self.free and self.centered:
                    out.append(Declaration(td, "matrix[N_cell, K]", "Xc_cell", rows, "Xc[cell]"))
                elif self.free:
                    out.append(Declaration(td, "matrix[N_cell, K]", "X_cell", rows,
                                           f"X{fit.suffix}[cell]"))
        return out

    def _parameters(self) -> list[Declaration]:
        out = []
        if self.cutpoints:
            what = "cutpoints at the means of the predictors" if self.centered else "cutpoints"
            out.append(Declaration("parameters", "ordered[N_cat - 1]", "Intercept", what))
        elif self.intercept:
            what = "intercept at the means of the predictors" if self.centered else "intercept"
            out.append(Declaration("parameters", f"real{self.intercept_bounds}", "Intercept",
                                   what))
        if self.horseshoe:
            out += [Declaration("parameters", "vector[K]", "hs_z",
                                "coefficients of the standardized columns, standardized"),
                    Declaration("parameters", "real<lower=0>", "hs_global",
                                "global shrinkage, tau"),
                    Declaration("parameters", "vector<lower=0>[K]", "hs_local",
                                "local shrinkage, lambda"),
                    Declaration("parameters", "real<lower=0>", "hs_slab",
                                "slab variance over scale_slab squared"),
                    Declaration("transformed parameters", "vector[K]", "b",
                                "coefficients of the columns of X")]
        elif self.k:
            unit = "<multiplier=scale_b>" if self.scale is not None else ""
            out.append(Declaration("parameters", f"vector{unit}[K]", "b",
                                   "coefficients of the columns of X"))
        return out

    def data(self) -> dict[str, Any]:
        if not self.k:
            return {}
        out = {"K": self.k, "X": self.X}
        if self.scale is not None:
            out["scale_b"] = self.scale
        return out

    def prior_data(self) -> dict[str, Any]:
        return {"scale_b": self.prior_scale} if self.prior_scale is not None else {}

    def row_data(self) -> tuple[str, ...]:
        return ("X",)

    def moments(self, obs: np.ndarray) -> dict[str, Any]:
        """What transformed data computes from X over the observed rows `obs`, for a
        program not given X: the column means (centered X) and sds (horseshoe)."""
        out: dict[str, Any] = {}
        if self.centered:
            out["means_X"] = column_means(self.X, obs)
        if self.horseshoe:
            out["sds_X"] = at_rows(self.X, obs).std(axis=0, ddof=1)
        return out

    def outputs(self) -> tuple[Output, ...]:
        out = []
        cut = ("cutpoint",) if self.cutpoints else ()
        if self.intercept:
            out.append(Output("Intercept", cut))
        if self.k:
            out.append(Output("b", ("coef",)))
        if self.horseshoe:
            out += [Output("hs_z", ("coef",), internal=True), Output("hs_local", ("coef",)),
                    Output("hs_global"), Output("hs_slab")]
        if self.centered:
            out.append(Output("b_Intercept", cut))
        return tuple(out)

    def coords(self) -> dict[str, list[str]]:
        coords = {"coef": list(self.names)} if self.k else {}
        if self.cutpoints:
            coords["cutpoint"] = list(self.cutpoints)
        return coords

    def prior_lines(self) -> tuple[str, ...]:
        lines = []
        if self.intercept_prior is not None:
            lines.append(f"Intercept ~ {self.intercept_prior}")
        if self.horseshoe:
            lines.append(f"b ~ regularized {self.horseshoe.settings}, on standardized columns")
            if self.horseshoe.global_.args[-1].endswith("* sigma"):
                lines.append("  its global scale is scale_global times sigma (hs_global ~ "
                             f"{self.horseshoe.global_}), as in brms")
        else:
            # the prior keys as the user writes them, spelled as the fit labels b's coords
            lines += [f"b_{n} ~ {p}" for n, p in zip(self.names, self.b_priors, strict=True)]
        return tuple(lines)


@dataclass(frozen=True, eq=False)
class GroupPart(Part):
    """One group term, e.g. ``(1 + x | g)``: its sds, correlations and level effects.

    How the level effects are parameterized is the fraction ``c`` of centering
    (Papaspiliopoulos, Roberts & Skold 2007), per term or per level (``c_levels``):

    - ``c = 0``, non-centered: ``z_<g> ~ std_normal()``, ``r_<g> = sd * z``, and the
      population coefficients stay in the likelihood.
    - ``c = 1``, hierarchically centered (Gelfand, Sahu & Carlin 1995): each level's
      coefficient ``coef_<g> ~ normal(mu, sd)`` around the population coefficient
      ``mu`` it took over (``location``), which then leaves the likelihood; an effect
      with no population coefficient (or one another term took) is centered at 0 and
      declared as the deviation ``r_<g>``.
    - ``0 < c < 1``: the centered declaration with Stan's affine transform
      ``<offset=(1 - c) * mu, multiplier=sd^(1 - c)>``; ``c_levels`` gives each level its
      own fraction (a data vector ``c_<g>``).

    Every covariate stays as the formula wrote it, as in lme4 and brms: a level's
    intercept deviation is its deviation at x = 0, whatever X's centering does to the
    population part. A centered term that took over population coefficients declares
    ``centered_<g>``, each effect's population coefficient plus the level's deviation
    (for the intercept, ``Intercept`` at the predictors' means: a shift of the deviation,
    so the model is unchanged). Outputs: ``r_<g>`` (deviations) and, where an effect has
    a population coefficient, ``coef_<g>``: lme4's ``coef()``, the coefficient at x = 0
    plus the deviation (``total`` names it per effect).
    """

    name: str  # the factor, as in the formula: "a:b"
    term_name: str  # the term's key: "state_age"
    ident: str  # Stan stem: N_<ident>, J_<ident>, r_<ident>...
    levels: tuple[str, ...]
    effects: tuple[str, ...]
    index: np.ndarray
    Z: np.ndarray
    correlated: bool
    sd_priors: tuple[Prior, ...]
    sd_bounds: Bounds
    cor_prior: Prior | None
    population: tuple[str, ...]  # per effect: the population coefficient or "0"
    total: tuple[str, ...]  # per effect: what coef_<g> adds to r_<g> (b_Intercept, b[j]) or "0"
    c: float = 0.0
    c_levels: np.ndarray | None = None
    location: tuple[str, ...] = ()  # per effect, when centered: what it is centered at
    #: per effect, when every covariate is X's or the intercept's: 0 for the column of
    #: ones, j for X's column j (1-based); the program builds Z from X, not the data file
    z_from_x: tuple[int, ...] | None = None
    #: an earlier term on the same factor, whose level index this one reads
    same_levels_as: str | None = None
    #: how its effects are integrated out of the likelihood (`passes.marginalize`); the
    #: likelihood's strategy holds the rest (`marginals.Marginal`)
    marginal_kind: Kind | None = None
    draw: bool = True  # integrated out: drawn back in generated quantities (`passes.outputs`)
    #: the fitted rows' part of the linear predictor as one sparse product of the rows'
    #: covariates with the levels' effects (`passes.block`), not a gather per effect
    block: bool = False
    folded: bool = False  # sd_<g> = |sd_<g>_signed|, sampled on the whole line (`passes.fold`)
    kind: str = "group"

    @property
    def k(self) -> int:
        return len(self.effects)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def marginalized(self) -> bool:
        return self.marginal_kind is not None

    @property
    def drawn(self) -> bool:
        """Whether the level effects appear in the output (not when integrated out and
        left undrawn)."""
        return self.marginal_kind is None or self.draw

    @property
    def intercept_only(self) -> bool:
        return self.effects == ("Intercept",)

    @property
    def has_z(self) -> bool:
        """Whether the term needs covariate data (any effect but the intercept alone)."""
        return not self.intercept_only

    @property
    def has_coef(self) -> bool:
        """Total effects are reported when some effect has a population coefficient."""
        return any(p != "0" for p in self.total)

    @property
    def coef_additions(self) -> tuple[tuple[str, str], ...]:
        """(columns of ``coef_<g>``, what they add to the deviations) for a multi-effect
        term: each effect's `total`, a run of consecutive ``b[j]`` as one statement
        (``rep_vector(1, N_g) * b[2 : 23]'`` adds the row b[2 : 23] to every level), the
        effects without a population coefficient left out."""
        out = []
        for first, last, value in b_runs(self.total):
            if first == last and value != "0":
                out.append((str(first + 1), value))
            elif first != last:
                out.append((f"{first + 1} : {last + 1}",
                            f"rep_vector(1, N_{self.ident}) * {value}'"))
        return tuple(out)

    @property
    def noncentered(self) -> bool:
        return self.c == 0 and self.c_levels is None

    @property
    def centered(self) -> bool:
        """Fully centered (c = 1 for every level)."""
        return self.c == 1 and self.c_levels is None

    @property
    def absorbs(self) -> bool:
        """Whether the term took over a population coefficient (its levels are then
        declared as ``centered_<g>``, population coefficient plus deviation)."""
        return not self.noncentered and any(m != "0" for m in self.location)

    @property
    def level_param(self) -> str:
        """The declared level parameter: z_, centered_ or r_."""
        if self.noncentered:
            return f"z_{self.ident}"
        return f"{'centered' if self.absorbs else 'r'}_{self.ident}"

    @property
    def z_name(self) -> str:
        """The covariate data the linear predictor multiplies."""
        return f"Z_{self.ident}"

    @property
    def mu(self) -> str:
        """The location of a single-effect term's levels."""
        return self.location[0] if self.location else "0"

    @property
    def at_zero(self) -> bool:
        """Whether every effect's levels are centered at 0 (nothing taken over)."""
        return all(m == "0" for m in self.location)

    @property
    def mu_row(self) -> str:
        """The location row of a multi-effect term's levels."""
        if self.at_zero:
            return f"rep_row_vector(0, {self.k})"
        return f"[{', '.join(self.location)}]"

    @property
    def affine(self) -> str:
        """``<offset=..., multiplier=...>`` of a partially centered single-effect term."""
        if self.centered or self.noncentered:
            return ""
        g = self.ident
        if self.c_levels is not None:
            off = power = f"nc_{g}"
        else:
            off = power = _fmt_c(1 - self.c)
        parts = [f"offset={off} * {self.mu}"] if self.mu != "0" else []
        parts.append(f"multiplier=pow(sd_{g}, {power})")
        return f"<{', '.join(parts)}>"

    @property
    def concentration(self) -> bool:
        """Whether the levels' spread is a beta concentration (the beta-binomial), not
        an sd: larger means the level probabilities are closer together."""
        return self.marginal_kind is not None and self.marginal_kind.spread == "kappa"

    @property
    def spread(self) -> str:
        """The parameter that says how far the levels spread: ``sd_<g>``, or for the
        beta-binomial its concentration ``kappa_<g>``."""
        return f"{'kappa' if self.concentration else 'sd'}_{self.ident}"

    @property
    def new_level_sd(self) -> str:
        """The sd new levels' effects are drawn with: a beta concentration kappa
        gives probabilities with the variance of a logit-normal of sd about
        2 / sqrt(kappa + 1) at p = 1/2 (an approximation, said where it is used)."""
        return f"2 / sqrt({self.spread} + 1)" if self.concentration else self.spread

    @property
    def sd_prior(self) -> PriorStatement:
        if self.k == 1:
            return prior_statement(self.spread, self.sd_priors)
        return prior_statement(self.spread, self.sd_priors, self.effects)

    @property
    def prior_statements(self) -> tuple[PriorStatement, ...]:
        return (self.sd_prior,)

    @property
    def effect_dim(self) -> str:
        return f"{self.term_name}_effect"

    @staticmethod
    def derived_names(ident: str) -> tuple[str, ...]:
        """Every program name the part uses; the namespace reserves them together."""
        prefixes = ("N", "J", "Z", "z", "r", "sd", "L", "Lcov", "mean", "Cor", "coef",
                    "centered", "c", "nc", "k", "lin", "csr_w", "csr_v", "csr_u")
        names = [f"{p}_{ident}" for p in prefixes]
        names += reserved_names(ident)  # whichever kind integrates it out
        names += [f"sd_{ident}_prior", f"sd_{ident}_signed",
                  *prior_data_names((f"sd_{ident}", f"kappa_{ident}"))]
        names += [f"J_{ident}_obs", f"Z_{ident}_obs"]
        names += [f"J_{ident}_cell", f"Z_{ident}_cell"]
        names += [f"J_{ident}_new", f"Z_{ident}_new", f"N_{ident}_new",
                  f"r_{ident}_new", f"r_{ident}_all"]
        return tuple(names)

    def eta(self, rows: Rows) -> tuple[str, ...]:
        """This term's part of the linear predictor, one term per effect: level
        coefficients in the model block (fitted rows), deviations in generated quantities.

        Each effect is a gather of one column over the rows times its covariate column,
        as a hand-written program would have it (``a[g] + b[g] .* x``): no N x k matrix
        of effects is built, and no ``rows_dot_product`` walks one. Inside a reduce_sum
        slice the term is one ``rows_dot_product`` of the gathered rows of effects and
        covariates instead: stanc's O1 keeps a function's vectors as one autodiff node
        per element, so each ``.*`` and ``+=`` there would add a node per row and effect
        (docs/benchmark-history.md has what that cost the retail model).
        """
        g = self.ident
        J = rows.take(f"J_{g}")
        if rows.fitted and not self.noncentered:
            effects = self.level_param
            rows_of_levels = self.k > 1  # declared as an array of row vectors
        elif rows.new:
            effects = f"r_{g}_all"  # the fitted levels' deviations, then the new levels'
            rows_of_levels = False
        else:
            effects = f"r_{g}"
            rows_of_levels = self.k > 1 and self.centered and not self.absorbs
        if self.k == 1:
            if self.intercept_only:
                return (f"{effects}[{J}]",)
            return (f"{effects}[{J}] .* {rows.take(self.z_name)}",)
        if self.block and rows.fitted and not rows.cell:
            levels = f"to_matrix({effects})" if rows_of_levels else effects
            w, v, u = f"csr_w_{g}", f"csr_v_{g}", f"csr_u_{g}"
            if rows.window:  # a slice: its rows' k values each, their start from row 1's
                first, last = rows.window.split(" : ")
                values = f"[({first} - 1) * {self.k} + 1 : {last} * {self.k}]"
                w, v, u = f"{w}{values}", f"{v}{values}", f"{u}[1 : {rows.n} + 1]"
            return (Call("csr_matrix_times_vector", rows.n, f"N_{g} * {self.k}", w, v, u,
                         f"to_vector({levels})"),)
        if rows.window and not rows_of_levels:
            return (Call("rows_dot_product", f"{effects}[{J}]", rows.take(self.z_name)),)
        terms = []
        for e, effect in enumerate(self.effects, start=1):
            column = f"to_vector({effects}[{J}, {e}])" if rows_of_levels else f"{effects}[{J}, {e}]"
            terms.append(column if effect == "Intercept"
                         else f"{column} .* {rows.column(self.z_name, e)}")
        return tuple(terms)

    def level_column(self, e: int) -> str:
        """The model block's vector of effect `e` (0-based) over the levels: the
        deviations, or the total coefficients when the term took the population one."""
        name = f"r_{self.ident}" if self.noncentered else self.level_param
        if self.k == 1:
            return name
        matrix = name if self.noncentered else f"to_matrix({name})"
        return f"{matrix}[ : , {e + 1}]"

    @property
    def z_from_columns(self) -> str:
        """The Stan expression of Z over all rows built from X (`z_from_x`)."""
        columns = [j for j in self.z_from_x or () if j]
        picked = f"X[ : , {columns[0]}]" if self.k == 1 else \
            f"X[ : , {{{', '.join(map(str, columns))}}}]"
        return f"append_col(rep_vector(1, N), {picked})" if 0 in (self.z_from_x or ()) \
            else picked

    def declarations(self, p: Any) -> tuple[Declaration, ...]:
        g, name = self.ident, self.name
        out = [Declaration("data", "int<lower=1>", f"N_{g}", f"levels of {name}")]
        z_type = "vector[{n}]" if self.k == 1 else f"matrix[{{n}}, {self.k}]"
        if p.rows_given:
            if self.same_levels_as is None:
                out.append(Declaration("data", f"array[N] int<lower=1, upper=N_{g}>", f"J_{g}",
                                       "level of each row"))
            if self.z_from_x is None and self.has_z:
                what = (f"covariate of the varying effect: {self.effects[0]}" if self.k == 1
                        else f"covariates of the effects: {', '.join(self.effects)}")
                out.append(Declaration("data", z_type.format(n="N"), f"Z_{g}", what))
        if self.c_levels is not None:
            out.append(Declaration("data", f"vector<lower=0, upper=1>[N_{g}]", f"c_{g}",
                                   "fraction of centering, per level"))
            out.append(Declaration("transformed data", f"vector[N_{g}]", f"nc_{g}",
                                   "fraction left non-centered, per level", f"1 - c_{g}"))
        if p.rows_given:
            td = "transformed data"
            if self.same_levels_as is not None:
                out.append(Declaration(td, "array[N] int", f"J_{g}",
                                       f"level of each row: {name} again",
                                       f"J_{self.same_levels_as}"))
            if self.z_from_x is not None:
                what = ("covariate of the varying effect, X's column" if self.k == 1
                        else "covariates of the effects, from X")
                out.append(Declaration(td, z_type.format(n="N"), f"Z_{g}", what,
                                       self.z_from_columns))
            copies = []
            if p.missing:
                copies.append(("N_obs", "_obs", "obs", "levels of the observed rows"))
            if p.likelihood.cells and not self.marginalized:
                copies.append(("N_cell", "_cell", "cell",
                               "levels of the rows standing for the cells"))
            for n, suffix, index, what in copies:
                source = "" if suffix == "_obs" else p.fit_rows.suffix
                out.append(Declaration(td, "array[" + n + "] int", f"J_{g}{suffix}", what,
                                       f"J_{g}{source}[{index}]"))
                if self.has_z:
                    out.append(Declaration(
                        td, z_type.format(n=n), f"{self.z_name}{suffix}",
                        "their covariate" if self.k == 1 else "their covariates",
                        f"{self.z_name}{source}[{index}]"))
            if self.block:
                n, k, z = p.fit_rows.n, self.k, p.fit_rows.take(self.z_name)
                out += [Declaration(td, f"vector[{n} * {k}]", f"csr_w_{g}",
                                    "the fitted rows' covariates, row after row: the values "
                                    "of the sparse product", f"to_vector({z}')"),
                        Declaration(td, f"array[{n} * {k}] int", f"csr_v_{g}",
                                    "their columns: effect e of level j is column "
                                    f"(e - 1) N_{g} + j"),
                        Declaration(td, f"array[{n} + 1] int", f"csr_u_{g}",
                                    "where each row's values start")]
        out += self._parameters()
        return tuple(out)

    def _parameters(self) -> list[Declaration]:
        g, name = self.ident, self.name
        out = []
        if self.k == 1:
            if self.folded:
                out.append(Declaration("parameters", "real", f"sd_{g}_signed",
                                       f"sd_{g} with a sign: sd_{g} = |sd_{g}_signed|"))
            elif self.concentration:
                out.append(Declaration("parameters", f"real{self.sd_bounds}", self.spread,
                                       f"concentration of the level probabilities of {name}"))
            else:
                out.append(Declaration("parameters", f"real{self.sd_bounds}", f"sd_{g}",
                                       f"sd of the effects of {name}"))
            if self.marginalized:
                pass
            elif self.noncentered:
                out.append(Declaration("parameters", f"vector[N_{g}]", f"z_{g}",
                                       "effect of each level, standardized"))
            elif self.absorbs:
                out.append(Declaration("parameters", f"vector{self.affine}[N_{g}]",
                                       f"centered_{g}",
                                       "population coefficient plus each level's deviation"))
            else:
                out.append(Declaration("parameters", f"vector{self.affine}[N_{g}]", f"r_{g}",
                                       "effect of each level"))
        else:
            out.append(Declaration("parameters", f"vector{self.sd_bounds}[{self.k}]", f"sd_{g}",
                                   f"sds of the effects of {name}"))
            if self.correlated:
                out.append(Declaration("parameters", f"cholesky_factor_corr[{self.k}]",
                                       f"L_{g}", "Cholesky factor of their correlations"))
            if self.noncentered:
                out.append(Declaration("parameters", f"matrix[{self.k}, N_{g}]", f"z_{g}",
                                       "effects of each level, standardized"))
            else:
                what = "population coefficients plus the deviations" if self.absorbs \
                    else "effects"
                out.append(Declaration("parameters", f"array[N_{g}] row_vector[{self.k}]",
                                       self.level_param, f"{what} of each level"))
        tp = "transformed parameters"
        if self.folded:
            out.append(Declaration(tp, "real<lower=0>", f"sd_{g}", f"sd of the effects of {name}",
                                   f"abs(sd_{g}_signed)"))
        if self.marginalized or not self.noncentered:
            return out
        if self.k == 1:
            out.append(Declaration(tp, f"vector[N_{g}]", f"r_{g}", "effect of each level",
                                   f"sd_{g} * z_{g}"))
        elif self.correlated:
            out.append(Declaration(tp, f"matrix[N_{g}, {self.k}]", f"r_{g}", "level effects",
                                   f"(diag_pre_multiply(sd_{g}, L_{g}) * z_{g})'"))
        else:
            out.append(Declaration(tp, f"matrix[N_{g}, {self.k}]", f"r_{g}", "level effects",
                                   f"diag_pre_multiply(sd_{g}, z_{g})'"))
        return out

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"N_{self.ident}": self.n_levels}
        if self.same_levels_as is None:
            out[f"J_{self.ident}"] = self.index
        if self.has_z and self.z_from_x is None:
            out[f"Z_{self.ident}"] = self.Z[:, 0] if self.k == 1 else self.Z
        if self.c_levels is not None:
            out[f"c_{self.ident}"] = self.c_levels
        return out

    def row_data(self) -> tuple[str, ...]:
        return (f"J_{self.ident}", f"Z_{self.ident}")

    def outputs(self) -> tuple[Output, ...]:
        g, level = self.ident, self.name
        sd = (Output(f"sd_{g}_signed", internal=True), Output(f"sd_{g}")) if self.folded else (
            Output(self.spread),)
        if not self.drawn:  # integrated out and not drawn back: only the sd remains
            return sd
        if self.k == 1:
            out = [*sd, Output(f"r_{g}", (level,))]
            if self.noncentered and not self.marginalized:
                out.append(Output(f"z_{g}", (level,), internal=True))
            if self.absorbs:
                out.append(Output(f"centered_{g}", (level,), internal=True))
            if self.has_coef:
                out.append(Output(f"coef_{g}", (level,)))
            return tuple(out)
        eff = self.effect_dim
        out = [Output(f"sd_{g}", (eff,)), Output(f"r_{g}", (level, eff))]
        if self.noncentered:
            out.append(Output(f"z_{g}", (eff, level), internal=True))
        if self.absorbs:
            out.append(Output(f"centered_{g}", (level, eff), internal=True))
        if self.correlated:
            out += [Output(f"L_{g}", (eff, f"{eff}_bis"), internal=True),
                    Output(f"Cor_{g}", (eff, f"{eff}_bis"), internal=True)]
        if self.has_coef:
            out.append(Output(f"coef_{g}", (level, eff)))
        return tuple(out)

    def coords(self) -> dict[str, list[str]]:
        coords = {self.name: list(self.levels)}
        if self.k > 1:
            coords[self.effect_dim] = list(self.effects)
            if self.correlated:
                coords[f"{self.effect_dim}_bis"] = list(self.effects)
        return coords

    def prior_lines(self) -> tuple[str, ...]:
        g = self.ident
        if self.k == 1:
            lines = [f"{self.spread} ~ {self.sd_priors[0]}"]
        else:
            lines = [f"sd_{g}[{e}] ~ {p}" for e, p in zip(self.effects, self.sd_priors,
                                                          strict=True)]
        if self.correlated:
            lines.append(f"L_{g} ~ {self.cor_prior}")
        return tuple(lines)


def _fmt_c(x: float) -> str:
    return f"{x:.3g}"


@dataclass(frozen=True)
class AuxParam:
    """One auxiliary parameter as declared: name, bounds, comment and prior."""

    name: str
    bounds: Bounds
    comment: str
    prior: Prior

    @property
    def statement(self) -> PriorStatement:
        return prior_statement(self.name, (self.prior,))


@dataclass(frozen=True)
class AuxPart(Part):
    """The family's own parameters (sigma, nu, phi, shape); empty for most link families."""

    params: tuple[AuxParam, ...]
    kind: str = "aux"

    def declarations(self, p: Any) -> tuple[Declaration, ...]:
        return tuple(Declaration("parameters", f"real{a.bounds}", a.name, a.comment)
                     for a in self.params)

    def outputs(self) -> tuple[Output, ...]:
        return tuple(Output(a.name) for a in self.params)

    @property
    def prior_statements(self) -> tuple[PriorStatement, ...]:
        return tuple(a.statement for a in self.params)

    def prior_lines(self) -> tuple[str, ...]:
        return tuple(f"{a.name} ~ {a.prior}" for a in self.params)


@dataclass(frozen=True, eq=False)
class OffsetPart(Part):
    """``offset(expr)``: a known term of the linear predictor, with coefficient 1."""

    expr: str
    values: np.ndarray
    kind: str = "offset"

    def eta(self, rows: Rows) -> str:
        return rows.take("offs")

    def declarations(self, p: Any) -> tuple[Declaration, ...]:
        if not p.rows_given:
            return ()
        out = [Declaration("data", "vector[N]", "offs", f"offset: {self.expr}")]
        if p.missing:
            out.append(Declaration("transformed data", "vector[N_obs]", "offs_obs",
                                   "offset of the observed rows", "offs[obs]"))
        cells = p.likelihood.cells
        if cells and cells.rule != "poisson sum":
            out.append(Declaration("transformed data", "vector[N_cell]", "offs_cell",
                                   "offset of the cells", f"offs{p.fit_rows.suffix}[cell]"))
        return tuple(out)

    def data(self) -> dict[str, Any]:
        return {"offs": self.values}

    def row_data(self) -> tuple[str, ...]:
        return ("offs",)


@dataclass(frozen=True)
class NewTermShape:
    """What the new rows carry for one group term: its identifier, its effects and
    whether it has covariates."""

    ident: str
    name: str  # the factor, for comments
    k: int
    has_z: bool


@dataclass(frozen=True, eq=False)
class PredictionPart(Part):
    """New rows to predict (`predict`): declared at the end of the data block, their
    linear predictor, mean and predictive draws computed in generated quantities. The
    fitted program carries none (`data`: N_new = 0 and empty arrays of the declared
    shapes); `Fit.predict` passes the rows and runs the same executable's standalone
    generated quantities over the fitted draws."""

    columns: int  # X's columns, K
    terms: tuple[NewTermShape, ...]
    offset: bool
    se: bool
    trials: bool
    kind: str = "prediction"
    #: truncation bounds read from columns (`trunc(lb = lo)`): (side, the column as the
    #: formula writes it) per side, each new row carrying its own; `integer`: the
    #: outcome's, so the bounds' type
    bounds: tuple[tuple[str, str], ...] = ()
    integer: bool = False

    def values(self, n: int, X: np.ndarray, terms: Sequence[tuple[np.ndarray, int, np.ndarray]],
               offset: np.ndarray | None, se: np.ndarray | None, trials: np.ndarray | None,
               sample_new_levels: bool, bounds: dict[str, np.ndarray] | None = None,
               ) -> dict[str, Any]:
        """The data entries of `n` new rows: X's columns, per term (1-based level of each
        row, how many levels are new, covariates), offset, known se, trials, and the
        truncation bounds read from columns (`bounds`: side -> float values, ±inf or NaN
        where a side has none)."""
        out: dict[str, Any] = {"N_new": n, "new_levels_sampled": int(sample_new_levels)}
        if self.columns:
            out["X_new"] = X
        for shape, (index, new_levels, Z) in zip(self.terms, terms, strict=True):
            out[f"J_{shape.ident}_new"] = index
            out[f"N_{shape.ident}_new"] = new_levels
            if shape.has_z:
                out[f"Z_{shape.ident}_new"] = Z[:, 0] if shape.k == 1 else Z
        for name, value, kept in (("offs_new", offset, self.offset), ("se_new", se, self.se),
                                  ("trials_new", trials, self.trials)):
            if kept:
                out[name] = value
        for side, _ in self.bounds:
            out[f"{side}_new"] = bound_data(np.asarray(bounds[side], dtype=np.float64), side,
                                            self.integer)
        return out

    def declarations(self, p: Any) -> tuple[Declaration, ...]:
        out = [Declaration("data", "int<lower=0>", "N_new", "new rows", heading=(
            "new rows to predict from the fitted draws (none while fitting)",))]
        if self.columns:
            out.append(Declaration("data", "matrix[N_new, K]", "X_new",
                                   "their fixed-effect columns"))
        for t in self.terms:
            g = t.ident
            out += [Declaration("data", "int<lower=0>", f"N_{g}_new",
                                f"levels of {t.name} the fit has not seen"),
                    Declaration("data", f"array[N_new] int<lower=1, upper=N_{g} + N_{g}_new>",
                                f"J_{g}_new", "level of each new row")]
            if t.has_z and t.k == 1:
                out.append(Declaration("data", "vector[N_new]", f"Z_{g}_new",
                                       "covariate of the varying effect"))
            elif t.has_z:
                out.append(Declaration("data", f"matrix[N_new, {t.k}]", f"Z_{g}_new",
                                       "covariates of the effects"))
        if self.offset:
            out.append(Declaration("data", "vector[N_new]", "offs_new",
                                   "offset of each new row"))
        if self.se:
            out.append(Declaration("data", "vector<lower=0>[N_new]", "se_new",
                                   "known standard error of each new row"))
        if self.trials:
            out.append(Declaration("data", "array[N_new] int<lower=0>", "trials_new",
                                   "trials of each new row"))
        for side, column in self.bounds:
            what = "lower" if side == "lb" else "upper"
            out.append(Declaration("data", "array[N_new] int" if self.integer
                                   else "vector[N_new]", f"{side}_new",
                                   f"{what} truncation bound of each new row: {column}"))
        out.append(Declaration("data", "int<lower=0, upper=1>", "new_levels_sampled",
                               "1: new levels drawn from the fitted sds; 0: zero"))
        return tuple(out)

    def data(self) -> dict[str, Any]:
        """No new rows: the declared arrays, empty."""
        terms = [(np.zeros(0, dtype=np.int64), 0, np.zeros((0, t.k))) for t in self.terms]
        return self.values(0, np.zeros((0, self.columns)), terms, np.zeros(0), np.zeros(0),
                           np.zeros(0, dtype=np.int64), sample_new_levels=False,
                           bounds={side: np.zeros(0) for side, _ in self.bounds})

    def outputs(self) -> tuple[Output, ...]:
        return tuple(Output(name, ("new_row",)) for name in ("eta_new", "mu_new", "y_new"))

    def coords(self) -> dict[str, list[str]]:
        return {"new_row": []}  # no new rows while fitting; `Fit.predict` labels its own
