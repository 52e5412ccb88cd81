"""Priors: parsed once into objects, checked against their parameter's bounds, looked up here.

Three jobs, kept together so no other module parses or defaults a prior:

* **Parsing.** A prior string is pasted into Stan code, so only a call to a listed
  distribution with numeric arguments passes, character by character. The result is a
  `Prior` with its support, so a ``uniform(0, 10)`` on ``sd`` can give the declaration
  ``<lower=0, upper=10>`` and a ``lognormal`` on the unbounded coefficients is refused.
* **Keys.** Which keys a model accepts (``b``, ``b_x``, ``sd``, ``sd_<term>``, ``cor``,
  the family's auxiliary parameters...) and which parameter each one lands on.
* **Resolution.** `resolve` turns the user's priors and data-scaled defaults into a
  `PriorBook`: one prior per scalar (per coefficient, per effect's sd) with the bounds
  the declaration needs. Defaults follow rstanarm/brms and are documented in docs/models.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SpecError
from .families import Family

if TYPE_CHECKING:
    from .spec import FixedEffects, GroupEffects, ModelSpec

__all__ = [
    "DISTRIBUTIONS",
    "HORSESHOE_ARGUMENTS",
    "Bounds",
    "Horseshoe",
    "Prior",
    "PriorBook",
    "VectorPrior",
    "check_user_priors",
    "parse_prior",
    "prior_keys",
    "resolve",
    "vector_prior",
]

_INF = math.inf

#: Distributions a prior may use: number of arguments and support. ``None`` arguments
#: mark horseshoe (keyword arguments); a support of ``None`` means "its own arguments"
#: (uniform) or "not a scalar prior" (lkj_corr_cholesky).
DISTRIBUTIONS: dict[str, tuple[int | None, tuple[float, float] | None]] = {
    "normal": (2, (-_INF, _INF)),
    "student_t": (3, (-_INF, _INF)),
    "cauchy": (2, (-_INF, _INF)),
    "double_exponential": (2, (-_INF, _INF)),
    "logistic": (2, (-_INF, _INF)),
    "std_normal": (0, (-_INF, _INF)),
    "exponential": (1, (0.0, _INF)),
    "gamma": (2, (0.0, _INF)),
    "inv_gamma": (2, (0.0, _INF)),
    "lognormal": (2, (0.0, _INF)),
    "weibull": (2, (0.0, _INF)),
    "beta": (2, (0.0, 1.0)),
    "uniform": (2, None),
    "lkj_corr_cholesky": (1, None),
    "horseshoe": (None, None),
}

#: Arguments that must be positive, by position, with the names Stan's functions
#: reference gives them: a scale, rate, shape or degrees of freedom of 0 or below makes
#: the density undefined, and CmdStan would reject every draw.
POSITIVE_ARGUMENTS: dict[str, dict[int, str]] = {
    "normal": {1: "sigma"}, "student_t": {0: "nu", 2: "sigma"}, "cauchy": {1: "sigma"},
    "double_exponential": {1: "sigma"}, "logistic": {1: "sigma"}, "exponential": {0: "beta"},
    "gamma": {0: "alpha", 1: "beta"}, "inv_gamma": {0: "alpha", 1: "beta"},
    "lognormal": {1: "sigma"}, "weibull": {0: "alpha", 1: "sigma"},
    "beta": {0: "alpha", 1: "beta"}, "lkj_corr_cholesky": {0: "eta"},
}

#: Keyword arguments of the regularized horseshoe on ``b``, with brms's defaults.
HORSESHOE_ARGUMENTS = {"df": 1.0, "scale_global": 1.0, "df_slab": 4.0, "scale_slab": 2.0}

_PRIOR_CHARS = re.compile(r"[A-Za-z0-9_.,()=+\- ]")
_PRIOR_CALL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*")
_NUMBER = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_KEYWORD_ARG = re.compile(rf"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*({_NUMBER})")

# Prior classes in the order valid keys are listed; aux classes come from the family.
_CLASSES = ("b", "Intercept", "sd", "cor")


def fmt(x: float) -> str:
    """Numbers in generated priors: three significant digits, deterministic."""
    return f"{x:.3g}"


@dataclass(frozen=True)
class Prior:
    """One distribution call: ``normal(0, 2.5)``.

    ``args`` keep the user's spelling of each number (validated), so the program shows
    what was asked for; defaults come formatted by `fmt`.
    """

    dist: str
    args: tuple[str, ...] = ()
    kwargs: tuple[tuple[str, float], ...] = ()

    def __str__(self) -> str:
        if self.dist == "horseshoe":
            inner = ", ".join(f"{k}={fmt(v)}" for k, v in self.kwargs)
        else:
            inner = ", ".join(self.args)
        return f"{self.dist}({inner})"

    @property
    def support(self) -> tuple[float, float]:
        if self.dist == "uniform":
            return float(self.args[0]), float(self.args[1])
        support = DISTRIBUTIONS[self.dist][1]
        return support if support is not None else (-_INF, _INF)


@dataclass(frozen=True)
class Bounds:
    """A declaration's bounds; ``str`` gives the Stan spelling, ``""`` when unbounded."""

    lower: float = -_INF
    upper: float = _INF

    def __str__(self) -> str:
        parts = []
        if self.lower > -_INF:
            parts.append(f"lower={_number(self.lower)}")
        if self.upper < _INF:
            parts.append(f"upper={_number(self.upper)}")
        return f"<{', '.join(parts)}>" if parts else ""


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True)
class Horseshoe:
    """Regularized horseshoe on the coefficients of standardized columns (Piironen &
    Vehtari 2017), non-centered; the global scale is per sigma for gaussian-like models,
    as in brms, so scale_global is relative to the residual scale."""

    settings: Prior
    local: Prior  # hs_local, half
    global_: Prior  # hs_global, half; its scale may be "... * sigma"
    slab: Prior  # hs_slab = c^2 / scale_slab^2
    slab_scale2: str


