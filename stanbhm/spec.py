"""Bind a parsed `Formula` to data, a family and priors: the ``spec`` stage.

``build_spec(formula, data, family, priors)`` returns a `ModelSpec`: plain arrays and
names, no Stan code and no decisions about how to write the model (that is the plan
stage's job). This is the only stage that looks at the user's DataFrame, so it is also
where every data problem must be caught, with a message that names the column, term,
family or prior at fault. A problem that slips through here surfaces later as a Stan
initialization failure or a silently wrong posterior, both far harder to trace back.

Decisions worth knowing:

* **Fixed effects go through formulaic** (``na_action="ignore"``, so no row is dropped
  behind our back; we report missing values ourselves). The formulaic ``ModelSpec`` is
  kept, so new data for prediction gets exactly the same encoding (contrasts, the mean
  and scale that ``scale(x)`` learned, ...). The intercept column is split off because
  Stan code treats the intercept separately from the slopes (its own prior, centering).
* **Group membership is an integer index per row** (1-based, as Stan indexes), never a
  dense rows-by-groups matrix: the index costs O(N) memory whatever the number of groups.
  Levels keep their original labels as strings, which become ArviZ coordinates.
* **Rows with a missing outcome are kept** (``observed`` is False for them): they are to
  be predicted, so every *predictor* must still be present in them.
* **Every array is read-only**, so a `ModelSpec` really is the immutable value its frozen
  dataclass promises, and later stages cannot corrupt each other's input.
* **Aliased population columns are dropped, as lme4 does.** A column that is a linear
  combination of the columns before it (the intercept first) on the observed rows, or a
  term that gives no column at all (a factor with one level), would be told apart from
  the others by its prior alone. It is dropped with a warning and a header note, and new
  data for prediction is encoded without it.
* **Priors are checked character by character.** The strings are pasted into Stan code
  later, so only a distribution call from an allow-list with numeric arguments passes.
"""

from __future__ import annotations

import builtins
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import formulaic
import numpy as np
import pandas as pd
import scipy.linalg
from formulaic.errors import DataMismatchWarning
from formulaic.transforms import TRANSFORMS
from formulaic.utils.variables import Variable, get_required_variables

from .arrays import at_rows, columns_of, side_by_side
from .errors import SpecError
from .families import FAMILIES, Family
from .families import family as family_row
from .formula import INTERCEPT, Formula, GroupTerm, trunc_text
from .names import stan_identifier
from .priors import Prior, check_user_priors, dropped_prior_keys, prior_keys

__all__ = [
    "ColumnBound",
    "FixedEffects",
    "GroupEffects",
    "ModelSpec",
    "SpecError",
    "bare_column",
    "build_spec",
    "column_values",
    "predictor_values",
    "trials_values",
]

# A formulaic expression that is just one column: ``y`` or ``\`my y\```.
_BACKTICKED = re.compile(r"`([^`]+)`")

# Names a formulaic expression may use without them being data columns.
_KNOWN_NAMES = frozenset(TRANSFORMS) | frozenset(dir(builtins))

# Passed to formulaic explicitly: by default it would evaluate names in the *caller's*
# frame, i.e. this module, so a formula could silently pick up our private globals.
_EVAL_CONTEXT: dict[str, Any] = {}

# How many column names an error message lists before eliding the rest.
_MAX_LISTED = 20

# lme4's tolerance (chkRank.drop.cols): a column whose part outside the span of the
# columns before it is below this fraction of its norm is aliased.
_RANK_TOL = 1e-7

# A unit column whose squared part outside the columns before it, from the Gram matrix,
# is above this is not aliased whatever the Gram's rounding (about the row count times
# 1e-16 at worst): the QR is needed only below it.
_GRAM_SCREEN = 1e-6

# How a dropped column is described: as one column, or as several.
_ALIASED = ("a linear combination of the columns before it",
            "linear combinations of the columns before them")


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


@dataclass(frozen=True, eq=False)
class FixedEffects:
    """The population-level design, without the intercept column.

    ``eq=False`` (identity equality) because elementwise array comparison has no
    single truth value; the same holds for the other array-carrying classes here.

    Attributes:
        names: formulaic column names of the slopes, e.g. ``("x", "C(g)[T.b]", "x:z")``.
        stan_names: ``"b_"`` + the sanitized name, unique, in the same order.
        X: ``(N_all, P)`` float64 design matrix of the slopes.
        intercept: whether the model has a population-level intercept.
        model_spec: the formulaic ``ModelSpec``; `design` reuses it on new data.
        dropped: the columns left out of `X` as aliased (rank deficient on the observed
            rows, as lme4 drops them), in formula order; a term that gave no column at
            all (a factor with one level) is named by its term.
        dropped_labels: the same, as the warning and the header show them: with why,
            for a term without a column or a column that is zero on the observed rows.
        gram: the cross-products of the kept columns over the fitted rows.
    """

    names: tuple[str, ...]
    stan_names: tuple[str, ...]
    X: np.ndarray
    intercept: bool
    model_spec: Any = field(repr=False)
    dropped: tuple[str, ...] = ()
    dropped_labels: tuple[str, ...] = ()
    #: [1, X]'[1, X] (X'X without an intercept) over the fitted rows, made once for the
    #: aliased columns and reused by the pooled fit wherever its rows weigh the same
    gram: np.ndarray | None = field(default=None, repr=False)

    @property
    def p(self) -> int:
        """Number of slopes (columns of `X`)."""
        return len(self.names)

    @property
    def notes(self) -> tuple[str, ...]:
        """The program header's note on the dropped columns (none when none were): the
        reader of the program must learn that the formula's columns are not all in X."""
        if not self.dropped:
            return ()
        several = len(self.dropped) > 1
        return (f"fixed-effect column{'s' if several else ''} {_listing(self.dropped_labels)} "
                f"dropped, as lme4 does: {_ALIASED[several]} on the observed rows "
                f"(rank deficient)",)

    def design(self, data: pd.DataFrame) -> np.ndarray:
        """Encode new data exactly as the training data was (same columns, same order).

        Raises SpecError when the new data lacks a column or yields different columns
        (for example a factor level never seen in training).
        """
        try:
            with np.errstate(all="ignore"):
                matrix = strictly(
                    lambda: self.model_spec.get_model_matrix(data, na_action="ignore"),
                    "the fixed effects")
        except SpecError:
            raise
        except Exception as exc:
            raise SpecError(f"cannot encode new data for the fixed effects: {exc}") from exc
        names = tuple(matrix.model_spec.column_names)
        expected = tuple(self.model_spec.column_names)
        if names != expected:
            raise SpecError(
                f"new data gives fixed-effect columns {list(names)}, expected {list(expected)}"
            )
        # the fitted coefficients are the kept columns': the aliased ones go here too
        kept = [names.index(name) for name in self.names]
        return np.asarray(matrix, dtype=np.float64)[:, kept].reshape(len(data), self.p)


