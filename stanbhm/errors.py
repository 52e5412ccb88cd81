"""One exception family for everything stanbhm refuses.

Callers (notebooks, scripts, the CLI) catch `StanbhmError` to tell "stanbhm said no"
apart from a bug. Bad requests also subclass `ValueError`, so code that treats bad
arguments generically keeps working; a feature that is planned but missing raises
`NotImplementedYet`, which is a `NotImplementedError` and never a `ValueError`, so a
user can tell "you asked for something wrong" from "ask again in a later release".
"""

from __future__ import annotations

__all__ = ["NotImplementedYet", "PlanError", "SpecError", "StanbhmError"]


class StanbhmError(Exception):
    """Base class of every error stanbhm raises on purpose."""


class NotImplementedYet(StanbhmError, NotImplementedError):
    """A valid request for a feature that is not built yet; the message says which."""


class PlanError(StanbhmError, ValueError):
    """A requested option cannot be honoured for this model (names the option)."""


class SpecError(StanbhmError, ValueError):
    """The data, family or priors do not fit the formula.

    The message always names what is at fault (a column, term, grouping factor, family
    or prior key) so the user can fix it without reading stanbhm's source.
    """