# --------------------------------------------------------------------------- parsing


def parse_prior(key: str, value: Any, cls: str) -> Prior:
    """Parse and check the prior given for `key` (of class `cls`); SpecError names the key."""
    if not isinstance(value, str):
        raise SpecError(
            f"prior '{key}' must be a string such as 'normal(0, 2.5)', not {type(value).__name__}"
        )
    where = f"prior '{key}' = '{value}'"
    for char in value:
        if not _PRIOR_CHARS.fullmatch(char):
            raise SpecError(f"{where}: character {char!r} is not allowed")
    call = _PRIOR_CALL.fullmatch(value)
    if call is None:
        raise SpecError(f"{where}: expected a distribution call such as 'normal(0, 2.5)'")
    name, inner = call.group(1), call.group(2).strip()
    if name not in DISTRIBUTIONS:
        raise SpecError(f"{where}: unknown distribution '{name}'")
    args = [arg.strip() for arg in inner.split(",")] if inner else []
    if (cls == "cor") != (name == "lkj_corr_cholesky"):
        if cls == "cor":
            raise SpecError(f"{where}: a correlation prior must be lkj_corr_cholesky(eta)")
        raise SpecError(f"{where}: lkj_corr_cholesky() is only for correlation priors ('cor')")
    if name == "horseshoe":
        return _parse_horseshoe(key, where, args)
    for arg in args:
        if not _NUMBER_RE.fullmatch(arg):
            raise SpecError(f"{where}: argument '{arg}' is not a number")
    arity = DISTRIBUTIONS[name][0]
    if len(args) != arity:
        plural = "argument" if arity == 1 else "arguments"
        raise SpecError(f"{where}: {name}() takes {arity} {plural}, got {len(args)}")
    for position, meaning in POSITIVE_ARGUMENTS.get(name, {}).items():
        if not float(args[position]) > 0:
            raise SpecError(f"{where}: {name}'s {meaning} (argument {position + 1}) must be "
                            f"positive, not {args[position]}")
    if name == "uniform" and not float(args[0]) < float(args[1]):
        raise SpecError(f"{where}: the lower limit must be below the upper limit")
    return Prior(name, tuple(args))


def _parse_horseshoe(key: str, where: str, args: list[str]) -> Prior:
    if key != "b":
        raise SpecError(f"{where}: horseshoe() is only allowed for the whole class 'b'")
    values = dict(HORSESHOE_ARGUMENTS)
    seen: set[str] = set()
    for arg in args:
        match = _KEYWORD_ARG.fullmatch(arg)
        if match is None:
            raise SpecError(f"{where}: argument '{arg}' is not of the form name=number")
        name = match.group(1)
        if name not in HORSESHOE_ARGUMENTS:
            raise SpecError(
                f"{where}: unknown horseshoe argument '{name}'; "
                f"use {', '.join(HORSESHOE_ARGUMENTS)}"
            )
        if name in seen:
            raise SpecError(f"{where}: horseshoe argument '{name}' given twice")
        seen.add(name)
        values[name] = float(match.group(2))
    if min(values.values()) <= 0:
        raise SpecError(f"{where}: every horseshoe setting must be positive")
    return Prior("horseshoe", (), tuple(values.items()))


# --------------------------------------------------------------------------- keys


