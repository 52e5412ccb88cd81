"""Every modelling decision, made once, with the reason it was made.

The plan stage turns a ``ModelSpec`` into a ``Plan``: which parameterization each
grouping factor gets, which priors apply (user overrides or data-scaled
defaults), what the generated quantities hold. Templates only loop and branch on
these fields; each decision's one-line reason is printed in the program header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .spec import ModelSpec

PARAMETERIZATIONS = ("centered", "noncentered", "auto")
LINKS = {
    "gaussian": "identity",
    "student_t": "identity",
    "bernoulli": "logit",
    "binomial": "logit",
    "poisson": "log",
    "negbinomial": "log",
}
COUNT_FAMILIES = ("bernoulli", "binomial", "poisson", "negbinomial")


class PlanError(ValueError):
    """A requested option cannot be honoured for this model."""


@dataclass(frozen=True)
class Decision:
    subject: str
    choice: str
    reason: str


@dataclass(frozen=True)
class GroupPlan:
    """One grouping factor's effects as they appear in the program."""

    name: str  # as in the formula, e.g. "a:b"
    ident: str  # Stan identifier, e.g. "a_b"
    n_levels: int
    effects: tuple[str, ...]  # formula names, e.g. ("Intercept", "x")
    effect_idents: tuple[str, ...]
    correlated: bool
    centered: bool
    sd_prior: str
    cor_prior: str

    @property
    def k(self) -> int:
        return len(self.effects)

    @property
    def intercept_only(self) -> bool:
        return self.effects == ("Intercept",)


@dataclass(frozen=True)
class Plan:
    formula: str
    family: str
    link: str
    n: int
    n_obs: int
    fixed_names: tuple[str, ...]
    fixed_idents: tuple[str, ...]
    fixed_priors: tuple[str, ...]  # one per column of X
    intercept: bool
    groups: tuple[GroupPlan, ...]
    has_se: bool
    has_trials: bool
    has_offset: bool
    priors: dict[str, str]  # parameter name -> prior statement right-hand side
    decisions: tuple[Decision, ...]
    log_lik: bool = True
    y_rep: bool = True

    @property
    def integer_outcome(self) -> bool:
        return self.family in COUNT_FAMILIES

    @property
    def one_fixed_prior(self) -> bool:
        """True when every coefficient shares one prior (a single vectorized statement)."""
        return len(set(self.fixed_priors)) <= 1

    @property
    def has_sigma(self) -> bool:
        return self.family in ("gaussian", "student_t") and not self.has_se


def _fmt(x: float) -> str:
    """Short, exact-enough numbers for prior statements (deterministic)."""
    return f"{x:.3g}"


def default_priors(spec: ModelSpec) -> dict[str, str]:
    """Weakly informative priors scaled to the data (documented in the README).

    Identity-link families use the outcome's location and spread; link-scale
    families use unit scales, since their coefficients live on the log/logit scale.
    """
    y = spec.y[spec.observed]
    identity = spec.family in ("gaussian", "student_t")
    loc = float(np.median(y)) if identity and len(y) else 0.0
    scale = 2.5 * _outcome_scale(spec)
    return {
        "Intercept": f"student_t(3, {_fmt(loc)}, {_fmt(scale)})",
        "sd": f"student_t(3, 0, {_fmt(scale)})",
        "sigma": f"student_t(3, 0, {_fmt(scale)})",
        "cor": "lkj_corr_cholesky(2)",
        "nu": "gamma(2, 0.1)",
        "phi": "gamma(0.01, 0.01)",
    }


def _scaled_b_prior(spec: ModelSpec, j: int) -> str:
    """normal(0, 2.5 * s_y / s_x): a change of one sd in x moves the outcome by at most
    a few outcome sds (identity links; s_y = 1 on link scales), as rstanarm does."""
    sx = float(np.std(spec.fixed.X[:, j], ddof=1)) if spec.n > 1 else 1.0
    sy = _outcome_scale(spec)
    return f"normal(0, {_fmt(2.5 * sy / sx if sx > 0 else 2.5 * sy)})"


