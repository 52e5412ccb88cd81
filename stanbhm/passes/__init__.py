"""Passes: each one decision about the program, made from the spec and the plan so far.

A pass has ``applies(spec, plan) -> Decision`` (applied or skipped, with a one-line
reason; both kinds go into the program header) and ``apply(spec, plan) -> Plan``
(a new frozen plan). `default_passes` lists them in the order they run: integrating a
term out comes first (a term without level effects has nothing to parameterize), then
the parameterization of each group term, which later passes depend on.
"""

from .absorb import Absorb
from .base import Decision, Pass, run_passes
from .collapse import Collapse
from .fold import Fold
from .glm import Glm, Opencl
from .joint import JointStatistics
from .marginalize import Marginalize
from .outputs import Effects, OutputPass, RowData
from .parameterization import Parameterize
from .scale import ScaleCoefficients
from .statistics import SufficientStatistics
from .threads import Threads

__all__ = ["Absorb", "Collapse", "Decision", "Effects", "Fold", "Glm", "JointStatistics",
           "Marginalize", "Opencl", "OutputPass", "Parameterize", "Pass",
           "ScaleCoefficients", "SufficientStatistics", "Threads",
           "default_passes", "run_passes"]


def default_passes(spec, options) -> list[Pass]:
    """The passes for one model, in order: which group intercept is integrated out, the
    parameterization of each other group term, which centered term takes over each
    population coefficient, the unit each coefficient is sampled in, the exact rewrites,
    the GLM kernel, threads, the per-row outputs, and whether the rows themselves are
    passed."""
    passes: list[Pass] = [Marginalize(options.rewrites, options.parameterization)]
    passes += [Parameterize(g.term_name, options.parameterization) for g in spec.groups]
    passes.append(Fold(options.rewrites))
    # (coefficient, header label, effect name) of each population coefficient
    population = [("Intercept", "Intercept", "Intercept")] if spec.fixed.intercept else []
    population += [(f"b[{j + 1}]", label, name) for j, (label, name)
                   in enumerate(zip(spec.fixed.stan_names, spec.fixed.names, strict=True))]
    shared = {e for g in spec.groups for e in g.effect_names}
    passes += [Absorb(c, label) for c, label, name in population if name in shared]
    passes.append(ScaleCoefficients(options.scale_b))
    joint = JointStatistics(options.rewrites)  # the per-level pass asks it about cost
    passes += [SufficientStatistics(options.rewrites, joint), Collapse(options.rewrites, joint),
               joint]
    passes += [Glm(options.glm), Threads(options.threads, options.grainsize)]
    if options.opencl is not False:
        passes.append(Opencl(options.opencl))
    passes += [OutputPass("log_lik", options.log_lik), OutputPass("y_rep", options.y_rep)]
    return [*passes, Effects(options.effects), RowData()]
