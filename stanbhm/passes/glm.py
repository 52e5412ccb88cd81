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

from ..strategies import Rowwise
from .base import Decision, InSteps

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

SUBJECT = "glm"


@dataclass(frozen=True)
class Glm(InSteps):
    """Switches the likelihood statement to the family's GLM kernel where it fits."""

    request: Any  # "auto" or "never"

    def skip_reason(self, plan: Plan) -> str:
        lik = plan.likelihood
        if self.request == "never":
            return "glm='never' requested"
        if lik.family.glm is None:
            return f"the {lik.family.title} family has no GLM kernel in Stan"
        if not isinstance(lik.strategy, Rowwise):
            return (f"the likelihood is rewritten ({lik.strategy.rewritten_as}), not one term "
                    "per row")
        if lik.additions:
            return f"{lik.addition_reason}: not the kernel's likelihood"
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
        strategy = dataclasses.replace(plan.likelihood.strategy, glm=True)
        return dataclasses.replace(plan, likelihood=plan.likelihood.with_strategy(strategy))


#: GLM work per gradient (fitted rows x columns of X) from which opencl="auto" runs the
#: kernel on a GPU. Stan 2.39's GLM kernels on an H100, timed by hand before this project
#: had a GPU machine to script it on: about 3.5 ms fixed per call, and 7x (gaussian) to
#: 14.5x (bernoulli) faster than one CPU thread at 1M rows. One CPU thread costs about 3
#: ns per row and column (the cost model of `passes.joint`), so the GPU saves time once
#: 3 ns x entries x (1 - 1/7) > 3.5 ms, about 1.4M entries; twice that, for margin.
AUTO_ENTRIES = 3_000_000


@dataclass(frozen=True)
class Opencl(InSteps):
    """Says what runs on the OpenCL device (only when ``opencl`` is asked for): stanc
    moves the GLM kernels there; without one, little of the likelihood goes. Under
    ``"auto"`` it decides from the model alone, never from this machine's hardware: a GPU
    is wanted (``Plan.gpu_wanted``) when the GLM kernel's work per gradient is at least
    `AUTO_ENTRIES`; `Model` then runs it on the first OpenCL GPU of the machine it is
    made on, or on the CPU where there is none, so the program is the same everywhere."""

    request: Any

    def decide(self, spec: ModelSpec, plan: Plan) -> tuple[Decision, Plan]:
        if self.request == "auto":
            decision = self.choose(plan)
            return decision, (dataclasses.replace(plan, gpu_wanted=True) if decision.applied
                              else plan)
        if plan.likelihood.glm:
            return Decision("opencl", f"opencl={self.request!r}",
                            f"{plan.family.glm} runs on the OpenCL device"), plan
        return Decision("opencl", f"opencl={self.request!r}",
                        "no GLM kernel applies, so the likelihood stays on the CPU except what "
                        "stanc --use-opencl moves itself", applied=False), plan

    @staticmethod
    def choose(plan: Plan) -> Decision:
        """"auto"'s decision: applied when a GPU is wanted."""

        def cpu(reason: str) -> Decision:
            return Decision("opencl", "not used", f"'auto': {reason}", applied=False)

        if not plan.likelihood.glm:
            return cpu("no GLM kernel applies, and the GLM kernels are what a GPU runs")
        columns = len(plan.fixed.free)
        size = f"{plan.n_obs} rows x {columns} columns in {plan.family.glm}"
        if plan.n_obs * columns < AUTO_ENTRIES:
            return cpu(f"{size}, under {AUTO_ENTRIES:.0e}: a GPU call's fixed ~3.5 ms would "
                       "cost more than it saves")
        return Decision("opencl", "a GPU if the machine has one",
                        f"'auto': {size}, at least {AUTO_ENTRIES:.0e}: the machine the model "
                        "is made on runs the kernel on its first OpenCL GPU, or on the CPU "
                        "when it has none")
