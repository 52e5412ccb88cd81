"""What every pass shares: the `Decision` it reports and the loop that runs passes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import ModelSpec


@dataclass(frozen=True)
class Decision:
    """One line of the program header: ``subject: choice; reason``.

    ``applied`` is False for a pass that looked and did nothing; the line still says why,
    so a reader learns what was considered, not only what was done.
    """

    subject: str
    choice: str
    reason: str
    applied: bool = True

    def __str__(self) -> str:
        return f"{self.subject}: {self.choice}; {self.reason}"


class Pass(Protocol):
    """One decision about the program; see the package docstring."""

    def applies(self, spec: ModelSpec, plan: Plan) -> Decision: ...

    def apply(self, spec: ModelSpec, plan: Plan) -> Plan: ...


def run_passes(spec: ModelSpec, plan: Plan, passes: Iterable[Pass]) -> Plan:
    """Run each pass in order, recording every decision, applied or not."""
    for p in passes:
        decision = p.applies(spec, plan)
        if decision.applied:
            plan = p.apply(spec, plan)
        plan = dataclasses.replace(plan, decisions=(*plan.decisions, decision))
    return plan
