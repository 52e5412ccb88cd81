"""Block products (`passes.block`): a group term with several effects adds its part of
the fitted rows' linear predictor as one sparse product; the program's log density is
the gathers' program's, a constant apart, for each family and parameterization that uses
it, and the header says where it applies and why not elsewhere."""

from __future__ import annotations

import pytest
from exact import assert_constant_gap
from rewrite_cases import decision
from test_render import catalogue_data

import stanbhm as sb

#: name -> (formula, family, parameterization, the rewrites besides block_products, glm).
#: Each gathers program is one other files compile too: the plain program of
#: tests/test_statistics.py's missing-rows case (and test_glm.py's, test_threads.py's),
#: the centered one of tests/test_plots.py, test_threads.py's negative binomial, and
#: the integrated-out intercept beside a slope term of tests/test_joint.py.
CASES = {
    # expo: a population-only column, so b is scaled (`passes.scale`) as in those files
    "gaussian_correlated_missing": ("y_missing ~ x + expo + (1 + x | g)", "gaussian",
                                    "noncentered", [], "auto"),
    "gaussian_centered_absorbing": ("y ~ x + (1 + x | g)", "gaussian", "centered", [], "auto"),
    "negbinomial_centered_offset": ("yc ~ x + offset(log(expo)) + (1 + x | g)", "negbinomial",
                                    "centered", [], "never"),
    "bernoulli_centered_three_effects": ("yb ~ x + z + (1 + x + z || g)", "bernoulli",
                                         "centered", [], "auto"),
    "gaussian_beside_a_marginal": ("y_missing ~ x + (1 | g) + (1 + x | h)", "gaussian",
                                   {"h": "noncentered"}, ["marginalize"], "auto"),
}


def model(case: str, block: bool) -> sb.Model:
    formula, family, param, rewrites, glm = CASES[case]
    return sb.Model(formula, catalogue_data(n=200), family=family, parameterization=param,
                    rewrites=[*rewrites, *(["block_products"] if block else [])], glm=glm)


def test_the_header_says_where_the_rows_are_one_product() -> None:
    m = model("gaussian_correlated_missing", block=True)
    assert decision(m, "block products") == (
        "block products: for g (2 effects); over 180 fitted rows, one sparse product of the "
        "rows' covariates with the levels' effects (csr_matrix_times_vector) instead of a "
        "gather per effect, each an autodiff node per row")
    code = m.stan_code()
    assert ("    eta += csr_matrix_times_vector(N_obs, N_g * 2, csr_w_g, csr_v_g, csr_u_g,\n"
            "             to_vector(r_g));\n") in code
    assert "  vector[N_obs * 2] csr_w_g = to_vector(Z_g_obs'); //" in code
    assert "csr_v_g[(i - 1) * 2 + e] = (e - 1) * N_g + J_g_obs[i];" in code
    # generated quantities keep the gathers: they run once per draw
    assert "r_g[J_g, 2] .* Z_g[ : , 2]" in code.split("generated quantities {")[1]
    gathers = model("gaussian_correlated_missing", block=False)
    assert "csr_matrix_times_vector" not in gathers.stan_code()
    assert decision(gathers, "block products") == (
        "block products: not used; rewrites=[] requested")


def test_a_slice_multiplies_its_own_rows_and_rewritten_likelihoods_keep_theirs() -> None:
    df = catalogue_data(n=200)
    threaded = sb.Model("y ~ x + (1 + x | g)", df, threads=2, rewrites=["block_products"])
    assert decision(threaded, "block products") == (
        "block products: for g (2 effects); over 200 fitted rows, one sparse product of the "
        "rows' covariates with the levels' effects (csr_matrix_times_vector; each reduce_sum "
        "slice over its own rows) instead of a gather per effect, each an autodiff node per "
        "row")
    code = threaded.stan_code()
    assert ("    eta += csr_matrix_times_vector(end - start + 1, N_g * 2,\n"
            "             csr_w_g[(start - 1) * 2 + 1 : end * 2],\n"
            "             csr_v_g[(start - 1) * 2 + 1 : end * 2],\n"
            "             csr_u_g[1 : end - start + 1 + 1], to_vector(r_g));\n") in code
    assert "reduce_sum(partial_log_lik_lupmf, row_index, grainsize, y, Xc, N_g, csr_w_g," \
        in " ".join(code.split())
    statistics = sb.Model("y ~ x + (1 + x | g)", df)
    assert decision(statistics, "block products") == (
        "block products: not used; the likelihood is rewritten (statistics), not a sum over "
        "the rows")
    single = sb.Model("y ~ x + (1 | g)", df)
    assert not [d for d in single.plan.decisions if d.subject == "block products"]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["gaussian_correlated_missing", "gaussian_beside_a_marginal"])
@pytest.mark.log_density
def test_block_products_in_slices_keep_the_log_density(case) -> None:
    """reduce_sum over slices of the rows, and over slices of the levels of an intercept
    integrated out: each slice's product reads its own rows' stretch of the values."""
    formula, family, param, rewrites, glm = CASES[case]
    threaded = sb.Model(formula, catalogue_data(n=200), family=family, parameterization=param,
                        rewrites=[*rewrites, "block_products"], glm=glm, threads=2,
                        grainsize=4 if rewrites else 20)
    window = "first - 1) * 2 + 1 : last * 2]" if rewrites else "start - 1) * 2 + 1 : end * 2]"
    code = threaded.stan_code()
    assert "reduce_sum(" in code and window in code
    assert_constant_gap(model(case, block=False), threaded)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.log_density
def test_block_products_keep_the_log_density(case) -> None:
    gathers, block = model(case, block=False), model(case, block=True)
    assert "csr_matrix_times_vector" in block.stan_code()
    if case == "gaussian_beside_a_marginal":
        assert block.plan.likelihood.strategy.name == "marginal"
    assert_constant_gap(gathers, block)
