"""The public ``Model``: formula + data in, Stan program and fits out."""

from __future__ import annotations

import os
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from . import toolchain
from .formula import Formula
from .plan import Options, Plan, make_plan
from .program import Program
from .render import render
from .results import Fit
from .spec import ModelSpec, build_spec

METHODS = ("sample", "pathfinder", "variational", "laplace", "optimize")


class Model:
    """A hierarchical model bound to its data.

    Building one parses the formula, validates the data and options and makes every
    plan decision; nothing is compiled until ``fit`` (or ``compile``) is called.
    ``log_lik`` and ``y_rep`` are ``"auto"`` (written up to 5000 rows), True or False.
    """

    def __init__(
        self,
        formula: str | Formula,
        data: pd.DataFrame,
        family: str = "gaussian",
        priors: dict[str, str] | None = None,
        parameterization: Any = "auto",
        rewrites: Any = "auto",
        glm: Any = "auto",
        threads: int | None = None,
        opencl: Any = False,
        *,
        log_lik: Any = "auto",
        y_rep: Any = "auto",
    ) -> None:
        self.formula = formula if isinstance(formula, Formula) else Formula(formula)
        self.spec: ModelSpec = build_spec(self.formula, data, family, priors)
        self.options = Options(parameterization=parameterization, rewrites=rewrites, glm=glm,
                               threads=threads, opencl=opencl, log_lik=log_lik, y_rep=y_rep)
        self.plan: Plan = make_plan(self.spec, self.options)

    @cached_property
    def program(self) -> Program:
        """The rendered program: code, data and output schema."""
        return render(self.plan)

    def stan_code(self) -> str:
        """The Stan program (deterministic for the same formula, data shape and options)."""
        return self.program.code

    def stan_data(self, prior_only: bool = False) -> dict[str, Any]:
        """The data dictionary the program reads; ``prior_only=True`` leaves the
        likelihood out, for prior predictive checks."""
        return {**self.program.data, "prior_only": int(bool(prior_only))}

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
        return toolchain.compile_model(self.stan_code(), cpp_options=self.program.cpp_options)

    def fit(self, method: str = "sample", *, prior_only: bool = False, **kwargs: Any) -> Fit:
        """Run CmdStanPy's ``method``; keyword arguments pass straight through.

        ``prior_only=True`` samples the prior (and the prior predictive ``y_rep``).
        """
        if method not in METHODS:
            raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
        exe = self.compile()
        data = self.stan_data(prior_only=prior_only)
        if method == "sample":
            kwargs.setdefault("show_progress", False)
            result = exe.sample(data=data, **kwargs)
        elif method == "laplace":
            result = exe.laplace_sample(data=data, **kwargs)
        else:
            result = getattr(exe, method)(data=data, **kwargs)
        return Fit(self.program.schema, result, method)
