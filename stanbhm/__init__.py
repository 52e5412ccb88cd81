"""stanbhm: hierarchical Bayesian models as readable Stan programs.

The pipeline runs formula -> spec -> plan (parts, likelihood, passes) -> render ->
toolchain -> results; see docs/architecture.md. This package root re-exports the public names.
"""

from . import datasets, plots, toolchain
from .advice import SamplingWarning
from .errors import CmdStanError, PlanError, SpecError, StanbhmError
from .families import FAMILIES, LINKS
from .formula import Formula, FormulaError, GroupTerm
from .model import Model
from .results import Fit
from .version import __version__ as __version__

__all__ = [
    "FAMILIES",
    "LINKS",
    "CmdStanError",
    "Fit",
    "Formula",
    "FormulaError",
    "GroupTerm",
    "Model",
    "PlanError",
    "SamplingWarning",
    "SpecError",
    "StanbhmError",
    "datasets",
    "plots",
    "toolchain",
]
