"""Joint sufficient statistics: the factors, when they are chosen, and proof that the log
density is the plain program's up to a constant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from exact import assert_constant_gap
from rewrite_cases import (
    CROSSED,
    WEIGHTED_CROSSED,
    crossed_data,
    decision,
    grouped,
    nested_data,
    weighted_crossed_data,
)
from test_parts import correlated

import stanbhm as sb
from stanbhm.datasets import election, election_formula
from stanbhm.passes.joint import Layout, factors
from stanbhm.strategies import Segment


def test_factors_give_each_blocks_sum_of_squares() -> None:
    """Block 0 is the rows' sum of squares, block k the sum over the members with row
    count ks[k - 1] of their squared residual sums, for any phi; folded a few rows at a
    time, members never split."""
    rng = np.random.default_rng(3)
    n, levels = 230, 9
    level = rng.integers(0, levels, size=n)
    D = np.column_stack([np.ones(n), rng.normal(size=n) + 100.0, rng.normal(size=n)])
    lay = Layout(segments=(Segment("b", 2, ""), Segment("r", levels, "")),
                 pop=np.array([-1, 0, 1]), levels=(((2, level),), (), ()))
    member = rng.integers(0, 80, size=n)
    member[member == 5] = 6  # member 5 has no rows
    y = rng.normal(size=n) + 3 * D[:, 1]
    blocks, ks, members = factors(lay, D, y, member, chunk=16)
    counts = np.bincount(member, minlength=80)
    assert list(ks) == sorted(set(counts[counts > 0]))
    assert list(members) == [int(np.sum(counts == k)) for k in ks]
    for _ in range(4):
        phi = rng.normal(size=2 + levels) + np.r_[3.0, 0.0, np.zeros(levels)]
        resid = y - D[:, 1] * phi[0] - D[:, 2] * phi[1] - phi[2 + level]
        sums = np.bincount(member, weights=resid, minlength=80)
        expected = [float(resid @ resid)]
        expected += [float(np.sum(sums[counts == k] ** 2)) for k in ks]
        for block, want in zip(blocks, expected, strict=True):
            got = float(np.sum((block[:, :-1] @ phi - block[:, -1]) ** 2))
            assert abs(got - want) < 1e-9 * max(want, 1.0)


def test_auto_takes_the_election_model_off_its_rows() -> None:
    df, _ = election(seed=1, rows=30_000)
    model = sb.Model(election_formula(), df, log_lik=False, y_rep=False)
    joint = model.plan.likelihood.strategy
    assert joint is not None and joint.P == 140
    m = 141 + sum(min(k, 141) for k in np.unique(
        np.bincount(df["respondent"].astype("category").cat.codes), return_counts=True)[1])
    assert decision(model, "sufficient statistics") == (
        "sufficient statistics: not applied; 30000 rows, 50 levels of state, 42 columns per "
        f"level: the joint statistics cost less: dense factors of {m} x 140 against 4.25e+05 "
        "entries of sparse ones")
    assert decision(model, "joint statistics") == (
        "joint statistics: over all 140 coefficients; 30000 rows, 140 coefficients "
        "(population, and per level of state); respondent, integrated out, enters through its "
        f"levels' sums in 12 classes of one row count: factors of {m} x 140, so a gradient "
        "costs O((1 + classes) x coefficients^2), not O(rows)")
    data = model.stan_data()
    rows = len(joint.q)  # at most m: a QR of fewer nonzero columns gives fewer rows
    assert rows <= m and data["js_R"].shape == (rows, 140) and data["js_B"] == 13
    assert data["js_start"][0] == 1 and data["js_start"][-1] == rows + 1
    assert data["js_count"].sum() == len(np.unique(df["respondent"]))
    assert (data["js_n"] * data["js_count"]).sum() == 30_000
    code = model.stan_code()
    assert "js_phi[1 : 40] = b; // V1 ... V40" in code
    assert ("js_phi[41 : 40 + N_state] = centered_state; // state: Intercept, per level of "
            "state") in code


def test_rows_are_left_out_when_nothing_reads_them() -> None:
    """Nothing per row is written and the respondents' effects are not drawn: the data
    keep the row count and X's column means, not the 30000 rows."""
    df, _ = election(seed=1, rows=30_000)
    model = sb.Model(election_formula(), df, log_lik=False, y_rep=False)
    assert decision(model, "row data") == (
        "row data: left out; the joint statistics hold all the model block needs, and "
        "nothing per row is written; the data keep the row count and X's column moments")
    data = model.stan_data()
    for name in ("y", "X", "J_state", "J_respondent", "J_state_age", "Z_state_age"):
        assert name not in data
    assert data["N"] == 30_000
    columns = [f"V{j}" for j in range(1, 41)]
    np.testing.assert_allclose(data["means_X"], df[columns].mean().to_numpy(), rtol=1e-12)
    code = model.stan_code()
    assert "matrix[N, K] X;" not in code and "  vector[K] means_X; // column means" in code
    assert "transformed data" not in code


