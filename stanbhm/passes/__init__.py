"""Passes: each one decision about the program, made from the spec and the plan so far.

A pass has ``applies(spec, plan) -> Decision`` (applied or skipped, with a one-line
reason; both kinds go into the program header) and ``apply(spec, plan) -> Plan``
(a new frozen plan). `default_passes` lists them in the order they run; the
parameterization of each group term comes first, since later rewrites depend on it.
"""

from .base import Decision, Pass, run_passes
from .outputs import OutputPass
from .parameterization import Parameterize

__all__ = ["Decision", "OutputPass", "Parameterize", "Pass", "default_passes", "run_passes"]


def default_passes(spec, options) -> list[Pass]:
    """The passes for one model, in order."""
    passes: list[Pass] = [Parameterize(g.term_name, options.parameterization)
                          for g in spec.groups]
    passes += [OutputPass("log_lik", options.log_lik), OutputPass("y_rep", options.y_rep)]
    return passes
