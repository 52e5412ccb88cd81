"""One variable of a program, declared once.

A part (and the likelihood's strategy, and a marginal kind) lists what it declares as
`Declaration`s: the block, the type as the program writes it, the name, the comment and,
for a transformed variable, its definition. The templates write the data and
parameters blocks from these lists and place the transformed declarations by name
among their statements; the initial metric reads the parameters' order from them, and
the reduce_sum slice the types of its arguments. So a declaration's type and name are
written in one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Declaration", "by_name"]

#: A type's bounds or affine transform, ``<lower=0>`` or ``<offset=..., multiplier=...>``.
_BOUNDS = re.compile(r"<[^<>]*>")
#: A type's sizes, ``[N, K]``, at any depth of brackets.
_SIZES = re.compile(r"\[[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*\]")


@dataclass(frozen=True)
class Declaration:
    block: str  # "data", "transformed data", "parameters" or "transformed parameters"
    type: str  # as declared, with sizes and bounds: "vector<lower=0>[N_g]"
    name: str
    comment: str
    value: str = ""  # a transformed variable's definition; "" when statements fill it
    heading: tuple[str, ...] = ()  # comment lines written before it, for a section

    @property
    def argument(self) -> str:
        """The type as a function argument: sizes and bounds dropped, an array's
        dimensions left as ``[]`` (``array[N] int<lower=1>`` -> ``array[] int``)."""
        plain = _BOUNDS.sub("", self.type)
        if plain.startswith("array["):
            return "array[] " + _SIZES.sub("", plain[plain.index("]") + 1:]).strip()
        kind = _SIZES.sub("", plain).strip()
        return {"cholesky_factor_corr": "matrix", "corr_matrix": "matrix",
                "ordered": "vector"}.get(kind, kind)


def by_name(declarations: Iterable[Declaration]) -> dict[str, Declaration]:
    """The declarations by name, for placing them or reading their types."""
    return {d.name: d for d in declarations}
