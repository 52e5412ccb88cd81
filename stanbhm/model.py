"""The public ``Model``: formula + data in, Stan program and fits out."""

from __future__ import annotations

import os
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import toolchain
from .formula import Formula
from .plan import Plan, PlanError, make_plan
from .render import render
from .results import Fit
from .spec import ModelSpec, build_spec

METHODS = ("sample", "pathfinder", "variational", "laplace", "optimize")


class Model:
    """A hierarchical model bound to its data.

    Building one parses the formula, validates the data and makes every plan
    decision; nothing is compiled until ``fit`` (or ``compile``) is called.
    """

    def __init__(
        self,
        formula: str | Formula,
        data: pd.DataFrame,
        family: str = "gaussian",
        priors: dict[str, str] | None = None,
        parameterization: Any = "auto",
        rewrites: str = "auto",
        glm: str = "auto",
        threads: int | None = None,
        opencl: bool = False,
        *,
        log_lik: bool = True,
        y_rep: bool = True,
    ) -> None:
        for name, value, ok in (
            ("rewrites", rewrites, ("auto", "none")),
            ("glm", glm, ("auto", "never")),
        ):
            if value not in ok:
                raise PlanError(f"{name}={value!r} is not implemented yet (use 'auto')")
        if threads not in (None, 1):
            raise PlanError("threads (reduce_sum) is not implemented yet; use threads=None")
        if opencl:
            raise PlanError("opencl=True is not implemented yet for generated models")
        self.formula = formula if isinstance(formula, Formula) else Formula(formula)
        self.spec: ModelSpec = build_spec(self.formula, data, family, priors)
        self.plan: Plan = make_plan(self.spec, parameterization, log_lik=log_lik, y_rep=y_rep)

    @cached_property
    def _code(self) -> str:
        return render(self.plan)

    def stan_code(self) -> str:
        """The Stan program (deterministic for the same formula, data shape and options)."""
        return self._code

    def stan_data(self) -> dict[str, Any]:
        """The data dictionary the program reads, ready for CmdStan JSON."""
        s = self.spec
        obs = np.flatnonzero(s.observed)
        y = s.y[obs]
        data: dict[str, Any] = {
            "N": s.n,
            "N_obs": len(obs),
            "obs": (obs + 1).tolist(),
            "y": y.astype(int).tolist() if self.plan.integer_outcome else y.tolist(),
        }
        if s.se is not None:
            data["se"] = s.se.tolist()
        if s.trials is not None:
            data["trials"] = s.trials.astype(int).tolist()
        if s.offset is not None:
            data["offs"] = s.offset.tolist()
        if s.fixed.names:
            data["K"] = len(s.fixed.names)
            data["X"] = s.fixed.X.tolist()
        for g, gp in zip(s.groups, self.plan.groups, strict=True):
            data[f"N_{gp.ident}"] = gp.n_levels
            data[f"J_{gp.ident}"] = g.index.astype(int).tolist()
            if gp.k == 1 and not gp.intercept_only:
                data[f"Z_{gp.ident}"] = g.Z[:, 0].tolist()
            elif gp.k > 1:
                data[f"Z_{gp.ident}"] = g.Z.tolist()
        return data

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the program to ``path`` atomically (it appears whole or not at all)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(self.stan_code())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def compile(self):
        """The compiled program (from stanbhm's cache when already built)."""
        return toolchain.compile_model(self.stan_code(), cpp_options={"STAN_THREADS": True})

    def fit(self, method: str = "sample", **kwargs: Any) -> Fit:
        """Run CmdStanPy's ``method``; keyword arguments pass straight through."""
        if method not in METHODS:
            raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
        exe = self.compile()
        data = self.stan_data()
        if method == "sample":
            kwargs.setdefault("show_progress", False)
            result = exe.sample(data=data, **kwargs)
        elif method == "laplace":
            result = exe.laplace_sample(data=data, **kwargs)
        else:
            result = getattr(exe, method)(data=data, **kwargs)
        return Fit(self, result, method)
