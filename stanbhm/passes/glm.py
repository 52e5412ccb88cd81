"""Whether the likelihood is written with one of Stan's GLM kernels.

``normal_id_glm``, ``bernoulli_logit_glm``, ``binomial_logit_glm``, ``poisson_log_glm`` and
``neg_binomial_2_log_glm`` take the design matrix, a per-row intercept and the
coefficients, and compute the log density and its gradient in one pass over the rows,
with the derivatives written out by hand: no expression graph of N values for ``X * b``
and the density. Measured here (N = 100k, 1000 groups, one covariate) they cut the
gradient of a gaussian model with varying intercepts and slopes from 8 ms to 3 ms, so
``"auto"`` uses them whenever the likelihood has their form; with ``opencl`` they are
also what runs on the device. The per-row intercept (``alpha``) carries the intercept,
every group term and the offset; ``X * b`` is what is left of the population part.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import Decision

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

SUBJECT = "glm"


@dataclass(frozen=True)
class Glm:
    """Switches the likelihood statement to the family's GLM kernel where it fits."""

    request: Any  # "auto" or "never"

    def skip_reason(self, plan: Plan) -> str:
        lik = plan.likelihood
        if self.request == "never":
            return "glm='never' requested"
        if lik.family.glm is None:
            return f"the {lik.family.name} family has no GLM kernel in Stan"
        if lik.strategy != "rowwise":
            return f"the likelihood is rewritten ({lik.strategy}), not one term per row"
        if plan.fixed.design(plan.fit_rows) is None:
            return "no population coefficient is left in the likelihood (no X * b)"
        return ""

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        reason = self.skip_reason(plan)
        if reason:
            return Decision(SUBJECT, "not used", reason, applied=False)
        x, _ = plan.fixed.design(plan.fit_rows)
        alpha = plan.glm_alpha(plan.fit_rows) or "the linear predictor without X * b"
        return Decision(SUBJECT, plan.family.glm,
                        f"the likelihood is {x} * b plus a per-row intercept ({alpha})")

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        likelihood = dataclasses.replace(plan.likelihood, glm=True)
        return dataclasses.replace(plan, likelihood=likelihood)


@dataclass(frozen=True)
class Opencl:
    """Says what runs on the OpenCL device (only when ``opencl`` is asked for): stanc
    moves the GLM kernels there; without one, little of the likelihood goes."""

    request: Any

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        if plan.likelihood.glm:
            return Decision("opencl", f"opencl={self.request!r}",
                            f"{plan.family.glm} runs on the OpenCL device")
        return Decision("opencl", f"opencl={self.request!r}",
                        "no GLM kernel applies, so the likelihood stays on the CPU except what "
                        "stanc --use-opencl moves itself", applied=False)

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        return plan
