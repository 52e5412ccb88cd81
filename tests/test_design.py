"""The gaussian rewrites' design (`stanbhm.design`): its rows, made a block at a time on
demand, are the matrix the statistics stand for: ones, X's columns centered over the
fitted rows, and a group term's covariate that X lacks, over the fitted rows only."""

from __future__ import annotations

import numpy as np
from rewrite_cases import statistics_data

import stanbhm as sb
from stanbhm.design import level_design


def test_design_rows_are_the_centered_columns_over_the_fitted_rows() -> None:
    df = statistics_data(n=90, missing=True)
    model = sb.Model("y ~ x + w + (1 + x + z | g)", df, rewrites="none")
    plan = model.plan
    design = level_design(plan)
    assert design.labels == ("Intercept", "x", "w", "z")
    fitted = df["y"].notna().to_numpy()
    X = df[["x", "w"]].to_numpy()[fitted]
    means = X.mean(axis=0) if plan.fixed.centered else np.zeros(2)
    want = np.column_stack([np.ones(fitted.sum()), X - means, df["z"].to_numpy()[fitted]])
    assert design.rows.shape == want.shape
    np.testing.assert_allclose(design.rows[:], want, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(design.rows[np.array([5, 0, 7])], want[[5, 0, 7]],
                               rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(design.D, design.rows[:])
    np.testing.assert_allclose(design.level_offsets, [0.0, *means, 0.0])
