"""A model's priors, resolved: the user's where given, data-scaled defaults elsewhere.

`resolve(spec)` gives the `PriorBook` the plan's parts are built from: one prior per
scalar (per coefficient, per effect's sd) with the bounds the declaration needs.
Defaults follow rstanarm/brms and are documented in docs/models.md. It reads the spec
(the outcome's scale, the columns' sds), so it sits above `spec`, which itself checks
the user's priors through `priors`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .arrays import column_moments
from .priors import Bounds, Horseshoe, Prior, fmt, intersect, parse_prior

if TYPE_CHECKING:
    from .spec import GroupEffects, ModelSpec

__all__ = ["PriorBook", "resolve"]


@dataclass(frozen=True)
class PriorBook:
    """Every prior of one model, resolved: user's where given, else the data default.

    Per-element tuples line up with the vector they apply to (coefficients in column
    order, a term's sds in effect order). Bounds are the declarations' bounds after
    intersecting the parameter's own support with its prior's.
    """

    intercept: Prior | None
    intercept_bounds: Bounds
    b: tuple[Prior, ...]
    horseshoe: Horseshoe | None
    sd: dict[str, tuple[Prior, ...]]
    sd_bounds: dict[str, Bounds]
    cor: dict[str, Prior]
    aux: dict[str, Prior]
    aux_bounds: dict[str, Bounds]


def resolve(spec: ModelSpec) -> PriorBook:
    """User priors where given, data-scaled defaults elsewhere, with declaration bounds."""
    fam = spec.family_row
    users = spec.priors

    def user(cls: str, target: str | None = None) -> tuple[str, Prior] | None:
        return users.get((cls, target)) or users.get((cls, None))

    y = spec.y[spec.observed]
    trials = None if spec.trials is None else spec.trials[spec.observed]
    offset = None if spec.offset is None else spec.offset[spec.observed]
    scale = 2.5 * fam.outcome_scale(y)

    intercept = None
    intercept_bounds = Bounds()
    if spec.fixed.intercept:
        given = user("Intercept")
        if given:
            intercept = given[1]
            # an ordinal family's cutpoints are an ordered vector, which Stan cannot bound
            intercept_bounds = intersect(given[0], intercept, -math.inf, "Intercept",
                                         not fam.cutpoints)
        elif fam.intercept_prior is not None:  # fixed, as brms's for the cutpoints
            intercept = parse_prior("Intercept", fam.intercept_prior, "Intercept")
        else:
            loc = fam.intercept_location(y, trials, offset)
            intercept = Prior("student_t", ("3", fmt(loc), fmt(scale)), from_data=(1, 2))

    horseshoe = None
    b: list[Prior] = []
    whole = user("b")
    if whole and whole[1].dist == "horseshoe":
        horseshoe = _horseshoe(whole[1], fam.aux_names(spec.se is not None))
        b = [whole[1]] * spec.fixed.p
    else:
        sds = _column_sds(spec.fitted_X)
        for j, name in enumerate(spec.fixed.names):
            given = user("b", name)
            if given:
                intersect(given[0], given[1], -math.inf, "a coefficient", False)
                b.append(given[1])
            else:
                sx = sds[j]
                b.append(Prior("normal", ("0", fmt(scale / sx if sx > 0 else scale)),
                               from_data=(1,)))

    sd: dict[str, tuple[Prior, ...]] = {}
    sd_bounds: dict[str, Bounds] = {}
    cor: dict[str, Prior] = {}
    for g, fitted_Z in zip(spec.groups, spec.fitted_Z, strict=True):
        given = user("sd", g.term_name)
        if given:
            sd[g.term_name] = (given[1],) * g.k
            sd_bounds[g.term_name] = intersect(given[0], given[1], 0.0, "a standard deviation",
                                                True)
        else:
            sds = _column_sds(fitted_Z)
            sd[g.term_name] = tuple(
                Prior("student_t", ("3", "0", fmt(_effect_scale(scale, g, k, sds[k]))),
                      from_data=(2,))
                for k in range(g.k)
            )
            sd_bounds[g.term_name] = Bounds(0.0)
        if g.correlated and g.k > 1:
            given = user("cor", g.term_name)
            cor[g.term_name] = given[1] if given else Prior("lkj_corr_cholesky", ("2",))

    aux: dict[str, Prior] = {}
    aux_bounds: dict[str, Bounds] = {}
    for param in fam.aux:
        if param.name not in fam.aux_names(spec.se is not None):
            continue
        given = user(param.name)
        if given:
            aux[param.name] = given[1]
            aux_bounds[param.name] = intersect(given[0], given[1], param.lower, param.name, True,
                                               param.upper)
        else:
            aux[param.name] = _default_aux(param.name, param.default_prior, scale)
            aux_bounds[param.name] = Bounds(param.lower, param.upper)
    return PriorBook(
        intercept=intercept, intercept_bounds=intercept_bounds, b=tuple(b), horseshoe=horseshoe,
        sd=sd, sd_bounds=sd_bounds, cor=cor, aux=aux, aux_bounds=aux_bounds,
    )


def _default_aux(name: str, template: str, scale: float) -> Prior:
    """The family's default prior of an auxiliary parameter; the arguments where its
    template puts the outcome's ``{scale}`` come from the data."""
    prior = parse_prior(name, template.format(scale=fmt(scale)), name)
    inner = template[template.index("(") + 1:template.rindex(")")]
    scaled = tuple(i for i, arg in enumerate(inner.split(",")) if "{scale}" in arg)
    return dataclasses.replace(prior, from_data=scaled)


def _column_sds(rows: np.ndarray) -> np.ndarray:
    """The sample sd of each column of `rows`, in one pass over them (picking a column of
    a 3M-row matrix at a time took seconds); 0 for a constant column, whose float sd is
    rounding noise (~1e-17) that would make a default prior scale of 1e16."""
    if len(rows) < 2:
        return np.zeros(rows.shape[1])
    _, squares, spread = column_moments(rows)
    return np.where(spread == 0, 0.0, np.sqrt(squares / (len(rows) - 1)))


def _effect_scale(scale: float, g: GroupEffects, k: int, sx: float) -> float:
    """A slope's sd prior is scaled by 1/sd(x) (`sx`, over the fitted rows), like its
    coefficient's: a level may move the outcome by a few outcome sds per sd of x. The
    intercept column keeps ``scale``."""
    if g.effect_names[k] == "Intercept":
        return scale
    return scale / sx if sx > 0 else scale


def _horseshoe(prior: Prior, aux: tuple[str, ...]) -> Horseshoe:
    values = dict(prior.kwargs)
    per_sigma = " * sigma" if "sigma" in aux else ""
    half_df = fmt(values["df_slab"] / 2)
    return Horseshoe(
        settings=prior,
        local=Prior("student_t", (fmt(values["df"]), "0", "1")),
        global_=Prior("student_t", ("1", "0", f"{fmt(values['scale_global'])}{per_sigma}")),
        slab=Prior("inv_gamma", (half_df, half_df)),
        slab_scale2=fmt(values["scale_slab"] ** 2),
    )
