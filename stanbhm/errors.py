"""One exception family for everything stanbhm refuses.

Callers (notebooks, scripts, the CLI) catch `StanbhmError` to tell "stanbhm said no"
apart from a bug. Bad requests also subclass `ValueError`, so code that treats bad
arguments generically keeps working.
"""

from __future__ import annotations

__all__ = ["CmdStanError", "PlanError", "SpecError", "StanbhmError"]


class StanbhmError(Exception):
    """Base class of every error stanbhm raises on purpose."""


class PlanError(StanbhmError, ValueError):
    """A requested option cannot be honoured for this model (names the option)."""


class SpecError(StanbhmError, ValueError):
    """The data, family or priors do not fit the formula.

    The message always names what is at fault (a column, term, grouping factor, family
    or prior key) so the user can fix it without reading stanbhm's source.
    """


class CmdStanError(StanbhmError, RuntimeError):
    """A CmdStan run exited with an error; the message is CmdStan's own."""
