"""Predictions for new rows from a fitted model's draws.

New rows are encoded exactly as the training rows were (formulaic's stored model specs,
so categorical levels, ``scale()`` and ``C()`` reuse the training data's encoding). The
fitted program itself predicts: its data block declares the new rows and its generated
quantities compute their linear predictor, mean and predictive draws, with no new rows
while fitting (`no_rows`). Predicting passes the rows as data and runs CmdStan's
standalone generated quantities of the executable the fit used, over the fit's draws,
so nothing is compiled. A level the training data never saw gets its effect from the
fitted hierarchical distribution (``new_levels="sample"``, correlated terms through their
fitted Cholesky factor), the population value (``"zero"``), or an error (``"error"``).

A program whose group effects are integrated out and not drawn back has no draws to
predict from, so it carries no new rows (`with_predictions`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from .errors import SpecError
from .formula import column_text, trunc_text
from .parts import NewTermShape, PredictionPart
from .plan import NEW_ROWS, Decision
from .spec import (
    ColumnBound,
    bare_column,
    bound_column,
    check_bound_values,
    column_values,
    predictor_values,
    strictly,
    trials_values,
)

if TYPE_CHECKING:
    from .plan import Plan
    from .spec import GroupEffects, ModelSpec

__all__ = ["NEW_LEVELS", "NEW_ROWS", "FittedModel", "NewRows", "encode", "fitted_rows",
           "no_rows", "outcome", "predict_draws", "prediction_data", "with_predictions"]

#: What a level the training data never saw gets.
NEW_LEVELS = ("sample", "zero", "error")
_SHOWN = 5


class FittedModel(Protocol):
    """What predicting reads of a model (a `model.Model`, which imports this module):
    its spec and plan, its data, its compiled executable and the OpenCL device it ran on."""

    spec: ModelSpec
    plan: Plan
    device: Any

    def compile(self) -> Any: ...

    def stan_data(self, prior_only: bool = False) -> dict[str, Any]: ...


@dataclass(frozen=True, eq=False)
class NewTerm:
    """One group term over the new rows: levels (1-based; fitted levels keep their
    numbers, new ones follow) and covariates."""

    ident: str
    index: np.ndarray
    Z: np.ndarray
    new_levels: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class NewRows:
    """New rows encoded as the training rows were."""

    n: int
    labels: pd.Index  # the new data's index, as coordinates (its own type: int stays int)
    X: np.ndarray
    terms: tuple[NewTerm, ...]
    offset: np.ndarray | None
    se: np.ndarray | None
    trials: np.ndarray | None
    #: truncation bounds read from columns (`trunc(lb = lo)`), by side ("lb", "ub"): each
    #: row's own, ±inf or NaN where it has none on that side
    bounds: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def _labels(group: GroupEffects, data: pd.DataFrame) -> np.ndarray:
    """Each new row's level label, spelled as the training levels are."""
    columns = []
    for column in group.term.factors:
        if column not in data.columns:
            raise SpecError(f"new data has no column '{column}' (grouping factor of "
                            f"{group.term})")
        values = data[column]
        if values.isna().any():
            raise SpecError(f"new data: grouping factor '{column}' has missing values")
        columns.append(values.astype(str).to_numpy())
    labels = columns[0]
    for more in columns[1:]:
        labels = np.char.add(np.char.add(labels.astype(str), ":"), more)
    return labels


def _term(group: GroupEffects, ident: str, data: pd.DataFrame, new_levels: str) -> NewTerm:
    labels = _labels(group, data)
    known = {level: j + 1 for j, level in enumerate(group.levels)}
    unseen = list(dict.fromkeys(label for label in labels if label not in known))
    if unseen and new_levels == "error":
        shown = ", ".join(unseen[:_SHOWN]) + (", ..." if len(unseen) > _SHOWN else "")
        raise SpecError(f"new data has {len(unseen)} level(s) of '{group.name}' not in the "
                        f"fitted data ({shown}); pass new_levels='sample' or 'zero'")
    numbers = known | {level: group.n_levels + j + 1 for j, level in enumerate(unseen)}
    index = np.array([numbers[label] for label in labels], dtype=np.int64)
    try:
        matrix = strictly(lambda: group.model_spec.get_model_matrix(data, na_action="ignore"),
                           f"{group.term}")
    except SpecError:
        raise
    except Exception as exc:
        raise SpecError(f"cannot encode new data for {group.term}: {exc}") from exc
    Z = np.asarray(matrix, dtype=np.float64).reshape(len(data), group.k)
    return NewTerm(ident, index, Z, tuple(unseen))


