"""The likelihood: one object that owns the outcome and writes itself where it appears.

It appears three times in a program: the model statement (observed rows), the pointwise
``log_lik`` (one value per observed row) and the posterior predictive ``y_rep`` (every
row). Writing all three from one family row and one strategy keeps them consistent;
the rewrites (sufficient statistics, collapsed counts, marginalization) and threading
add strategies here instead of touching the parts. Today's strategy is ``"rowwise"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .families import Family
from .parts import Output, Part, Rows

__all__ = ["Likelihood"]


@dataclass(frozen=True, eq=False)
class Likelihood(Part):
    """The outcome, its modifiers (``se()``, ``trials()``) and the likelihood statements."""

    family: Family
    strategy: str  # "rowwise"; the rewrites issue adds the others
    response: str
    y: np.ndarray  # observed outcome values
    n: int
    obs: np.ndarray  # 0-based indices of the observed rows
    se: np.ndarray | None
    trials: np.ndarray | None
    log_lik: bool
    y_rep: bool
    se_expr: str = ""
    trials_expr: str = ""
    kind: str = "likelihood"

    @property
    def missing(self) -> bool:
        return len(self.obs) < self.n

    @property
    def n_obs(self) -> int:
        return len(self.obs)

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"N": self.n}
        if self.missing:
            out["N_obs"] = self.n_obs
            out["obs"] = self.obs + 1
        out["y"] = self.y.astype(np.int64) if self.family.integer else self.y
        if self.se is not None:
            out["se"] = self.se
        if self.trials is not None:
            out["trials"] = self.trials
        out["prior_only"] = 0
        return out

    def outputs(self) -> tuple[Output, ...]:
        out = []
        if self.log_lik:
            out.append(Output("log_lik", ("obs_id",)))
        if self.y_rep:
            out.append(Output("y_rep", ("row",)))
        return tuple(out)

    def coords(self) -> dict[str, list[str]]:
        coords = {"obs_id": [str(i) for i in self.obs]}
        if self.y_rep:
            coords["row"] = [str(i) for i in range(self.n)]
        return coords

    def _fill(self, template: str, eta: str, row_data: str) -> str:
        """A family template with ``{eta}`` and the row data filled in, known standard
        errors standing for ``sigma``; `row_data` is a format string for a row-level
        data name (``"{}"``, ``"{}_obs"``, ``"{}[i]"``)."""
        if self.se is not None:
            template = template.replace("sigma", "{se}")
        return template.format(eta=eta, se=row_data.format("se"),
                               trials=row_data.format("trials"))

    def statement(self, rows: Rows) -> str:
        """``y ~ dist(...)`` over the fitted rows."""
        args = self._fill(", ".join(self.family.args), "eta", "{}" + rows.suffix)
        return f"y ~ {self.family.dist}({args});"

    def pointwise(self) -> str:
        """The log density of observed row ``i``, inside the ``log_lik`` loop over the
        observed rows, with ``eta`` covering every row when some are unobserved."""
        row = "obs[i]" if self.missing else "i"
        args = self._fill(", ".join(self.family.args), f"eta[{row}]", "{}[" + row + "]")
        return f"{self.family.dist}_{self.family.suffix()}(y[i] | {args})"

    def rng(self) -> str:
        """A posterior predictive draw of every row."""
        return self._fill(self.family.rng, "eta", "{}")

    @property
    def y_rep_type(self) -> str:
        return "int" if self.family.integer else "real"
