"""Passes: each one decision about the program, made from the spec and the plan so far.

A pass has ``decide(spec, plan) -> (Decision | None, Plan)``: the decision (applied or
skipped, with a one-line reason; both kinds go into the program header; None when the
pass has nothing to decide for this model) and the plan after it, a new frozen plan
when applied and the same plan when not. A pass whose decision shares nothing costly
with its change may have ``applies(spec, plan) -> Decision | None`` and ``apply(spec,
plan) -> Plan`` behind it (`Steps`; the base class `InSteps` gives it ``decide``);
`run_passes` calls ``decide`` on each and records the decisions.

Passes are pure: a pass keeps nothing between calls (no cache), reads no hardware, and
holds no other pass. What several passes read is made once by the planner and given to
each: the rewrites of a gaussian likelihood's rows share one `RowAnalysis` of those
rows, whose design is built at most once. `planner.default_passes` lists the passes in
the order they run: integrating a term out comes first (a term without level effects
has nothing to parameterize), then the parameterization of each group term, which
later passes depend on.
"""

from .absorb import Absorb
from .base import Decision, InSteps, Pass, Steps, run_passes
from .block import BlockProducts
from .collapse import Collapse
from .fold import Fold
from .glm import Glm, Opencl
from .joint import JointStatistics, RowAnalysis
from .marginalize import Marginalize
from .outputs import Effects, OutputPass, RowData
from .parameterization import Parameterize
from .scale import ScaleCoefficients
from .statistics import SufficientStatistics
from .threads import Threads

__all__ = ["Absorb", "BlockProducts", "Collapse", "Decision", "Effects", "Fold", "Glm", "InSteps",
           "JointStatistics", "Marginalize", "Opencl", "OutputPass", "Parameterize", "Pass",
           "RowAnalysis", "RowData", "ScaleCoefficients", "Steps", "SufficientStatistics",
           "Threads", "run_passes"]

