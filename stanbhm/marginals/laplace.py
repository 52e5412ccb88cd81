"""The Laplace marginal: a group intercept of any family integrated out by Stan's
embedded Laplace approximation (``laplace_marginal``), and drawn back by
``laplace_latent_rng``. APPROXIMATE: a gaussian approximation of the effects at their
conditional mode; the header says so.

Stan 2.39's embedded Laplace works on a dense covariance of the effects and factors a
dense matrix of that size in each Newton step, so it is offered up to
`LAPLACE_MAX_LEVELS` levels. Its template: ``stan_templates/marginals/laplace.stan.j2``,
which writes the functions ``laplace_marginal`` calls from what `Laplace.extra` and
`Laplace.rows_args` give it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Kind, Marginal

if TYPE_CHECKING:
    from ..spec import GroupEffects, ModelSpec

__all__ = ["LAPLACE", "LAPLACE_MAX_LEVELS"]

LAPLACE_MAX_LEVELS = 2000


class Laplace(Kind):
    name = "laplace"
    rewrite = "laplace"
    conjugate = None
    exact = False
    prefixes = ("lik", "cov", "laplace")

    def family_reason(self, family) -> str:
        if family.conjugate_intercept == "normal":
            return "a gaussian outcome's effects are integrated out exactly; use 'marginalize'"
        if family.cutpoints or family.functions:
            return (f"the {family.title} family's density is not one of Stan's own with the "
                    "family parameters as reals (cutpoints, or a function of the program), "
                    "which is what the rows' likelihood passed to laplace_marginal takes")
        return ""

    def term_reason(self, spec: ModelSpec, group: GroupEffects) -> str:
        n = len(group.levels)
        if n > LAPLACE_MAX_LEVELS:
            return (f"{n} levels: Stan's embedded Laplace builds and factors dense {n} x {n} "
                    f"matrices; it is offered up to {LAPLACE_MAX_LEVELS} levels")
        return ""

    def decision(self, term: str) -> str:
        return ("'laplace' requested: an APPROXIMATION, not exact: Stan's embedded "
                "Laplace approximation integrates the effects out and "
                "laplace_latent_rng draws them back")

    def needs_sums(self, m: Marginal) -> bool:
        return False  # laplace_marginal reads the rows and their levels

    def names(self, ident: str) -> tuple[str, ...]:
        return (*super().names(ident), f"laplace_{ident}_rng")

    @staticmethod
    def extra(lik: Any) -> tuple[list[str], list[str]]:
        """What the rows' likelihood needs besides y, eta and the levels: (declarations,
        names) of the family's row data and parameters. (`lik` is the plan's
        `likelihood.Likelihood`, `rows` below its fitted `parts.Rows`: not imported, as
        those modules import the kinds.)"""
        decl = ["array[] int trials"] if lik.trials is not None else []
        decl += [f"real {a}" for a in lik.family.aux_names(lik.se is not None)]
        return decl, [d.split()[-1] for d in decl]

    @staticmethod
    def rows_args(lik: Any) -> str:
        """The arguments of the rows' density after the outcome, the effects ``u`` added to
        the linear predictor through each row's level ``J``."""
        return lik.fill(", ".join(lik.family.args), "eta + u[J]", str)

    def arguments(self, lik: Any, rows: Any, g: str) -> str:
        """The arguments of ``laplace_<g>`` and ``laplace_<g>_rng`` over the fitted rows."""
        _, names = self.extra(lik)
        extra = [f"{n}{rows.suffix}" if n == "trials" else n for n in names]
        return ", ".join(["y", "eta", f"J_{g}{rows.suffix}", *extra, f"sd_{g}", f"N_{g}"])


LAPLACE = Laplace()
