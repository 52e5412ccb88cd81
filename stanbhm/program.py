"""What rendering produces: the program text, its data and its output schema.

`Fit` receives the `OutputSchema` rather than the model, so results are labelled by
exactly the parts that wrote the program.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["OutputSchema", "Program"]


@dataclass(frozen=True, eq=False)
class OutputSchema:
    """How to label a fit: dims per output, coords per dim, and which outputs are
    pointwise log likelihood or posterior predictive draws."""

    dims: dict[str, list[str]]
    coords: dict[str, list[str]]
    log_lik: str | None
    y_rep: str | None
    y_observed: np.ndarray
    #: outputs left out of R-hat and ESS: a folded sd's sign is arbitrary by design, so
    #: chains may keep to opposite signs while |sd| mixes (`passes.fold`)
    unchecked: tuple[str, ...] = ()
    #: the sampler's working coordinates (`parts.Output.internal`), kept in the
    #: InferenceData group ``internals`` instead of ``posterior``
    internal: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Program:
    """A Stan program with the data it reads and the schema of what it writes."""

    code: str
    data: dict[str, Any]
    schema: OutputSchema
    cpp_options: dict[str, Any] = field(default_factory=dict)
    stanc_options: dict[str, Any] = field(default_factory=dict)
    #: entries that replace `data`'s when the program samples the prior alone
    prior_data: dict[str, Any] = field(default_factory=dict)
