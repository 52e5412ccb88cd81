"""What every pass shares: the `Decision` it reports (a `plan.Decision`, kept in the plan),
the protocol a pass follows and the loop that runs passes."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from ..plan import Decision

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec

__all__ = ["Decision", "InSteps", "Pass", "Steps", "run_passes"]


class Pass(Protocol):
    """One decision about the program; see the package docstring."""

    def decide(self, spec: ModelSpec, plan: Plan) -> tuple[Decision | None, Plan]: ...


class Steps(Protocol):
    """A pass in two steps, for a decision that shares nothing costly with the change it
    makes: ``applies`` decides, ``apply`` makes the change (called only when applied)."""

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision | None: ...

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan: ...


class InSteps:
    """Base class of a pass in two steps (`Steps`): gives it ``decide``."""

    def decide(self, spec: ModelSpec, plan: Plan) -> tuple[Decision | None, Plan]:
        """The decision, and ``apply``'s plan when it is applied (else `plan`)."""
        decision = self.applies(spec, plan)
        if decision is None or not decision.applied:
            return decision, plan
        return decision, self.apply(spec, plan)


def run_passes(spec: ModelSpec, plan: Plan, passes: Iterable[Pass]) -> Plan:
    """Run each pass in order, recording every decision, applied or not, and the seconds
    each pass took (at millions of rows a pass that decides slowly is the build's
    bottleneck, and `stanbhm bench scale` lists them)."""
    for p in passes:
        start = time.perf_counter()
        decision, plan = p.decide(spec, plan)
        seconds = time.perf_counter() - start
        label = decision.subject if decision is not None else type(p).__name__
        plan = dataclasses.replace(plan, pass_seconds=(*plan.pass_seconds, (label, seconds)))
        if decision is None:  # the pass has nothing to decide for this model
            continue
        plan = dataclasses.replace(plan, decisions=(*plan.decisions, decision))
    return plan