def prior_keys(
    fixed: FixedEffects, groups: Sequence[GroupEffects], fam: Family, has_se: bool
) -> dict[str, tuple[str, str | None]]:
    """Valid prior keys for this model, each mapped to (class, target or None).

    Targets are fixed-effect column names and group *term* names (``state_age`` for the
    second term on ``state``). Canonical keys, spelled as the fit's labels
    (``b_trt[T.b]``), come first in listing order; Stan-spelled aliases (``b_x_z`` for
    ``b_x:z``, ``sd_a_b`` for ``sd_a:b``) and brms's (``b_trtb``) follow.
    """
    canonical: dict[str, tuple[str, str | None]] = {}
    aliases: dict[str, tuple[str, str | None]] = {}
    correlated = [g for g in groups if g.correlated and g.k > 1]
    available = {"b": fixed.p > 0, "Intercept": fixed.intercept, "sd": bool(groups),
                 "cor": bool(correlated)}
    for cls in _CLASSES:
        if not available[cls]:
            continue
        canonical[cls] = (cls, None)
        if cls == "b":
            for name, stan_name in zip(fixed.names, fixed.stan_names, strict=True):
                canonical[f"b_{name}"] = ("b", name)
                aliases[stan_name] = ("b", name)
                aliases.setdefault(f"b_{brms_name(name)}", ("b", name))
        elif cls in ("sd", "cor"):
            for group in groups if cls == "sd" else correlated:
                canonical[f"{cls}_{group.term_name}"] = (cls, group.term_name)
                aliases[f"{cls}_{group.stan_name}"] = (cls, group.term_name)
    for name in fam.aux_names(has_se):
        canonical[name] = (name, None)
    return canonical | {k: v for k, v in aliases.items() if k not in canonical}


def brms_name(column: str) -> str:
    """brms's name for a population-level column: a factor's level follows its name
    (``trt[T.b]`` -> ``trtb``) and other characters but letters, digits, ``_``, ``.``
    and ``:`` go (``scale(age)`` -> ``scaleage``)."""
    joined = re.sub(r"\[T\.([^\]]*)\]", r"\1", column)
    return re.sub(r"[^A-Za-z0-9_.:]", "", joined)


def _canonical_keys(table: Mapping[str, tuple[str, str | None]]) -> list[str]:
    return [
        key
        for key, (cls, target) in table.items()
        if key == (cls if target is None else f"{cls}_{target}")
    ]


def check_user_priors(
    priors: Mapping[str, Any], table: Mapping[str, tuple[str, str | None]]
) -> dict[tuple[str, str | None], tuple[str, Prior]]:
    """Parse the user's priors: ``{(class, target): (key as given, Prior)}``.

    Refuses unknown keys (listing the valid ones), two keys for one parameter, and a
    horseshoe on ``b`` next to a prior for one coefficient (the horseshoe sets them all).
    """
    parsed: dict[tuple[str, str | None], tuple[str, Prior]] = {}
    for key, value in priors.items():
        if key not in table:
            raise SpecError(
                f"unknown prior '{key}'; valid keys for this model: "
                f"{', '.join(_canonical_keys(table))}"
            )
        target = table[key]
        if target in parsed:
            raise SpecError(
                f"priors '{parsed[target][0]}' and '{key}' set the same parameter; keep one"
            )
        parsed[target] = (key, parse_prior(key, value, target[0]))
    whole_b = parsed.get(("b", None))
    if whole_b and whole_b[1].dist == "horseshoe":
        single = [key for (cls, target), (key, _) in parsed.items() if cls == "b" and target]
        if single:
            raise SpecError(
                f"prior '{single[0]}' cannot be combined with the horseshoe on 'b', which "
                f"sets every coefficient's prior; drop '{single[0]}' or the horseshoe"
            )
    return parsed


# --------------------------------------------------------------------------- resolution


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