def _row_labels(index: pd.Index) -> pd.Index:
    """The rows' labels as one coordinate: a MultiIndex becomes its tuples."""
    return index.to_flat_index() if isinstance(index, pd.MultiIndex) else index


def encode(model: FittedModel, new_data: pd.DataFrame, new_levels: str = "sample") -> NewRows:
    """The new rows' data, or SpecError naming the column or level at fault."""
    if new_levels not in NEW_LEVELS:
        raise ValueError(f"new_levels={new_levels!r} is not one of {', '.join(NEW_LEVELS)}")
    if not isinstance(new_data, pd.DataFrame) or len(new_data) == 0:
        raise SpecError("new data must be a non-empty pandas DataFrame")
    spec, plan = model.spec, model.plan
    labels = _row_labels(new_data.index)
    data = new_data.reset_index(drop=True)
    X = spec.fixed.design(data)
    if not np.isfinite(X).all():
        raise SpecError("new data has missing or infinite values in the fixed-effect columns")
    terms = tuple(_term(g, part.ident, data, new_levels)
                  for g, part in zip(spec.groups, plan.groups, strict=True))
    formula = spec.formula
    offset = se = trials = None
    if formula.offset is not None:
        offset = predictor_values(formula.offset, data, "offset", "offset() of the new data")
    if formula.se is not None:
        se = predictor_values(formula.se, data, "se", "se() of the new data")
    if formula.trials is not None:
        trials = trials_values(formula.trials, data, spec.response, np.zeros(len(data)))
    return NewRows(len(data), labels, X, terms, offset, se, trials, new_bounds(spec, data))


def new_bounds(spec: ModelSpec, data: pd.DataFrame) -> dict[str, np.ndarray]:
    """The truncation bounds of the new rows read from their columns (`trunc(lb = lo)`),
    by side, so that y_new is drawn within each row's own; or SpecError naming the
    column: it must be in the new data, numeric, with a value on every row (-inf as lb
    or inf as ub for no bound), fit the family's outcome as the fitted rows' do, and lb
    must be below ub."""
    trunc = spec.trunc or (None, None)
    if not any(isinstance(b, ColumnBound) for b in trunc):
        return {}
    text = trunc_text(*(b.column if isinstance(b, ColumnBound) else b for b in trunc))
    out: dict[str, np.ndarray] = {}
    for side, bound in zip(("lb", "ub"), trunc, strict=True):
        if not isinstance(bound, ColumnBound):
            continue
        if bound.column not in data.columns:
            raise SpecError(f"new data has no column '{bound.column}' (the "
                            f"{'lower' if side == 'lb' else 'upper'} truncation bound of "
                            f"{text}): y_new is drawn within each new row's bounds")
        values = bound_column(bound.column, side, data, f"{text} of the new data")
        count = int(np.isnan(values).sum())
        if count:
            raise SpecError(f"{text} of the new data: column '{bound.column}' has "
                            f"{_rows(count)} with a missing value; give each new row its "
                            f"bound ({'-inf' if side == 'lb' else 'inf'} for none)")
        check_bound_values(ColumnBound(bound.column, values), side, spec.family_row,
                           f"{text} of the new data")
        out[side] = values
    lb, ub = trunc
    low = out.get("lb", np.full(len(data), -np.inf if lb is None else lb))
    high = out.get("ub", np.full(len(data), np.inf if ub is None else ub))
    count = int((low >= high).sum())
    if count:
        raise SpecError(f"{text} of the new data: lb is not below ub in {_rows(count)}")
    return out


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def fitted_rows(model: FittedModel) -> NewRows:
    """The model's own rows, every one (a missing outcome too), as the fit encoded them:
    every level is a fitted one. The model keeps no data frame, so the rows are labelled
    by position, as ``y_rep``'s are. Truncation bounds read from columns are the fitted
    rows' own (none on a side where a row without an outcome has a missing value)."""
    spec, plan = model.spec, model.plan
    terms = tuple(NewTerm(part.ident, g.index, g.Z, ())
                  for g, part in zip(spec.groups, plan.groups, strict=True))
    trunc = spec.trunc or (None, None)
    bounds = {side: bound.values for side, bound in zip(("lb", "ub"), trunc, strict=True)
              if isinstance(bound, ColumnBound)}
    return NewRows(spec.n, pd.RangeIndex(spec.n), spec.fixed.X, terms, spec.offset, spec.se,
                   spec.trials, bounds)


