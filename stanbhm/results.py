"""Fits as ArviZ data, named after the model's factors and their levels."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .model import Model


class Fit:
    """A CmdStanPy result plus what is needed to label it."""

    def __init__(self, model: Model, result: Any, method: str) -> None:
        self.model = model
        self.method = method
        self._result = result

    @property
    def cmdstan(self) -> Any:
        """The CmdStanPy result object."""
        return self._result

    def coords_and_dims(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """ArviZ coords from factor levels and fixed-effect names; dims per variable."""
        spec, plan = self.model.spec, self.model.plan
        coords: dict[str, list[str]] = {"obs_id": [str(i) for i in np.flatnonzero(spec.observed)],
                                        "row": [str(i) for i in range(spec.n)]}
        dims: dict[str, list[str]] = {"log_lik": ["obs_id"], "y_rep": ["row"], "y": ["obs_id"]}
        if plan.fixed_names:
            coords["coef"] = list(plan.fixed_names)
            dims["b"] = ["coef"]
        for g, gp in zip(spec.groups, plan.groups, strict=True):
            coords[g.name] = list(g.levels)
            if gp.k == 1:
                dims[f"r_{gp.ident}"] = [g.name]
                if not gp.centered:
                    dims[f"z_{gp.ident}"] = [g.name]
            else:
                eff = f"{g.name}_effect"
                coords[eff] = list(gp.effects)
                dims[f"sd_{gp.ident}"] = [eff]
                dims[f"r_{gp.ident}"] = [g.name, eff]
                if not gp.centered:
                    dims[f"z_{gp.ident}"] = [eff, g.name]
                if gp.correlated:
                    dims[f"L_{gp.ident}"] = [eff, f"{eff}_bis"]
                    coords[f"{eff}_bis"] = list(gp.effects)
        return coords, dims

    def to_arviz(self):
        """InferenceData: posterior, sample_stats, posterior_predictive, log_likelihood,
        observed_data (for ``sample``); a posterior group for the other methods."""
        return self._idata

    @cached_property
    def _idata(self):
        """Converted once: reading the CSVs is the slow part, and diagnostics() needs it too."""
        import arviz as az

        coords, dims = self.coords_and_dims()
        y_obs = self.model.spec.y[self.model.spec.observed]
        if self.method == "sample":
            plan = self.model.plan
            return az.from_cmdstanpy(
                posterior=self._result,
                posterior_predictive="y_rep" if plan.y_rep else None,
                log_likelihood="log_lik" if plan.log_lik else None,
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

    def diagnostics(self) -> dict[str, float]:
        """Sampler health in one dict (MCMC only)."""
        import arviz as az

        if self.method != "sample":
            raise ValueError("diagnostics() needs method='sample'")
        idata = self._idata
        stats = idata.sample_stats
        max_depth = int(self._result.metadata.cmdstan_config["max_depth"])
        summary = az.summary(idata, kind="diagnostics")
        return {
            "divergences": int(stats["diverging"].sum()),
            "treedepth_hits": int((stats["tree_depth"] >= max_depth).sum()),
            "ebfmi_min": float(np.min(az.bfmi(idata))),
            "rhat_max": float(summary["r_hat"].max()),
            "ess_bulk_min": float(summary["ess_bulk"].min()),
            "ess_tail_min": float(summary["ess_tail"].min()),
        }
