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
        wanted += [f"sd_{p.ident}" for p in fit.model.plan.groups] if fit.model else []
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
    sd = posterior[f"sd_{part.ident}"].values
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
    ax.set_ylabel(f"log sd_{part.ident}")
    ax.set_title(f"funnel of {term}")
    ax.legend(loc="best")
    return fig


def ppc(fit: Fit) -> Figure:
    """Posterior predictive check over the observed rows, two panels: the observed
    outcome's distribution against replicated ones (ArviZ's plot_ppc), and each row's
    observed value against its predictive mean with a 90% interval (points off the
    diagonal by more than their interval are rows the model does not reproduce).
    Needs ``y_rep``."""
    import arviz as az
    import matplotlib.pyplot as plt

    idata = fit.to_arviz()
    if "posterior_predictive" not in idata.groups() or "y_rep" not in idata.posterior_predictive:
        raise ValueError("ppc needs y_rep: fit a model built with y_rep=True")
    observed_rows = idata.observed_data["y"].coords["obs_id"].values
    y = idata.observed_data["y"].values
    replicated = idata.posterior_predictive["y_rep"].sel(row=observed_rows)
    data = az.from_dict(posterior_predictive={"y": replicated.values}, observed_data={"y": y})
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    az.plot_ppc(data, num_pp_samples=100, ax=left)
    mean = replicated.mean(("chain", "draw")).values
    low, high = replicated.quantile([0.05, 0.95], ("chain", "draw")).values
    right.errorbar(y, mean, yerr=[mean - low, high - mean], fmt="o", ms=3, alpha=0.5,
                   elinewidth=0.8)
    edges = [min(y.min(), low.min()), max(y.max(), high.max())]
    right.plot(edges, edges, color="black", lw=0.8)
    right.set_xlabel("observed")
    right.set_ylabel("predicted (mean, 90% interval)")
    return fig


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
    entry written in its cell."""
    import matplotlib.pyplot as plt

    part = _group(fit, term)
    posterior = fit.to_arviz().posterior
    name = f"Cor_{part.ident}"
    if name not in posterior:
        raise ValueError(f"term '{term}' has no correlations (uncorrelated or one effect)")
    mean = posterior[name].mean(("chain", "draw")).values
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
