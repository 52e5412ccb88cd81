"""Declarations are written once (`stanbhm.declarations`): the parts, the likelihood's
strategy, the term integrated out and the priors list what they declare, and the
program's data and parameters blocks are exactly those lists, every transformed
declaration is in the program as listed, the initial metric reads the parameters' order
from them, the reduce_sum slice its arguments' types, and every name is reserved from
the user's names."""

from __future__ import annotations

import pytest
from test_render import ALL, CASES

from stanbhm.declarations import Declaration
from stanbhm.metric import initial_metric
from stanbhm.parts import GroupPart
from stanbhm.planner import RESERVED
from stanbhm.render import comment_text


@pytest.mark.parametrize(("declared", "argument"), [
    ("array[N] int<lower=1, upper=N_g>", "array[] int"),
    ("vector<lower=0>[N_g]", "vector"),
    ("matrix[N_obs, K]", "matrix"),
    ("array[N_g] row_vector[3]", "array[] row_vector"),
    ("vector<offset=0.5 * b[1], multiplier=pow(sd_g, 0.5)>[N_g]", "vector"),
    ("real<lower=0>", "real"),
    ("cholesky_factor_corr[2]", "matrix"),
])
def test_a_declaration_gives_its_type_as_a_function_argument(declared, argument) -> None:
    assert Declaration("data", declared, "x", "").argument == argument


def written(d: Declaration) -> str:
    value = f" = {d.value}" if d.value else ""
    return f"  {d.type} {d.name}{value}; // {comment_text(d.comment)}"


def block_lines(code: str, block: str) -> list[str]:
    """The declarations at the top level of `block` (comment lines left out)."""
    body = code.split(f"\n{block} {{\n", 1)[1].split("\n}", 1)[0]
    return [line for line in body.splitlines()
            if line.startswith("  ") and not line.startswith(("   ", "  //"))
            and not line.startswith("  int<lower=0, upper=1> prior_only;")]


@pytest.mark.parametrize("name", ALL)
def test_the_program_declares_exactly_the_listed_variables(name) -> None:
    model = CASES[name].model()
    plan, code = model.plan, model.stan_code()
    declared = plan.declarations()
    for block in ("data", "parameters"):
        assert block_lines(code, block) == [written(d) for d in declared if d.block == block]
    for d in declared:
        if d.block.startswith("transformed"):
            assert f"\n{written(d)}\n" in code, d
    parameters = tuple(d.name for d in declared if d.block == "parameters")
    assert initial_metric(model.spec, plan).names == parameters
    reserved = set(RESERVED).union(*(GroupPart.derived_names(g.ident) for g in plan.groups))
    assert {d.name for d in declared} <= reserved
