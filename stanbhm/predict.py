"""Predictions for new rows from a fitted model's draws.

New rows are encoded exactly as the training rows were (formulaic's stored model specs,
so categorical levels, ``scale()`` and ``C()`` reuse the training data's encoding), and
run through CmdStan's standalone generated quantities with the fit's draws: a program
with the model's data, parameters and generated quantities, plus the new rows and their
predictions. A level the training data never saw gets its effect from the fitted
hierarchical distribution (``new_levels="sample"``, correlated terms through their
fitted Cholesky factor), the population value (``"zero"``), or an error (``"error"``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import SpecError
from .parts import Rows
from .passes.base import Decision
from .spec import _predictor, _trials, strictly

if TYPE_CHECKING:
    from .model import Model
    from .plan import Plan
    from .spec import GroupEffects

__all__ = ["NEW_LEVELS", "NEW_ROWS", "NewRows", "Prediction", "encode", "predict_draws",
           "prediction_data", "prediction_plan"]

#: What a level the training data never saw gets.
NEW_LEVELS = ("sample", "zero", "error")
#: The rows of the prediction program's generated quantities.
NEW_ROWS = Rows("N_new", "_new", False, new=True)
_SHOWN = 5


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
    labels: list[str]  # the new data's index, as coordinates
    X: np.ndarray
    terms: tuple[NewTerm, ...]
    offset: np.ndarray | None
    se: np.ndarray | None
    trials: np.ndarray | None


@dataclass(frozen=True)
class Prediction:
    """What the prediction program adds to a plan: how many new levels each term has."""

    new_levels: dict[str, int]


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


def encode(model: Model, new_data: pd.DataFrame, new_levels: str = "sample") -> NewRows:
    """The new rows' data, or SpecError naming the column or level at fault."""
    if new_levels not in NEW_LEVELS:
        raise ValueError(f"new_levels={new_levels!r} is not one of {', '.join(NEW_LEVELS)}")
    if not isinstance(new_data, pd.DataFrame) or len(new_data) == 0:
        raise SpecError("new data must be a non-empty pandas DataFrame")
    spec, plan = model.spec, model.plan
    labels = [str(i) for i in new_data.index]
    data = new_data.reset_index(drop=True)
    X = spec.fixed.design(data)
    if not np.isfinite(X).all():
        raise SpecError("new data has missing or infinite values in the fixed-effect columns")
    terms = tuple(_term(g, part.ident, data, new_levels)
                  for g, part in zip(spec.groups, plan.groups, strict=True))
    formula = spec.formula
    offset = se = trials = None
    if formula.offset is not None:
        offset = _predictor(formula.offset, data, "offset", "offset() of the new data")
    if formula.se is not None:
        se = _predictor(formula.se, data, "se", "se() of the new data")
    if formula.trials is not None:
        trials = _trials(formula.trials, data, spec.response, np.zeros(len(data)))
    return NewRows(len(data), labels, X, terms, offset, se, trials)


def prediction_plan(plan: Plan, rows: NewRows) -> Plan:
    """The fitted model's plan writing predictions for `rows` instead of per-row
    outputs of the training rows."""
    likelihood = dataclasses.replace(plan.likelihood, log_lik=False, y_rep=False)
    counts = {t.ident: len(t.new_levels) for t in rows.terms}
    kept = tuple(d for d in plan.decisions if d.subject not in ("log_lik", "y_rep"))
    said = Decision("predictions", "eta_new, mu_new, y_new",
                    "for the new rows, in generated quantities from the fitted draws")
    return dataclasses.replace(plan, likelihood=likelihood, prediction=Prediction(counts),
                               decisions=(*kept, said))


def prediction_data(plan: Plan, rows: NewRows, sample_new_levels: bool) -> dict[str, Any]:
    """The new rows' entries of the prediction program's data."""
    out: dict[str, Any] = {"N_new": rows.n, "new_levels_sampled": int(sample_new_levels)}
    if plan.fixed.k:
        out["X_new"] = rows.X
    for term, part in zip(rows.terms, plan.groups, strict=True):
        out[f"J_{term.ident}_new"] = term.index
        out[f"N_{term.ident}_new"] = len(term.new_levels)
        if part.has_z:
            out[f"Z_{term.ident}_new"] = term.Z[:, 0] if part.k == 1 else term.Z
    if rows.offset is not None:
        out["offs_new"] = rows.offset
    if rows.se is not None:
        out["se_new"] = rows.se
    if rows.trials is not None:
        out["trials_new"] = rows.trials
    return out


def predict_draws(model: Model, result: Any, new_data: pd.DataFrame, new_levels: str,
                  seed: int | None) -> tuple[list[str], dict[str, np.ndarray]]:
    """(row labels, {"y", "mu", "eta": draws x rows}) for `new_data` from the draws of
    `result` (a CmdStanMCMC of `model`'s program)."""
    undrawn = [g.name for g in model.plan.groups if not g.drawn]
    if undrawn:
        raise ValueError(f"this fit has no draws of the effects of {undrawn[0]}: they were "
                         "integrated out and not drawn back (see the program header); refit "
                         "with effects=True to predict")
    from . import toolchain
    from .datafile import data_file
    from .render import render_code

    rows = encode(model, new_data, new_levels)
    plan = prediction_plan(model.plan, rows)
    exe = toolchain.compile_model(render_code(plan), cpp_options=model.program.cpp_options,
                                 stanc_options=toolchain.OPTIMIZED)
    data = {**model.stan_data(), **prediction_data(plan, rows, new_levels == "sample")}
    with data_file(data) as path:
        quantities = exe.generate_quantities(data=path, previous_fit=result, seed=seed)
    names = {"y": "y_new", "mu": "mu_new", "eta": "eta_new"}
    return rows.labels, {k: np.asarray(quantities.stan_variable(v), dtype=float)
                         for k, v in names.items()}