def test_rows_are_passed_when_an_output_reads_them() -> None:
    df, _ = election(seed=1, rows=30_000)
    cases = [({"log_lik": True, "y_rep": False},
              "row data: passed; computed from them: log_lik, the drawn effects of "
              "respondent"),
             ({"log_lik": False, "y_rep": False, "effects": True},
              "row data: passed; computed from them: the drawn effects of respondent")]
    for options, line in cases:
        model = sb.Model(election_formula(), df, **options)
        assert decision(model, "row data") == line
        assert model.stan_data()["X"].shape == (30_000, 40)
    model = sb.Model(election_formula(), df, rewrites="none", log_lik=False, y_rep=False)
    # the rows are the likelihood: nothing to decide
    assert all(d.subject != "row data" for d in model.plan.decisions)


def test_joint_statistics_are_skipped_with_a_reason() -> None:
    df = grouped()
    many = pd.DataFrame({"g": np.arange(3200) % 1600, "x": np.linspace(0, 1, 3200)})
    many["y"] = np.sin(many["x"] * 7)
    cases = [
        (sb.Model("y ~ x + (1 | g) + (1 | h)", df), "60 rows x 4 columns: the rows cost "
         "little already"),
        (sb.Model("y ~ x + (1 | g)", df, rewrites="none"), "rewrites='none' requested"),
        (sb.Model("y ~ x + (1 | g)", df, rewrites=["collapse"]),
         "rewrites=['collapse'] requested"),
        (sb.Model("y ~ x + (1 | g)", df, family="student_t"),
         "the student_t family has no sufficient statistics"),
        (sb.Model("y ~ x + (1 | g)", many, rewrites=["joint_statistics"]),
         "1602 coefficients: dense 1602 x 1602 factors are offered up to 1500"),
    ]
    for model, reason in cases:
        assert decision(model, "joint statistics") == f"joint statistics: not applied; {reason}"
        assert "js_R" not in model.stan_code()


@pytest.mark.slow
@pytest.mark.parametrize("case", ["nested_missing", "crossed_marginal", "crossed_offset",
                                  "centered_slopes"])
@pytest.mark.log_density
def test_joint_statistics_keep_the_log_density(case) -> None:
    """The joint program and the per-row one differ by a constant at 20 posterior draws,
    whether the joint one is given the rows or not. Each per-row program is another
    file's too: the rows of tests/test_statistics.py's nested cells, tests/test_threads.py's
    and test_block.py's integrated-out intercept beside a slope term, the rows of
    tests/test_collapse.py's gaussian cells, and tests/test_parts.py's centered correlated
    slopes (notebooks/hierarchical_regression.ipynb's program)."""
    marginal = case in ("nested_missing", "crossed_marginal")
    # two cases write nothing per row, so their joint programs are not given the rows
    quiet = case in ("nested_missing", "crossed_offset")
    outputs = {"log_lik": False, "y_rep": False, "effects": False if marginal else "auto"}
    if case == "centered_slopes":
        plain = correlated(parameterization="centered", rewrites="none")
        joint = correlated(parameterization="centered", rewrites=["joint_statistics"])
    else:
        f = {"nested_missing": election_formula(3),
             "crossed_marginal": "y ~ x + (1 | g) + (1 + x | h)",
             "crossed_offset": CROSSED}[case]
        df = {"nested_missing": lambda: nested_data(True),
              "crossed_marginal": lambda: grouped(missing=True),
              "crossed_offset": crossed_data}[case]()
        param = {"crossed_offset": "noncentered"}.get(case, "auto")
        plain = sb.Model(f, df, parameterization=param,
                         rewrites=["marginalize"] if marginal else "none")
        joint = sb.Model(f, df, parameterization=param,
                         rewrites=["marginalize", "joint_statistics"] if marginal
                         else ["joint_statistics"], **(outputs if quiet else {}))
    assert joint.plan.likelihood.strategy.name == "joint"
    assert (joint.plan.likelihood.marginal is not None) == marginal
    assert joint.plan.rows_given != quiet
    assert ("X" in joint.stan_data()) != quiet
    assert_constant_gap(plain, joint)


