"""The fit as a statistician reads it: brms's summary, lme4's fixef, ranef and coef.

Each table holds a parameter's posterior mean ("Estimate"), sd ("Est.Error"), the
equal-tailed 95% interval and, for MCMC, R-hat and bulk and tail ESS (ArviZ's). The
population intercept is the one at predictors = 0 (``b_Intercept``; the program samples
it at the predictors' means, which is the ``Intercept`` of the posterior), and a level's
coefficient is the population value plus its deviation, both at covariate = 0, as lme4's
``coef()`` reports them and the program's ``coef_<term>`` holds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import xarray as xr

    from .parts import GroupPart

__all__ = ["Summary", "coef", "fixef", "ranef", "summarize"]

COLUMNS = ["Estimate", "Est.Error", "Q2.5", "Q97.5"]
DIAGNOSTICS = ["Rhat", "Bulk_ESS", "Tail_ESS"]
_CHAIN_DRAW = ("chain", "draw")


class Fitted(Protocol):
    """What a summary reads of a fit (a `results.Fit`, which imports this module)."""

    method: str
    prior_only: bool
    model: Any  # the `model.Model` that ran, None for a bare result

    @property
    def draws(self) -> xr.Dataset: ...

    @property
    def cmdstan(self) -> Any: ...

    def diagnostics(self) -> dict[str, float]: ...


def _table(rows: dict[str, xr.DataArray], diagnostics: bool) -> pd.DataFrame:
    """One row per (label, scalar draws over chain x draw)."""
    import arviz as az

    out = {}
    for label, draws in rows.items():
        values = draws.values.reshape(-1)
        row = [values.mean(), values.std(ddof=1) if values.size > 1 else np.nan,
               *np.quantile(values, [0.025, 0.975])]
        if diagnostics:
            array = draws.values
            row += [float(az.rhat(array)), float(az.ess(array, method="bulk")),
                    float(az.ess(array, method="tail"))]
        out[label] = row
    columns = COLUMNS + (DIAGNOSTICS if diagnostics else [])
    table = pd.DataFrame.from_dict(out, orient="index", columns=columns)
    if diagnostics:
        table[["Bulk_ESS", "Tail_ESS"]] = table[["Bulk_ESS", "Tail_ESS"]].round().astype(int)
    return table


def _population(fit: Fitted) -> dict[str, xr.DataArray]:
    """Population-level effects at predictors = 0, labelled as in the formula."""
    draws = fit.draws
    rows = {}
    intercept = "b_Intercept" if "b_Intercept" in draws else "Intercept"
    if intercept in draws and "cutpoint" in draws[intercept].dims:  # an ordinal model's
        for k, name in enumerate(draws["cutpoint"].values, start=1):
            rows[f"Intercept[{k}] ({name})"] = draws[intercept].sel(cutpoint=name)
    elif intercept in draws:
        rows["Intercept"] = draws[intercept]
    if "b" in draws:
        coef = draws["b"].dims[-1]
        for name in draws[coef].values:
            rows[str(name)] = draws["b"].sel({coef: name})
    return rows


def _deviations(fit: Fitted, part: GroupPart) -> xr.DataArray:
    """r_<term> as (chain, draw, level, effect): each level's deviation at covariate = 0,
    as the program multiplies the covariates as given."""
    draws = fit.draws[f"r_{part.ident}"]
    if part.k == 1:
        draws = draws.expand_dims({part.effect_dim: list(part.effects)}, axis=-1)
    return draws


def _group_part(fit: Fitted, term: str) -> GroupPart:
    for part in fit.model.plan.groups:
        if term in (part.term_name, part.name):
            return part
    names = ", ".join(p.term_name for p in fit.model.plan.groups) or "none"
    raise ValueError(f"'{term}' is not a group term of this model (group terms: {names})")


def _per_level(fit: Fitted, parts, values_of) -> dict[str, pd.DataFrame]:
    """{term: DataFrame indexed by level, columns (effect, statistic)}."""
    out = {}
    for part in parts:
        if not part.drawn:
            continue
        values = values_of(part)
        level_dim, effect_dim = values.dims[-2:]
        tables = {}
        for effect in values[effect_dim].values:
            one = values.sel({effect_dim: effect}).values
            flat = one.reshape(-1, one.shape[-1])
            tables[str(effect)] = pd.DataFrame(
                {"Estimate": flat.mean(axis=0), "Est.Error": flat.std(axis=0, ddof=1),
                 "Q2.5": np.quantile(flat, 0.025, axis=0),
                 "Q97.5": np.quantile(flat, 0.975, axis=0)},
                index=pd.Index([str(v) for v in values[level_dim].values], name=part.name))
        out[part.term_name] = pd.concat(tables, axis=1)
    return out


def _need_model(fit: Fitted, what: str) -> None:
    if fit.model is None:
        raise ValueError(f"{what}() needs a fit from Model.fit")


def fixef(fit: Fitted) -> pd.DataFrame:
    """Population-level effects (lme4's fixef, brms's fixef): one row per coefficient."""
    return _table(_population(fit), diagnostics=False)


def ranef(fit: Fitted, term: str | None = None):
    """Each level's deviations from the population effects (lme4's ranef): {term:
    DataFrame} or, for `term`, its DataFrame (rows levels, columns (effect, statistic))."""
    _need_model(fit, "ranef")
    parts = [_group_part(fit, term)] if term else fit.model.plan.groups
    out = _per_level(fit, parts, lambda part: _deviations(fit, part))
    return out[parts[0].term_name] if term else out


def coef(fit: Fitted, term: str | None = None):
    """Each level's coefficients (lme4's coef): the population effect, where the formula
    has one, plus the level's deviation, at covariate = 0."""
    _need_model(fit, "coef")
    population = _population(fit)

    def total(part: GroupPart) -> xr.DataArray:
        values = _deviations(fit, part).copy()
        effect_dim = values.dims[-1]
        for effect in values[effect_dim].values:
            if str(effect) in population:
                values.loc[{effect_dim: effect}] = values.sel({effect_dim: effect}) \
                    + population[str(effect)]
        return values

    parts = [_group_part(fit, term)] if term else fit.model.plan.groups
    out = _per_level(fit, parts, total)
    return out[parts[0].term_name] if term else out


