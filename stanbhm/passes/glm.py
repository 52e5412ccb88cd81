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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..strategies import Rowwise
from .base import Decision, once

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
        if not isinstance(lik.strategy, Rowwise):
            return (f"the likelihood is rewritten ({lik.strategy.rewritten_as}), not one term "
                    "per row")
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
class Opencl:
    """Says what runs on the OpenCL device (only when ``opencl`` is asked for): stanc
    moves the GLM kernels there; without one, little of the likelihood goes. Under
    ``"auto"`` it chooses: a GPU when there is one and the GLM kernel's work per gradient
    is at least `AUTO_ENTRIES`, otherwise the CPU, with the reason."""

    request: Any
    _made: dict = field(default_factory=dict, compare=False, repr=False)

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision:
        if self.request == "auto":
            return once(self._made, plan, lambda: self.choose(plan))[0]
        if plan.likelihood.glm:
            return Decision("opencl", f"opencl={self.request!r}",
                            f"{plan.family.glm} runs on the OpenCL device")
        return Decision("opencl", f"opencl={self.request!r}",
                        "no GLM kernel applies, so the likelihood stays on the CPU except what "
                        "stanc --use-opencl moves itself", applied=False)

    def choose(self, plan: Plan) -> tuple[Decision, Any]:
        """("auto"'s decision, the GPU it chose or None)."""
        from ..toolchain import opencl

        def cpu(reason: str) -> tuple[Decision, None]:
            return Decision("opencl", "not used", f"'auto': {reason}", applied=False), None

        if not plan.likelihood.glm:
            return cpu("no GLM kernel applies, and the GLM kernels are what a GPU runs")
        columns = len(plan.fixed.free)
        size = f"{plan.n_obs} rows x {columns} columns in {plan.family.glm}"
        if plan.n_obs * columns < AUTO_ENTRIES:
            return cpu(f"{size}, under {AUTO_ENTRIES:.0e}: a GPU call's fixed ~3.5 ms would "
                       "cost more than it saves")
        missing = opencl.opencl_missing()
        if missing:
            return cpu(missing)
        found = opencl.devices()
        gpus = [d for d in found if d.kind == "gpu"]
        if not gpus:
            found = ", ".join(f"{d.kind} '{d.name}'" for d in found)
            return cpu(f"{size}, but no OpenCL GPU device here (found: {found})")
        gpu = gpus[0]
        return Decision("opencl", f"gpu '{gpu.name}' (platform {gpu.platform_id}, device "
                        f"{gpu.device_id})", f"'auto': {size}, at least "
                        f"{AUTO_ENTRIES:.0e}"), gpu

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        if self.request == "auto":
            return dataclasses.replace(plan, device=self._made[id(plan)][1])
        return plan
