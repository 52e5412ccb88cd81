"""Fits as ArviZ data, named after the model's factors and their levels."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .model import Model
    from .program import OutputSchema


class Fit:
    """A CmdStanPy result plus the output schema that labels it."""

    def __init__(self, schema: OutputSchema, result: Any, method: str,
                 model: Model | None = None) -> None:
        self.schema = schema
        self.method = method
        self._result = result
        self.model = model  # what predict() re-encodes new data with

    def predict(self, new_data: Any, new_levels: str = "sample", seed: int | None = None):
        """Predictions for the rows of `new_data` from this fit's draws: an ArviZ
        InferenceData whose ``predictions`` group holds ``y`` (a predictive draw per row),
        ``mu`` (its expected value) and ``eta`` (the linear predictor), over dim ``row``
        labelled with the new data's index.

        New rows are encoded as the fitted ones were (categories, ``scale()``, centering);
        ``new_levels`` says what a level the fit has not seen gets: ``"sample"`` (an
        effect drawn from the fitted sds and correlations, per draw), ``"zero"`` (the
        population value) or ``"error"``. Runs CmdStan's standalone generated
        quantities; the prediction program compiles once per model.
        """
        import arviz as az

        from .predict import predict_draws

        if self.method != "sample" or self.model is None:
            raise ValueError("predict() needs a fit from Model.fit(method='sample')")
        labels, draws = predict_draws(self.model, self._result, new_data, new_levels, seed)
        chains = self._result.chains
        shaped = {k: v.reshape(chains, -1, v.shape[-1]) for k, v in draws.items()}
        return az.from_dict(predictions=shaped, coords={"row": labels},
                            dims={k: ["row"] for k in shaped})

    @property
    def cmdstan(self) -> Any:
        """The CmdStanPy result object."""
        return self._result

    def to_arviz(self):
        """InferenceData: posterior, sample_stats, posterior_predictive, log_likelihood,
        observed_data (for ``sample``); a posterior group for the other methods."""
        return self._idata

    @cached_property
    def _idata(self):
        """Converted once: reading the CSVs is the slow part, and diagnostics() needs it too."""
        import arviz as az

        schema = self.schema
        coords, dims = schema.coords, schema.dims
        y_obs = schema.y_observed
        if self.method == "sample":
            return az.from_cmdstanpy(
                posterior=self._result,
                posterior_predictive=schema.y_rep,
                log_likelihood=schema.log_lik,
                observed_data={"y": y_obs},
                coords=coords,
                dims=dims,
            )
        if self.method == "variational":
            draws = self._result.stan_variables(mean=False)
        else:
            draws = self._result.stan_variables()
        if self.method == "optimize":
            draws = {k: np.asarray(v)[None, ...] for k, v in draws.items()}
        posterior = {k: np.asarray(v)[None, ...] for k, v in draws.items()}
        return az.from_dict(posterior=posterior, observed_data={"y": y_obs},
                            coords=coords, dims=dims)

    @cached_property
    def _summary(self):
        import arviz as az

        names = [v for v in self._idata.posterior.data_vars if v not in self.schema.unchecked]
        return az.summary(self._idata, var_names=names, kind="diagnostics")

    def diagnostics(self) -> dict[str, float]:
        """Sampler health in one dict (MCMC only): divergences, max-treedepth hits, the
        lowest E-BFMI, the largest R-hat and the smallest ESS bulk and tail (ArviZ's)."""
        import arviz as az

        if self.method != "sample":
            raise ValueError("diagnostics() needs method='sample'")
        stats = self._idata.sample_stats
        summary = self._summary
        return {
            "divergences": int(stats["diverging"].sum()),
            "treedepth_hits": int((stats["tree_depth"] >= self._max_depth).sum()),
            "ebfmi_min": float(np.min(az.bfmi(self._idata))),
            "rhat_max": float(summary["r_hat"].max()),
            "ess_bulk_min": float(summary["ess_bulk"].min()),
            "ess_tail_min": float(summary["ess_tail"].min()),
        }

    @property
    def _max_depth(self) -> int:
        return int(self._result.metadata.cmdstan_config["max_depth"])

    def advice(self) -> list[str]:
        """What the diagnostics say and what to try, one message per problem (empty when
        the sampler looks healthy); `Model.fit` warns with these after sampling."""
        import arviz as az

        from .advice import advice

        numbers = self.diagnostics()
        posterior = self._idata.posterior
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
                      np.asarray(az.bfmi(self._idata)), worst, self._funnel_term())

    def _funnel_term(self):
        """The group term whose sd the divergent draws sit at the small end of."""
        from .advice import TermState, funnel_term

        if self.model is None:
            return None
        posterior = self._idata.posterior
        divergent = self._idata.sample_stats["diverging"].values.ravel().astype(bool)
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