@dataclass(frozen=True)
class Summary:
    """The fit's summary as brms prints it; each table is also a DataFrame."""

    header: tuple[str, ...]
    groups: dict[str, pd.DataFrame]  # "~g (Number of levels: 10)" -> sd and cor rows
    population: pd.DataFrame
    family: pd.DataFrame
    footer: tuple[str, ...]

    def __str__(self) -> str:
        lines = list(self.header)
        if self.groups:
            lines += ["", "Multilevel Hyperparameters:"]
            for title, table in self.groups.items():
                lines += [title, _format(table)]
        if len(self.population):
            lines += ["", "Regression Coefficients:", _format(self.population)]
        if len(self.family):
            lines += ["", "Further Distributional Parameters:", _format(self.family)]
        lines += ["", *self.footer]
        return "\n".join(lines).rstrip() + "\n"

    def __repr__(self) -> str:
        return str(self)


def _format(table: pd.DataFrame) -> str:
    shown = table.copy()
    for column in COLUMNS:
        shown[column] = shown[column].map(lambda v: f"{v:.2f}")
    if "Rhat" in shown:
        shown["Rhat"] = shown["Rhat"].map(lambda v: "NA" if np.isnan(v) else f"{v:.2f}")
    return shown.to_string()


def _group_rows(fit: Fitted, part: GroupPart) -> dict[str, xr.DataArray]:
    draws = fit.draws
    rows = {}
    sd = draws[part.spread]
    label = "kappa" if part.concentration else "sd"
    if part.k == 1:
        rows[f"{label}({part.effects[0]})"] = sd
    else:
        for effect in part.effects:
            rows[f"sd({effect})"] = sd.sel({part.effect_dim: effect})
    cor = f"cor_{part.ident}"
    if cor in draws:
        pairs = draws[cor].dims[-1]
        for pair in draws[cor][pairs].values:
            rows[f"cor({pair.replace(', ', ',')})"] = draws[cor].sel({pairs: pair})
    return rows


def summarize(fit: Fitted) -> Summary:
    """The fit's `Summary`: its model, draws, and the tables of each kind of parameter."""
    _need_model(fit, "summary")
    model, plan = fit.model, fit.model.plan
    mcmc = fit.method == "sample"
    draws = fit.draws
    family = plan.family
    rows = len(model.spec.y)
    observed = int(np.asarray(model.spec.observed).sum())
    header = [f" Family: {family.name}",
              f"  Links: mu = {family.link}",
              f"Formula: {model.formula.text}",
              f"   Data: {rows} rows" + (f", {observed} with an observed outcome"
                                         if observed < rows else "")]
    chains, n = int(draws.sizes["chain"]), int(draws.sizes["draw"])
    if mcmc:
        config = fit.cmdstan.metadata.cmdstan_config
        header.append(f"  Draws: {chains} chains, each with {config['num_warmup']} warmup "
                      f"and {n} draws; total draws = {chains * n}")
    else:
        header.append(f"  Draws: {n} from method={fit.method!r} (no R-hat or ESS)")
    if fit.prior_only:
        header.append("  Prior: these are draws of the prior (fit(prior_only=True))")
    groups = {}
    for part in plan.groups:
        title = f"~{part.name} (Number of levels: {part.n_levels})"
        if part.term_name != part.name:
            title = f"~{part.name}, term {part.term_name} (Number of levels: {part.n_levels})"
        groups[title] = _table(_group_rows(fit, part), mcmc)
    population = _table(_population(fit), mcmc)
    aux = {p.name: draws[p.name] for p in plan.aux.params if p.name in draws}
    footer = []
    if mcmc:
        numbers = fit.diagnostics()
        footer.append("Draws were sampled using NUTS: divergent transitions "
                      f"{numbers['divergences']}, draws at the maximum tree depth "
                      f"{numbers['treedepth_hits']}; "
                      f"lowest E-BFMI {numbers['ebfmi_min']:.2f}.")
        footer.append("Bulk_ESS and Tail_ESS are effective sample sizes; Rhat above 1.01 "
                      "says the chains disagree.")
    return Summary(tuple(header), groups, population, _table(aux, mcmc), tuple(footer))
