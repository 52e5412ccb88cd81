"""The family table: everything stanbhm knows about a response distribution, in one row.

No other module spells a family name. The spec stage asks a row how to validate the
outcome, the priors module asks for the auxiliary parameters and where the intercept's
default prior sits, and the likelihood asks for the Stan function names and argument
lists. Adding a family is adding a row here (and, at most, one template macro).

Argument templates use three placeholders, filled per context by the likelihood:
``{eta}`` (the linear predictor), ``{se}`` and ``{trials}`` (row-level data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import SpecError

__all__ = ["FAMILIES", "AuxParam", "Family", "family"]


@dataclass(frozen=True)
class AuxParam:
    """A family's own parameter (``sigma``, ``nu``, ``phi``, ``shape``).

    ``default_prior`` is a distribution call with ``{scale}`` standing for the outcome
    scale of the data (``2.5 * sd(y)`` for identity links), so defaults follow the data.
    """

    name: str
    lower: float
    comment: str
    default_prior: str


@dataclass(frozen=True)
class Family:
    """One response family: link, outcome type, auxiliary parameters and Stan functions.

    Attributes:
        name: the user-facing name (``family="negbinomial"``).
        link: the link function, for the header and the intercept's default prior.
        outcome: ``"real"``, ``"positive"``, ``"binary"`` or ``"count"``.
        aux: auxiliary parameters, in declaration order.
        dist: the Stan distribution used in ``y ~ dist(args)``; ``_lpdf``/``_lpmf``
            follows from the outcome type.
        args: argument templates of ``dist`` after the outcome: ``{eta}`` the linear
            predictor, ``{trials}`` the rows' trials, ``{sigma}`` the rows' sd, which
            known standard errors (``y | se(s)``, `allows_se`) fill instead of sigma.
        rng: the posterior predictive draw for all rows, as a template.
        mean: the outcome's expected value given the linear predictor, as a template
            (what predictions report beside the draws).
        glm: the name of Stan's GLM kernel with this likelihood, or None.
        pooled_variance: Var(y) at a pooled fit, from (y, mean, d mean / d eta), with
            the family's own parameter estimated by moments; None when the canonical
            link makes it d mean / d eta (bernoulli, binomial, poisson). Used by the
            "auto" parameterization rule (`stanbhm.information`).
        collapse: how rows with one linear predictor combine exactly (for the rewrites),
            or None when they do not.
        conjugate_intercept: the exact marginal of a group intercept, or None: the
            ``conjugate`` of the kind in `stanbhm.marginals` that integrates it out:
            ``"normal"`` (normal-normal), ``"gamma"`` (gamma multipliers of the rate,
            asked for by name) or ``"beta"`` (beta probabilities, by name). Stan's
            Laplace approximation (``"laplace"``) serves any family but the gaussian.
        allows_se: whether ``y | se(s)`` may replace ``sigma`` by known standard errors.
        needs_trials: whether ``y | trials(n)`` is required.
        log_outcome: whether default priors are scaled on ``log(y)`` (lognormal).
    """

    name: str
    link: str
    outcome: str
    aux: tuple[AuxParam, ...]
    dist: str
    args: tuple[str, ...]
    rng: str
    mean: str = "{eta}"
    glm: str | None = None
    collapse: str | None = None
    conjugate_intercept: str | None = None
    allows_se: bool = False
    needs_trials: bool = False
    log_outcome: bool = False
    pooled_variance: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None

    @property
    def integer(self) -> bool:
        """Whether the outcome is an integer (``_lpmf``, ``array[] int``)."""
        return self.outcome in ("binary", "count")

    @property
    def identity_scale(self) -> bool:
        """Whether coefficients live on the outcome's own scale (data-scaled priors)."""
        return self.link == "identity"

    def suffix(self) -> str:
        return "lpmf" if self.integer else "lpdf"

    def aux_names(self, has_se: bool) -> tuple[str, ...]:
        """The auxiliary parameters this model samples (known se removes sigma)."""
        return tuple(a.name for a in self.aux if not (has_se and a.name == "sigma"))

    def check_outcome(self, values: np.ndarray) -> tuple[str, int] | None:
        """What the observed outcome must hold and how many values do not, or None
        (``("non-negative integer counts", 1)`` when 3.5 appears in a Poisson outcome)."""
        what, bad = _OUTCOME_CHECKS[self.outcome]
        count = int(bad(values).sum())
        return (what, count) if count else None

    def intercept_location(
        self, y: np.ndarray, trials: np.ndarray | None, offset: np.ndarray | None
    ) -> float:
        """Where the Intercept's default prior is centered: the link of the outcome's
        typical value, less the offset, at the predictors' means (X is centered)."""
        return _LOCATIONS[self.link if not self.log_outcome else "log_outcome"](
            y, trials, offset
        )

    def outcome_scale(self, y: np.ndarray) -> float:
        """The scale that default priors multiply: sd of y (or log y) on identity links,
        1 on link scales where a unit change is already large."""
        if not self.identity_scale:
            return 1.0
        values = np.log(y) if self.log_outcome else y
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else 1.0
        return sd if np.isfinite(sd) and sd > 0 else 1.0