@dataclass(frozen=True, eq=False)
class GroupEffects:
    """One group-level term bound to data, e.g. ``(1 + x | school)``.

    Attributes:
        term: the parsed term.
        name: the grouping factor's display name, ``"school"`` or ``"a:b"``.
        term_name: the term's own name, which prior and parameterization keys use: the
            factor's name, unless several terms share the factor; then a term without
            the intercept is named after its effects too (``state_age`` for
            ``(age - 1 | state)`` next to ``(1 | state)``).
        stan_name: the term name sanitized (``"a_b"``), accepted as a prior-key alias;
            the plan picks the program's identifiers, clear of every reserved name.
        levels: level labels as strings, in pandas Categorical order (sorted, or the
            declared category order for a categorical column, unused categories
            dropped). For ``a:b`` only combinations present in the data are levels,
            labelled ``"a_level:b_level"`` and ordered by ``a`` then ``b``.
        index: ``(N_all,)`` int64, 1-based level of each row (Stan indexing).
        effect_names: formulaic names of the varying effects, ``("Intercept", "x")``.
        effect_stan_names: their sanitized Stan identifiers, unique within the term.
        Z: ``(N_all, K)`` float64 values of the varying effects per row; the intercept
            column is all ones. Rows times effects, never rows times groups.
        correlated: whether the effects are correlated (``|``) or not (``||``).
        model_spec: the formulaic ``ModelSpec`` that produced `Z`, for new data.
        x_positions: where each of Z's columns is among the fixed effects' X (-1 for
            the intercept) when every one is a numeric column of the data there too,
            else None; Z and its fitted rows are then copied from X's.
    """

    term: GroupTerm
    name: str
    term_name: str
    stan_name: str
    levels: tuple[str, ...]
    index: np.ndarray
    effect_names: tuple[str, ...]
    effect_stan_names: tuple[str, ...]
    Z: np.ndarray
    correlated: bool
    model_spec: Any = field(default=None, repr=False)
    x_positions: tuple[int, ...] | None = None

    @property
    def n_levels(self) -> int:
        """Number of groups."""
        return len(self.levels)

    @property
    def k(self) -> int:
        """Number of varying effects per group (columns of `Z`)."""
        return len(self.effect_names)


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """Everything the later stages need to know about the model and its data.

    Attributes:
        formula: the parsed formula.
        family: the family's name; `family_row` is its row of the family table.
        response: the response column (backticks removed) or expression.
        y: ``(N_all,)`` float64 outcome, NaN where missing.
        observed: ``(N_all,)`` bool, True where `y` is observed.
        fixed: the population-level design.
        groups: the group-level terms, in formula order.
        se: known standard errors from ``se()``, else None.
        trials: int64 numbers of trials from ``trials()``, else None.
        offset: the offset from ``offset()``, else None.
        priors: the user's priors, parsed: ``{(class, target): (key as given, Prior)}``.
        data_summary: ``{"mean", "sd"}`` of the observed outcome, for scaling default
            priors the way brms and rstanarm do (sd is 0.0 with fewer than two rows).
        cens: ``(N_all,)`` int64 censoring codes from ``cens()``, brms's: 0 none, 1 right,
            -1 left, 2 interval (0 on rows without an observed outcome), else None.
        y2: ``(N_all,)`` float64 upper bounds of the interval-censored rows from
            ``cens(c, y2)`` (0 on the other rows), else None.
        weights: ``(N_all,)`` float64 row weights from ``weights()``, else None.
        trunc: ``(lb, ub)`` from ``trunc()``, None for a side not given, a number, or a
            `ColumnBound` (each row's own, from a column), else None.
        link: the family's link when not its own (``"probit"``), else None.
        categories: an ordinal outcome's category labels in order (`y` holds 1 to K).
    """

    formula: Formula
    family: str
    response: str
    y: np.ndarray
    observed: np.ndarray
    fixed: FixedEffects
    groups: tuple[GroupEffects, ...]
    se: np.ndarray | None
    trials: np.ndarray | None
    offset: np.ndarray | None
    priors: dict[tuple[str, str | None], tuple[str, Prior]]
    data_summary: dict[str, float]
    cens: np.ndarray | None = None
    y2: np.ndarray | None = None
    weights: np.ndarray | None = None
    trunc: tuple[Bound, Bound] | None = None
    link: str | None = None
    categories: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        """All rows, including those with a missing outcome."""
        return len(self.y)

    @property
    def n_obs(self) -> int:
        """Rows with an observed outcome."""
        return int(self.observed.sum())

    @cached_property
    def fitted_X(self) -> np.ndarray:
        """X's rows with an observed outcome: X itself when every row has one, else one
        copy, made once for the pooled fit, the priors' scales and the coefficients'."""
        return at_rows(self.fixed.X, self.observed)

    @cached_property
    def fitted_Z(self) -> tuple[np.ndarray, ...]:
        """Each group term's Z over the rows with an observed outcome (in `groups`' order),
        made once like `fitted_X`: the priors' scales and the pooled fit's backfitting
        both read them."""
        return tuple(at_rows(g.Z, self.observed) if g.x_positions is None
                     else columns_of(self.fitted_X, g.x_positions) for g in self.groups)

    @property
    def family_row(self) -> Family:
        return family_row(self.family, self.link)

    def prior(self, cls: str, target: str | None = None) -> Prior | None:
        """The user's prior for a parameter, or None to use the default.

        The most specific key wins: for ``prior("b", "x")`` a ``"b_x"`` key beats
        ``"b"``. `target` is a fixed-effect column or group term name, in its formula
        spelling (``"a:b"``) or its Stan spelling (``"a_b"``, ``"b_x"``).
        """
        if target is not None:
            table = _prior_keys(self.fixed, self.groups, self.family_row, self.se is not None)
            hit = table.get(f"{cls}_{target}") or (table.get(target) if cls == "b" else None)
            if hit is not None and hit[0] == cls:
                target = hit[1]
        given = self.priors.get((cls, target)) or self.priors.get((cls, None))
        return None if given is None else given[1]


# --------------------------------------------------------------------------- helpers


