"""The unit each population coefficient is sampled in: its approximate posterior sd.

NUTS starts warmup with a unit metric, and for its first ~100 iterations (CmdStan's
initial buffer and first window) every tree has to span the widest parameter at the step
size the narrowest one allows. With many rows the coefficients are the narrowest: at 30k
bernoulli rows of the election model their posterior sds are about 0.01, against 0.3 to
1.5 for the respondents' effects, and those first 100 iterations took 87% of warmup's
leapfrog steps (95k of 109k, 2 chains x 300 warmup iterations). Declaring ``b`` with
``multiplier=scale_b`` samples ``b / scale_b`` instead: the same posterior (an affine map
has a constant Jacobian, so ``log_prob`` moves by the constant ``sum(log(scale_b))``),
started at about unit scale.

``scale_b`` is each coefficient's sd under the pooled fit of `information` (its working
weights, and for gaussian-like families the within-level residual variance after the
group terms' backfitting) combined with its prior: the square roots of the diagonal of
the inverse of ``X' W X / sigma^2 + diag(1 / prior sd^2)``, with the intercept's column
in ``X`` so that it is integrated over. It is a guess that the metric adaptation
refines. It is 1 for a coefficient a group term also varies (its posterior sd then
depends on that term's sd, which the pooled fit does not give). When ``prior_only``
samples the prior, each coefficient's unit is its prior's scale instead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..information import pooled_fit, posterior_sds, prior_scale
from .base import Decision, InSteps

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

#: Significant digits kept: the scales are a guess, and short numbers read better in data.
DIGITS = 3


def rounded(values: np.ndarray) -> np.ndarray:
    return np.array([float(f"{v:.{DIGITS}g}") for v in values])


@dataclass(frozen=True)
class ScaleCoefficients(InSteps):
    """Sets ``scale_b`` of the fixed part from the pooled fit (``scale_b="auto"``)."""

    requested: Any

    def varied(self, spec: ModelSpec) -> set[int]:
        """0-based columns a group term varies (those a centered term took over among
        them: `Absorb` runs only for shared effects)."""
        shared = {e for g in spec.groups for e in g.effect_names}
        return {j for j, name in enumerate(spec.fixed.names) if name in shared}

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision | None:
        fixed = plan.fixed
        if not fixed.k:
            return None
        subject = "scale of b"
        if self.requested == "never":
            return Decision(subject, "none", 'scale_b="never" requested', applied=False)
        if fixed.horseshoe:
            return Decision(subject, "none", "the horseshoe samples standardized "
                            "coefficients already", applied=False)
        varied = self.varied(spec)
        if len(varied) == fixed.k:
            return Decision(subject, "none", "group terms vary every coefficient",
                            applied=False)
        reason = "b is sampled in units of its approximate posterior sd (pooled fit and prior)"
        if varied:
            reason += f"; 1 for {', '.join(fixed.idents[j] for j in sorted(varied))}, " \
                      "which a group term varies"
        return Decision(subject, "per coefficient", reason)

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan:
        fixed = plan.fixed
        pooled = pooled_fit(spec)
        priors = np.array([prior_scale(p) for p in fixed.b_priors])
        sds = posterior_sds(spec.fitted_X, pooled.weights / pooled.sigma2,
                            spec.fixed.intercept, priors, spec.fixed.gram)
        ok = np.isfinite(sds) & (sds > 0)
        scale = np.where(ok, sds, 1.0)
        prior = priors.copy()
        for j in self.varied(spec):
            scale[j] = prior[j] = 1.0
        fixed = dataclasses.replace(fixed, scale=rounded(scale), prior_scale=rounded(prior))
        return dataclasses.replace(plan, fixed=fixed)
