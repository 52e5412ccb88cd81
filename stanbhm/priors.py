"""Priors: parsed once into objects, checked against their parameter's bounds, looked up here.

Three jobs, kept together so no other module parses a prior or bounds a parameter by it:

* **Parsing.** A prior string is pasted into Stan code, so only a call to a listed
  distribution with numeric arguments passes, character by character. The result is a
  `Prior` with its support, so a ``uniform(0, 10)`` on ``sd`` can give the declaration
  ``<lower=0, upper=10>`` and a ``lognormal`` on the unbounded coefficients is refused.
* **Keys.** Which keys a model accepts (``b``, ``b_x``, ``sd``, ``sd_<term>``, ``cor``,
  the family's auxiliary parameters...) and which parameter each one lands on.
* **Bounds.** `intersect`: the bounds a declaration needs under its prior.

The keys take the model's names as plain values, so this module reads no spec: `spec`
builds on it, and `priorbook` (which reads the spec) resolves a model's priors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .declarations import Declaration
from .errors import SpecError
from .names import stan_identifier

__all__ = [
    "DISTRIBUTIONS",
    "HORSESHOE_ARGUMENTS",
    "Bounds",
    "Horseshoe",
    "Prior",
    "PriorData",
    "PriorStatement",
    "check_user_priors",
    "fmt",
    "intersect",
    "parse_prior",
    "prior_data_names",
    "prior_keys",
    "prior_statement",
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

#: What each argument of a distribution is, by position: a data-derived argument is
#: passed as the data entry ``prior_<role>_<parameter>``.
ROLES: dict[str, tuple[str, ...]] = {
    "normal": ("location", "scale"), "student_t": ("df", "location", "scale"),
    "cauchy": ("location", "scale"), "double_exponential": ("location", "scale"),
    "logistic": ("location", "scale"), "std_normal": (), "exponential": ("rate",),
    "gamma": ("shape", "rate"), "inv_gamma": ("shape", "scale"),
    "lognormal": ("location", "scale"), "weibull": ("shape", "scale"),
    "beta": ("alpha", "beta"), "uniform": ("lower", "upper"), "lkj_corr_cholesky": ("eta",),
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
    #: positions of the arguments computed from the data (a default's location, its
    #: scale): the program reads them as data, so the same formula on new data keeps
    #: the same program and its compiled executable
    from_data: tuple[int, ...] = ()

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
    columns: Sequence[tuple[str, str]], intercept: bool,
    terms: Sequence[tuple[str, str, bool]], aux: Sequence[str],
) -> dict[str, tuple[str, str | None]]:
    """Valid prior keys for this model, each mapped to (class, target or None).

    The model is given by its names: each population-level column's (name, Stan
    spelling), whether it has an intercept, each group term's (name, Stan spelling,
    whether it has correlations: correlated and more than one effect), and the family's
    auxiliary parameters the model samples.

    Targets are fixed-effect column names and group *term* names (``state_age`` for the
    second term on ``state``). Canonical keys, spelled as the fit's labels
    (``b_trt[T.b]``), come first in listing order; Stan-spelled aliases (``b_x_z`` for
    ``b_x:z``, ``sd_a_b`` for ``sd_a:b``) and brms's (``b_trtb``) follow.
    """
    canonical: dict[str, tuple[str, str | None]] = {}
    aliases: dict[str, tuple[str, str | None]] = {}
    correlated = [t for t in terms if t[2]]
    available = {"b": bool(columns), "Intercept": intercept, "sd": bool(terms),
                 "cor": bool(correlated)}
    for cls in _CLASSES:
        if not available[cls]:
            continue
        canonical[cls] = (cls, None)
        if cls == "b":
            for name, stan_name in columns:
                canonical[f"b_{name}"] = ("b", name)
                aliases[stan_name] = ("b", name)
                aliases.setdefault(f"b_{brms_name(name)}", ("b", name))
        elif cls in ("sd", "cor"):
            for term_name, stan_name, _ in terms if cls == "sd" else correlated:
                canonical[f"{cls}_{term_name}"] = (cls, term_name)
                aliases[f"{cls}_{stan_name}"] = (cls, term_name)
    for name in aux:
        canonical[name] = (name, None)
    return canonical | {k: v for k, v in aliases.items() if k not in canonical}


def brms_name(column: str) -> str:
    """brms's name for a population-level column: a factor's level follows its name
    (``trt[T.b]`` -> ``trtb``) and other characters but letters, digits, ``_``, ``.``
    and ``:`` go (``scale(age)`` -> ``scaleage``)."""
    joined = re.sub(r"\[T\.([^\]]*)\]", r"\1", column)
    return re.sub(r"[^A-Za-z0-9_.:]", "", joined)


def dropped_prior_keys(columns: Sequence[str]) -> dict[str, str]:
    """The prior keys that would name the population columns dropped as aliased, each
    mapped to its column: a prior for one of them is refused with the reason, not as a
    misspelling, since the formula does name that column."""
    taken: set[str] = set()
    spelled = []
    for name in columns:
        spelled.append((name, stan_identifier(name, prefix="b_", taken=taken)))
        taken.add(spelled[-1][1])
    table = prior_keys(tuple(spelled), False, (), ())
    return {key: target for key, (_, target) in table.items() if target is not None}


def _canonical_keys(table: Mapping[str, tuple[str, str | None]]) -> list[str]:
    return [
        key
        for key, (cls, target) in table.items()
        if key == (cls if target is None else f"{cls}_{target}")
    ]


def check_user_priors(
    priors: Mapping[str, Any], table: Mapping[str, tuple[str, str | None]],
    dropped: Mapping[str, str] | None = None,
) -> dict[tuple[str, str | None], tuple[str, Prior]]:
    """Parse the user's priors: ``{(class, target): (key as given, Prior)}``.

    Refuses unknown keys (listing the valid ones), a key of a column in `dropped`
    (`dropped_prior_keys`: the columns left out as aliased) with that reason, two keys
    for one parameter, and a horseshoe on ``b`` next to a prior for one coefficient (the
    horseshoe sets them all).
    """
    parsed: dict[tuple[str, str | None], tuple[str, Prior]] = {}
    for key, value in priors.items():
        if key not in table and dropped and key in dropped:
            raise SpecError(
                f"prior '{key}': fixed-effect column '{dropped[key]}' was dropped as aliased "
                f"(a linear combination of the columns before it on the observed rows), so "
                f"the model has no coefficient for it; remove the prior"
            )
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


# --------------------------------------------------------------------------- bounds


def intersect(key: str, prior: Prior, lower: float, what: str, allow: bool,
              upper: float = _INF) -> Bounds:
    """The bounds a parameter with natural bounds `lower` (and `upper`, a probability's
    1) needs under `prior`."""
    lo, hi = prior.support
    new = Bounds(max(lower, lo), min(upper, hi))
    if new.lower >= new.upper:
        where = f"at or above {_number(lower)}" if upper == _INF else \
            f"between {_number(lower)} and {_number(upper)}"
        raise SpecError(f"prior '{key}' = '{prior}' puts no mass where {what} can be ({where})")
    # A positive-support prior on a parameter already bounded at 0 needs no new bound.
    if new.lower == lower and new.upper == upper:
        return Bounds(lower, upper)
    if not allow:
        raise SpecError(
            f"prior '{key}' = '{prior}' has support [{_number(lo)}, {_number(hi)}], but "
            f"{what} is unbounded and stanbhm does not bound it; use a prior on the "
            f"whole real line such as normal()"
        )
    return new


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class PriorData:
    """One data entry holding prior arguments computed from the data: a number, or a
    vector with one per element of the parameter that has it."""

    name: str  # prior_<role>_<parameter>
    role: str  # location, scale...
    parameter: str
    values: tuple[float, ...]
    size: str | None = None  # None: a scalar; else the vector's size as the program says it

    @property
    def declaration(self) -> Declaration:
        """As the data block declares it: a scale is positive."""
        bound = "" if self.role in ("location", "lower", "upper") else "<lower=0>"
        kind = f"real{bound}" if self.size is None else f"vector{bound}[{self.size}]"
        return Declaration("data", kind, self.name,
                           f"{self.role} of {self.parameter}'s prior, from the data")

    @property
    def value(self) -> float | list[float]:
        return self.values[0] if self.size is None else list(self.values)


@dataclass(frozen=True)
class PriorStatement:
    """The prior statement of one parameter, scalar or vector, with the data it reads.

    Arguments computed from the data are data entries (`PriorData`). A vector whose
    elements share a distribution gets one vectorized call: ``b ~ normal(0,
    prior_scale_b)``, or, when only the user's numbers differ, ``b ~ normal(0, [1,
    2]')``. Otherwise (the distributions differ, or the vector literal would be longer
    than stanc's format width) a function ``<target>_prior_lpdf`` with one line per
    element, still used as one ``target ~ <target>_prior()`` statement, which stanc's
    pedantic mode accepts.
    """

    target: str
    rhs: str | None
    lines: tuple[tuple[str, str], ...] = ()  # function path: (log density call, element)
    data: tuple[PriorData, ...] = ()

    @property
    def function(self) -> str:
        return f"{self.target}_prior"

    @property
    def sampling(self) -> str:
        """The right-hand side of ``target ~ ...``: a function reads its data as
        arguments, as functions do not see the data block."""
        return self.rhs or f"{self.function}({', '.join(d.name for d in self.data)})"

    @property
    def parameters(self) -> list[str]:
        """The function's arguments, the vector first."""
        return [f"vector {self.target}", *(f"data {'real' if d.size is None else 'vector'} "
                                          f"{d.name}" for d in self.data)]

    def data_values(self) -> dict[str, float | list[float]]:
        return {d.name: d.value for d in self.data}


