"""Plots a statistician looks at after a fit, as matplotlib Figures.

ArviZ draws them where it has the plot (trace, forest, posterior predictive check); the
funnel and the correlation matrix are drawn here. Terms are named as in the formula's
term keys (``"school"``, ``"state_age"``), so the level labels come from the fit's
coordinates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .results import Fit

__all__ = ["correlations", "forest", "funnel", "ppc", "trace"]


def _group(fit: Fit, term: str) -> Any:
    if fit.model is None:
        raise ValueError("this plot needs a fit from Model.fit")
    for part in fit.model.plan.groups:
        if part.term_name == term:
            return part
    names = ", ".join(p.term_name for p in fit.model.plan.groups) or "none"
    raise ValueError(f"'{term}' is not a group term of this model (group terms: {names})")


def _figure(axes: Any) -> Figure:
    return np.asarray(axes).ravel()[0].figure


def trace(fit: Fit, var_names: list[str] | None = None) -> Figure:
    """ArviZ's trace plot (marginal densities and chains) of `var_names`, by default the
    population parameters and the group sds."""
    import arviz as az

    posterior = fit.to_arviz().posterior
    if var_names is None:
        wanted = ["Intercept", "b", "sigma", "phi", "nu", "shape"]
        wanted += [p.spread for p in fit.model.plan.groups] if fit.model else []
        var_names = [v for v in wanted if v in posterior]
    return _figure(az.plot_trace(fit.to_arviz(), var_names=var_names))


def funnel(fit: Fit, term: str, level: int = 0) -> Figure:
    """log sd of `term` against the effect of its `level`-th level (the first effect of a
    multi-effect term), divergent draws in red: a funnel's neck shows up as divergences
    gathering at small sd."""
    import matplotlib.pyplot as plt

    part = _group(fit, term)
    idata = fit.to_arviz()
    posterior = idata.posterior
    sd = posterior[part.spread].values  # a beta-binomial term's is its concentration
    effect = posterior[f"r_{part.ident}"].values
    log_sd = np.log(sd.reshape(sd.shape[0] * sd.shape[1], -1)[:, 0])
    values = effect.reshape(effect.shape[0] * effect.shape[1], *effect.shape[2:])
    values = values[:, level] if values.ndim == 2 else values[:, level, 0]
    divergent = idata.sample_stats["diverging"].values.ravel().astype(bool)
    levels = posterior[posterior[f"r_{part.ident}"].dims[2]].values
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(values[~divergent], log_sd[~divergent], s=4, alpha=0.3, color="C0",
               label="draws")
    ax.scatter(values[divergent], log_sd[divergent], s=10, color="red",
               label=f"divergent ({int(divergent.sum())})")
    ax.set_xlabel(f"r_{part.ident}[{levels[level]}]")
    ax.set_ylabel(f"log {part.spread}")
    ax.set_title(f"funnel of {term}")
    ax.legend(loc="best")
    return fig


#: At most this many bars in a discrete check before values share a bar (see `_count_bins`).
_MAX_BARS = 30


def ppc(fit: Fit, group: str | None = None) -> Figure:
    """Predictive check of the observed rows against the model's replicated draws.

    ``group="posterior"`` reads the ``posterior_predictive`` group of the fit's
    InferenceData, ``group="prior"`` its ``prior_predictive`` group; the default is the
    one the fit holds, ``"prior"`` for a ``Model.fit(prior_only=True)``. Titles and
    legends say which, since a prior check asks whether the priors allow data like the
    observed, not whether the fit reproduces them. Needs ``y_rep``.

    Continuous outcomes get two panels: the observed outcome's density against replicated
    ones (ArviZ's plot_ppc), and each row's observed value against its predictive mean
    (a point) with its 5-95% interval (a vertical line from low to high; a mean outside
    its interval, as with skewed draws, is drawn where it is, never as a negative error
    bar). Points off the diagonal by more than their interval are rows the model does
    not reproduce.

    Integer outcomes (the families whose ``outcome`` is ``"binary"`` or ``"count"``:
    bernoulli, binomial, poisson, negbinomial) get brms's ``pp_check(type = "bars")``
    instead of a density, which would smooth over the integers: a bar per outcome value
    with the observed number of rows taking it, and over each bar the replicated draws'
    median count (a point) and 90% interval (a line). Bernoulli has the two bars 0 and 1
    and only that panel, since a row's 0/1 draws give no interval worth drawing. Counts
    have a bar per value from 0 to the largest observed count and, when some draw goes
    beyond it, a last bar "≥k" pooling the tail (draws beyond the data's range are a
    misfit worth seeing); past 30 values (``_MAX_BARS``), values share bars of equal
    width, and counts above the observed 99th percentile join the pooled tail, so that a
    few outlying rows do not squeeze the rest into one bar. Counts keep the per-row
    panel, each point moved sideways by up to a quarter (seeded, the same each call) so
    that rows sharing a count show as a spread of intervals, not one overdrawn line.
    """
    import arviz as az
    import matplotlib.pyplot as plt

    if group is None:
        group = "prior" if getattr(fit, "prior_only", False) else "posterior"
    if group not in ("posterior", "prior"):
        raise ValueError(f"group must be 'posterior' or 'prior', not {group!r}")
    idata = fit.to_arviz()
    name = f"{group}_predictive"
    if name not in idata.groups() or "y_rep" not in idata[name]:
        other = "prior" if group == "posterior" else "posterior"
        if f"{other}_predictive" in idata.groups() and "y_rep" in idata[f"{other}_predictive"]:
            raise ValueError(f"this fit has no {group} predictive draws, but {other} "
                             f"predictive ones: pass group={other!r}")
        raise ValueError("ppc needs y_rep: fit a model built with y_rep=True")
    observed = idata.observed_data["y"]
    replicated = idata[name]["y_rep"]
    row_dim, obs_dim = replicated.dims[-1], observed.dims[0]
    if obs_dim in observed.coords and row_dim in replicated.coords:
        # y_rep covers every row, the outcome only the observed ones
        replicated = replicated.sel({row_dim: observed.coords[obs_dim].values})
    y = np.asarray(observed.values, dtype=float)
    draws = replicated.values.reshape(-1, replicated.shape[-1])
    label = f"{group} predictive"
    # Stan writes NaN for a whole draw when an rng's argument overflows (prior draws of a
    # log-link model can): such draws are left out, and the legend says how many
    finite = np.isfinite(draws).all(axis=1)
    if not finite.any():
        raise ValueError("every replicated draw overflowed (non-finite values): the "
                         "predictive distribution is too wide to show; check the priors")
    if not finite.all():
        label = f"{label}; {int((~finite).sum())} of {len(finite)} overflowing draws left out"
        draws = draws[finite]
    kind = _outcome_kind(fit, y, draws)
    response = fit.model.spec.response if fit.model is not None else "y"

    if kind == "binary":
        fig, ax = plt.subplots(figsize=(5, 4))
        _count_bars(ax, y, draws, binary=True, label=label, response=response)
    else:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        if kind == "count":
            _count_bars(left, y, draws, binary=False, label=label, response=response)
        else:
            data = az.from_dict(**{name: {"y": draws[None]}}, observed_data={"y": y})
            az.plot_ppc(data, group=group, num_pp_samples=min(100, len(draws)), ax=left)
            left.set_xlabel(response)
        _rows(right, y, draws, label, jitter=kind == "count")
    fig.suptitle(f"{label} check")
    fig.tight_layout()
    return fig


def _outcome_kind(fit: Fit, y: np.ndarray, draws: np.ndarray) -> str:
    """``"binary"``, ``"count"`` or ``"real"``: the family's outcome type when the fit has
    its model; otherwise read off the values (non-negative integers throughout are
    counts, only 0 and 1 binary)."""
    if fit.model is not None:
        row = fit.model.spec.family_row
        if not row.integer:
            return "real"
        return "binary" if row.outcome == "binary" else "count"
    values = np.concatenate([y, draws.ravel()])
    if not (np.all(values >= 0) and np.all(values == np.round(values))):
        return "real"
    return "binary" if np.all(values <= 1) else "count"


def _count_bins(y: np.ndarray, binary: bool) -> tuple[int, int]:
    """The bars of a discrete check: (width, bars before the tail). A value v falls in
    bar ``v // width``, and in the pooled tail bar when that is ``bars`` or more.

    Binary outcomes have the bars 0 and 1. Counts have a bar per value up to the largest
    observed one; with more values than ``_MAX_BARS``, the range shown stops at the
    observed 99th percentile and values share bars of equal width."""
    if binary:
        return 1, 2
    top = int(y.max()) if len(y) else 0
    if top + 1 > _MAX_BARS:
        top = int(np.quantile(y, 0.99))
    width = max(1, -(-(top + 1) // _MAX_BARS))
    return width, top // width + 1


def _count_bars(ax: Any, y: np.ndarray, draws: np.ndarray, binary: bool, label: str,
                response: str) -> None:
    """Observed rows per outcome value (bars) against the replicated draws' median count
    and 90% interval per value (points and lines), on `ax`."""
    width, bars = _count_bins(y, binary)
    bins = bars + 1  # the last one pools the tail

    def counts(values: np.ndarray) -> np.ndarray:
        # clipped before the cast: a prior predictive count can exceed int64's range
        index = np.rint(np.minimum(values, bars * width)).astype(np.int64) // width
        index = index + bins * np.arange(len(index))[:, None]
        return np.bincount(index.ravel(), minlength=bins * len(index)).reshape(-1, bins)

    seen = counts(y[None, :])[0]
    replicated = counts(draws)
    shown = bins if seen[-1] or replicated[:, -1].any() else bars
    seen, replicated = seen[:shown], replicated[:, :shown]
    low, median, high = np.quantile(replicated, [0.05, 0.5, 0.95], axis=0)
    x = np.arange(shown)
    ax.bar(x, seen, width=0.8, color="C0", alpha=0.6, label="observed")
    ax.vlines(x, low, high, color="black", lw=1.5)
    ax.plot(x, median, "o", color="black", ms=4, label=f"{label} (median, 90%)")
    ax.set_ylim(0, 1.3 * max(seen.max(), high.max(), 1))  # room for the legend
    names = [str(k) if width == 1 else f"{k * width}-{(k + 1) * width - 1}" for k in range(bars)]
    names.append(f"≥{bars * width}")
    ax.set_xticks(x, names[:shown], rotation=0 if width == 1 and shown <= 15 else 90)
    ax.set_xlabel(response)
    ax.set_ylabel("rows")
    ax.legend(loc="upper center", ncol=2, fontsize="small")


def _rows(ax: Any, y: np.ndarray, draws: np.ndarray, label: str, jitter: bool) -> None:
    """Each row's observed value against its predictive mean (points) and 5-95% interval
    (vertical lines from low to high, so a mean outside its interval is no error), with
    the diagonal, on `ax`; `jitter` spreads the x of rows sharing a count. The points
    are the axes' first line."""
    mean = draws.mean(axis=0)
    low, high = np.quantile(draws, [0.05, 0.95], axis=0)
    x = y + np.random.default_rng(0).uniform(-0.25, 0.25, len(y)) if jitter else y
    ax.plot(x, mean, "o", ms=3, alpha=0.5, color="C0", label="mean")
    ax.vlines(x, low, high, color="C0", alpha=0.3, lw=0.8, label="90% interval")
    edges = [min(y.min(), low.min(), mean.min()), max(y.max(), high.max(), mean.max())]
    ax.plot(edges, edges, color="black", lw=0.8)
    ax.set_xlabel("observed (spread sideways)" if jitter else "observed")
    ax.set_ylabel(f"{label} (mean, 90% interval)")
    ax.legend(loc="best")


def forest(fit: Fit, term: str) -> Figure:
    """ArviZ's forest plot of `term`'s level coefficients (``coef_``, or the deviations
    ``r_`` when no effect has a population coefficient), labelled by level."""
    import arviz as az

    part = _group(fit, term)
    posterior = fit.to_arviz().posterior
    name = f"coef_{part.ident}" if f"coef_{part.ident}" in posterior else f"r_{part.ident}"
    return _figure(az.plot_forest(fit.to_arviz(), var_names=[name], combined=True))


def correlations(fit: Fit, term: str) -> Figure:
    """The posterior mean correlation matrix of a correlated term's effects, with each
    entry written in its cell (the whole matrix, from the fit's ``internals``; the
    posterior holds its pairs as ``cor_<term>``)."""
    import matplotlib.pyplot as plt

    part = _group(fit, term)
    idata = fit.to_arviz()
    name = f"Cor_{part.ident}"
    if "internals" not in idata.groups() or name not in idata.internals:
        raise ValueError(f"term '{term}' has no correlations (uncorrelated or one effect)")
    mean = idata.internals[name].mean(("chain", "draw")).values
    labels = list(part.effects)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.2 * len(labels) + 1))
    image = ax.imshow(mean, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{mean[i, j]:.2f}", ha="center", va="center")
    ax.set_title(f"correlations of {term} (posterior mean)")
    fig.colorbar(image, ax=ax)
    return fig
