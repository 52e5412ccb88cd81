"""stanbhm: hierarchical Bayesian models as readable Stan programs.

The pipeline runs formula -> spec -> plan -> render -> toolchain -> results; see
DESIGN.md. This package root re-exports the public names.
"""

from . import toolchain
from .formula import Formula, FormulaError, GroupTerm

__all__ = ["Formula", "FormulaError", "GroupTerm", "toolchain"]
__version__ = "0.1.0"
