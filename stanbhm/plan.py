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
class Horseshoe:
    """Regularized horseshoe on the coefficients (Piironen & Vehtari 2017), non-centered.

    b = z .* tau * lambda ./ sqrt(1 + (tau * lambda)^2 / c^2), c^2 = scale_slab^2 * slab,
    slab ~ inv_gamma(df_slab / 2, df_slab / 2); the prior statements are kept as text.
    """

    settings: str  # e.g. "df=1, scale_global=0.01, df_slab=4, scale_slab=2"
    local_prior: str  # hs_local (lambda), half
    global_prior: str  # hs_global (tau), half
    slab_prior: str  # hs_slab (c^2 / scale_slab^2)
    slab_scale2: str  # scale_slab^2


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
    horseshoe: Horseshoe | None = None

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
            f"parameterization {choice!r} for '{name}' is not one of {', '.join(PARAMETERIZATIONS)}"
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
    b_class = spec.priors.get("b") or ""
    horseshoe = _horseshoe(b_class, spec) if b_class.startswith("horseshoe") else None
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
        "regularized horseshoe" if horseshoe else spec.prior("b", name) or _scaled_b_prior(spec, j)
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
        horseshoe=horseshoe,
    )


def _applies(key: str, spec: ModelSpec, groups: list[GroupPlan]) -> bool:
    return {
        "Intercept": spec.fixed.intercept,
        "sd": False,  # stated per grouping factor (GroupPlan.sd_prior)
        "cor": False,  # stated per grouping factor (GroupPlan.cor_prior)
        "sigma": spec.family in ("gaussian", "student_t") and spec.se is None,
        "nu": spec.family == "student_t",
        "phi": spec.family == "negbinomial",
    }[key]


def _horseshoe(text: str, spec: ModelSpec) -> Horseshoe:
    """Settings with brms's defaults (df=1, scale_global=1, df_slab=4, scale_slab=2).

    As in brms, the global scale is multiplied by sigma for gaussian and student_t
    models, so scale_global is relative to the residual scale.
    """
    if not spec.fixed.names:
        raise PlanError("prior 'b' = horseshoe(...): the model has no coefficients")
    values = {"df": 1.0, "scale_global": 1.0, "df_slab": 4.0, "scale_slab": 2.0}
    inner = text[text.index("(") + 1 : text.rindex(")")]
    for part in filter(None, (p.strip() for p in inner.split(","))):
        key, _, value = part.partition("=")
        values[key.strip()] = float(value)
    if min(values.values()) <= 0:
        raise PlanError(f"prior 'b' = {text}: every horseshoe setting must be positive")
    per_sigma = " * sigma" if spec.family in ("gaussian", "student_t") and spec.se is None else ""
    half_df = _fmt(values["df_slab"] / 2)
    return Horseshoe(
        settings=", ".join(f"{k}={_fmt(v)}" for k, v in values.items()),
        local_prior=f"student_t({_fmt(values['df'])}, 0, 1)",
        global_prior=f"student_t(1, 0, {_fmt(values['scale_global'])}{per_sigma})",
        slab_prior=f"inv_gamma({half_df}, {half_df})",
        slab_scale2=_fmt(values["scale_slab"] ** 2),
    )
