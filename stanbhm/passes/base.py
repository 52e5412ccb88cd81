"""What every pass shares: the `Decision` it reports (a `plan.Decision`, kept in the plan)
and the loop that runs passes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol, TypeVar

from ..plan import Decision

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

__all__ = ["Decision", "Pass", "once", "run_passes"]

T = TypeVar("T")


def once(cache: dict[int, T], source: object, make: Callable[[], T]) -> T:
    """``make()`` the first time `source` (a spec or plan) is asked for, the kept value
    after: a pass's applies and apply both need what it computed from the same input.
    A pass lives for one ``make_plan``, so its inputs outlive its cache."""
    if id(source) not in cache:
        cache[id(source)] = make()
    return cache[id(source)]


class Pass(Protocol):
    """One decision about the program; see the package docstring."""

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision | None: ...

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan: ...


def run_passes(spec: ModelSpec, plan: Plan, passes: Iterable[Pass]) -> Plan:
    """Run each pass in order, recording every decision, applied or not."""
    for p in passes:
        decision = p.applies(spec, plan)
        if decision is None:  # the pass has nothing to decide for this model
            continue
        if decision.applied:
            plan = p.apply(spec, plan)
        plan = dataclasses.replace(plan, decisions=(*plan.decisions, decision))
    return plan
