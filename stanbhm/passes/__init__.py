"""Passes: each one decision about the program, made from the spec and the plan so far.

A pass has ``applies(spec, plan) -> Decision`` (applied or skipped, with a one-line
reason; both kinds go into the program header) and ``apply(spec, plan) -> Plan``
(a new frozen plan). `default_passes` lists them in the order they run; the
parameterization of each group term comes first, since later rewrites depend on it.
"""

from .absorb import Absorb
from .base import Decision, Pass, run_passes
from .outputs import OutputPass
from .parameterization import Parameterize

__all__ = ["Absorb", "Decision", "OutputPass", "Parameterize", "Pass", "default_passes",
           "run_passes"]


def default_passes(spec, options) -> list[Pass]:
    """The passes for one model, in order: the parameterization of each group term,
    which centered term takes over each population coefficient, the per-row outputs."""
    passes: list[Pass] = [Parameterize(g.term_name, options.parameterization)
                          for g in spec.groups]
    # (coefficient, header label, effect name) of each population coefficient
    population = [("Intercept", "Intercept", "Intercept")] if spec.fixed.intercept else []
    population += [(f"b[{j + 1}]", label, name) for j, (label, name)
                   in enumerate(zip(spec.fixed.stan_names, spec.fixed.names, strict=True))]
    shared = {e for g in spec.groups for e in g.effect_names}
    passes += [Absorb(c, label) for c, label, name in population if name in shared]
    passes += [OutputPass("log_lik", options.log_lik), OutputPass("y_rep", options.y_rep)]
    return passes
