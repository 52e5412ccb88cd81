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
    coefficients = ["Intercept"] if spec.fixed.intercept else []
    coefficients += [f"b[{j + 1}]" for j in range(spec.fixed.p)]
    shared = {e for g in spec.groups for e in g.effect_names}
    labels = ["Intercept", *spec.fixed.stan_names] if spec.fixed.intercept else \
        list(spec.fixed.stan_names)
    names = ["Intercept", *spec.fixed.names] if spec.fixed.intercept else list(spec.fixed.names)
    passes += [Absorb(c, label) for c, label, name in zip(coefficients, labels, names,
                                                         strict=True) if name in shared]
    passes += [OutputPass("log_lik", options.log_lik), OutputPass("y_rep", options.y_rep)]
    return passes
