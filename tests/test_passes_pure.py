"""Passes are pure: a pass keeps no cache of what it computed (no id()-keyed dicts), holds
no other pass, and reads no hardware, so a plan depends on the model alone; what several
passes read (the design of the fitted rows) is made once by the planner and given to
each of them."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
import stanbhm.passes as passes_package
from stanbhm import design, planner
from stanbhm.datasets import election, election_formula
from stanbhm.passes import base, collapse, glm, joint, statistics
from stanbhm.spec import build_spec
from stanbhm.toolchain import opencl

PASSES = Path(passes_package.__file__).parent
#: Where an id()-keyed cache would live: every pass, and the design they share.
SOURCES = [*sorted(PASSES.glob("*.py")), Path(design.__file__)]


def is_pass(value: object) -> bool:
    return hasattr(value, "decide") or hasattr(value, "applies")


def record_passes(monkeypatch) -> list:
    """The passes `planner.make_plan` runs from now on, in order."""
    ran: list = []
    real = planner.run_passes

    def recording(spec, plan, passes):
        passes = list(passes)
        ran.extend(passes)
        return real(spec, plan, passes)

    monkeypatch.setattr(planner, "run_passes", recording)
    return ran


def nested(n: int = 3000, states: int = 10, seed: int = 0) -> pd.DataFrame:
    """Respondents g of 3 rows each, each living in one state h."""
    rng = np.random.default_rng(seed)
    member = np.arange(n) // 3
    h = rng.integers(0, states, size=n // 3 + 1)[member]
    x = rng.normal(size=n)
    y = (1 + 0.5 * x + rng.normal(0, 0.7, size=n // 3 + 1)[member]
         + rng.normal(0, 0.5, states)[h] + rng.normal(size=n))
    return pd.DataFrame({"y": y, "x": x, "g": [f"r{m}" for m in member],
                         "h": [f"s{k}" for k in h]})


def crossed(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Crossed factors g and h and a covariate of three values: few cells."""
    rng = np.random.default_rng(seed)
    g, h = rng.integers(0, 8, size=n), rng.integers(0, 5, size=n)
    x = rng.integers(0, 3, size=n).astype(float)
    y = 1 + 0.5 * x + rng.normal(size=8)[g] + rng.normal(size=5)[h] + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str), "h": h.astype(str)})


def test_no_pass_keeps_an_id_keyed_cache() -> None:
    """No module of the passes (nor the design they share) calls id(), and `once`, the
    helper that kept what a pass computed by id(plan), is gone."""
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "id"):
                found.append(f"{path.name}:{node.lineno} calls id()")
            if isinstance(node, ast.FunctionDef | ast.Name) and \
                    getattr(node, "name", getattr(node, "id", None)) == "once":
                found.append(f"{path.name}:{node.lineno} defines or uses once")
            if isinstance(node, ast.ImportFrom) and any(a.name == "once" for a in node.names):
                found.append(f"{path.name}:{node.lineno} imports once")
    assert not found, "\n".join(found)
    assert not hasattr(base, "once") and not hasattr(design, "Designs")


def test_no_pass_has_a_mutable_field() -> None:
    """A frozen pass with a dict field is a cache in disguise."""
    for name in passes_package.__all__:
        cls = getattr(passes_package, name)
        if isinstance(cls, type) and dataclasses.is_dataclass(cls):
            for f in dataclasses.fields(cls):
                assert f.default_factory is dataclasses.MISSING, (name, f.name)


def test_no_pass_holds_another(monkeypatch) -> None:
    """Neither the passes `default_passes` lists nor those `make_plan` runs hold a pass:
    the rewrites of the rows share an analysis of them, not the joint statistics pass."""
    spec = build_spec("y ~ x + (1 | g) + (1 + x | h)", nested())
    options = planner.Options(opencl="auto")
    ran = record_passes(monkeypatch)
    planner.make_plan(spec, options)
    listed = planner.default_passes(spec, options)
    assert {type(p).__name__ for p in ran} >= {"SufficientStatistics", "Collapse",
                                                "JointStatistics", "Opencl"}
    for p in [*listed, *ran]:
        assert is_pass(p)
        held = {name: value for name, value in vars(p).items() if is_pass(value)}
        assert not held, f"{type(p).__name__} holds {held}"


