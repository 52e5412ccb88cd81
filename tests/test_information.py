"""The pooled fit's building blocks (`stanbhm.information`), without a program."""

from __future__ import annotations

import numpy as np
import pytest

from stanbhm.information import LevelSums


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