def _intersect(key: str, prior: Prior, lower: float, what: str, allow: bool) -> Bounds:
    """The bounds a parameter with natural lower bound `lower` needs under `prior`."""
    lo, hi = prior.support
    new = Bounds(max(lower, lo), hi)
    if new.lower >= new.upper:
        raise SpecError(
            f"prior '{key}' = '{prior}' puts no mass where {what} can be "
            f"(at or above {_number(lower)})"
        )
    # A positive-support prior on a parameter already bounded at 0 needs no new bound.
    if new.lower == lower and new.upper == _INF:
        return Bounds(lower)
    if not allow:
        raise SpecError(
            f"prior '{key}' = '{prior}' has support [{_number(lo)}, {_number(hi)}], but "
            f"{what} is unbounded and stanbhm does not bound it; use a prior on the "
            f"whole real line such as normal()"
        )
    return new


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
            intercept_bounds = _intersect(given[0], intercept, -_INF, "Intercept", True)
        else:
            loc = fam.intercept_location(y, trials, offset)
            intercept = Prior("student_t", ("3", fmt(loc), fmt(scale)))

    horseshoe = None
    b: list[Prior] = []
    whole = user("b")
    if whole and whole[1].dist == "horseshoe":
        horseshoe = _horseshoe(whole[1], fam.aux_names(spec.se is not None))
        b = [whole[1]] * spec.fixed.p
    else:
        sds = _column_sds(spec.fixed.X, spec.observed)
        for j, name in enumerate(spec.fixed.names):
            given = user("b", name)
            if given:
                _intersect(given[0], given[1], -_INF, "a coefficient", False)
                b.append(given[1])
            else:
                sx = sds[j]
                b.append(Prior("normal", ("0", fmt(scale / sx if sx > 0 else scale))))

    sd: dict[str, tuple[Prior, ...]] = {}
    sd_bounds: dict[str, Bounds] = {}
    cor: dict[str, Prior] = {}
    for g in spec.groups:
        given = user("sd", g.term_name)
        if given:
            sd[g.term_name] = (given[1],) * g.k
            sd_bounds[g.term_name] = _intersect(given[0], given[1], 0.0, "a standard deviation",
                                                True)
        else:
            sd[g.term_name] = tuple(
                Prior("student_t", ("3", "0", fmt(_effect_scale(scale, g, k, spec.observed))))
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
            aux_bounds[param.name] = _intersect(given[0], given[1], param.lower, param.name, True)
        else:
            aux[param.name] = parse_prior(param.name, param.default_prior.format(scale=fmt(scale)),
                                          param.name)
            aux_bounds[param.name] = Bounds(param.lower)
    return PriorBook(
        intercept=intercept, intercept_bounds=intercept_bounds, b=tuple(b), horseshoe=horseshoe,
        sd=sd, sd_bounds=sd_bounds, cor=cor, aux=aux, aux_bounds=aux_bounds,
    )


def _sd(values: np.ndarray) -> float:
    """The sample sd, 0 for a constant column (whose float sd is rounding noise, ~1e-17,
    which would make a default prior scale of 1e16)."""
    if len(values) < 2 or np.ptp(values) == 0:
        return 0.0
    return float(np.std(values, ddof=1))


def _column_sds(X: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """`_sd` of each column over the observed rows, in one pass over X: picking a column
    of a 3M-row matrix at a time took seconds."""
    rows = X if observed.all() else X[observed]
    if len(rows) < 2:
        return np.zeros(X.shape[1])
    return np.where(np.ptp(rows, axis=0) == 0, 0.0, np.std(rows, axis=0, ddof=1))


def _effect_scale(scale: float, g: GroupEffects, k: int, observed: np.ndarray) -> float:
    """A slope's sd prior is scaled by 1/sd(x), like its coefficient's: a level may move
    the outcome by a few outcome sds per sd of x. The intercept column keeps ``scale``."""
    if g.effect_names[k] == "Intercept":
        return scale
    sx = _sd(g.Z[observed, k])
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


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class VectorPrior:
    """The prior statement of a vector parameter (``b``, a term's ``sd``).

    One call when it fits on a line: ``b ~ normal(0, 2.5)`` when every element shares
    the prior, ``b ~ normal(0, [2.92, 1.5]')`` when only arguments differ. Otherwise (the
    distributions differ, or the vector literal would be longer than stanc's format
    width) a function ``<target>_prior_lpdf`` with one line per element, still used as
    one ``target ~ <target>_prior()`` statement, which stanc's pedantic mode accepts.
    """

    target: str
    rhs: str | None
    lines: tuple[tuple[str, str], ...] = ()  # function path: (log density call, element)

    @property
    def function(self) -> str:
        return f"{self.target}_prior"


#: Generated lines stay within this width, so ``stanc --auto-format`` never rewraps them.
LINE_WIDTH = 80


def vector_prior(target: str, priors: Sequence[Prior], labels: Sequence[str]) -> VectorPrior:
    """The prior statement for vector `target` whose elements (named `labels`) have
    `priors`; see `VectorPrior` for the forms it takes."""
    if len(set(priors)) == 1:
        return VectorPrior(target, str(priors[0]))
    if len({p.dist for p in priors}) == 1:
        columns = zip(*(p.args for p in priors), strict=True)
        args = [col[0] if len(set(col)) == 1 else f"[{', '.join(col)}]'" for col in columns]
        rhs = f"{priors[0].dist}({', '.join(args)})"
        if len(f"  {target} ~ {rhs};") <= LINE_WIDTH:
            return VectorPrior(target, rhs)
    lines = tuple(
        (f"{p.dist}_lpdf({target}[{i}] | {', '.join(p.args)})", label)
        for i, (p, label) in enumerate(zip(priors, labels, strict=True), start=1)
    )
    return VectorPrior(target, None, lines)