def test_factors_made_two_blocks_at_a_time_are_the_serial_ones(monkeypatch) -> None:
    """Blocks factored on two threads are folded in their order: the same numbers."""
    from stanbhm.passes import joint

    df, _ = election(seed=2, rows=6000)
    made = {}
    for workers in (1, 2):
        monkeypatch.setattr(joint, "WORKERS", workers)
        monkeypatch.setattr(joint, "CHUNK", 1 << 16)  # many blocks
        strategy = sb.Model(election_formula(), df, log_lik=False, y_rep=False).plan \
            .likelihood.strategy
        made[workers] = (strategy.R, strategy.q)
    np.testing.assert_array_equal(made[1][0], made[2][0])
    np.testing.assert_array_equal(made[1][1], made[2][1])


def weighted_crossed(missing: bool = True) -> pd.DataFrame:
    df = grouped(missing=missing)
    df["wt"] = np.random.default_rng(11).uniform(0.2, 3.0, size=len(df))
    df.loc[::13, "wt"] = 0.0
    return df


def test_weighted_factors_give_the_weighted_sum_of_squares() -> None:
    """With each row times sqrt(w), the first block's |R phi - q|^2 is the rows' weighted
    sum of squares for any phi; members' sums are refused with a scale."""
    rng = np.random.default_rng(5)
    n, levels = 120, 6
    level = rng.integers(0, levels, size=n)
    D = np.column_stack([np.ones(n), rng.normal(size=n) + 10.0, rng.normal(size=n)])
    lay = Layout(segments=(Segment("b", 2, ""), Segment("r", levels, "")),
                 pop=np.array([-1, 0, 1]), levels=(((2, level),), (), ()))
    y = rng.normal(size=n) + 2 * D[:, 1]
    w = rng.uniform(0, 3, size=n)
    (block,), _, _ = factors(lay, D, y, None, chunk=16, scale=np.sqrt(w))
    for _ in range(4):
        phi = rng.normal(size=2 + levels) + np.r_[2.0, 0.0, np.zeros(levels)]
        resid = y - D[:, 1] * phi[0] - D[:, 2] * phi[1] - phi[2 + level]
        want = float(np.sum(w * resid**2))
        got = float(np.sum((block[:, :-1] @ phi - block[:, -1]) ** 2))
        assert abs(got - want) < 1e-9 * want
    with pytest.raises(ValueError, match="weighted rows have no members' sums"):
        factors(lay, D, y, level, scale=np.sqrt(w))


def test_weighted_joint_statistics_are_said() -> None:
    df = weighted_crossed()
    model = sb.Model("y | weights(wt) ~ x + (1 | g) + (1 + x | h)", df,
                     rewrites=["joint_statistics"])
    said = decision(model, "joint statistics")
    assert said.startswith("joint statistics: over all 14 coefficients, weighted; ")
    assert said.endswith("; weights(wt): each row's design and outcome times sqrt(weight), "
                         "the weights' sum counting the rows in log(sigma)")
    fitted = df["y"].notna().to_numpy()
    assert model.stan_data()["js_wsum"] == pytest.approx(df["wt"][fitted].sum())
    assert "    target += -js_wsum * log(sigma) - 0.5 * js_ss[1] / square(sigma);\n" in \
        model.stan_code()


@pytest.mark.slow
@pytest.mark.log_density
def test_weighted_joint_statistics_keep_the_log_density() -> None:
    """The weighted joint statistics and the weighted rows differ by a constant at 20
    posterior draws (crossed factors, missing rows, some weights 0: a whole cell of
    them). The weighted rows are the program tests/test_collapse.py compares its
    weighted cells with."""
    df = weighted_crossed_data()
    f = WEIGHTED_CROSSED
    plain = sb.Model(f, df, parameterization="noncentered", rewrites="none")
    joint = sb.Model(f, df, parameterization="noncentered", rewrites=["joint_statistics"])
    assert plain.plan.likelihood.strategy.name == "rowwise"
    assert joint.plan.likelihood.strategy.name == "joint"
    assert_constant_gap(plain, joint)