def _prior_keys(fixed: FixedEffects, groups: Sequence[GroupEffects], fam: Family,
                has_se: bool) -> dict[str, tuple[str, str | None]]:
    """`priors.prior_keys` for these terms: the valid prior keys of the model."""
    return prior_keys(
        tuple(zip(fixed.names, fixed.stan_names, strict=True)), fixed.intercept,
        tuple((g.term_name, g.stan_name, g.correlated and g.k > 1) for g in groups),
        fam.aux_names(has_se),
    )


def strictly(encode_rows: Callable[[], Any], what: str) -> Any:
    """Run a formulaic encoding of new data, refusing categories the fit never saw:
    formulaic only warns and codes them as the reference level."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataMismatchWarning)
        try:
            return encode_rows()
        except DataMismatchWarning as exc:
            found = re.search(r"\{.*?\}", str(exc))
            unseen = found.group(0) if found else str(exc)
            raise SpecError(f"new data has categories the fit has not seen in {what}: "
                            f"{unseen}") from None


def _display(expr: str) -> str:
    """An expression as users think of it: a lone backticked column loses its backticks."""
    match = _BACKTICKED.fullmatch(expr)
    return match.group(1) if match else expr


def bare_column(expr: str) -> str | None:
    """The column name if `expr` is just one column, else None."""
    if expr.isidentifier():
        return expr
    match = _BACKTICKED.fullmatch(expr)
    return match.group(1) if match else None


def _listing(names: Iterable[str]) -> str:
    names = list(names)
    shown = ", ".join(names[:_MAX_LISTED])
    if len(names) > _MAX_LISTED:
        shown += f", ... ({len(names) - _MAX_LISTED} more)"
    return shown


def _missing_column(name: str, role: str, data: pd.DataFrame) -> SpecError:
    return SpecError(
        f"column '{name}' (used in {role}) is not in the data; "
        f"available columns: {_listing(data.columns)}"
    )


def _require_columns(names: Iterable[str], data: pd.DataFrame, role: str) -> None:
    for name in names:
        if name not in data.columns:
            raise _missing_column(name, role, data)


def _columns_used(rhs: str, data: pd.DataFrame, role: str) -> list[str]:
    """Data columns that the formulaic right-hand side `rhs` reads, without duplicates.

    Raises SpecError for a value name found neither in the data nor among formulaic's
    transforms and Python's builtins. Checking before evaluation gives a clean message;
    formulaic's own error for a missing name quotes a mangled one (``a_b`` for
    ``\\`a b\\```) and sometimes no name at all.
    """
    columns = set(data.columns)
    used: dict[str, None] = {}
    for term in formulaic.Formula(rhs):
        for factor in term.factors:
            method = factor.eval_method.value
            if method == "literal":
                continue
            if method == "lookup":
                if factor.expr not in columns:
                    raise _missing_column(factor.expr, role, data)
                used[factor.expr] = None
                continue
            try:
                variables: set[Variable] = get_required_variables(factor.expr, {})
            except SyntaxError:
                continue  # formulaic's evaluation reports it, wrapped by _model_matrix
            for variable in sorted(variables):
                if str(variable) in columns:
                    used[str(variable)] = None
                elif variable.root in columns:
                    used[str(variable.root)] = None
                elif variable.root in _KNOWN_NAMES:
                    continue
                elif Variable.Role.VALUE in variable.roles:
                    raise _missing_column(str(variable.root), role, data)
    return list(used)


def _model_matrix(rhs: str, data: pd.DataFrame, role: str) -> Any:
    """Evaluate `rhs` with formulaic, keeping every row (NaN included)."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            # log(0) and friends warn; the non-finite check afterwards reports them
            # with the column name, which the warning does not give.
            warnings.simplefilter("ignore", RuntimeWarning)
            return formulaic.model_matrix(rhs, data, na_action="ignore", context=_EVAL_CONTEXT)
    except Exception as exc:
        # formulaic signals evaluation failures with several exception types; all mean
        # "this expression does not work on this data".
        detail = str(exc).strip().splitlines()
        raise SpecError(
            f"cannot evaluate {role} '{rhs}': {detail[0] if detail else type(exc).__name__}"
        ) from exc


def _check_distinct_columns(names: tuple[str, ...], role: str) -> None:
    """formulaic names the intercept column "Intercept" too, so a data column of that
    name collides with it; say so instead of failing on the matrix's shape."""
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise SpecError(
            f"two columns of the {role} are named '{duplicate}': a data column called "
            f"'{duplicate}' clashes with the intercept's name; rename the column"
        )


def _bad_mask(series: pd.Series) -> np.ndarray:
    """Rows that are missing, or infinite for a numeric column."""
    mask = np.array(series.isna(), dtype=bool)  # a copy: pandas may hand out read-only views
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        mask |= np.isinf(values)
    return mask


def _nonfinite_error(label: str, count: int) -> SpecError:
    return SpecError(
        f"{label} has {_rows(count)} with NaN or infinite values; remove or impute them"
    )


def _all_finite(values: np.ndarray) -> bool:
    """Whether every value is finite: a finite sum says so in one pass without a mask (a
    NaN or infinity makes the sum NaN or infinite); an overflowing sum asks each value."""
    return bool(np.isfinite(np.add.reduce(values, axis=None))) or bool(np.isfinite(values).all())


def _check_columns_finite(names: Iterable[str], data: pd.DataFrame) -> None:
    for name in names:
        series = data[name]
        if series.dtype == np.float64 and _all_finite(series.to_numpy()):
            continue  # one pass settles the common case; the count needs the mask
        count = int(_bad_mask(series).sum())
        if count:
            raise _nonfinite_error(f"column '{name}'", count)


def _check_matrix_finite(columns: Iterable[np.ndarray], names: Iterable[str]) -> None:
    """Catch non-finite values that transforms create (``log(0)``) in finite columns."""
    for column, name in zip(columns, names, strict=True):
        if not _all_finite(column):
            raise _nonfinite_error(f"column '{name}'", int((~np.isfinite(column)).sum()))


def _is_numerical_kind(model_spec: Any, expr: str) -> bool:
    kind = model_spec.encoder_state.get(expr, (None,))[0]
    return getattr(kind, "value", None) == "numerical"


def _is_categorical_kind(model_spec: Any, expr: str) -> bool:
    kind = model_spec.encoder_state.get(expr, (None,))[0]
    return getattr(kind, "value", None) == "categorical"


