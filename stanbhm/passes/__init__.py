"""Passes: each one decision about the program, made from the spec and the plan so far.

A pass has ``applies(spec, plan) -> Decision`` (applied or skipped, with a one-line
reason; both kinds go into the program header) and ``apply(spec, plan) -> Plan``
(a new frozen plan). `planner.default_passes` lists them in the order they run:
integrating a term out comes first (a term without level effects has nothing to
parameterize), then the parameterization of each group term, which later passes
depend on.
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
           "RowData", "ScaleCoefficients", "SufficientStatistics", "Threads", "run_passes"]

