"""Every modelling decision, made once, with the reason it was made.

``make_plan(spec, options)`` validates the options, builds the program's parts from the
spec (fixed effects, one part per group term, the family's auxiliary parameters, the
offset) and the likelihood, picks every identifier clear of the names the templates
use, then runs the passes (`default_passes`, in order), each recording a `Decision`,
and turns on predictions (`predict.with_predictions`). The plan it returns is data
(`plan`); this module is the one that knows which passes there are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import PlanError
from .families import FAMILIES
from .likelihood import Likelihood
from .names import Namespace
from .parts import AuxParam, AuxPart, FixedPart, GroupPart, OffsetPart
from .passes import (
    Absorb,
    BlockProducts,
    Collapse,
    Effects,
    Fold,
    Glm,
    JointStatistics,
    Marginalize,
    Opencl,
    OutputPass,
    Parameterize,
    Pass,
    RowAnalysis,
    RowData,
    ScaleCoefficients,
    Steps,
    SufficientStatistics,
    Threads,
    run_passes,
)
from .passes.parameterization import CHOICES
from .plan import Options, Plan
from .predict import with_predictions
from .priorbook import resolve
from .priors import prior_data_names
from .rewrites import check_rewrites
from .spec import ModelSpec
from .strategies import Rowwise

__all__ = ["RESERVED", "Options", "Plan", "default_passes", "make_plan", "validate"]

#: Every name the templates use outside a group term's own names; user terms never get
#: these (or anything derived from them), whatever the data's column and level names.
RESERVED = frozenset(
    {
        "N", "N_obs", "obs", "y", "se", "se_obs", "trials", "trials_obs", "offs", "offs_obs",
        "K", "X", "X_obs", "Xc", "means_X", "sds_X", "scale_b", "Intercept", "b", "b_Intercept",
        "b_prior", "Xc_free", "hs_z", "hs_local", "hs_global", "hs_slab", "hs_scale", "sigma", "nu",
        "phi", "shape", "eta", "resid", "scaled", "level_sums", "sum_log_rising_ratio",
        "rising_series", "log_lik", "y_rep", "prior_only",
        "i", "k", "lp", "ss_cols", "ss_bhat", "ss_nnz", "ss_w", "ss_v", "ss_u", "ss_m", "ss_rss",
        "ss_theta", "ss_dev", "ss_q",
        "ss_ysum", "ss_xsum", "N_ms", "ms_level", "ms_n", "ms_count", "ms_bhat", "ms_nnz",
        "ms_w", "ms_v", "ms_u", "ms_m", "ms_Rdev", "ms_Rdev_cells", "ss_Rdev", "ms_rss",
        "ms_dev", "ms_q", "ms_weight", "js_P", "js_B", "js_M", "js_start", "js_R", "js_q",
        "js_n", "js_count", "js_phi", "js_e", "js_ss", "js_weight", "js_wsum", "ss_wsum",
        "grainsize",
        "row_index", "partial_log_lik", "slice", "start",
        "end", "N_new", "X_new", "offs_new", "se_new", "trials_new", "new_levels_sampled",
        "eta_new", "mu_new", "y_new",
        "lb_new", "ub_new", "N_exact_cell", "cens_cell", "y2_cell",
        "N_cell", "cell", "y_cell", "n_cell", "ss_cell", "wsum_cell", "trials_cell",
        "log_exposure_cell",
        "X_cell",
        "Xc_cell", "Xc_free_cell", "offs_cell", "resid_ss", "rate_cell",
        "level_index", "n_levels", "first", "n_rows", "at", "v", "m", "last",
        "y_vec", "y_cell_vec", "inv_var", "N_value", "value", "value_count", "t_cell",
        # the families' (`families`): zero-inflated, hurdle and ordinal
        "zi", "hu", "N_cat",
        # the addition terms' (`likelihood`)
        "cens", "y2", "weights", "lb", "ub", "tries", "N_exact", "exact", "N_right",
        "right", "N_left", "left", "N_interval", "interval",
    }
) | prior_data_names(("Intercept", "b", *sorted({a.name for f in FAMILIES.values()
                                                   for a in f.aux})))  # fmt: skip


def validate(options: Options, spec: ModelSpec) -> None:
    """PlanError for a malformed request, naming the option."""
    _check_parameterization(options.parameterization, spec)
    for name in ("log_lik", "y_rep", "effects"):
        marginal = name == "log_lik"  # or the log likelihood with a term integrated out
        allowed = (True, False, "auto", *(("marginal",) if marginal else ()))
        if getattr(options, name) not in allowed:
            choices = "True, False, 'auto' or 'marginal'" if marginal else \
                "True, False or 'auto'"
            raise PlanError(f"{name}={getattr(options, name)!r}: use {choices}")
    check_rewrites(options.rewrites, spec)
    if not isinstance(options.glm, str) or options.glm not in ("auto", "never"):
        raise PlanError(f"glm={options.glm!r}: use 'auto' (Stan's GLM kernels wherever the "
                        "likelihood has their form) or 'never'")
    threads = options.threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise PlanError(f"threads={threads!r}: use None or a positive number of threads")
    size = options.grainsize
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise PlanError(f"grainsize={size!r}: use None (the default rule) or a positive "
                        "number of rows")
    if size is not None and threads in (None, 1):
        raise PlanError(f"grainsize={size!r} sets the slices of reduce_sum, which runs "
                        "with threads > 1 only; pass threads too")
    _check_opencl(options.opencl)
    if not isinstance(options.scale_b, str) or options.scale_b not in ("auto", "never"):
        raise PlanError(f"scale_b={options.scale_b!r}: use 'auto' (each coefficient sampled in "
                        "units of its approximate posterior sd) or 'never'")
    points = options.quadrature_points
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= 100:
        raise PlanError(f"quadrature_points={points!r}: use a number of nodes per level "
                        "from 1 (Laplace's approximation) to 100")
    metric = options.initial_metric
    if not isinstance(metric, str) or metric not in ("auto", "unit"):
        raise PlanError(f"initial_metric={metric!r}: use 'auto' (warmup starts "
                        "from each parameter's approximate posterior variance) or 'unit' "
                        "(CmdStan's default)")


def _check_opencl(value: Any) -> None:
    pair = (isinstance(value, tuple) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value))
    if value is True or value is False or value in ("gpu", "cpu", "auto") or pair:
        return
    raise PlanError(f"opencl={value!r}: use False, True (a GPU if there is one), 'gpu', 'cpu', "
                    "'auto' (a GPU where it pays) or (platform, device) as OpenCL numbers them")


def _check_parameterization(value: Any, spec: ModelSpec) -> None:
    terms = [g.term_name for g in spec.groups]
    entries = value.items() if isinstance(value, dict) else [(None, value)]
    for term, choice in entries:
        where = f" for '{term}'" if term is not None else ""
        if term is not None and term not in terms:
            raise PlanError(
                f"parameterization given for '{term}', which is not a group term of this "
                f"model (group terms: {', '.join(terms) or 'none'})"
            )
        if isinstance(choice, bool) or not isinstance(choice, str | float | int):
            raise PlanError(f"parameterization {choice!r}{where} is not one of "
                            f"{', '.join(CHOICES)} or a fraction in [0, 1]")
        if isinstance(choice, float | int):
            if not 0 <= choice <= 1:
                raise PlanError(f"parameterization {choice!r}{where}: a fraction of "
                                "centering must be in [0, 1]")
            wide = [g for g in spec.groups if g.k > 1 and choice not in (0, 1)
                    and (term is None or g.term_name == term)]
            if wide:
                raise PlanError(
                    f"parameterization {choice!r}{where}: partial centering applies to "
                    f"single-effect terms, and {wide[0].term} has {wide[0].k} effects; use "
                    f"0 or 1 for it, or split it into single-effect terms"
                )
            continue
        if choice not in CHOICES:
            raise PlanError(f"parameterization {choice!r}{where} is not one of "
                            f"{', '.join(CHOICES)}")


def default_passes(spec: ModelSpec, options: Options,
                   rows: RowAnalysis | None = None) -> list[Pass | Steps]:
    """The passes for one model, in order: which group intercept is integrated out, the
    parameterization of each other group term, which centered term takes over each
    population coefficient, the unit each coefficient is sampled in, the exact rewrites,
    the GLM kernel, threads, the per-row outputs, and whether the rows themselves are
    passed.

    The rewrites of a gaussian likelihood's rows (per-level statistics, cells, joint
    statistics) read `rows`, one analysis of the rows of the plan they start from, so
    that its design is built once for all three; without it each pass analyses the plan
    it is given. No pass holds another: each is given what it reads."""
    passes: list[Pass | Steps] = [Marginalize(options.rewrites, options.parameterization,
                                              options.quadrature_points)]
    passes += [Parameterize(g.term_name, options.parameterization) for g in spec.groups]
    passes.append(Fold(options.rewrites))
    # (coefficient, header label, effect name) of each population coefficient
    # (an ordinal family's Intercept is its cutpoints, which no group term takes over)
    intercept = spec.fixed.intercept and not spec.family_row.cutpoints
    population = [("Intercept", "Intercept", "Intercept")] if intercept else []
    population += [(f"b[{j + 1}]", label, name) for j, (label, name)
                   in enumerate(zip(spec.fixed.stan_names, spec.fixed.names, strict=True))]
    shared = {e for g in spec.groups for e in g.effect_names}
    passes += [Absorb(c, label) for c, label, name in population if name in shared]
    passes.append(ScaleCoefficients(options.scale_b))
    passes += [SufficientStatistics(options.rewrites, rows), Collapse(options.rewrites, rows),
               JointStatistics(options.rewrites, rows)]
    passes += [Glm(options.glm), Threads(options.threads, options.grainsize),
               BlockProducts(options.rewrites)]
    if options.opencl is not False:
        passes.append(Opencl(options.opencl))
    passes += [OutputPass("log_lik", options.log_lik), OutputPass("y_rep", options.y_rep)]
    return [*passes, Effects(options.effects), RowData()]


def _population(spec: ModelSpec, effect: str) -> str:
    """The population coefficient an effect deviates from, or "0": the one a centered
    term can take over (``Intercept`` is at the predictors' means when X is centered)."""
    if effect == "Intercept":  # not an ordinal family's cutpoints: a vector
        return "Intercept" if spec.fixed.intercept and not spec.family_row.cutpoints else "0"
    if effect in spec.fixed.names:
        return f"b[{spec.fixed.names.index(effect) + 1}]"
    return "0"


def _z_from_x(spec: ModelSpec, effects: tuple[str, ...]) -> tuple[int, ...] | None:
    """Each effect's column among (ones, X's columns) when all of them are there and the
    intercept, if any, comes first: then Z is derived from X in the program, so the
    data file carries each column once (the retail term repeats all 22 of X's)."""
    names = spec.fixed.names
    slopes = [e for e in effects if e != "Intercept"]
    if not slopes or any(e not in names for e in slopes) or "Intercept" in effects[1:]:
        return None
    return tuple(0 if e == "Intercept" else names.index(e) + 1 for e in effects)


def _total(spec: ModelSpec, effect: str, centered_x: bool) -> str:
    """What a level's deviation adds to in ``coef_<g>``, lme4's ``coef()``: the population
    coefficient at x = 0, so the intercept is ``b_Intercept`` when X is centered."""
    population = _population(spec, effect)
    return "b_Intercept" if population == "Intercept" and centered_x else population


def make_plan(spec: ModelSpec, options: Options | None = None) -> Plan:
    """Decide everything the program needs, with reasons."""
    options = options or Options()
    validate(options, spec)
    fam = spec.family_row
    book = resolve(spec)
    fixed = FixedPart(
        names=spec.fixed.names, idents=spec.fixed.stan_names, X=spec.fixed.X,
        intercept=spec.fixed.intercept, intercept_prior=book.intercept,
        intercept_bounds=book.intercept_bounds, b_priors=book.b, horseshoe=book.horseshoe,
        cutpoints=tuple(f"{a}|{b}" for a, b in zip(spec.categories, spec.categories[1:],
                                                   strict=False)),
    )
    if book.horseshoe is not None:
        _check_horseshoe_columns(spec)
    names = Namespace(RESERVED)
    notes: list[str] = list(spec.fixed.notes)
    if fam.cutpoints:
        notes.append(f"Intercept: the {len(fixed.cutpoints)} ordered cutpoints between the "
                     f"{len(spec.categories)} categories of {spec.response}, "
                     "P(y <= k) = inv_logit(Intercept[k] - eta); eta has no intercept of "
                     "its own, so a group intercept deviates from every cutpoint at once "
                     "and no centered term takes them over")
    groups = []
    for g in spec.groups:
        ident = names.claim(g.term_name, GroupPart.derived_names)
        if ident != g.stan_name:
            notes.append(f"{g.term_name} is written {ident} in the program, clear of the "
                         "names the program itself uses")
        elif ident != g.term_name:
            notes.append(f"{g.term_name} is written {ident} in the program, a Stan "
                         "identifier")
        groups.append(GroupPart(
            name=g.name, term_name=g.term_name, ident=ident, levels=g.levels,
            effects=g.effect_names, index=g.index, Z=g.Z, correlated=g.correlated and g.k > 1,
            sd_priors=book.sd[g.term_name],
            sd_bounds=book.sd_bounds[g.term_name], cor_prior=book.cor.get(g.term_name),
            population=tuple(_population(spec, e) for e in g.effect_names),
            total=tuple(_total(spec, e, fixed.centered) for e in g.effect_names),
            z_from_x=_z_from_x(spec, g.effect_names),
            same_levels_as=next((h.ident for h in groups if h.name == g.name), None),
            location=("0",) * g.k,
        ))
    aux = AuxPart(tuple(
        AuxParam(a.name, book.aux_bounds[a.name], a.comment, book.aux[a.name])
        for a in fam.aux if a.name in book.aux
    ))
    offset = None
    if spec.offset is not None:
        offset = OffsetPart(spec.formula.offset or "", spec.offset)
    obs = np.flatnonzero(spec.observed)
    likelihood = Likelihood(
        family=fam, strategy=Rowwise(), response=spec.response, y=spec.y[obs], n=spec.n,
        obs=obs, se=spec.se, trials=spec.trials, log_lik=False, y_rep=False,
        se_expr=spec.formula.se or "", trials_expr=spec.formula.trials or "",
        cens=spec.cens, y2=spec.y2, weights=spec.weights,
        lb=spec.trunc[0] if spec.trunc else None, ub=spec.trunc[1] if spec.trunc else None,
        cens_expr=spec.formula.cens or "", y2_expr=spec.formula.y2 or "",
        weights_expr=spec.formula.weights or "", categories=spec.categories,
    )
    plan = Plan(
        formula=spec.formula.text, family=fam, n=spec.n, n_obs=spec.n_obs, fixed=fixed,
        aux=aux, groups=tuple(groups), offset=offset, likelihood=likelihood, options=options,
        notes=tuple(notes),
    )
    # the passes before the rewrites of the rows, then those and the rest, given one
    # analysis of the rows they start from (`default_passes`)
    passes = default_passes(spec, options)
    first = next(i for i, p in enumerate(passes) if isinstance(p, SufficientStatistics))
    plan = run_passes(spec, plan, passes[:first])
    passes = default_passes(spec, options, RowAnalysis(plan))
    return with_predictions(run_passes(spec, plan, passes[first:]))


def _check_horseshoe_columns(spec: ModelSpec) -> None:
    """The horseshoe standardizes columns, so a constant column has no scale."""
    X = spec.fixed.X[spec.observed]
    for j, name in enumerate(spec.fixed.names):
        if len(X) < 2 or np.std(X[:, j]) == 0:
            raise PlanError(
                f"prior 'b' = horseshoe(...): column '{name}' is constant over the observed "
                "rows, so it cannot be standardized; drop it from the formula"
            )
