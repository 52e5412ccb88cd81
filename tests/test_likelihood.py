"""The likelihood (`stanbhm.likelihood`) holds exactly one strategy, and each strategy and
each marginal kind writes its part of the program from its own template partial.

The partials a program is written from are seen by recording every template the Jinja
environment hands out while the program renders: a strategy's program loads its own
``strategies/<name>.stan.j2`` and no other strategy's, and a term integrated out loads
its kind's ``marginals/<kind>.stan.j2`` and no other kind's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from test_render import catalogue_data

import stanbhm as sb
from stanbhm import render
from stanbhm.likelihood import Likelihood
from stanbhm.marginals import KINDS
from stanbhm.strategies import STRATEGIES, Strategy

TEMPLATES = render.template_dir()
#: The partial the kinds share (level sums, rising factorials), not a kind of its own.
SHARED = "marginals/sums.stan.j2"


def data() -> pd.DataFrame:
    """The golden programs' data, with rows enough for every rewrite to apply."""
    return catalogue_data(n=400)


#: name -> (formula, family, Model keywords, the strategy, the kind integrated out or None)
CASES = {
    "rows": ("yb ~ x + (1 | g)", "bernoulli", {"rewrites": "none", "glm": "never"},
             "rowwise", None),
    "rows_glm": ("yb ~ x + (1 | g)", "bernoulli", {"rewrites": "none"}, "rowwise", None),
    "rows_threads": ("yb ~ x + (1 | g)", "bernoulli", {"rewrites": "none", "threads": 2},
                     "rowwise", None),
    "normal_rows": ("y ~ x + (1 | g) + (1 + x | h)", "gaussian",
                    {"rewrites": {"g": "marginalize"}}, "marginal", "normal"),
    "normal_threads": ("y ~ x + (1 | g) + (1 + x | h)", "gaussian",
                       {"rewrites": {"g": "marginalize"}, "threads": 2}, "marginal", "normal"),
    "gamma_rows": ("yc ~ x + offset(log(expo)) + (1 | g)", "poisson",
                   {"rewrites": {"g": "gamma_poisson"}}, "marginal", "gamma"),
    "laplace_rows": ("ys | trials(n) ~ x + (1 | g)", "binomial",
                     {"rewrites": {"g": "laplace"}}, "marginal", "laplace"),
    "cells": ("yb ~ C(cat) + (1 | g)", "bernoulli", {}, "cells", None),
    "gamma_cells": ("yc ~ C(cat) + offset(log(n)) + (1 | h)", "poisson",
                    {"rewrites": {"h": "gamma_poisson"}}, "cells", "gamma"),
    "beta_cells": ("ys | trials(n) ~ 1 + (1 | g)", "binomial",
                   {"rewrites": {"g": "beta_binomial"}}, "cells", "beta"),
    "normal_cells": ("y ~ C(cat) + (1 | g) + (1 | h)", "gaussian", {}, "cells", "normal"),
    "statistics": ("y ~ x + (1 + x | g)", "gaussian", {"rewrites": ["sufficient_statistics"]},
                   "statistics", None),
    "normal_statistics": ("y ~ x + (1 | g) + (x - 1 | g)", "gaussian", {}, "statistics",
                          "normal"),
    "joint": ("y ~ x + (1 | g) + (1 + x | h)", "gaussian", {"rewrites": ["joint_statistics"]},
              "joint", None),
    "normal_joint": ("y ~ x + (1 | g) + (1 + x | h)", "gaussian",
                     {"rewrites": ["marginalize", "joint_statistics"]}, "joint", "normal"),
}


def partials(model: sb.Model, monkeypatch) -> set[str]:
    """The templates the environment handed out while `model`'s program rendered."""
    env = render.environment()
    loaded: set[str] = set()
    original = env.get_template

    def recording(name, *args, **kwargs):
        loaded.add(str(name))
        return original(name, *args, **kwargs)

    monkeypatch.setattr(env, "get_template", recording)
    render.render_code(model.plan)
    monkeypatch.undo()
    return loaded


def test_a_likelihood_has_one_field_for_how_its_rows_are_written() -> None:
    fields = {f.name: f.type for f in dataclasses.fields(Likelihood)}
    assert fields["strategy"] == "Strategy"
    for gone in ("marginal", "cells", "statistics", "joint", "glm", "threads", "grainsize"):
        assert gone not in fields, f"{gone} would be a second place for the strategy"


def test_every_strategy_and_kind_has_its_partial_with_every_macro() -> None:
    """The likelihood calls every strategy's partial through the same macros, and every
    kind's through those its strategies call (what they declare is listed in Python,
    `tests/test_declarations.py`)."""
    for cls in STRATEGIES:
        text = (TEMPLATES / f"strategies/{cls.name}.stan.j2").read_text()
        for macro in ("fit", "functions"):
            assert f"{{%- macro {macro}(x, p) %}}" in text, (cls.name, macro)
    for kind in KINDS:
        text = (TEMPLATES / kind.template).read_text()
        assert "{%- macro functions(m, x, p) %}" in text, kind.name
        assert "{%- macro draw_back(m, p) %}" in text, kind.name
    assert {p.name for p in (TEMPLATES / "strategies").glob("*.j2")} == \
        {f"{cls.name}.stan.j2" for cls in STRATEGIES}
    assert {p.name for p in (TEMPLATES / "marginals").glob("*.j2")} == \
        {Path(kind.template).name for kind in KINDS} | {Path(SHARED).name}


@pytest.mark.parametrize("case", list(CASES))
def test_each_strategy_and_kind_renders_from_its_own_partial(case, monkeypatch) -> None:
    formula, family, options, strategy, kind = CASES[case]
    model = sb.Model(formula, data(), family=family, **options)
    lik = model.plan.likelihood
    assert isinstance(lik.strategy, Strategy) and type(lik.strategy) in STRATEGIES
    assert lik.strategy.name == strategy, model.plan.decisions
    assert (lik.marginal.kind.name if lik.marginal else None) == kind, model.plan.decisions
    loaded = partials(model, monkeypatch)
    assert {t for t in loaded if t.startswith("strategies/")} == \
        {f"strategies/{strategy}.stan.j2"}
    assert {t for t in loaded if t.startswith("marginals/")} - {SHARED} == \
        ({f"marginals/{kind}.stan.j2"} if kind else set())


def test_a_pass_replaces_the_strategy_whole() -> None:
    """Integrating a term out and then collapsing the rows leaves one strategy holding
    the term integrated out; the group part keeps only how (its kind) and whether its
    effects are drawn."""
    model = sb.Model("y ~ C(cat) + (1 | g) + (1 | h)", data(), family="gaussian")
    lik = model.plan.likelihood
    assert lik.strategy.name == "cells" and lik.marginal is lik.strategy.marginal
    group = next(g for g in model.plan.groups if g.marginalized)
    assert group.marginal_kind is lik.marginal.kind and group.draw
    assert lik.marginal.cell_level is not None  # its level sums run over the cells
    assert not any(isinstance(getattr(g, f.name), type(lik.marginal))
                   for g in model.plan.groups for f in dataclasses.fields(g))
