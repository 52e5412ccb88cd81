"""The family table: everything stanbhm knows about a response distribution, in one row.

No other module spells a family name. The spec stage asks a row how to validate the
outcome, the priors module asks for the auxiliary parameters and where the intercept's
default prior sits, and the likelihood asks for the Stan function names and argument
lists. Adding a family is adding a row here (and, at most, one template macro).

Argument templates use three placeholders, filled per context by the likelihood:
``{eta}`` (the linear predictor), ``{sigma}`` and ``{trials}`` (row-level data).

A family's link is its row's own (the canonical one, where Stan has a density on the
link scale, such as ``bernoulli_logit``); a row may list other links (`Family.links`),
written through its `LinkForm` with the mean ``{mu}`` the link's inverse (`LINKS`):
``family("bernoulli", "probit")`` is the bernoulli row with ``bernoulli(Phi(eta))``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from .errors import SpecError

__all__ = ["FAMILIES", "LINKS", "AuxParam", "Family", "Link", "LinkForm", "family"]


@dataclass(frozen=True)
class Link:
    """A link function: the Stan expression of its inverse (the mean from the linear
    predictor ``{eta}``) and, for the pooled fit before sampling and the intercept's
    default prior, numpy's link, inverse and d mean / d eta."""

    name: str
    inverse: str
    link: Callable[[np.ndarray], np.ndarray]
    mean: Callable[[np.ndarray], np.ndarray]
    slope: Callable[[np.ndarray], np.ndarray]


def _cloglog_slope(eta: np.ndarray) -> np.ndarray:
    eta = np.clip(eta, -30, 30)
    return np.exp(eta - np.exp(eta))


#: Every link a family row may take, by name.
LINKS: dict[str, Link] = {
    link.name: link
    for link in (
        Link("identity", "{eta}", lambda m: m, lambda e: e, np.ones_like),
        Link("log", "exp({eta})", np.log, lambda e: np.exp(np.clip(e, -30, 30)),
             lambda e: np.exp(np.clip(e, -30, 30))),
        Link("logit", "inv_logit({eta})", special.logit, special.expit,
             lambda e: special.expit(e) * special.expit(-e)),
        Link("probit", "Phi({eta})", special.ndtri, special.ndtr,
             lambda e: np.exp(-np.square(e) / 2) / math.sqrt(2 * math.pi)),
        Link("cloglog", "inv_cloglog({eta})", lambda m: np.log(-np.log1p(-m)),
             lambda e: -np.expm1(-np.exp(np.clip(e, -30, 30))), _cloglog_slope),
    )
}  # fmt: skip