def column_values(expr: str, data: pd.DataFrame, what: str, role: str) -> np.ndarray:
    """Evaluate a one-column expression (response, se, trials, offset) as float64.

    A lone column is read directly, so the dtype message can name it; anything else goes
    through formulaic as ``I(expr)``, the way the formula parser validated it.
    """
    column = bare_column(expr)
    if column is not None:
        _require_columns([column], data, role)
        series = data[column]
        if not pd.api.types.is_numeric_dtype(series.dtype):
            raise SpecError(
                f"{what} '{column}' must be numeric, but column '{column}' has dtype {series.dtype}"
            )
        # A copy, so the spec never shares memory with (and changes with) the user's frame.
        return series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    rhs = f"0 + I({expr})"
    _columns_used(rhs, data, role)
    matrix = _model_matrix(rhs, data, role)
    spec = matrix.model_spec
    if matrix.shape[1] != 1 or any(_is_categorical_kind(spec, key) for key in spec.encoder_state):
        raise SpecError(f"{what} '{expr}' must be numeric, but it evaluates to categories")
    return np.array(matrix, dtype=np.float64)[:, 0]


def predictor_values(expr: str, data: pd.DataFrame, what: str, role: str) -> np.ndarray:
    """Like `column_values`, for inputs that must be present in every row (se, trials, offset)."""
    column = bare_column(expr)
    if column is not None:
        _require_columns([column], data, role)
        if pd.api.types.is_numeric_dtype(data[column].dtype):
            _check_columns_finite([column], data)
    else:
        _check_columns_finite(_columns_used(f"0 + I({expr})", data, role), data)
    values = column_values(expr, data, what, role)
    count = int((~np.isfinite(values)).sum())
    if count:
        raise _nonfinite_error(f"{what} '{_display(expr)}'", count)
    return values


# --------------------------------------------------------------------------- parts


def cross_products(X: np.ndarray, intercept: bool) -> np.ndarray:
    """[1, X]'[1, X] (X'X when there is no intercept): one symmetric BLAS product."""
    first = int(intercept)
    width = first + X.shape[1]
    gram = np.empty((width, width))
    gram[first:, first:] = X.T @ X
    if intercept:
        gram[0, 0] = len(X)
        gram[0, 1:] = gram[1:, 0] = X.sum(axis=0)
    return gram


def aliased_columns(X: np.ndarray, intercept: bool, gram: np.ndarray | None = None,
                    ) -> np.ndarray:
    """Which columns of `X` are linear combinations of the columns before them (and of
    the intercept, first, when there is one), as a boolean mask.

    lme4 decides with R's LINPACK QR, whose limited pivoting keeps the columns in their
    order, so of two aliased columns the later one goes; LAPACK's pivoted QR would
    reorder them by norm. Here the columns are scaled to unit norm, so a predictor's
    units do not decide, and taken in order, each kept when its part outside the span
    of the kept ones exceeds lme4's tolerance. The Gram matrix settles most designs at
    a small fraction of a QR's cost: when its Cholesky factor shows every column well
    clear of the columns before it, rounding cannot have hidden an aliased one.
    Otherwise a Householder QR reduces the rows to a small triangle ``R`` whose columns
    have the inner products of the design's, and the columns are taken from it. `gram`
    is `cross_products` of X, when the caller has it.
    """
    first = int(intercept)
    width = first + X.shape[1]
    aliased = np.zeros(width, dtype=bool)
    if width == 0:
        return aliased
    gram = cross_products(X, intercept) if gram is None else gram
    norms = np.sqrt(np.diag(gram))
    if norms.all():
        try:
            factor = np.linalg.cholesky(gram / np.outer(norms, norms))
        except np.linalg.LinAlgError:
            pass
        else:
            if np.diag(factor).min() ** 2 > _GRAM_SCREEN:
                return aliased[first:]
    A = np.empty((len(X), width))  # the one copy, which the QR overwrites
    A[:, :first] = 1.0
    A[:, first:] = X
    A /= np.where(norms > 0, norms, 1.0)
    _, R = scipy.linalg.qr(A, mode="raw", overwrite_a=True, check_finite=False)
    basis = np.zeros(R.shape)
    rank = 0
    for j in range(width):
        part = R[:, j].copy()
        for _ in range(2):  # a second pass restores what rounding lost to the first
            part -= basis[:, :rank] @ (basis[:, :rank].T @ part)
        size = float(np.linalg.norm(part))
        if norms[j] == 0 or size <= _RANK_TOL:
            aliased[j] = True
        else:
            basis[:, rank] = part / size
            rank += 1
    return aliased[first:]


def _fixed_effects(formula: Formula, data: pd.DataFrame, observed: np.ndarray) -> FixedEffects:
    role = "fixed effects"
    _check_columns_finite(_columns_used(formula.fixed, data, role), data)
    model_spec, columns = _design_columns(formula.fixed, data, role)
    names = tuple(model_spec.column_names)
    if formula.intercept:
        # formulaic always puts the intercept first; anything else would be a bug there.
        if not names or names[0] != INTERCEPT:
            raise SpecError(f"formulaic did not produce an intercept column for '{formula.fixed}'")
        names, columns = names[1:], columns[1:]
    values = side_by_side(columns, len(data))
    del columns
    taken: set[str] = set()
    stan_names = []
    for name in names:
        stan_names.append(stan_identifier(name, prefix="b_", taken=taken))
        taken.add(stan_names[-1])
    fitted = at_rows(values, observed)
    gram = cross_products(fitted, formula.intercept)
    aliased = aliased_columns(fitted, formula.intercept, gram)
    dropped, labels = _dropped(model_spec, names, fitted, aliased)
    kept = np.flatnonzero(~aliased)
    kept_gram = np.concatenate([np.arange(int(formula.intercept)),
                                int(formula.intercept) + kept])
    return FixedEffects(
        names=tuple(names[j] for j in kept),
        stan_names=tuple(stan_names[j] for j in kept),
        X=_readonly(values[:, kept] if aliased.any() else values),
        intercept=formula.intercept,
        model_spec=model_spec,
        dropped=dropped,
        dropped_labels=labels,
        gram=_readonly(gram[np.ix_(kept_gram, kept_gram)]),
    )


