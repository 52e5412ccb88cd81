"""stanbhm: hierarchical Bayesian models as readable Stan programs.

The pipeline runs formula -> spec -> plan -> render -> toolchain -> results; see
DESIGN.md. This package root re-exports the public names.
"""

__version__ = "0.1.0"

from . import toolchain
from .formula import Formula, FormulaError, GroupTerm
from .model import Model
from .plan import PlanError
from .results import Fit
from .spec import SpecError

__all__ = [
    "Fit",
    "Formula",
    "FormulaError",
    "GroupTerm",
    "Model",
    "PlanError",
    "SpecError",
    "toolchain",
]
