"""The quadrature marginal: a group intercept of a bernoulli, binomial, poisson or
negative binomial model integrated out level by level by adaptive Gauss-Hermite
quadrature, as glmer does with ``nAGQ > 1`` for one scalar term. APPROXIMATE: Q nodes
per level (``quadrature_points``, default `DEFAULT_POINTS`); Q = 1 is the Laplace
approximation, and the error falls fast as Q grows. The header says so and names Q.

Given the rest of the linear predictor, each level's rows are independent of the other
levels', so the likelihood is a sum over levels of one-dimensional integrals,
``log ∫ Π_rows p(y | eta + u) normal(u | 0, sd) du``. The program calls C++ functions
compiled with it (``quadrature.hpp`` beside this module, CmdStan's ``USER_HEADER``):
the mode of each level's integrand by Newton steps, Q nodes about it scaled by its
curvature, and the gradient of that rule including how the mode and the curvature move
with the parameters, in double, with no autodiff through the Newton steps. The effects
are drawn back exactly from each level's conditional (rejection from an envelope of the
concave log integrand), and ``log_lik="marginal"`` gives each level's integral, for LOO
that leaves out a level.

The rows come sorted by level (`passes.threads.by_level`), so a level is one run of
rows, ``start_<g>[j]`` to ``start_<g>[j + 1] - 1``. Its template:
``stan_templates/marginals/quadrature.stan.j2``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..declarations import Declaration
from .base import Kind, Marginal, level_rows

if TYPE_CHECKING:
    from ..families import Family

__all__ = ["DEFAULT_POINTS", "HEADER", "QUADRATURE", "SERVED"]

#: The C++ the programs are compiled with (USER_HEADER).
HEADER = Path(__file__).with_name("quadrature.hpp")
#: Stan's densities on the link scale whose rows the C++ integrates (``agq_<family>_*``
#: there, adaptive Gauss quadrature): the log density's first three derivatives in eta
#: are written out for each.
SERVED = ("bernoulli_logit", "binomial_logit", "poisson_log", "neg_binomial_2_log")
#: Nodes per level unless ``quadrature_points`` says otherwise.
DEFAULT_POINTS = 7


class Quadrature(Kind):
    name = "quadrature"
    rewrite = "quadrature"
    conjugate = None
    exact = False
    integrated_log_lik = True
    needs_sorted_rows = True
    takes_points = True
    prefixes = ("Q", "start")
    cpp_header = HEADER

    def family_reason(self, family: Family) -> str:
        if family.dist not in SERVED:
            served = "bernoulli, binomial (logit link), poisson, negbinomial (log link)"
            return (f"adaptive quadrature integrates the effects out of {served} rows, not "
                    f"the {family.title} family")
        return ""

    def decision(self, term: str) -> str:
        return (f"'quadrature' requested: an APPROXIMATION, not exact: each level's "
                f"effect integrated out by adaptive Gauss-Hermite quadrature with Q_{term} "
                "nodes about its mode (Q = 1 is Laplace's approximation; C++ compiled with "
                "the program, stanbhm's marginals/quadrature.hpp), and drawn back exactly "
                "from its conditional in generated quantities")

    def declarations(self, m: Marginal, lik: Any, p: Any) -> tuple[Declaration, ...]:
        g = m.ident
        return (*level_rows(m, p),
                Declaration("data", "int<lower=1>", f"Q_{g}",
                            "quadrature nodes per level (1: Laplace's approximation)"))

    def level_data(self, m: Marginal) -> dict[str, Any]:
        return {f"Q_{m.ident}": m.points}

    @staticmethod
    def call(lik: Any, rows: Any, g: str, what: str) -> tuple[str, str]:
        """(function, arguments) of the C++ function `what` ("lpmf", "levels", "rng")
        over the fitted `rows`: the family's density arguments around ``eta``, then where
        each level's rows start and the sd (and Q but for draws)."""
        _, args = lik.density(rows)
        tail = [f"start_{g}", f"sd_{g}"] + ([] if what == "rng" else [f"Q_{g}"])
        function = f"agq_{lik.family.name}_{what}"
        if what == "lpmf":
            first, *rest = args
            return function, ", ".join([f"y | {first}", *rest, *tail])
        return function, ", ".join(["y", *args, *tail])

    @staticmethod
    def signatures(lik: Any) -> list[tuple[str, list[str]]]:
        """(return type and name, argument declarations) of the functions the program
        declares (defined in `HEADER`)."""
        name, args = f"agq_{lik.family.name}", []
        for template in lik.family.args:
            if template == "{eta}":
                args.append("vector eta")
            elif template == "{trials}":
                args.append("array[] int trials")
            else:
                args.append(f"real {template}")
        head = ["array[] int y", *args, "array[] int start", "real sd"]
        return [(f"real {name}_lpmf", [*head, "int nodes"]),
                (f"vector {name}_levels", [*head, "int nodes"]),
                (f"vector {name}_rng", head)]


QUADRATURE = Quadrature()