def _outcome_scale(spec: ModelSpec) -> float:
    if spec.family not in ("gaussian", "student_t"):
        return 1.0
    y = spec.y[spec.observed]
    sd = float(np.std(y, ddof=1)) if len(y) > 1 else 1.0
    return sd if sd > 0 else 1.0


def _parameterization_for(name: str, requested: object) -> tuple[bool, str]:
    """(centered?, reason) for one grouping factor."""
    choice = requested.get(name, "auto") if isinstance(requested, dict) else requested
    if isinstance(choice, float | int) and not isinstance(choice, bool):
        raise PlanError(
            f"parameterization {choice!r} for '{name}': fractional centering is not "
            "implemented yet; use 'centered', 'noncentered' or 'auto'"
        )
    if choice not in PARAMETERIZATIONS:
        raise PlanError(
            f"parameterization {choice!r} for '{name}' is not one of "
            f"{', '.join(PARAMETERIZATIONS)}"
        )
    if choice == "centered":
        return True, 'parameterization="centered" requested'
    if choice == "noncentered":
        return False, 'parameterization="noncentered" requested'
    return False, '"auto": non-centered (the data-driven choice is not implemented yet)'


def make_plan(
    spec: ModelSpec,
    parameterization: object = "auto",
    *,
    log_lik: bool = True,
    y_rep: bool = True,
) -> Plan:
    """Decide everything the program needs, with reasons."""
    if isinstance(parameterization, dict):
        known = {g.name for g in spec.groups}
        unknown = sorted(set(parameterization) - known)
        if unknown:
            raise PlanError(
                f"parameterization given for {', '.join(map(repr, unknown))}, which is not a "
                f"grouping factor of this model (grouping factors: {', '.join(sorted(known))})"
            )
    priors = default_priors(spec)
    if (spec.priors.get("b") or "").startswith("horseshoe"):
        raise PlanError(
            "prior 'b' = horseshoe(...): the regularized horseshoe is not implemented yet"
        )
    for key in ("Intercept", "sigma", "nu", "phi"):
        priors[key] = spec.prior(key) or priors[key]
    decisions: list[Decision] = []
    groups = []
    for g in spec.groups:
        centered, reason = _parameterization_for(g.name, parameterization)
        decisions.append(Decision(g.name, "centered" if centered else "non-centered", reason))
        groups.append(
            GroupPlan(
                name=g.name,
                ident=g.stan_name,
                n_levels=len(g.levels),
                effects=g.effect_names,
                effect_idents=g.effect_stan_names,
                correlated=g.correlated and len(g.effect_names) > 1,
                centered=centered,
                sd_prior=spec.prior("sd", g.name) or priors["sd"],
                cor_prior=spec.prior("cor", g.name) or priors["cor"],
            )
        )
    resolved = {k: v for k, v in priors.items() if _applies(k, spec, groups)}
    fixed_priors = tuple(
        spec.prior("b", name) or _scaled_b_prior(spec, j)
        for j, name in enumerate(spec.fixed.names)
    )
    return Plan(
        formula=spec.formula.text,
        family=spec.family,
        link=LINKS[spec.family],
        n=spec.n,
        n_obs=spec.n_obs,
        fixed_names=spec.fixed.names,
        fixed_idents=spec.fixed.stan_names,
        fixed_priors=fixed_priors,
        intercept=spec.fixed.intercept,
        groups=tuple(groups),
        has_se=spec.se is not None,
        has_trials=spec.trials is not None,
        has_offset=spec.offset is not None,
        priors=resolved,
        decisions=tuple(decisions),
        log_lik=log_lik,
        y_rep=y_rep,
    )


def _applies(key: str, spec: ModelSpec, groups: list[GroupPlan]) -> bool:
    return {
        "Intercept": spec.fixed.intercept,
        "b": False,  # stated per coefficient (Plan.fixed_priors)
        "sd": False,  # stated per grouping factor (GroupPlan.sd_prior)
        "cor": False,  # stated per grouping factor (GroupPlan.cor_prior)
        "sigma": spec.family in ("gaussian", "student_t") and spec.se is None,
        "nu": spec.family == "student_t",
        "phi": spec.family == "negbinomial",
    }[key]
