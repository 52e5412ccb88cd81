"""The pooled fit's building blocks (`stanbhm.information`), without a program."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
from stanbhm.information import LevelSums, _gram


@pytest.mark.parametrize("ordered", [True, False])
def test_level_sums_are_bincounts_whether_rows_come_level_by_level_or_not(ordered) -> None:
    """Rows that come level by level are summed as runs, others by bincount; both give
    each level's sum, 0 for a level without rows (level 3 here)."""
    rng = np.random.default_rng(5)
    index = rng.choice([0, 1, 2, 4, 5], size=200)
    if ordered:
        index = np.sort(index)
    values = rng.normal(size=200)
    sums = LevelSums(index, 7)
    assert (sums.starts is not None) == ordered
    np.testing.assert_allclose(sums(values), np.bincount(index, weights=values, minlength=7),
                               rtol=1e-13, atol=1e-13)
    assert sums(values)[3] == 0.0 and sums(values)[6] == 0.0
    per_level = rng.normal(size=7)
    np.testing.assert_array_equal(sums.spread(per_level), per_level[index])


def test_the_specs_cross_products_stand_for_equally_weighted_ones() -> None:
    """A model's FixedEffects.gram is [1, X]'[1, X] over its fitted rows, what the pooled
    fit's equally weighted products give (and what it then reads)."""
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"x": rng.normal(size=40), "z": rng.normal(size=40),
                       "g": rng.choice(list("abc"), 40)})
    df["y"] = df["x"] + rng.normal(size=40)
    df.loc[::9, "y"] = np.nan
    spec = sb.Model("y ~ x + z + (1 | g)", df).spec
    w = np.full(spec.n_obs, 2.5)
    np.testing.assert_allclose(spec.fixed.gram * 2.5, _gram(spec.fitted_X, True, w),
                               rtol=1e-13)
    np.testing.assert_array_equal(_gram(spec.fitted_X, True, w, spec.fixed.gram),
                                  spec.fixed.gram * 2.5)