def _design_columns(rhs: str, data: pd.DataFrame, role: str,
                   ) -> tuple[Any, list[np.ndarray]]:
    """formulaic's model spec of `rhs` (fixed effects, or a group term's effects) and its
    columns, each checked finite and named once. When every column is the intercept or
    a numeric column of `data` as it stands (a term naming a float or integer column),
    the columns are taken from `data` as they are, with a spec made from its first two
    rows: formulaic copies every column it materializes, 1 GB at the election model's
    3M rows x 41 columns, and the spec of such terms does not depend on the rows. The
    caller has checked that the columns used are finite."""
    try:
        model_spec = _model_matrix(rhs, data.iloc[:2], role).model_spec
    except SpecError:  # poly(x, 3) needs more than two rows, say
        model_spec = None
    wanted: list[str] | None = [] if model_spec is not None else None
    for term in model_spec.formula if model_spec is not None else ():
        expr = term.factors[0].expr if len(term.factors) == 1 else None
        if str(term) == "1":
            wanted.append(INTERCEPT)
        elif (expr is None or expr not in data.columns
              or data[expr].dtype.kind not in "fiu"  # bool is categorical in formulaic
              or not _is_numerical_kind(model_spec, expr)):
            wanted = None  # a term formulaic makes its columns for
            break
        else:
            wanted.append(expr)
    if wanted is not None and list(model_spec.column_names) == wanted:
        _check_distinct_columns(tuple(wanted), role)
        return model_spec, [np.ones(len(data)) if name == INTERCEPT
                            else data[name].to_numpy(dtype=np.float64) for name in wanted]
    matrix = _model_matrix(rhs, data, role)
    names = tuple(matrix.model_spec.column_names)
    _check_distinct_columns(names, role)
    columns = [np.asarray(matrix.iloc[:, j], dtype=np.float64) for j in range(len(names))]
    _check_matrix_finite(columns, names)
    return matrix.model_spec, columns


def _dropped(model_spec: Any, names: tuple[str, ...], observed_values: np.ndarray,
             aliased: np.ndarray) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The dropped columns' names and labels, in formula order.

    formulaic codes a factor with one level as no column at all (its one dummy would be
    the intercept again) and says nothing, so such a term is reported here as aliased
    too: lme4 would have dropped its column.
    """
    offset = len(model_spec.column_names) - len(names)  # the intercept's column
    dropped: list[str] = []
    labels: list[str] = []
    for term, indices in model_spec.term_indices.items():
        if not indices and str(term) not in ("0", "1"):
            dropped.append(str(term))
            labels.append(f"{term} (no column: a factor with one level)")
        for index in indices:
            j = index - offset
            if j < 0 or not aliased[j]:
                continue
            dropped.append(names[j])
            zero = not observed_values[:, j].any()
            labels.append(f"{names[j]} (zero on every observed row)" if zero else names[j])
    return tuple(dropped), tuple(labels)


def _factor_codes(series: pd.Series, column: str) -> tuple[np.ndarray, list[str]]:
    """0-based codes and string labels of one grouping column, in Categorical order."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        categorical = series.cat.remove_unused_categories().array
        codes, categories = categorical.codes, categorical.categories.to_numpy(dtype=object)
    else:
        codes, categories = _sorted_codes(series)
    # through numpy objects: iterating a pandas Index of a million levels takes seconds
    labels = categories.tolist()
    text = pd.api.types.infer_dtype(categories, skipna=False) == "string"
    if not text:  # distinct text prints distinctly; other levels may not
        labels = [str(level) for level in labels]
    if not text and len(set(labels)) != len(labels):
        duplicate = next(label for label in labels if labels.count(label) > 1)
        raise SpecError(
            f"grouping factor '{column}' has distinct levels that print the same "
            f"('{duplicate}'); give them distinct labels"
        )
    return np.asarray(codes, dtype=np.int64), labels


