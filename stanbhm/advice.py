"""Sampler diagnostics read as advice: what went wrong, where, and what to try.

The numbers come from ArviZ and CmdStan's sampler outputs (nothing re-implemented);
what this module adds is the reading a statistician does by hand: divergences that sit
at small values of one term's sd point at that term's parameterization, and each
problem comes with the option of `Model` or `fit` that usually fixes it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["SamplingWarning", "TermState", "advice", "funnel_term", "warn"]

#: E-BFMI below this in a chain: the energy is explored poorly (Betancourt 2016).
EBFMI_MIN = 0.3
#: R-hat above this: the chains disagree (Vehtari et al. 2021).
RHAT_MAX = 1.01
#: Effective draws per chain below this: Monte Carlo error of the mean is large.
ESS_PER_CHAIN_MIN = 100


class SamplingWarning(UserWarning):
    """A sampler diagnostic out of its safe range; filter it with
    ``warnings.filterwarnings("ignore", category=stanbhm.SamplingWarning)``."""


@dataclass(frozen=True)
class TermState:
    """One group term as the advice names it."""

    term: str  # as written in the formula: "(1 | school)"
    key: str  # its parameterization / rewrites key: "school"
    sd: str  # its sd parameter: "sd_school"
    how: str  # "centered", "non-centered", "partially centered" or "integrated out"


def funnel_term(log_sds: dict[str, np.ndarray], divergent: np.ndarray) -> str | None:
    """The term whose sd is smallest where the sampler diverged: the largest drop of
    mean log sd from non-divergent to divergent draws (a funnel's neck), if any drops."""
    if not divergent.any() or divergent.all():
        return None
    drops = {key: float(v[~divergent].mean() - v[divergent].mean())
             for key, v in log_sds.items()}
    best = max(drops, key=drops.get, default=None)
    return best if best is not None and drops[best] > 0 else None


def _divergence_hint(term: TermState | None) -> str:
    if term is None:
        return "try adapt_delta=0.95 (fit(adapt_delta=0.95))"
    if term.how == "non-centered":
        return (f"they sit at small values of {term.sd}: term {term.term} is non-centered; "
                f"try adapt_delta=0.95, or parameterization={{'{term.key}': 'centered'}} if "
                "its levels are well informed")
    return (f"they sit at small values of {term.sd}: term {term.term} is {term.how} and its "
            f"data are weak; try parameterization={{'{term.key}': 'noncentered'}} or "
            "rewrites='auto'")


def advice(numbers: dict, chains: int, draws: int, max_depth: int, ebfmi: np.ndarray,
           worst: dict[str, str], term: TermState | None,
           rejections: list[str] = ()) -> list[str]:
    """One message per problem in `numbers` (`Fit.diagnostics()`), each with what to try.
    `worst` names the variable with the largest R-hat and the smallest ESS; `term` the
    term the divergences point at, if any; `rejections` are CmdStan's messages for
    proposals rejected after warmup (those of early warmup are routine)."""
    out = []
    if rejections:
        n = len(rejections)
        out.append(f"{n} proposal{'s' if n > 1 else ''} rejected after warmup (first: "
                   f"{rejections[0]}): the sampler reached values where the model is not "
                   "defined; check the priors' support and the data for extreme values")
    n = numbers["divergences"]
    if n:
        share = f"{n / draws:.1%}" if n / draws >= 0.001 else f"{n / draws:.2%}"
        out.append(f"{n} divergence{'s' if n > 1 else ''} ({share} of {draws} draws): "
                   f"{_divergence_hint(term)}")
    hits = numbers["treedepth_hits"]
    if hits:
        out.append(f"{hits} draws ({hits / draws:.1%}) hit the maximum tree depth {max_depth}: "
                   "the posterior is strongly correlated or badly scaled; try "
                   f"metric='dense_e' or max_treedepth={max_depth + 2}")
    low = [str(c + 1) for c, value in enumerate(ebfmi) if value < EBFMI_MIN]
    if low:
        out.append(f"E-BFMI below {EBFMI_MIN} in chain {', '.join(low)} (lowest "
                   f"{float(np.min(ebfmi)):.2f}): the sampler explores the energy poorly, as "
                   "in a funnel; try a non-centered parameterization for terms with weakly "
                   "informed levels")
    if numbers["rhat_max"] > RHAT_MAX:
        out.append(f"R-hat up to {numbers['rhat_max']:.3f} ({worst['rhat']}), above "
                   f"{RHAT_MAX}: the chains disagree; run more draws (iter_sampling) and "
                   "check for several modes")
    floor = ESS_PER_CHAIN_MIN * chains
    for kind in ("bulk", "tail"):
        value = numbers[f"ess_{kind}_min"]
        if value < floor:
            what = "mean is" if kind == "bulk" else "quantiles are"
            out.append(f"ESS {kind} as low as {value:.0f} ({worst[kind]}), under "
                       f"{ESS_PER_CHAIN_MIN} per chain: its {what} imprecise; run more "
                       "draws (iter_sampling)")
    return out


def warn(messages: list[str]) -> None:
    """Each message as its own SamplingWarning, so one can be filtered alone."""
    for message in messages:
        warnings.warn(message, SamplingWarning, stacklevel=3)
