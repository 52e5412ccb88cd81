"""The public ``Model``: formula + data in, Stan program and fits out."""

from __future__ import annotations

import contextlib
import os
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import arguments, atomic, console, metric, toolchain
from .advice import warn
from .arrays import one_blas_thread, small_pages
from .datafile import data_file
from .errors import CmdStanError
from .formula import Formula
from .marginals.quadrature import DEFAULT_POINTS
from .plan import Options, Plan
from .planner import make_plan
from .program import Program
from .render import render
from .results import Fit
from .spec import ModelSpec, build_spec
from .toolchain import opencl as opencl_devices

METHODS = tuple(arguments.METHODS)


class Model:
    """A hierarchical model bound to its data.

    ``family`` names a row of the family table (`stanbhm.FAMILIES`); ``link`` picks
    another of the links it lists (``family="bernoulli", link="probit"``), None its own.
    Building one parses the formula, validates the data and options and makes every
    plan decision; nothing is compiled until ``fit`` (or ``compile``) is called.
    ``log_lik`` and ``y_rep`` are ``"auto"`` (written up to 5000 rows), True or False.
    ``effects`` says whether the effects of a term integrated out of the likelihood are
    drawn back in generated quantities: ``"auto"`` draws them up to 5000 levels, or when
    ``log_lik`` or ``y_rep`` needs them; True or False.
    ``opencl`` runs the GLM kernel on an OpenCL device: False (the default), True, "gpu",
    "cpu", (platform, device), or "auto" (a GPU when there is one and the kernel is large
    enough to repay a call's fixed cost; the header says whether the kernel is, and
    ``model.device`` which GPU this machine gives it).
    ``threads=k`` sums the likelihood over slices of rows on k threads per chain
    (reduce_sum); ``grainsize`` overrides the rows per slice (by default the fitted rows
    over 4 slices per thread).
    ``scale_b="auto"`` samples each population coefficient in units of its approximate
    posterior sd (``vector<multiplier=scale_b>``, from a pooled fit before sampling), so
    that warmup does not begin with coefficients a hundred times narrower than the group
    effects; the posterior is the same. ``"never"`` declares ``b`` plainly.
    ``initial_metric="auto"`` starts NUTS's warmup from each parameter's approximate
    posterior variance (`initial_metric`, from the same pooled fit) instead of CmdStan's
    unit metric, with a shorter initial buffer (`metric.INIT_BUFFER`, unless
    ``adapt_init_phase`` is passed); adaptation still replaces it. ``"unit"`` leaves
    CmdStan's defaults.
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
        link: str | None = None,
        log_lik: Any = "auto",
        y_rep: Any = "auto",
        grainsize: int | None = None,
        effects: Any = "auto",
        scale_b: Any = "auto",
        initial_metric: Any = "auto",
        quadrature_points: Any = DEFAULT_POINTS,
    ) -> None:
        self.formula = formula if isinstance(formula, Formula) else Formula(formula)
        self.options = Options(parameterization=parameterization, rewrites=rewrites, glm=glm,
                               threads=threads, opencl=opencl, log_lik=log_lik,
                               y_rep=y_rep, grainsize=grainsize, effects=effects,
                               scale_b=scale_b, initial_metric=initial_metric,
                               quadrature_points=quadrature_points)
        with small_pages(), one_blas_thread():  # see there: each saves seconds at scale
            self.spec: ModelSpec = build_spec(self.formula, data, family, priors, link=link)
            self.plan: Plan = make_plan(self.spec, self.options)
        #: The OpenCL device the kernels run on (None: the CPU), found on this machine;
        #: under "auto" the first OpenCL GPU when the plan wants one (`passes.glm.Opencl`)
        #: and there is one here, else None.
        if opencl == "auto":
            self.device = None
            if self.plan.gpu_wanted and opencl_devices.opencl_missing() is None:
                with contextlib.suppress(LookupError):  # no GPU here: the CPU
                    self.device = opencl_devices.choose_device("gpu")
        else:
            self.device = opencl_devices.resolve(opencl)

    def __repr__(self) -> str:
        """Formula, family, rows, and each term's parameterization and rewrite, as the
        program's header states them."""
        spec, plan = self.spec, self.plan
        observed = int(np.asarray(spec.observed).sum())
        lines = [f"stanbhm Model: {self.formula.text}",
                 f"  family: {plan.family.name} ({plan.family.link} link)",
                 f"  rows: {len(spec.y)}, {observed} with an observed outcome"]
        for part in plan.groups:
            lines.append(f"  ({' + '.join(part.effects)} | {part.name}): {part.n_levels} "
                         f"levels, {len(part.effects)} effect{'s' if part.k > 1 else ''}")
        lines.append("  decisions:")
        lines += [f"    {d.subject}: {d.choice}" for d in plan.decisions]
        return "\n".join(lines)

    @cached_property
    def program(self) -> Program:
        """The rendered program: code, data and output schema."""
        with small_pages(), one_blas_thread():
            return render(self.plan)

    @cached_property
    def initial_metric(self) -> metric.InitialMetric:
        """The diagonal inverse metric warmup starts from (``initial_metric="auto"``):
        each unconstrained parameter's approximate posterior variance, from the pooled
        fit before sampling. ``.table()`` shows it as sds per parameter."""
        return metric.initial_metric(self.spec, self.plan)

    def stan_code(self) -> str:
        """The Stan program (deterministic for the same formula, data shape and options)."""
        return self.program.code

    def stan_data(self, prior_only: bool = False) -> dict[str, Any]:
        """The data dictionary the program reads; ``prior_only=True`` leaves the
        likelihood out, for prior predictive checks. The program's new rows to predict
        are none (`parts.PredictionPart`): `Fit.predict` passes them to the same program."""
        if prior_only:
            return {**self.program.data, **self.program.prior_data, "prior_only": 1}
        return {**self.program.data, "prior_only": 0}

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the program to ``path`` atomically (it appears whole or not at all)."""
        return atomic.write(Path(path), self.stan_code())

    def build_options(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(cpp_options, stanc_options) the program is compiled with: the program's own,
        stanc's optimization (`toolchain.OPTIMIZED`), plus the OpenCL device's when
        ``opencl`` chose one."""
        cpp = dict(self.program.cpp_options)
        stanc = {**toolchain.OPTIMIZED, **self.program.stanc_options}
        if self.device is not None:
            device_cpp, device_stanc = opencl_devices.build_options()
            cpp.update(device_cpp)
            stanc.update(device_stanc)
        return cpp, stanc

    def compile(self):
        """The compiled program (from stanbhm's cache when already built); with
        ``opencl`` its GLM kernels run on the chosen device."""
        cpp, stanc = self.build_options()
        try:
            with console.quiet():
                return toolchain.compile_model(self.stan_code(), cpp_options=cpp,
                                               stanc_options=stanc, progress=_say)
        except toolchain.StanCompileError as exc:
            if exc.stage != "c++":
                raise
            # stanc's O1 can emit C++ that Stan Math has no overload for (seen with 2.39:
            # rep_matrix of a row of parameters); the program itself is fine at O0
            _say("the C++ of stanc's O1 build failed to compile; compiling without O1")
            plain = {k: v for k, v in stanc.items() if k not in toolchain.OPTIMIZED}
            with console.quiet():
                return toolchain.compile_model(self.stan_code(), cpp_options=cpp,
                                               stanc_options=plain, progress=_say)

    def fit(self, method: str = "sample", *, prior_only: bool = False,
            warm_start: Fit | None = None, advice: bool = True, **kwargs: Any) -> Fit:
        """Run CmdStanPy's ``method``; keyword arguments pass straight through.

        The geometry controls of NUTS are CmdStanPy's: ``metric="dense_e"`` (or
        ``"diag_e"``), ``max_treedepth``, ``adapt_delta``, ``step_size``.
        ``warm_start=previous_fit`` starts each chain where that fit's chain ended, with
        its adapted inverse metric and step size, and skips warmup and adaptation (pass
        ``iter_warmup``/``adapt_engaged`` to override): a refit of the same model with
        new seeds or more draws starts sampling at once. ``prior_only=True`` samples the
        prior (and the prior predictive). CmdStanPy's progress bars show unless
        ``show_progress=False``; after sampling, each diagnostic out of its safe range is a
        `SamplingWarning` saying what to try (``advice=False`` skips the check).
        """
        if method not in METHODS:
            raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
        if warm_start is not None:
            if method != "sample":
                raise ValueError("warm_start works with method='sample'")
            kwargs = {**warm_start_arguments(warm_start, kwargs.get("chains", 4)), **kwargs}
        kwargs = arguments.check(method, kwargs)  # before the compile: errors come first
        exe = self.compile()
        with console.quiet(kwargs.get("show_console", False)), \
                data_file(self.stan_data(prior_only=prior_only)) as data, \
                opencl_devices.selected(self.device):
            if method == "sample":
                kwargs = self.sample_arguments(kwargs, prior_only)
                if self.device is not None:
                    # chains as threads of one process share Stan's one OpenCL context,
                    # and a rejection inside a kernel call then aborts the process (seen
                    # on PoCL: exit -6 at the first "Scale vector = 0" of warmup)
                    kwargs.setdefault("force_one_process_per_chain", True)
            try:
                result = getattr(exe, arguments.METHODS[method])(data=data, **kwargs)
            except RuntimeError as exc:  # CmdStanPy's, for a failed sample
                raise CmdStanError(f"CmdStan's {method} failed:\n"
                                   f"{cmdstan_messages(str(exc))}") from exc
        raise_if_failed(result, method)
        fit = Fit(self.program.schema, result, method, model=self, prior_only=prior_only)
        if method == "sample" and advice and not prior_only and not kwargs.get("fixed_param"):
            warn(fit.advice())
        return fit

    def sample_arguments(self, kwargs: dict[str, Any], prior_only: bool = False
                         ) -> dict[str, Any]:
        """CmdStanPy's ``sample`` arguments for this model: the caller's, plus threads per
        chain (``threads=k``) and the initial metric (``initial_metric="auto"``) where they
        apply. Chains run elsewhere (`distributed`) get the same, so they are the chains
        a local fit runs."""
        out = dict(kwargs)
        if self.plan.likelihood.threads > 1:
            out.setdefault("threads_per_chain", self.plan.likelihood.threads)
        if self._starts_from_guess(out, prior_only):
            out["inv_metric"] = self.initial_metric.vector
            out.setdefault("adapt_init_phase", metric.INIT_BUFFER)
        return out

    def _starts_from_guess(self, kwargs: dict[str, Any], prior_only: bool) -> bool:
        """Whether a sampling run starts warmup from `initial_metric`: asked for, warmup
        adapts, the metric is diagonal, the user gave none (``warm_start`` gives its own)
        and the data are not left out (the guess is the posterior's, not the prior's)."""
        return (self.options.initial_metric == "auto" and not prior_only
                and "inv_metric" not in kwargs and not kwargs.get("fixed_param")
                and kwargs.get("adapt_engaged", True) is not False
                and kwargs.get("iter_warmup", 1) != 0
                and kwargs.get("metric", "diag_e") in ("diag", "diag_e"))


