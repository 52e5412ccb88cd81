"""The Laplace marginal (`marginals.laplace`): Stan's embedded Laplace approximation,
asked for by name. Checked on its decision, refusals and generated text, and, being
an approximation, on a posterior close to the plain program's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rewrite_cases import count_data, decision, grouped

import stanbhm as sb
from stanbhm.errors import PlanError


def test_laplace_is_by_name_and_says_it_approximates() -> None:
    df = count_data()
    model = sb.Model("yb ~ C(a) + (1 | g)", df, family="bernoulli", rewrites={"g": "laplace"})
    assert decision(model, "marginalization") == (
        "marginalization: effects of g integrated out; 'laplace' requested: an APPROXIMATION, "
        "not exact: Stan's embedded Laplace approximation integrates the effects out and "
        "laplace_latent_rng draws them back")
    code = model.stan_code()
    assert "    target += laplace_g(y, eta, J_g, sd_g, N_g);\n" in code
    assert "    return bernoulli_logit_lpmf(y | eta + u[J]);\n" in code
    with pytest.raises(PlanError, match=r"^rewrites\['g'\] = 'laplace': a gaussian outcome's "
                                        r"effects are integrated out exactly; use 'marginalize'$"):
        sb.Model("y ~ x + (1 | g)", grouped(), rewrites={"g": "laplace"})
    many = pd.DataFrame({"y": np.arange(4002) % 2, "g": np.arange(4002) // 2})
    with pytest.raises(PlanError, match=r"2001 levels: Stan's embedded Laplace builds and "
                                        r"factors dense 2001 x 2001 matrices; it is offered "
                                        r"up to 2000 levels$"):
        sb.Model("y ~ 1 + (1 | g)", many, family="bernoulli", rewrites={"g": "laplace"})


@pytest.mark.slow
def test_laplace_posterior_is_close_to_the_plain_one() -> None:
    """An approximation, so not exact: with about 40 poisson rows per level the
    hyper-parameters and effects agree with the plain program's within a tenth of a
    posterior sd plus Monte Carlo error."""
    df = count_data()
    formula = "yc ~ c + (1 | g)"
    approx = sb.Model(formula, df, family="poisson", rewrites={"g": "laplace"})
    plain = sb.Model(formula, df, family="poisson", rewrites="none")
    # A draw of the approximation costs about 20 of the plain program's: 2 x (300 + 1500)
    # of it, where it took 4 x (1000 + 1000), halves its CPU (its three hyper-parameters
    # need no longer warmup) with about the same ESS (over seeds 1, 2, 3, 9: Intercept
    # 1220-1560, sd_g 1150-1690, r_g 1250-1680, b 1900-2140; before 410-1570, 720-1820,
    # 500-1840, 2330-2720). The plain fit, unchanged (Intercept's ESS 270-840), sets most
    # of the gaps' Monte Carlo error.
    fits = [approx.fit(chains=2, iter_warmup=300, iter_sampling=1500, seed=9).cmdstan,
            plain.fit(chains=4, iter_sampling=1000, seed=9).cmdstan]
    for var in ("Intercept", "b", "sd_g", "r_g"):
        a, b = (f.stan_variable(var) for f in fits)
        gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
        assert (gap < 0.1 * b.std(axis=0) + 4 * b.std(axis=0) / np.sqrt(1000)).all(), var
