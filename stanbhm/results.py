"""Fits as ArviZ data, named after the model's factors and their levels."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .predict import FittedModel
    from .program import OutputSchema


#: With centered predictors the program samples the intercept at their means and also
#: reports brms's, at x = 0; both are in the posterior, each saying which it is.
INTERCEPTS = {"Intercept": "intercept at the means of the population-level predictors "
                           "(the one sampled)",
              "b_Intercept": "intercept at predictors = 0 (brms's b_Intercept, lme4's "
                             "(Intercept))"}


def correlation_pairs(matrix):
    """The correlations below a correlation matrix's diagonal, one per pair of effects,
    over dim ``<effects>_pair`` labelled "a, b" (brms's cor_<term>__a__b): the matrix's
    diagonal is 1 in every draw and its upper half repeats the lower."""
    import xarray as xr

    first = matrix.dims[-2]
    names = [str(v) for v in matrix[first].values]
    rows, cols = np.tril_indices(len(names), -1)
    values = matrix.values[..., rows, cols]
    dim = f"{first}_pair"
    labels = [f"{names[i]}, {names[j]}" for i, j in zip(cols, rows, strict=True)]
    return xr.DataArray(values, dims=(*matrix.dims[:-2], dim),
                        coords={**{d: matrix[d] for d in matrix.dims[:-2]}, dim: labels})


class Fit:
    """A CmdStanPy result plus the output schema that labels it."""

    def __init__(self, schema: OutputSchema, result: Any, method: str,
                 model: FittedModel | None = None, prior_only: bool = False) -> None:
        self.schema = schema
        self.method = method
        self._result = result
        self.model = model  # what predict() re-encodes new data with
        self.prior_only = prior_only  # draws of the prior: groups prior, prior_predictive

    def predict(self, new_data: Any = None, new_levels: str = "sample",
                seed: int | None = None):
        """Predictions for the rows of `new_data` from this fit's draws: an ArviZ
        InferenceData whose ``predictions`` group holds ``y`` (a predictive draw per row),
        ``mu`` (its expected value) and ``eta`` (the linear predictor), over dim ``row``
        labelled with the new data's index (its own type). ``new_data=None`` predicts the
        fitted rows, labelled by position.

        New rows are encoded as the fitted ones were (categories, ``scale()``, centering);
        ``new_levels`` says what a level the fit has not seen gets: ``"sample"`` (an
        effect drawn from the fitted sds and correlations, per draw), ``"zero"`` (the
        population value) or ``"error"``. Runs CmdStan's standalone generated quantities
        of the executable the fit ran, whose program reads new rows as data: nothing
        compiles.
        """
        import arviz as az

        arrays = self._predictions(new_data, new_levels, seed)
        labels = arrays["y"].indexes["row"]
        return az.from_dict(predictions={k: v.values for k, v in arrays.items()},
                            coords={"row": labels}, dims={k: ["row"] for k in arrays})

    def posterior_epred(self, newdata: Any = None, new_levels: str = "sample",
                        seed: int | None = None):
        """The expected outcome of each row per draw (brms's ``posterior_epred``: ``mu``,
        the inverse link of the linear predictor, times the trials of a binomial row): an
        xarray DataArray over (chain, draw, row), ``row`` the index of `newdata`, or the
        fitted rows' positions for None. `new_levels` and `seed` are `predict`'s."""
        return self._predictions(newdata, new_levels, seed)["mu"]

    def posterior_linpred(self, newdata: Any = None, new_levels: str = "sample",
                          seed: int | None = None):
        """The linear predictor of each row per draw (brms's ``posterior_linpred``:
        ``eta``, on the link scale, offset included), labelled as `posterior_epred`'s."""
        return self._predictions(newdata, new_levels, seed)["eta"]

    def posterior_predict(self, newdata: Any = None, new_levels: str = "sample",
                          seed: int | None = None):
        """A predictive draw of each row's outcome per draw (brms's
        ``posterior_predict``: ``y``), labelled as `posterior_epred`'s."""
        return self._predictions(newdata, new_levels, seed)["y"]

    def residuals(self, newdata: Any = None, new_levels: str = "sample",
                  seed: int | None = None):
        """Observed outcome less `posterior_epred`, per draw (chain, draw, row): the
        fitted rows' outcomes for None (NaN where missing), otherwise `newdata`'s outcome
        column, which must be there (SpecError naming it)."""
        from .predict import outcome

        if self.model is None:
            raise ValueError("residuals() needs a fit from Model.fit(method='sample')")
        observed = outcome(self.model, newdata)
        epred = self.posterior_epred(newdata, new_levels, seed)
        # by position: an index with repeated labels cannot be aligned
        return epred.copy(data=observed - epred.values).rename("residual")

    def _predictions(self, new_data: Any, new_levels: str, seed: int | None) -> dict[str, Any]:
        """{"y", "mu", "eta"}: DataArrays over (chain, draw, row) from one run of the
        fitted executable's standalone generated quantities."""
        import xarray as xr

        from .console import quiet
        from .predict import predict_draws

        if self.method != "sample" or self.model is None:
            raise ValueError("predictions need a fit from Model.fit(method='sample')")
        with quiet():
            labels, draws = predict_draws(self.model, self._result, new_data, new_levels,
                                          seed)
        chains = self._result.chains
        out = {}
        for name, values in draws.items():
            shaped = values.reshape(chains, -1, values.shape[-1])
            out[name] = xr.DataArray(
                shaped, dims=("chain", "draw", "row"), name=name,
                coords={"chain": np.arange(chains), "draw": np.arange(shaped.shape[1]),
                        "row": labels})
        return out

    def summary(self):
        """brms's summary: group-level sds and correlations per term, population effects
        (the intercept at predictors = 0), family parameters; mean, sd, 95% interval,
        R-hat and bulk/tail ESS, and the sampler's divergences under them. Prints as
        text; ``.population``, ``.groups`` and ``.family`` are DataFrames."""
        from .summary import summarize

        return summarize(self)

    def fixef(self):
        """Population-level effects as a DataFrame (lme4's and brms's fixef)."""
        from .summary import fixef

        return fixef(self)

    def ranef(self, term: str | None = None):
        """Each level's deviations at covariate = 0 (lme4's ranef): {term: DataFrame with
        a row per level and columns (effect, statistic)}, or one term's DataFrame."""
        from .summary import ranef

        return ranef(self, term)

    def coef(self, term: str | None = None):
        """Each level's coefficients, population effect plus deviation (lme4's coef), in
        the layout of `ranef`."""
        from .summary import coef

        return coef(self, term)

    def __repr__(self) -> str:
        if self.model is None:
            return f"<stanbhm Fit, method={self.method!r}>"
        return str(self.summary())

    @property
    def cmdstan(self) -> Any:
        """The CmdStanPy result object."""
        return self._result

    def to_arviz(self):
        """InferenceData of what the user asked for. ``sample``: posterior, sample_stats,
        posterior_predictive, log_likelihood, observed_data; with ``prior_only=True``:
        prior, sample_stats_prior, prior_predictive and observed_data alone (no log
        likelihood, which LOO would otherwise read as the posterior's). The other methods:
        a posterior group (one chain). The sampler's working coordinates (raw z, Cholesky
        factors, signed sds; `parts.Output.internal`) go to a group ``internals``."""
        return self._idata

    @cached_property
    def _idata(self):
        """Converted once: reading the CSVs is the slow part, and diagnostics() needs it too."""
        import arviz as az

        schema = self.schema
        labels = {"coords": schema.coords, "dims": schema.dims,
                  "observed_data": {"y": schema.y_observed}}
        if self.method == "sample" and self.prior_only:
            idata = az.from_cmdstanpy(prior=self._result, prior_predictive=schema.y_rep,
                                      **labels)
        elif self.method == "sample":
            idata = az.from_cmdstanpy(posterior=self._result,
                                      posterior_predictive=schema.y_rep,
                                      log_likelihood=schema.log_lik, **labels)
        else:
            draws = self._draws_of_one_chain()
            per_row = {group: {name: draws.pop(name)} for group, name in
                       (("posterior_predictive", schema.y_rep),
                        ("log_likelihood", schema.log_lik)) if name in draws}
            idata = az.from_dict(posterior=draws, **per_row, **labels)
        return self._tidy(idata)

    def _draws_of_one_chain(self) -> dict[str, np.ndarray]:
        """Each variable of a non-MCMC result as (chain = 1, draw, *its declared shape);
        CmdStanPy returns a size-1 vector of an optimum as a bare number."""
        from .console import quiet

        result = self._result
        out = {}
        with quiet():
            for name, var in result.metadata.stan_vars.items():
                if self.method == "variational":
                    value = result.stan_variable(name, mean=False)
                else:
                    value = result.stan_variable(name)
                shape = tuple(var.dimensions)
                out[name] = np.asarray(value, dtype=float).reshape(1, -1, *shape)
        return out

    def _tidy(self, idata):
        """The draw groups keep what a user asks about: the working coordinates move to
        ``internals``, the log likelihood leaves a prior fit, and outputs with no
        entries (the new rows to predict, none while fitting) go."""
        import xarray as xr

        group = "prior" if "prior" in idata.groups() else "posterior"
        draws = idata[group]
        empty = [name for name, value in draws.data_vars.items() if value.size == 0]
        moved = [name for name in self.schema.internal if name in draws.data_vars]
        dropped = [self.schema.log_lik] if group == "prior" and self.schema.log_lik in draws \
            else []
        pairs = {f"cor_{name[4:]}": correlation_pairs(draws[name])
                 for name in moved if name.startswith("Cor_")}
        if moved:
            idata.add_groups({"internals": xr.Dataset({n: draws[n] for n in moved})})
        kept = draws.drop_vars([*empty, *moved, *dropped]).assign(pairs)
        for name, meaning in INTERCEPTS.items():
            if name in kept and "b_Intercept" in kept:
                kept[name].attrs["long_name"] = meaning
        setattr(idata, group, kept)
        return idata

    @property
    def draws(self):
        """The draws group a summary reads: ``posterior``, or ``prior`` for a prior fit."""
        return self._idata["prior" if self.prior_only else "posterior"]

    @cached_property
    def _summary(self):
        import arviz as az

        group = "prior" if self.prior_only else "posterior"
        return az.summary(self._idata, group=group, kind="diagnostics")

    def diagnostics(self) -> dict[str, float]:
        """Sampler health in one dict (MCMC only): divergences, max-treedepth hits, the
        lowest E-BFMI, the largest R-hat and the smallest ESS bulk and tail (ArviZ's)."""
        import arviz as az

        if self.method != "sample":
            raise ValueError("diagnostics() needs method='sample'")
        stats = self._sample_stats
        summary = self._summary
        return {
            "divergences": int(stats["diverging"].sum()),
            "treedepth_hits": int((stats["tree_depth"] >= self._max_depth).sum()),
            "ebfmi_min": float(np.min(az.bfmi(stats))),
            "rhat_max": float(summary["r_hat"].max()),
            "ess_bulk_min": float(summary["ess_bulk"].min()),
            "ess_tail_min": float(summary["ess_tail"].min()),
        }

    @property
    def _sample_stats(self):
        return self._idata["sample_stats_prior" if self.prior_only else "sample_stats"]

    @property
    def _max_depth(self) -> int:
        return int(self._result.metadata.cmdstan_config["max_depth"])

    def advice(self) -> list[str]:
        """What the diagnostics say and what to try, one message per problem (empty when
        the sampler looks healthy); `Model.fit` warns with these after sampling."""
        import arviz as az

        from .advice import advice

        numbers = self.diagnostics()
        posterior = self.draws
        chains = int(posterior.sizes["chain"])
        summary = self._summary

        def name(column: str, largest: bool) -> str:  # R-hat is NaN with one chain
            values = summary[column].dropna()
            if values.empty:
                return "none"
            return str(values.idxmax() if largest else values.idxmin())

        worst = {"rhat": name("r_hat", True), "bulk": name("ess_bulk", False),
                 "tail": name("ess_tail", False)}
        return advice(numbers, chains, chains * int(posterior.sizes["draw"]), self._max_depth,
                      np.asarray(az.bfmi(self._sample_stats)), worst, self._funnel_term(),
                      self._rejections())

    def _rejections(self) -> list[str]:
        """CmdStan's rejection messages after warmup, over all chains (`console`)."""
        from .console import rejections_after_warmup, transcripts

        return [message for text in transcripts(self._result.runset)
                for message in rejections_after_warmup(text)]

    def _funnel_term(self):
        """The group term whose sd the divergent draws sit at the small end of."""
        from .advice import TermState, funnel_term

        if self.model is None:
            return None
        posterior = self.draws
        divergent = self._sample_stats["diverging"].values.ravel().astype(bool)
        states, log_sds = {}, {}
        for spec_term, part in zip(self.model.spec.groups, self.model.plan.groups, strict=True):
            sd = f"sd_{part.ident}"
            if part.marginalized or sd not in posterior:
                continue
            values = np.log(posterior[sd].values.reshape(len(divergent), -1)).mean(axis=1)
            how = ("centered" if part.centered else
                   "non-centered" if part.noncentered else "partially centered")
            states[part.term_name] = TermState(str(spec_term.term), part.term_name, sd, how)
            log_sds[part.term_name] = values
        key = funnel_term(log_sds, divergent)
        return None if key is None else states[key]
