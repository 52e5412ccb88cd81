"""Which exact rewrites a model asked for, and the checks on that request.

``rewrites`` is ``"auto"`` (every rewrite that is exact for the model), ``"none"`` (the
plain program), a list of rewrite names allowed model-wide, or a dict from group terms
to what happens to that term's level effects. The rewrites themselves are passes
(`passes.marginalize.Marginalize`, ...); this module only reads the request, which
`planner.validate` checks and the passes and `design` consult.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import PlanError
from .marginals import KINDS

if TYPE_CHECKING:
    from .spec import ModelSpec

#: Rewrites a list may name; each one is applied wherever it is exact.
MODEL_REWRITES = ("marginalize", "fold", "sufficient_statistics", "collapse",
                  "joint_statistics", "block_products")
#: What a dict may ask of one group term: a marginal kind by its rewrite name, or not.
TERM_CHOICES = ("auto", *(kind.rewrite for kind in KINDS), "none")


def check_rewrites(value: Any, spec: ModelSpec) -> None:
    """PlanError for a malformed request (what a term allows is checked by the pass)."""
    if isinstance(value, str):
        if value not in ("auto", "none"):
            raise PlanError(f"rewrites={value!r}: use 'auto', 'none', a list of rewrites "
                            f"({', '.join(MODEL_REWRITES)}) or a dict of group terms")
        return
    if isinstance(value, list | tuple):
        for name in value:
            if name not in MODEL_REWRITES:
                raise PlanError(f"rewrites: unknown rewrite {name!r}; choose from "
                                f"{', '.join(MODEL_REWRITES)}")
        return
    if isinstance(value, dict):
        terms = [g.term_name for g in spec.groups]
        for term, choice in value.items():
            if term not in terms:
                raise PlanError(
                    f"rewrites given for '{term}', which is not a group term of this model "
                    f"(group terms: {', '.join(terms) or 'none'})"
                )
            if choice not in TERM_CHOICES:
                raise PlanError(f"rewrites[{term!r}] = {choice!r} is not one of "
                                f"{', '.join(TERM_CHOICES)}")
        return
    raise PlanError(f"rewrites={value!r}: use 'auto', 'none', a list or a dict")


def allowed(value: Any, rewrite: str) -> bool:
    """Whether a model-wide rewrite may apply under the request."""
    if isinstance(value, str):
        return value == "auto"
    if isinstance(value, list | tuple):
        return rewrite in value
    return True  # a dict speaks of terms; model-wide rewrites follow "auto"


def named(value: Any, rewrite: str) -> bool:
    """Whether a list asks for the rewrite by name (it then applies wherever it is exact,
    not only where it pays)."""
    return isinstance(value, list | tuple) and rewrite in value


def term_choice(value: Any, term: str) -> str:
    """What the request says of one term: one of `TERM_CHOICES`."""
    if isinstance(value, dict):
        return value.get(term, "auto")
    if isinstance(value, list | tuple):
        return "auto" if "marginalize" in value else "none"
    return value
