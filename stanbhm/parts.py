"""The parts of a program: fixed effects, one per group term, auxiliary parameters, offset.

A part owns everything about itself: its data entries (`data`), its Stan code (a
template partial in ``stan_templates/parts/<kind>.stan.j2`` with one macro per program
block), the header lines for its priors, and its outputs with their ArviZ dims and
coords. The data dictionary, the header and the ArviZ conversion are all derived from
the parts, so they cannot disagree with the program. Parts are frozen; passes replace
them (``dataclasses.replace``) rather than change them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .priors import Bounds, Horseshoe, Prior, VectorPrior, vector_prior

__all__ = ["AuxPart", "FixedPart", "GroupPart", "OffsetPart", "Output", "Part", "Rows"]


@dataclass(frozen=True)
class Output:
    """One program output and its ArviZ dims (one per array dimension)."""

    name: str
    dims: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rows:
    """Which rows a linear predictor covers, and the names of their data.

    The model block works on the observed rows only (``fitted``: centered X and the
    ``Intercept`` at the means); generated quantities predict every row (raw X and
    ``b_Intercept``). When every row is observed the two coincide and nothing is copied.
    """

    n: str  # "N" or "N_obs"
    suffix: str  # appended to row-level data names: "" or "_obs"
    fitted: bool


class Part:
    """Interface every part implements (documented here, checked by the tests)."""

    kind: str  # the template partial: stan_templates/parts/<kind>.stan.j2

    def data(self) -> dict[str, Any]:
        """The entries this part adds to the data dictionary."""
        return {}

    def outputs(self) -> tuple[Output, ...]:
        """Every variable this part writes to the output, with its dims."""
        return ()

    def coords(self) -> dict[str, list[str]]:
        """The ArviZ coordinates its dims use."""
        return {}

    def prior_lines(self) -> tuple[str, ...]:
        """``name ~ prior`` lines for the program header."""
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
    missing: bool
    intercept_prior: Prior | None
    intercept_bounds: Bounds
    b_priors: tuple[Prior, ...]
    horseshoe: Horseshoe | None
    kind: str = "fixed"

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def centered(self) -> bool:
        """X is centered only with an intercept: without one, centering changes the model."""
        return self.intercept and self.k > 0

    @property
    def b_prior(self) -> VectorPrior | None:
        """The statement for ``b`` (None with the horseshoe, which has its own)."""
        if not self.k or self.horseshoe:
            return None
        return vector_prior("b", self.b_priors, self.idents)

    def data(self) -> dict[str, Any]:
        return {"K": self.k, "X": self.X} if self.k else {}

    def outputs(self) -> tuple[Output, ...]:
        out = []
        if self.intercept:
            out.append(Output("Intercept"))
        if self.k:
            out.append(Output("b", ("coef",)))
        if self.horseshoe:
            out += [Output("hs_z", ("coef",)), Output("hs_local", ("coef",)),
                    Output("hs_global"), Output("hs_slab")]
        if self.centered:
            out.append(Output("b_Intercept"))
        return tuple(out)

    def coords(self) -> dict[str, list[str]]:
        return {"coef": list(self.names)} if self.k else {}

    def prior_lines(self) -> tuple[str, ...]:
        lines = []
        if self.intercept_prior is not None:
            lines.append(f"Intercept ~ {self.intercept_prior}")
        if self.horseshoe:
            lines.append(f"b ~ regularized {self.horseshoe.settings}, on standardized columns")
        else:
            lines += [f"{i} ~ {p}" for i, p in zip(self.idents, self.b_priors, strict=True)]
        return tuple(lines)


@dataclass(frozen=True, eq=False)
class GroupPart(Part):
    """One group term, e.g. ``(1 + x | g)``: its sds, correlations and level effects.

    ``r_<g>`` holds each level's deviations from the population coefficients and
    ``coef_<g>`` the level's total coefficients (population plus deviation) for every
    effect of the term, as lme4's ``coef()`` gives them (eight schools: each school's
    theta). Non-centered terms sample standardized ``z_<g>``; centered ones ``r_<g>``.
    """

    name: str  # the factor, as in the formula: "a:b"
    term_name: str  # the term's key: "state_age"
    ident: str  # Stan stem: N_<ident>, J_<ident>, r_<ident>...
    levels: tuple[str, ...]
    effects: tuple[str, ...]
    index: np.ndarray
    Z: np.ndarray
    correlated: bool
    centered: bool
    missing: bool
    sd_priors: tuple[Prior, ...]
    sd_bounds: Bounds
    cor_prior: Prior | None
    population: tuple[str, ...]  # per effect: the population coefficient or "0"
    kind: str = "group"

    @property
    def k(self) -> int:
        return len(self.effects)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

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
        return any(p != "0" for p in self.population)

    @property
    def sd_prior(self) -> VectorPrior:
        return vector_prior(f"sd_{self.ident}", self.sd_priors, self.effects)

    @property
    def effect_dim(self) -> str:
        return f"{self.term_name}_effect"

    @staticmethod
    def derived_names(ident: str, missing: bool) -> tuple[str, ...]:
        """Every program name the part uses; the namespace reserves them together."""
        prefixes = ("N", "J", "Z", "z", "r", "sd", "L", "Lcov", "Cor", "coef")
        names = [f"{p}_{ident}" for p in prefixes]
        names.append(f"sd_{ident}_prior")
        if missing:
            names += [f"J_{ident}_obs", f"Z_{ident}_obs"]
        return tuple(names)

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"N_{self.ident}": self.n_levels, f"J_{self.ident}": self.index}
        if self.has_z:
            out[f"Z_{self.ident}"] = self.Z[:, 0] if self.k == 1 else self.Z
        return out

    def outputs(self) -> tuple[Output, ...]:
        g, level = self.ident, self.name
        if self.k == 1:
            out = [Output(f"sd_{g}"), Output(f"r_{g}", (level,))]
            if not self.centered:
                out.append(Output(f"z_{g}", (level,)))
            if self.has_coef:
                out.append(Output(f"coef_{g}", (level,)))
            return tuple(out)
        eff = self.effect_dim
        out = [Output(f"sd_{g}", (eff,)), Output(f"r_{g}", (level, eff))]
        if not self.centered:
            out.append(Output(f"z_{g}", (eff, level)))
        if self.correlated:
            out += [Output(f"L_{g}", (eff, f"{eff}_bis")), Output(f"Cor_{g}", (eff, f"{eff}_bis"))]
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
            lines = [f"sd_{g} ~ {self.sd_priors[0]}"]
        else:
            lines = [f"sd_{g}[{e}] ~ {p}" for e, p in zip(self.effects, self.sd_priors,
                                                          strict=True)]
        if self.correlated:
            lines.append(f"L_{g} ~ {self.cor_prior}")
        return tuple(lines)


@dataclass(frozen=True)
class AuxParam:
    """One auxiliary parameter as declared: name, bounds, comment and prior."""

    name: str
    bounds: Bounds
    comment: str
    prior: Prior


@dataclass(frozen=True)
class AuxPart(Part):
    """The family's own parameters (sigma, nu, phi, shape); empty for most link families."""

    params: tuple[AuxParam, ...]
    kind: str = "aux"

    def outputs(self) -> tuple[Output, ...]:
        return tuple(Output(a.name) for a in self.params)

    def prior_lines(self) -> tuple[str, ...]:
        return tuple(f"{a.name} ~ {a.prior}" for a in self.params)


@dataclass(frozen=True, eq=False)
class OffsetPart(Part):
    """``offset(expr)``: a known term of the linear predictor, with coefficient 1."""

    expr: str
    values: np.ndarray
    missing: bool
    kind: str = "offset"

    def data(self) -> dict[str, Any]:
        return {"offs": self.values}