def raise_if_failed(result: Any, method: str) -> None:
    """CmdStanError with CmdStan's own message when a run exited non-zero. CmdStanPy
    raises for a failed sample but returns a laplace run that died after "Calculating
    Hessian" as a fit of no draws."""
    runset = getattr(result, "_runset", None) or getattr(result, "runset", None)
    if runset is None or runset._check_retcodes():
        return
    text = "".join(console.transcripts(runset))
    codes = ", ".join(str(runset._retcode(i)) for i in range(runset.num_procs))
    raise CmdStanError(f"CmdStan's {method} failed (exit {codes}):\n{cmdstan_messages(text)}")


def cmdstan_messages(text: str, most: int = 5) -> str:
    """CmdStan's error lines in `text`, each once, at most `most` of them: a chain that
    fails at initialization repeats the same rejection a hundred times."""
    lines = [line.strip() for line in text.splitlines()]
    said = list(dict.fromkeys(line for line in lines if line.startswith(("Error", "Exception"))
                              and not line.startswith("Error during")))  # CmdStanPy's
    if not said:
        return "(CmdStan printed no error message)"
    more = f"\n(and {len(said) - most} more)" if len(said) > most else ""
    return "\n".join(said[:most]) + more


def _say(message: str) -> None:
    """Progress on stderr, where CmdStanPy's progress bars go too."""
    print(message, file=sys.stderr, flush=True)


def warm_start_arguments(previous: Fit, chains: int) -> dict[str, Any]:
    """CmdStanPy arguments that continue `previous`: each chain's last draw as its
    initial values, its inverse metric and step size, no warmup and no adaptation."""
    result = previous.cmdstan
    if previous.method != "sample" or getattr(result, "inv_metric", None) is None:
        raise ValueError("warm_start needs a fit from method='sample' with an adapted metric")
    n = result.num_draws_sampling
    before = result.chains
    draws = {name: result.stan_variable(name) for name in result.metadata.stan_vars}
    inits, inv_metric, step = [], [], []
    for c in range(chains):
        source = c % before
        last = (source + 1) * n - 1
        inits.append({name: np.asarray(value[last]).tolist() for name, value in draws.items()})
        inv_metric.append(np.asarray(result.inv_metric[source]))
        step.append(float(result.step_size[source]))
    return {"inits": inits, "inv_metric": inv_metric, "step_size": step,
            "metric": result.metric_type, "iter_warmup": 0, "adapt_engaged": False}
