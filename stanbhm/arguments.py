"""The keyword arguments `Model.fit` passes to CmdStanPy, checked before anything compiles.

CmdStanPy's names are the documented ones. Users arrive with the spellings of brms,
rstanarm, PyMC, NumPyro or CmdStan itself (``draws``, ``warmup``, ``cores``,
``target_accept``, ``num_samples``); a misspelled argument should cost an error naming
the right one at once, not a model compile followed by CmdStanPy's "unexpected keyword
argument".
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import cmdstanpy

__all__ = ["METHODS", "check", "known"]

#: Model.fit's method -> the CmdStanModel method that runs it.
METHODS = {"sample": "sample", "pathfinder": "pathfinder", "variational": "variational",
           "laplace": "laplace_sample", "optimize": "optimize"}

#: Arguments stanbhm passes itself, or that would break the fit it returns.
_RESERVED = {"data": "Model.fit passes the model's own data"}

#: Other packages' spellings -> (CmdStanPy's name, what it means), per method family.
_SAMPLE_SPELLINGS = {
    "draws": ("iter_sampling", "draws per chain after warmup"),
    "samples": ("iter_sampling", "draws per chain after warmup"),
    "num_samples": ("iter_sampling", "draws per chain after warmup"),
    "n_samples": ("iter_sampling", "draws per chain after warmup"),
    "iter": ("iter_sampling", "draws per chain after warmup (brms's iter counts warmup too)"),
    "warmup": ("iter_warmup", "warmup iterations per chain"),
    "num_warmup": ("iter_warmup", "warmup iterations per chain"),
    "tune": ("iter_warmup", "warmup iterations per chain"),
    "burn": ("iter_warmup", "warmup iterations per chain"),
    "cores": ("parallel_chains", "chains run at once"),
    "num_chains": ("chains", "number of chains"),
    "n_chains": ("chains", "number of chains"),
    "target_accept": ("adapt_delta", "the target acceptance rate of warmup"),
    "delta": ("adapt_delta", "the target acceptance rate of warmup"),
    "max_tree_depth": ("max_treedepth", "the largest tree depth"),
    "stepsize": ("step_size", "the initial step size"),
    "init": ("inits", "initial values"),
    "initvals": ("inits", "initial values"),
    "random_seed": ("seed", "the random seed"),
    "rng_key": ("seed", "the random seed"),
    "progressbar": ("show_progress", "progress bars"),
    "progress_bar": ("show_progress", "progress bars"),
    "thinning": ("thin", "keep every n-th draw"),
}
_OTHER_SPELLINGS = {
    "random_seed": ("seed", "the random seed"),
    "init": ("inits", "initial values"),
    "num_draws": ("draws", "draws returned"),
    "num_samples": ("draws", "draws returned"),
    "samples": ("draws", "draws returned"),
}
#: Accepted by fit() for every method: the other methods have no progress bars.
_EVERY_METHOD = ("show_progress",)


def known(method: str) -> list[str]:
    """CmdStanPy's keyword arguments for `method`, minus those Model.fit sets itself."""
    function = getattr(cmdstanpy.CmdStanModel, METHODS[method])
    names = [p for p in inspect.signature(function).parameters if p not in ("self", "data")]
    return [p for p in names if p not in _RESERVED]


def check(method: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments CmdStanPy's `method` takes; TypeError naming the right one for any
    other spelling. ``show_progress`` is dropped for methods without progress bars, so a
    script can pass it whatever the method."""
    names = known(method)
    spellings = _SAMPLE_SPELLINGS if method == "sample" else _OTHER_SPELLINGS
    for key in kwargs:
        if key in names or key in _EVERY_METHOD:
            continue
        where = f"fit(method={method!r})"
        if key in _RESERVED:
            raise TypeError(f"{where} does not take {key!r}: {_RESERVED[key]}")
        if key in spellings and spellings[key][0] in names:
            right, meaning = spellings[key]
            raise TypeError(f"{where} has no argument {key!r}; CmdStanPy's name for "
                            f"{meaning} is {right!r}")
        close = difflib.get_close_matches(key, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"{where} has no argument {key!r}{hint} (CmdStanPy's "
                        f"{METHODS[method]} takes: {', '.join(names)})")
    for key, (low, high) in _RANGES.items():
        value = kwargs.get(key)
        if key in names and value is not None and isinstance(value, int | float) and not (
                low <= value and (high is None or value < high)):
            bound = f"at least {low}" if high is None else f"in [{low}, {high})"
            raise ValueError(f"fit(method={method!r}): {key}={value!r} must be {bound}")
    return {k: v for k, v in kwargs.items() if k in names}


#: Numeric arguments checked before the compile: (lowest allowed, bound above it or None).
_RANGES = {"chains": (1, None), "parallel_chains": (1, None), "threads_per_chain": (1, None),
           "iter_warmup": (0, None), "iter_sampling": (1, None), "thin": (1, None),
           "max_treedepth": (1, None), "adapt_delta": (1e-9, 1), "step_size": (1e-300, None),
           "draws": (1, None), "num_paths": (1, None), "iter": (1, None)}