#: Generated lines stay within this width, so ``stanc --auto-format`` never rewraps them.
LINE_WIDTH = 80


def _data_name(role: str, target: str) -> str:
    return f"prior_{role}_{target}"


def prior_data_names(targets: Sequence[str]) -> frozenset[str]:
    """Every name a prior's data entries of these parameters can take."""
    roles = {role for names in ROLES.values() for role in names}
    return frozenset(_data_name(role, target) for role in roles for target in targets)


def prior_statement(target: str, priors: Sequence[Prior],
                    labels: Sequence[str] | None = None, size: str | None = None,
                    ) -> PriorStatement:
    """The statement for parameter `target`: a scalar when `labels` is None, else a
    vector whose elements (named `labels`, `size` of them as the program declares it)
    have `priors`; see `PriorStatement` for the forms it takes."""
    if labels is None:
        (prior,) = priors
        roles = ROLES.get(prior.dist, ())
        data = tuple(PriorData(_data_name(roles[i], target), roles[i], target,
                               (float(prior.args[i]),)) for i in prior.from_data)
        args = [_data_name(roles[i], target) if i in prior.from_data else arg
                for i, arg in enumerate(prior.args)]
        return PriorStatement(target, f"{prior.dist}({', '.join(args)})", data=data)
    size = size or str(len(priors))
    if len({p.dist for p in priors}) == 1:
        roles = ROLES.get(priors[0].dist, ())
        args, data = [], []
        for i, column in enumerate(zip(*(p.args for p in priors), strict=True)):
            if any(i in p.from_data for p in priors):
                name = _data_name(roles[i], target)
                data.append(PriorData(name, roles[i], target,
                                      tuple(float(a) for a in column), size))
                args.append(name)
            else:
                args.append(column[0] if len(set(column)) == 1 else f"[{', '.join(column)}]'")
        rhs = f"{priors[0].dist}({', '.join(args)})"
        if data or len(f"  {target} ~ {rhs};") <= LINE_WIDTH:  # data names: no literal
            return PriorStatement(target, rhs, data=tuple(data))
    taken: dict[str, list[float]] = {}
    lines = []
    for i, (p, label) in enumerate(zip(priors, labels, strict=True), start=1):
        roles = ROLES.get(p.dist, ())
        args = []
        for j, arg in enumerate(p.args):
            if j in p.from_data:
                values = taken.setdefault(roles[j], [])
                values.append(float(arg))
                arg = f"{_data_name(roles[j], target)}[{len(values)}]"
            args.append(arg)
        lines.append((f"{p.dist}_lpdf({target}[{i}] | {', '.join(args)})", label))
    data = tuple(PriorData(_data_name(role, target), role, target, tuple(values),
                           str(len(values))) for role, values in taken.items())
    return PriorStatement(target, None, tuple(lines), data)