def test_auto_opencl_plans_the_same_program_on_any_machine(monkeypatch) -> None:
    """opencl="auto" decides from the model alone: the header is the same on a machine
    with a GPU, one without, and one without OpenCL, and planning asks none of them."""
    monkeypatch.setattr(glm, "AUTO_ENTRIES", 100)
    df = nested(600)
    gpu = opencl.Device(1, 0, "NVIDIA CUDA", "NVIDIA H100 80GB HBM3", "gpu")
    cpu = opencl.Device(0, 0, "Portable Computing Language", "pthread-cpu", "cpu")
    machines = {"gpu": (None, [cpu, gpu]), "cpu": (None, [cpu]),
                "none": ("no OpenCL platform is installed", [])}
    codes, devices = {}, {}
    for name, (missing, found) in machines.items():
        monkeypatch.setattr(opencl, "opencl_missing", lambda missing=missing: missing)
        monkeypatch.setattr(opencl, "devices", lambda found=found: found)
        model = sb.Model("y ~ x + (1 | h)", df, rewrites="none", opencl="auto")
        codes[name], devices[name] = model.stan_code(), model.device
    assert codes["gpu"] == codes["cpu"] == codes["none"]
    assert "//   opencl: a GPU if the machine has one; 'auto': 600 rows x 1 columns" in \
        codes["gpu"]
    assert devices == {"gpu": gpu, "cpu": None, "none": None}

    def asked() -> None:
        raise AssertionError("planning looked at this machine's OpenCL devices")

    monkeypatch.setattr(opencl, "opencl_missing", asked)
    monkeypatch.setattr(opencl, "devices", asked)
    spec = build_spec("y ~ x + (1 | h)", df)
    plan = planner.make_plan(spec, planner.Options(rewrites="none", opencl="auto"))
    assert plan.gpu_wanted


CASES = {
    # the per-level statistics apply, after asking the joint ones whether they cost less
    "statistics": ("y ~ x + (1 | g) + (1 + x | h)", nested, {}, "statistics"),
    # they ask, and give way; the joint statistics build their factors from the design
    "joint": ("y ~ x + (1 | g) + (1 + x | h)", nested,
              {"rewrites": ["marginalize", "sufficient_statistics", "joint_statistics"]},
              "joint"),
    # the gaussian cells ask the joint statistics, and give way
    "cells": ("y ~ x + (1 | g) + (1 + x | h)", crossed,
              {"rewrites": ["collapse", "joint_statistics"]}, "joint"),
    # the election model: the joint statistics cost less under "auto"
    "election": (election_formula(), lambda: election(seed=1, rows=30_000)[0],
                 {"log_lik": False, "y_rep": False}, "joint"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_design_is_built_once_per_plan(case, monkeypatch) -> None:
    """The statistics, collapse and joint passes all consider the rows, two or three of
    them read their design (seconds and gigabytes at millions of rows), and it is built
    once: from the one analysis of the rows `make_plan` gives all three."""
    formula, data, options, strategy = CASES[case]
    calls = []
    real = design.level_design

    def counting(plan):
        calls.append(plan)
        return real(plan)

    for module in (design, joint, statistics, collapse):
        if hasattr(module, "level_design"):
            monkeypatch.setattr(module, "level_design", counting)
    ran = record_passes(monkeypatch)
    model = sb.Model(formula, data(), **options)
    subjects = [d.subject for d in model.plan.decisions]
    assert {"sufficient statistics", "collapse", "joint statistics"} <= set(subjects)
    assert model.plan.likelihood.strategy.name == strategy
    assert len(calls) == 1
    rewrites = [p for p in ran if type(p).__name__ in ("SufficientStatistics", "Collapse",
                                                       "JointStatistics")]
    assert len(rewrites) == 3 and all(p.rows is rewrites[0].rows for p in rewrites)
    assert rewrites[0].rows.plan is calls[0]  # the analysis built the design


def test_a_pass_given_no_analysis_makes_its_own(monkeypatch) -> None:
    """Run on their own, without the planner's analysis, the rewrites of the rows decide
    as in make_plan; given the analysis of other rows, they refuse."""
    spec = build_spec("y ~ x + (1 | g) + (1 + x | h)", nested())
    options = planner.Options()
    given = []
    real = planner.run_passes

    def recording(spec, plan, passes):
        given.append(plan)
        return real(spec, plan, passes)

    monkeypatch.setattr(planner, "run_passes", recording)
    made = planner.make_plan(spec, options)
    before = given[-1]  # the plan the rewrites of the rows start from
    listed = planner.default_passes(spec, options)
    assert all(getattr(p, "rows", None) is None for p in listed)
    at = next(i for i, p in enumerate(listed) if isinstance(p, statistics.SufficientStatistics))
    alone = real(spec, before, listed[at:])
    predicted = [str(d) for d in made.decisions if d.subject != "predictions"]
    assert [str(d) for d in alone.decisions] == predicted  # predictions come after passes
    other = joint.RowAnalysis(planner.make_plan(spec, planner.Options(rewrites="none")))
    with pytest.raises(ValueError, match="other rows"):
        statistics.SufficientStatistics("auto", other).decide(spec, before)