def _sorted_codes(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The codes and categories ``pd.Categorical(series)`` gives, for text or numbers
    sorted by numpy: pandas sorts a million distinct labels as Python objects, which
    took seconds (the election model's respondents)."""
    codes, uniques = pd.factorize(series, sort=False)
    values = np.asarray(uniques)
    if values.dtype.kind in "biuf":
        keys = values
    elif values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "string":
        keys = values.astype(str)  # fixed-width text, compared by code point as str is
    else:  # mixed or other objects: pandas' own order
        categorical = pd.Categorical(series)
        return categorical.codes, categorical.categories.to_numpy(dtype=object)
    order = np.argsort(keys, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes], values[order]


def _group_levels(term: GroupTerm, data: pd.DataFrame, codes: dict[str, Any],
                  ) -> tuple[tuple[str, ...], np.ndarray]:
    """The term's levels and each row's (1-based); `codes` keeps each grouping column's
    codes for the other terms on it (factorizing 3M labels takes a second)."""
    for column in term.factors:
        if column not in codes:
            codes[column] = _factor_codes(data[column], column)
    coded = [codes[column] for column in term.factors]
    if len(coded) == 1:
        codes, labels = coded[0]
        return tuple(labels), codes + 1
    stacked = np.column_stack([codes for codes, _ in coded])
    combos, inverse = np.unique(stacked, axis=0, return_inverse=True)
    levels = tuple(
        ":".join(labels[code] for (_, labels), code in zip(coded, row, strict=True))
        for row in combos
    )
    if len(set(levels)) != len(levels):
        duplicate = next(level for level in levels if levels.count(level) > 1)
        raise SpecError(
            f"grouping factor '{term.name}' has distinct level combinations that print "
            f"the same ('{duplicate}'); remove ':' from the level labels"
        )
    return levels, np.asarray(inverse, dtype=np.int64).reshape(-1) + 1


def _check_numeric_slopes(term: GroupTerm, model_spec: Any, data: pd.DataFrame) -> None:
    """A text column in ``(1 + x | g)`` is almost always a mistake, so refuse it.

    formulaic would silently turn it into dummy columns, multiplying the number of
    varying effects. An explicit ``C(x)`` states that a categorical slope is meant.
    """
    for formula_term in model_spec.formula:
        for factor in formula_term.factors:
            if not _is_categorical_kind(model_spec, factor.expr):
                continue
            if re.match(r"\s*C\s*\(", factor.expr):
                continue
            if factor.eval_method.value == "lookup":
                raise SpecError(
                    f"column '{factor.expr}' is used as a numeric slope in {term} but has "
                    f"dtype {data[factor.expr].dtype}; write C({factor.expr}) for a "
                    f"categorical slope"
                )
            raise SpecError(
                f"'{factor.expr}' is used as a numeric slope in {term} but is not numeric; "
                f"write C(...) around it for a categorical slope"
            )


def _term_names(terms: tuple[GroupTerm, ...]) -> list[str]:
    """Key names for the group terms: the factor's name, unless several terms share the
    factor; then a term without the intercept is named after its effects as well
    (``(1 | state) + (age - 1 | state)`` gives ``state`` and ``state_age``)."""
    per_factor: dict[str, int] = {}
    for term in terms:
        per_factor[term.name] = per_factor.get(term.name, 0) + 1
    names: list[str] = []
    for term in terms:
        name = term.name
        if per_factor[name] > 1 and not term.intercept:
            name += "_" + "_".join(stan_identifier(e) for e in term.effects)
        stem, k = name, 2
        while name in names:
            name, k = f"{stem}_{k}", k + 1
        names.append(name)
    return names


def _group_effects(
    term: GroupTerm, term_name: str, data: pd.DataFrame, taken: set[str],
    codes: dict[str, Any], fixed: FixedEffects,
) -> GroupEffects:
    role = f"group term {term}"
    _require_columns(term.factors, data, role)
    _check_columns_finite(term.factors, data)
    slopes = [effect for effect in term.effects if effect != INTERCEPT]
    rhs = " + ".join(["1" if term.intercept else "0", *slopes])
    _check_columns_finite(_columns_used(rhs, data, role), data)
    model_spec, columns = _design_columns(rhs, data, role)
    _check_numeric_slopes(term, model_spec, data)
    effect_names = tuple(model_spec.column_names)
    positions = _positions_in_X(effect_names, fixed, data)
    values = side_by_side(columns, len(data)) if positions is None else columns_of(
        fixed.X, positions)
    del columns
    levels, index = _group_levels(term, data, codes)
    effect_taken: set[str] = set()
    effect_stan_names = []
    for effect in effect_names:
        effect_stan_names.append(stan_identifier(effect, taken=effect_taken))
        effect_taken.add(effect_stan_names[-1])
    return GroupEffects(
        term=term,
        name=term.name,
        term_name=term_name,
        stan_name=stan_identifier(term_name, taken=taken),
        levels=levels,
        index=_readonly(index),
        effect_names=effect_names,
        effect_stan_names=tuple(effect_stan_names),
        Z=_readonly(values),
        correlated=term.correlated,
        model_spec=model_spec,
        x_positions=positions,
    )


def _positions_in_X(effect_names: tuple[str, ...], fixed: FixedEffects,
                    data: pd.DataFrame) -> tuple[int, ...] | None:
    """Each effect's column in the fixed effects' X (-1 for the intercept), when every
    effect is the intercept or a numeric column of `data` that X holds as it is (both
    designs then take the column's values unchanged), else None."""
    in_X = {name: j for j, name in enumerate(fixed.names)}
    positions = []
    for name in effect_names:
        if name == INTERCEPT:
            positions.append(-1)
        elif name in in_X and name in data.columns and data[name].dtype.kind in "fiu":
            positions.append(in_X[name])
        else:
            return None
    return tuple(positions)


def trials_values(expr: str, data: pd.DataFrame, response: str, y: np.ndarray) -> np.ndarray:
    name = _display(expr)
    values = predictor_values(expr, data, "trials", "trials()")
    count = int(((values < 0) | (values != np.round(values))).sum())
    if count:
        raise SpecError(
            f"trials '{name}' must hold non-negative integers, but {_rows(count)} do not"
        )
    observed = ~np.isnan(y)
    count = int((y[observed] > values[observed]).sum())
    if count:
        raise SpecError(
            f"response '{response}' is larger than trials '{name}' in {_rows(count)}; "
            f"successes cannot exceed trials"
        )
    return values.astype(np.int64)


#: The words and codes of a censoring column, brms's: each value's code.
CENSORING = {"none": 0, "right": 1, "left": -1, "interval": 2}


def censoring_values(column: str, data: pd.DataFrame, observed: np.ndarray) -> np.ndarray:
    """The codes of ``cens(column)`` per row (0 where the outcome is not observed): the
    words 'none', 'right', 'left', 'interval' (any case), brms's codes 0, 1, -1, 2, or
    True (right) and False (none), as brms reads them."""
    _require_columns([column], data, "cens()")
    series = data[column]
    codes = np.zeros(len(series), dtype=np.int64)
    bad: dict[str, None] = {}
    missing = 0
    for i, value in enumerate(series.to_numpy(dtype=object)):
        if not observed[i]:
            continue
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            missing += 1
            continue
        if isinstance(value, bool | np.bool_):
            codes[i] = 1 if value else 0
        elif isinstance(value, str) and value.strip().lower() in CENSORING:
            codes[i] = CENSORING[value.strip().lower()]
        elif (isinstance(value, int | float | np.integer | np.floating)
              and float(value) in (0.0, 1.0, -1.0, 2.0)):
            codes[i] = int(value)
        else:
            bad[repr(value)] = None
    if missing:
        raise SpecError(f"censoring column '{column}' has {_rows(missing)} with a missing "
                        "value where the outcome is observed; use 'none' for an exact outcome")
    if bad:
        raise SpecError(f"censoring column '{column}' has values {_listing(bad)}; use 'none', "
                        "'right', 'left', 'interval' or brms's codes 0, 1, -1, 2")
    return codes


def interval_bounds(expr: str, data: pd.DataFrame, response: str, y: np.ndarray,
                    codes: np.ndarray, integer: bool) -> np.ndarray:
    """The upper bounds of ``cens(c, y2)`` on the interval-censored rows (0 elsewhere):
    finite, above the outcome (the interval is (y, y2]), whole for an integer outcome."""
    name = _display(expr)
    values = column_values(expr, data, "upper bound", "cens()")
    interval = codes == 2
    count = int((~np.isfinite(values[interval])).sum())
    if count:
        raise SpecError(f"upper bound '{name}' has {_rows(count)} with NaN or infinite values "
                        "on interval-censored rows")
    count = int((values[interval] <= y[interval]).sum())
    if count:
        raise SpecError(f"upper bound '{name}' is not above response '{response}' in "
                        f"{_rows(count)} censored as 'interval'; the interval is (y, y2]")
    if integer:
        count = int((values[interval] != np.round(values[interval])).sum())
        if count:
            raise SpecError(f"upper bound '{name}' must hold whole numbers for an integer "
                            f"outcome, but {_rows(count)} censored as 'interval' do not")
    return np.where(interval, values, 0.0)


def weight_values(expr: str, data: pd.DataFrame) -> np.ndarray:
    """The row weights of ``weights(w)``: finite and non-negative in every row."""
    values = predictor_values(expr, data, "weights", "weights()")
    count = int((values < 0).sum())
    if count:
        raise SpecError(f"weights '{_display(expr)}' has {_rows(count)} with values < 0; "
                        "weights must be non-negative")
    return values


@dataclass(frozen=True, eq=False)
class ColumnBound:
    """A truncation bound of each row's own, ``trunc(lb = lo)``: the column's raw name and
    its value in every row (float64; NaN only on rows without an observed outcome, which
    are drawn without this bound)."""

    column: str
    values: np.ndarray


Bound = float | ColumnBound | None


def truncation_bounds(trunc: tuple[float | str | None, float | str | None], data: pd.DataFrame,
                      fam: Family, response: str, y: np.ndarray) -> tuple[Bound, Bound]:
    """trunc()'s bounds bound to the data: a number as it is, a column's values as a
    `ColumnBound` (numeric, given on every row with an observed outcome; -inf as a lower
    bound or inf as an upper one leaves that side of its row unbounded, as in brms), each
    checked against the family's outcome and the observed outcome (`check_truncation`)."""
    text = trunc_text(*trunc)
    observed = ~np.isnan(y)
    bounds: list[Bound] = []
    for side, bound in zip(("lb", "ub"), trunc, strict=True):
        if not isinstance(bound, str):
            bounds.append(bound)
            continue
        values = bound_column(bound, side, data, text)
        count = int((np.isnan(values) & observed).sum())
        if count:
            raise SpecError(f"{text}: column '{bound}' has {_rows(count)} with a missing "
                            "value where the outcome is observed")
        bounds.append(ColumnBound(bound, _readonly(values)))
    lb, ub = bounds
    check_truncation((lb, ub), fam, response, y)
    return lb, ub


def bound_column(column: str, side: str, data: pd.DataFrame, text: str) -> np.ndarray:
    """The values of truncation bound `side` ("lb" or "ub") from `column` of `data`
    (float64, NaN where missing), or SpecError naming the column: it must be there, be
    numeric, and be infinite only on its own side (-inf for lb, inf for ub: no bound)."""
    _require_columns([column], data, text)
    series = data[column]
    if not pd.api.types.is_numeric_dtype(series.dtype) or \
            pd.api.types.is_bool_dtype(series.dtype):
        raise SpecError(f"{text}: column '{column}' must be numeric, but it has dtype "
                        f"{series.dtype}")
    values = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    wrong, right = (np.inf, "-inf") if side == "lb" else (-np.inf, "inf")
    count = int((values == wrong).sum())
    if count:
        raise SpecError(f"{text}: column '{column}' has {_rows(count)} with {side} = "
                        f"{'inf' if side == 'lb' else '-inf'}, which no outcome lies "
                        f"{'above' if side == 'lb' else 'below'}; {right} leaves that side "
                        "of a row unbounded")
    return values


def check_bound_values(bound: ColumnBound, side: str, fam: Family, text: str) -> None:
    """A bound column's finite values fit the family's outcome: whole numbers for an
    integer one, a lower bound not below 0 for one that has no values there."""
    values = bound.values[np.isfinite(bound.values)]
    count = int((values != np.round(values)).sum()) if fam.integer else 0
    if count:
        raise SpecError(f"{text}: column '{bound.column}' must hold whole numbers for the "
                        f"{fam.name} family, whose outcome is an integer, but "
                        f"{_rows(count)} do not")
    count = int((values < 0).sum()) if side == "lb" and fam.outcome != "real" else 0
    if count:
        raise SpecError(f"{text}: column '{bound.column}' is below 0 in {_rows(count)}, "
                        f"where the {fam.name} family's outcome has no values; make each "
                        "lb at least 0 (or -inf: no lower bound)")


def check_truncation(trunc: tuple[Bound, Bound], fam: Family, response: str,
                     y: np.ndarray) -> None:
    """The bounds fit the family's outcome (whole numbers for an integer one, not below 0
    for one that has no values there), lb is below ub in every row, and every observed
    outcome is within its row's bounds."""
    text = trunc_text(*(b.column if isinstance(b, ColumnBound) else b for b in trunc))
    lb, ub = trunc
    for side, bound in zip(("lb", "ub"), trunc, strict=True):
        if isinstance(bound, ColumnBound):
            check_bound_values(bound, side, fam, text)
    if fam.integer and any(b is not None and not isinstance(b, ColumnBound) and b != round(b)
                           for b in trunc):
        raise SpecError(f"trunc() bounds must be whole numbers for the {fam.name} family, "
                        f"whose outcome is an integer")
    if fam.outcome != "real" and isinstance(lb, float) and lb < 0:
        raise SpecError(f"trunc(lb = {lb:g}) is below 0, where the {fam.name} family's "
                        "outcome has no values; drop lb or make it at least 0")
    low, high = (np.full(len(y), -np.inf if b is lb else np.inf) if b is None else
                 b.values if isinstance(b, ColumnBound) else np.full(len(y), float(b))
                 for b in trunc)
    if isinstance(lb, ColumnBound) or isinstance(ub, ColumnBound):
        count = int((low >= high).sum())  # NaN on either side compares False
        if count:
            raise SpecError(f"{text}: lb is not below ub in {_rows(count)}")
    observed = ~np.isnan(y)
    bad = int(((y < low) | (y > high))[observed].sum())
    if bad:
        raise SpecError(f"response '{response}' is outside the truncation bounds "
                        f"({text[6:-1]}) in {_rows(bad)}")


def ordinal_values(expr: str, data: pd.DataFrame, family: str,
                   ) -> tuple[np.ndarray, tuple[str, ...]]:
    """An ordinal outcome as categories 1 to K (NaN where missing) and, for an ordered
    pandas Categorical, its categories' labels in order (for integers they follow from
    the largest, once the values are checked). SpecError names the column otherwise."""
    column = bare_column(expr)
    if column is None or column not in data.columns:
        return column_values(expr, data, "response", "the response"), ()
    series = data[column]
    if isinstance(series.dtype, pd.CategoricalDtype):
        if not series.cat.ordered:
            raise SpecError(
                f"response '{column}' is an unordered pandas Categorical; the {family} "
                f"family needs its categories in order: make it ordered "
                f"(series.cat.as_ordered(), or pd.Categorical(..., ordered=True)) or give "
                f"integer categories 1, 2, 3, ...")
        codes = series.cat.codes.to_numpy()
        values = np.where(codes < 0, np.nan, codes + 1.0)
        return values, tuple(str(c) for c in series.cat.categories.to_numpy(dtype=object))
    if not pd.api.types.is_numeric_dtype(series.dtype):
        raise SpecError(
            f"response '{column}' has dtype {series.dtype}; the {family} family needs integer "
            f"categories 1, 2, 3, ... or an ordered pandas Categorical")
    return column_values(expr, data, "response", "the response"), ()


# --------------------------------------------------------------------------- entry


def _families_with(flag: str) -> str:
    return " or ".join(f.name for f in FAMILIES.values() if getattr(f, flag))


def _prepare_data(data: Any) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if len(data) == 0:
        raise SpecError("data has no rows")
    if not all(isinstance(column, str) for column in data.columns):
        # formulaic and the formula parser only know string names.
        data = data.rename(columns=str)
    duplicated = data.columns[data.columns.duplicated()]
    if len(duplicated):
        raise SpecError(f"data has duplicate column names: {_listing(dict.fromkeys(duplicated))}")
    # A fresh positional index: formulaic aligns on the index, and duplicate labels in
    # the user's index would otherwise break that alignment.
    return data.reset_index(drop=True)


def build_spec(
    formula: Formula | str,
    data: pd.DataFrame,
    family: str = "gaussian",
    priors: Mapping[str, str] | None = None,
    link: str | None = None,
) -> ModelSpec:
    """Bind `formula` to `data`, `family` (under `link`, None for its own) and `priors`,
    validating all of them.

    Raises FormulaError for an unparsable formula string, SpecError (a ValueError) for
    data, family or priors that do not fit, and TypeError for arguments of the wrong
    type. Warns (UserWarning) for a grouping factor with a single level, which leaves
    its sd to its prior alone, and for fixed-effect columns dropped as aliased (see
    `aliased_columns`), whose coefficients only a prior would tell apart.
    """
    fam = family_row(family, link)
    if priors is not None and not isinstance(priors, Mapping):
        raise TypeError(f"priors must be a dict, not {type(priors).__name__}")
    if not isinstance(formula, Formula):
        formula = Formula(formula)
    data = _prepare_data(data)

    if formula.se is not None and not fam.allows_se:
        raise SpecError(f"se() can only be used with the {_families_with('allows_se')} "
                        f"family, not '{family}'")
    if formula.trials is not None and not fam.needs_trials:
        raise SpecError(f"trials() can only be used with the {_families_with('needs_trials')} "
                        f"family, not '{family}'")
    for term, given in (("cens", formula.cens), ("trunc", formula.trunc)):
        if given is not None and fam.cdf is None:
            raise SpecError(f"{term}() needs the family's cumulative distribution function, "
                            f"which Stan does not have for the {family} family")
    if fam.needs_trials and formula.trials is None:
        raise SpecError(
            f"the {family} family needs the number of trials: write the response as "
            f"'{formula.response} | trials(n)' with n the column of trial counts"
        )

    response = _display(formula.response)
    categories: tuple[str, ...] = ()
    if fam.cutpoints:
        if not formula.intercept:
            raise SpecError(f"the {family} family's cutpoints are its intercepts: keep the "
                            f"intercept in the formula (no '0 +' or '- 1')")
        y, categories = ordinal_values(formula.response, data, family)
    else:
        y = column_values(formula.response, data, "response", "the response")
    infinite = int(np.isinf(y).sum())
    if infinite:
        raise SpecError(
            f"response '{response}' has {_rows(infinite)} with infinite values; "
            f"use NaN for outcomes to be predicted"
        )
    observed = ~np.isnan(y)
    if not observed.any():
        raise SpecError(f"response '{response}' has no observed (non-NaN) values")
    problem = fam.check_outcome(y[observed])
    if problem:
        raise SpecError(
            f"response '{response}' must hold {problem[0]} for the {family} family, but "
            f"{_rows(problem[1])} do not"
        )
    if fam.cutpoints and not categories:  # integers: categories 1 to the largest
        categories = tuple(str(k) for k in range(1, int(np.max(y[observed])) + 1))
    if fam.cutpoints and len(categories) < 2:
        raise SpecError(f"response '{response}' has one category; the {family} family "
                        f"needs at least 2")

    se = trials = offset = None
    if formula.se is not None:
        se = predictor_values(formula.se, data, "se", "se()")
        count = int((se <= 0).sum())
        if count:
            raise SpecError(
                f"se '{_display(formula.se)}' has {_rows(count)} with values <= 0; "
                f"standard errors must be positive"
            )
    if formula.trials is not None:
        trials = trials_values(formula.trials, data, response, y)
    if formula.offset is not None:
        offset = predictor_values(formula.offset, data, "offset", "offset()")
    cens = y2 = weights = None
    if formula.cens is not None:
        cens = censoring_values(formula.cens, data, observed)
        if formula.y2 is not None:
            y2 = interval_bounds(formula.y2, data, response, y, cens, fam.integer)
        elif (cens == 2).any():
            raise SpecError(f"censoring column '{formula.cens}' has "
                            f"{_rows(int((cens == 2).sum()))} censored as 'interval', which "
                            "need the upper bound: write cens(" + formula.cens + ", y2)")
    if formula.weights is not None:
        weights = weight_values(formula.weights, data)
    trunc = None
    if formula.trunc is not None:
        trunc = truncation_bounds(formula.trunc, data, fam, response, y)

    fixed = _fixed_effects(formula, data, observed)
    if fixed.dropped:
        several = len(fixed.dropped) > 1
        warnings.warn(
            f"fixed-effect column{'s' if several else ''} {_listing(fixed.dropped_labels)} "
            f"{'are' if several else 'is'} {_ALIASED[several]} on the observed rows (rank "
            f"deficient); dropped {'them' if several else 'it'}, as lme4 does",
            UserWarning,
            stacklevel=2,
        )
    taken: set[str] = set()
    groups: list[GroupEffects] = []
    codes: dict[str, Any] = {}
    for term, term_name in zip(formula.groups, _term_names(formula.groups), strict=True):
        group = _group_effects(term, term_name, data, taken, codes, fixed)
        taken.add(group.stan_name)
        groups.append(group)
        if group.n_levels == 1:
            warnings.warn(
                f"grouping factor '{group.name}' has only one level ('{group.levels[0]}'); "
                f"its standard deviation is informed by the prior alone",
                UserWarning,
                stacklevel=2,
            )

    table = _prior_keys(fixed, groups, fam, se is not None)
    checked = check_user_priors(priors or {}, table, dropped_prior_keys(fixed.dropped))

    values = y[observed]
    summary = {
        "mean": float(values.mean()),
        "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
    }
    return ModelSpec(
        formula=formula,
        family=family,
        response=response,
        y=_readonly(y),
        observed=_readonly(observed),
        fixed=fixed,
        groups=tuple(groups),
        se=None if se is None else _readonly(se),
        trials=None if trials is None else _readonly(trials),
        offset=None if offset is None else _readonly(offset),
        priors=checked,
        data_summary=summary,
        link=None if fam.link == family_row(family).link else fam.link,
        categories=categories,
        cens=None if cens is None else _readonly(cens),
        y2=None if y2 is None else _readonly(y2),
        weights=None if weights is None else _readonly(weights),
        trunc=trunc,
    )