def outcome(model: FittedModel, new_data: pd.DataFrame | None) -> np.ndarray:
    """The observed outcome of each row (NaN where missing): the fitted rows' for None,
    otherwise read from `new_data` as the fit read it, or SpecError naming the column."""
    spec = model.spec
    if new_data is None:
        return np.asarray(spec.y, dtype=np.float64)
    expr = spec.formula.response
    column = bare_column(expr)
    if column is not None and column not in new_data.columns:
        raise SpecError(f"new data has no column '{column}' (the outcome): residuals need "
                        "the observed outcome of each row")
    return column_values(expr, new_data.reset_index(drop=True), "response",
                   "the outcome of the new data")


def no_rows(plan: Plan) -> dict[str, Any]:
    """The new-row entries of the fitted program's data: none (N_new = 0), with empty
    arrays of the declared shapes; empty for a program that cannot predict."""
    return plan.prediction.data() if plan.prediction else {}


def with_predictions(plan: Plan) -> Plan:
    """`plan` with the new-row block, when every group term's effects are drawn; the
    header says which."""
    undrawn = [g.name for g in plan.groups if not g.drawn]
    if undrawn:
        said = Decision("predictions", "none", f"the effects of {undrawn[0]} are integrated "
                        "out and not drawn back; effects=True draws them", applied=False)
        return dataclasses.replace(plan, decisions=(*plan.decisions, said))
    said = Decision("predictions", "eta_new, mu_new, y_new",
                    "for new rows passed as data (none while fitting), by standalone "
                    "generated quantities from the fitted draws")
    lik = plan.likelihood
    part = PredictionPart(
        columns=plan.fixed.k,
        terms=tuple(NewTermShape(g.ident, g.name, g.k, g.has_z) for g in plan.groups),
        offset=plan.offset is not None, se=lik.se is not None, trials=lik.trials is not None,
        bounds=tuple((side, column_text(bound.column)) for side in ("lb", "ub")
                     if isinstance(bound := getattr(lik, side), ColumnBound)),
        integer=lik.family.integer)
    return dataclasses.replace(plan, prediction=part, decisions=(*plan.decisions, said))


def prediction_data(plan: Plan, rows: NewRows, sample_new_levels: bool) -> dict[str, Any]:
    """The new rows' entries of the program's data."""
    terms = [(t.index, len(t.new_levels), t.Z) for t in rows.terms]
    return plan.prediction.values(rows.n, rows.X, terms, rows.offset, rows.se, rows.trials,
                                  sample_new_levels, rows.bounds)


def predict_draws(model: FittedModel, result: Any, new_data: pd.DataFrame | None,
                  new_levels: str, seed: int | None) -> tuple[pd.Index, dict[str, np.ndarray]]:
    """(row labels, {"y", "mu", "eta": draws x rows}) for `new_data` (the fitted rows for
    None) from the draws of `result` (a CmdStanMCMC of `model`'s program), by the fitted
    executable's standalone generated quantities."""
    undrawn = [g.name for g in model.plan.groups if not g.drawn]
    if undrawn or not model.plan.prediction:
        name = undrawn[0] if undrawn else "a group term"
        raise ValueError(f"this fit has no draws of the effects of {name}: they were "
                         "integrated out and not drawn back (see the program header); refit "
                         "with effects=True to predict")
    from .datafile import data_file
    from .toolchain import opencl

    rows = fitted_rows(model) if new_data is None else encode(model, new_data, new_levels)
    exe = model.compile()  # the fit's executable, from the cache
    data = {**model.stan_data(), **prediction_data(model.plan, rows, new_levels == "sample")}
    # as many significant figures as the draws they are computed from
    figures = int(result.metadata.cmdstan_config.get("sig_figs", -1))
    precision = {"sig_figs": figures} if figures > 0 else {}
    with data_file(data) as path, opencl.selected(model.device):
        quantities = exe.generate_quantities(data=path, previous_fit=result, seed=seed,
                                             **precision)
    names = {"y": "y_new", "mu": "mu_new", "eta": "eta_new"}
    return rows.labels, {k: np.asarray(quantities.stan_variable(v), dtype=float)
                         for k, v in names.items()}