@dataclass(frozen=True)
class LinkForm:
    """How a family is written under a link other than its row's own: the templates of
    its row (`Family`'s fields of these names) with ``{mu}`` for the mean, the link's
    inverse of ``{eta}``."""

    dist: str
    args: tuple[str, ...]
    rng: str
    mean: str
    cdf_args: tuple[str, ...] = ()


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
    upper: float = math.inf  # a probability (zi, hu) lies below 1


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
        cdf: the Stan distribution whose ``_lcdf`` and ``_lccdf`` write censored and
            truncated rows (``y | cens(c)``, ``y | trunc(lb = 0)``), or None when Stan has
            none for the family (it then refuses those terms). Stan has no CDF of a
            link-parameterized form (``poisson_log``), so it is the natural one
            (``poisson``), with `cdf_args` on the natural scale (``exp({eta})``).
        cdf_args: the argument templates of `cdf`, as `args`.
        lccdf: log P(Y > ``{y}``) where Stan's ``_lccdf`` of `cdf` loses it far in the
            upper tail, as a template (`args`' placeholders and ``{y}``), else None (the
            ``_lccdf``): the gaussian's is its ``_lcdf`` at ``-y`` around ``-mu``, as
            Stan's normal_lccdf is -inf beyond 8.25 sds and 1 - erf loses digits from 5.
        truncated_rng: the macro of ``stan_templates/families.stan.j2`` writing the
            function ``<name>_rng(args..., lb, ub)`` that draws one row within its
            truncation bounds by the inverse of the CDF, or None: drawn again while
            outside them (`stanbhm.likelihood.MAX_TRIES`).
        log_outcome: whether default priors are scaled on ``log(y)`` (lognormal).
        links: the other links it takes (``link="probit"``), written through
            `any_link`; a variant row is `with_link`'s.
        any_link: its templates under any of `links`.
        functions: the macro of ``stan_templates/families.stan.j2`` that writes the
            functions its density, draws or mean call, or None (Stan's own).
        intercept_prior: a fixed default prior for the intercept (not scaled by the
            data), as brms gives the cutpoints of an ordinal model.
        cutpoints: ordinal: ``Intercept`` is the ordered vector of the cutpoints
            between the outcome's categories, and the linear predictor has no
            intercept of its own.
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
    cdf: str | None = None
    cdf_args: tuple[str, ...] = ()
    lccdf: str | None = None
    truncated_rng: str | None = None
    pooled_variance: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None
    links: tuple[str, ...] = ()
    any_link: LinkForm | None = None
    functions: str | None = None
    intercept_prior: str | None = None
    cutpoints: bool = False

    @property
    def integer(self) -> bool:
        """Whether the outcome is an integer (``_lpmf``, ``array[] int``)."""
        return self.outcome in ("binary", "count", "ordinal")

    @property
    def title(self) -> str:
        """How messages name it: ``bernoulli``, or ``bernoulli (probit link)`` under a
        link other than its row's own."""
        own = FAMILIES[self.name].link if self.name in FAMILIES else self.link
        return self.name if self.link == own else f"{self.name} ({self.link} link)"

    def with_link(self, link: str | None) -> Family:
        """This family under `link` (None: its own); SpecError naming the family and the
        links it takes otherwise. Stan's GLM kernels, the collapse and the conjugate
        marginals are written for the row's own link, so a variant has none of them."""
        if link is None or link == self.link:
            return self
        if link not in self.links or self.any_link is None:
            allowed = ", ".join((self.link, *self.links))
            raise SpecError(f"link {link!r} is not available for the {self.name} family; "
                            f"its links: {allowed}")
        form = self.any_link
        mu = LINKS[link].inverse

        def under(template: str) -> str:
            return template.replace("{mu}", mu)

        return dataclasses.replace(
            self, link=link, dist=form.dist, args=tuple(under(a) for a in form.args),
            rng=under(form.rng), mean=under(form.mean),
            cdf_args=tuple(under(a) for a in form.cdf_args), glm=None, collapse=None,
            conjugate_intercept=None, pooled_variance=None)

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
    "proportion": ("values strictly between 0 and 1", lambda v: (v <= 0) | (v >= 1)),
    "ordinal": ("integer categories 1, 2, 3, ...", lambda v: (v < 1) | (v != np.round(v))),
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


def _probability_location(link: str) -> Callable[..., float]:
    """The link of the outcome's mean probability, as `_logit_location` for logit."""

    def location(y, trials, offset) -> float:
        n = float(len(y) if trials is None else np.sum(trials))
        p = min(max(float(np.sum(y)) / n if n > 0 else 0.5, 0.01), 0.99)
        return float(LINKS[link].link(np.array(p))) - _offset_mean(offset)

    return location


_LOCATIONS = {
    "identity": _identity_location,
    "log_outcome": _log_outcome_location,
    "log": _log_location,
    "logit": _logit_location,
    "probit": _probability_location("probit"),
    "cloglog": _probability_location("cloglog"),
}

def _nb2_variance(y: np.ndarray, mu: np.ndarray, dmu: np.ndarray) -> np.ndarray:
    excess = float(np.sum((y - mu) ** 2 - mu))
    phi = float(np.sum(mu**2)) / excess if excess > 0 else np.inf
    return mu + mu**2 / phi


def _gamma_variance(y: np.ndarray, mu: np.ndarray, dmu: np.ndarray) -> np.ndarray:
    shape = 1 / max(float(np.mean(((y - mu) / mu) ** 2)), 1e-12)
    return mu**2 / shape


def _beta_variance(y: np.ndarray, mu: np.ndarray, dmu: np.ndarray) -> np.ndarray:
    # Var(y) = mu (1 - mu) / (1 + phi): the mean of (y - mu)^2 / (mu (1 - mu)) estimates
    # 1 / (1 + phi)
    base = np.clip(mu * (1 - mu), 1e-12, None)
    return base * min(max(float(np.mean((y - mu) ** 2 / base)), 1e-6), 1.0)


_SIGMA = AuxParam("sigma", 0.0, "residual standard deviation", "student_t(3, 0, {scale})")
_PHI = AuxParam("phi", 0.0, "negative binomial precision (NB2)", "gamma(2, 0.1)")
_ZI = AuxParam("zi", 0.0, "probability of an excess zero", "beta(1, 1)", upper=1.0)
_HU = AuxParam("hu", 0.0, "probability of a zero (the hurdle)", "beta(1, 1)", upper=1.0)
#: bernoulli and binomial under probit and cloglog: the probability is the link's inverse
_BINARY_LINKS = ("probit", "cloglog")

#: One row per family; the order is the order error messages list them in.
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            name="gaussian", link="identity", outcome="real", aux=(_SIGMA,),
            dist="normal", args=("{eta}", "{sigma}"), rng="normal_rng({eta}, {sigma})",
            glm="normal_id_glm", collapse="sufficient statistics",
            conjugate_intercept="normal", allows_se=True,
            cdf="normal", cdf_args=("{eta}", "{sigma}"),
            lccdf="normal_lcdf(-{y} | -{eta}, {sigma})", truncated_rng="normal_truncated",
        ),
        Family(
            name="student_t", link="identity", outcome="real",
            aux=(AuxParam("nu", 1.0, "degrees of freedom", "gamma(2, 0.1)"), _SIGMA),
            dist="student_t", args=("nu", "{eta}", "sigma"),
            rng="student_t_rng(nu, {eta}, sigma)",
            cdf="student_t", cdf_args=("nu", "{eta}", "sigma"),
        ),
        Family(
            name="bernoulli", link="logit", outcome="binary", aux=(),
            dist="bernoulli_logit", args=("{eta}",), rng="bernoulli_logit_rng({eta})",
            mean="inv_logit({eta})", glm="bernoulli_logit_glm", collapse="binomial",
            conjugate_intercept="beta", cdf="bernoulli", cdf_args=("inv_logit({eta})",),
            links=_BINARY_LINKS,
            any_link=LinkForm("bernoulli", ("{mu}",), "bernoulli_rng({mu})", "{mu}",
                              cdf_args=("{mu}",)),
        ),
        Family(
            name="binomial", link="logit", outcome="count", aux=(),
            dist="binomial_logit", args=("{trials}", "{eta}"),
            rng="binomial_rng({trials}, inv_logit({eta}))",
            mean="to_vector({trials}) .* inv_logit({eta})", glm="binomial_logit_glm",
            collapse="binomial", needs_trials=True, conjugate_intercept="beta",
            cdf="binomial", cdf_args=("{trials}", "inv_logit({eta})"),
            links=_BINARY_LINKS,
            any_link=LinkForm("binomial", ("{trials}", "{mu}"), "binomial_rng({trials}, {mu})",
                              "to_vector({trials}) .* {mu}", cdf_args=("{trials}", "{mu}")),
        ),
        Family(
            name="poisson", link="log", outcome="count", aux=(),
            dist="poisson_log", args=("{eta}",), rng="poisson_log_rng({eta})",
            mean="exp({eta})", glm="poisson_log_glm", collapse="poisson sum",
            conjugate_intercept="gamma", cdf="poisson", cdf_args=("exp({eta})",),
        ),
        Family(
            name="negbinomial", link="log", outcome="count",
            aux=(_PHI,),
            dist="neg_binomial_2_log", args=("{eta}", "phi"),
            rng="neg_binomial_2_log_rng({eta}, phi)",
            mean="exp({eta})", glm="neg_binomial_2_log_glm",
            collapse="negative binomial cells",
            pooled_variance=_nb2_variance,
            cdf="neg_binomial_2", cdf_args=("exp({eta})", "phi"),
        ),
        Family(
            name="lognormal", link="identity", outcome="positive", aux=(_SIGMA,),
            dist="lognormal", args=("{eta}", "sigma"), rng="lognormal_rng({eta}, sigma)",
            mean="exp({eta} + square(sigma) / 2)", log_outcome=True,
            cdf="lognormal", cdf_args=("{eta}", "sigma"),
        ),
        Family(
            name="gamma", link="log", outcome="positive",
            aux=(AuxParam("shape", 0.0, "gamma shape", "gamma(2, 0.1)"),),
            dist="gamma", args=("shape", "shape * exp(-{eta})"),
            rng="gamma_rng(shape, shape * exp(-{eta}))", mean="exp({eta})",
            pooled_variance=_gamma_variance,
            cdf="gamma", cdf_args=("shape", "shape * exp(-{eta})"),
        ),
        # brms's zero-inflated and hurdle families: the zero part's probability is one
        # parameter (zi, hu), the count part has the log link; their densities are
        # functions of the program (stan_templates/families.stan.j2), with no CDF
        Family(
            name="zero_inflated_poisson", link="log", outcome="count", aux=(_ZI,),
            dist="zero_inflated_poisson_log", args=("{eta}", "zi"),
            rng="zero_inflated_poisson_log_rng({eta}, zi)", mean="(1 - zi) * exp({eta})",
            functions="zero_inflated_poisson",
        ),
        Family(
            name="zero_inflated_negbinomial", link="log", outcome="count", aux=(_PHI, _ZI),
            dist="zero_inflated_neg_binomial_2_log", args=("{eta}", "phi", "zi"),
            rng="zero_inflated_neg_binomial_2_log_rng({eta}, phi, zi)",
            mean="(1 - zi) * exp({eta})", functions="zero_inflated_negbinomial",
        ),
        Family(
            name="hurdle_poisson", link="log", outcome="count", aux=(_HU,),
            dist="hurdle_poisson_log", args=("{eta}", "hu"),
            rng="hurdle_poisson_log_rng({eta}, hu)",
            mean="(1 - hu) * exp({eta}) ./ -expm1(-exp({eta}))",
            functions="hurdle_poisson",
        ),
        Family(
            name="hurdle_negbinomial", link="log", outcome="count", aux=(_PHI, _HU),
            dist="hurdle_neg_binomial_2_log", args=("{eta}", "phi", "hu"),
            rng="hurdle_neg_binomial_2_log_rng({eta}, phi, hu)",
            mean="(1 - hu) * exp({eta}) ./ -expm1(-phi * log1p_exp({eta} - log(phi)))",
            functions="hurdle_negbinomial",
        ),
        # brms's beta: mean inv_logit(eta), precision phi (Stan's beta_proportion)
        Family(
            name="beta", link="logit", outcome="proportion",
            aux=(AuxParam("phi", 0.0, "beta precision", "gamma(0.01, 0.01)"),),
            dist="beta_proportion", args=("inv_logit({eta})", "phi"),
            rng="beta_proportion_rng(inv_logit({eta}), phi)", mean="inv_logit({eta})",
            pooled_variance=_beta_variance,
            cdf="beta_proportion", cdf_args=("inv_logit({eta})", "phi"),
        ),
        # brms's cumulative("logit"): P(y <= k) = inv_logit(Intercept[k] - eta), the
        # cutpoints Intercept at the predictors' means, which every eta is relative to
        Family(
            name="cumulative", link="logit", outcome="ordinal", aux=(),
            dist="ordered_logistic", args=("{eta}", "Intercept"),
            rng="ordered_logistic_array_rng({eta}, Intercept)",
            mean="ordered_logistic_mean({eta}, Intercept)", functions="cumulative",
            intercept_prior="student_t(3, 0, 2.5)", cutpoints=True,
        ),
    )
}  # fmt: skip


def family(name: object, link: object = None) -> Family:
    """The table row for ``name`` under `link` (None: the row's own); raises SpecError
    listing the families, or the family's links, otherwise."""
    if not isinstance(name, str) or name not in FAMILIES:
        raise SpecError(f"unknown family {name!r}; choose one of: {', '.join(FAMILIES)}")
    if link is not None and not isinstance(link, str):
        raise SpecError(f"link must be a string such as 'probit', not {type(link).__name__}")
    return FAMILIES[name].with_link(link)