#: For each outcome type: what the values must be, and the mask of those that are not.
_OUTCOME_CHECKS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "real": ("real numbers", lambda v: np.zeros(v.shape, dtype=bool)),
    "positive": ("positive values", lambda v: v <= 0),
    "binary": ("0 or 1", lambda v: (v != 0) & (v != 1)),
    "count": ("non-negative integer counts", lambda v: (v < 0) | (v != np.round(v))),
}


def _offset_mean(offset: np.ndarray | None) -> float:
    return 0.0 if offset is None else float(np.mean(offset))


def _identity_location(y, trials, offset) -> float:
    shifted = y if offset is None else y - offset
    return float(np.median(shifted))


def _log_outcome_location(y, trials, offset) -> float:
    shifted = np.log(y) if offset is None else np.log(y) - offset
    return float(np.median(shifted))


def _log_location(y, trials, offset) -> float:
    # log of the total rate per unit of exposure: exact for a Poisson without predictors.
    exposure = len(y) if offset is None else float(np.sum(np.exp(offset)))
    total = float(np.sum(y))
    return float(np.log(max(total, 0.5) / exposure))


def _logit_location(y, trials, offset) -> float:
    n = float(len(y) if trials is None else np.sum(trials))
    p = min(max(float(np.sum(y)) / n if n > 0 else 0.5, 0.01), 0.99)
    return float(np.log(p / (1 - p))) - _offset_mean(offset)


_LOCATIONS = {
    "identity": _identity_location,
    "log_outcome": _log_outcome_location,
    "log": _log_location,
    "logit": _logit_location,
}

def _nb2_variance(y: np.ndarray, mu: np.ndarray, dmu: np.ndarray) -> np.ndarray:
    excess = float(np.sum((y - mu) ** 2 - mu))
    phi = float(np.sum(mu**2)) / excess if excess > 0 else np.inf
    return mu + mu**2 / phi


def _gamma_variance(y: np.ndarray, mu: np.ndarray, dmu: np.ndarray) -> np.ndarray:
    shape = 1 / max(float(np.mean(((y - mu) / mu) ** 2)), 1e-12)
    return mu**2 / shape


_SIGMA = AuxParam("sigma", 0.0, "residual standard deviation", "student_t(3, 0, {scale})")

#: One row per family; the order is the order error messages list them in.
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            name="gaussian", link="identity", outcome="real", aux=(_SIGMA,),
            dist="normal", args=("{eta}", "{sigma}"), rng="normal_rng({eta}, {sigma})",
            glm="normal_id_glm", collapse="sufficient statistics",
            conjugate_intercept="normal", allows_se=True,
        ),
        Family(
            name="student_t", link="identity", outcome="real",
            aux=(AuxParam("nu", 1.0, "degrees of freedom", "gamma(2, 0.1)"), _SIGMA),
            dist="student_t", args=("nu", "{eta}", "sigma"),
            rng="student_t_rng(nu, {eta}, sigma)",
        ),
        Family(
            name="bernoulli", link="logit", outcome="binary", aux=(),
            dist="bernoulli_logit", args=("{eta}",), rng="bernoulli_logit_rng({eta})",
            mean="inv_logit({eta})", glm="bernoulli_logit_glm", collapse="binomial",
            conjugate_intercept="beta",
        ),
        Family(
            name="binomial", link="logit", outcome="count", aux=(),
            dist="binomial_logit", args=("{trials}", "{eta}"),
            rng="binomial_rng({trials}, inv_logit({eta}))",
            mean="to_vector({trials}) .* inv_logit({eta})", glm="binomial_logit_glm",
            collapse="binomial", needs_trials=True, conjugate_intercept="beta",
        ),
        Family(
            name="poisson", link="log", outcome="count", aux=(),
            dist="poisson_log", args=("{eta}",), rng="poisson_log_rng({eta})",
            mean="exp({eta})", glm="poisson_log_glm", collapse="poisson sum",
            conjugate_intercept="gamma",
        ),
        Family(
            name="negbinomial", link="log", outcome="count",
            aux=(AuxParam("phi", 0.0, "negative binomial precision (NB2)", "gamma(2, 0.1)"),),
            dist="neg_binomial_2_log", args=("{eta}", "phi"),
            rng="neg_binomial_2_log_rng({eta}, phi)",
            mean="exp({eta})", glm="neg_binomial_2_log_glm",
            collapse="negative binomial cells",
            pooled_variance=_nb2_variance,
        ),
        Family(
            name="lognormal", link="identity", outcome="positive", aux=(_SIGMA,),
            dist="lognormal", args=("{eta}", "sigma"), rng="lognormal_rng({eta}, sigma)",
            mean="exp({eta} + square(sigma) / 2)", log_outcome=True,
        ),
        Family(
            name="gamma", link="log", outcome="positive",
            aux=(AuxParam("shape", 0.0, "gamma shape", "gamma(2, 0.1)"),),
            dist="gamma", args=("shape", "shape * exp(-{eta})"),
            rng="gamma_rng(shape, shape * exp(-{eta}))", mean="exp({eta})",
            pooled_variance=_gamma_variance,
        ),
    )
}  # fmt: skip


def family(name: object) -> Family:
    """The table row for ``name``; raises SpecError listing the families otherwise."""
    if not isinstance(name, str) or name not in FAMILIES:
        raise SpecError(f"unknown family {name!r}; choose one of: {', '.join(FAMILIES)}")
    return FAMILIES[name]
