"""Large-array helpers (`stanbhm.arrays`): no copy where a selection keeps every row,
and the same numbers as numpy's whole-matrix operations, over several blocks of rows."""

from __future__ import annotations

import numpy as np
import pytest

from stanbhm import arrays


def test_a_selection_of_every_row_is_the_array_itself() -> None:
    X = np.arange(12.0).reshape(6, 2)
    assert arrays.at_rows(X, np.arange(6)) is X
    assert arrays.at_rows(X, np.ones(6, dtype=bool)) is X
    np.testing.assert_array_equal(arrays.at_rows(X, np.array([0, 2, 5])), X[[0, 2, 5]])
    mask = np.array([True, False, True, True, True, True])
    np.testing.assert_array_equal(arrays.at_rows(X, mask), X[mask])
    assert not arrays.keeps_all(np.arange(5), 6)
    assert arrays.keeps_all(np.arange(0), 0)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(arrays, "BLOCK_ROWS", 7)


def test_side_by_side_is_column_stack_in_c_order(small_blocks) -> None:
    rng = np.random.default_rng(1)
    columns = [rng.normal(size=50), np.arange(50), rng.integers(0, 2, 50).astype(bool)]
    out = arrays.side_by_side(columns, 50)
    assert out.flags.c_contiguous and out.dtype == np.float64
    np.testing.assert_array_equal(out, np.column_stack(columns).astype(float))
    assert arrays.side_by_side([], 4).shape == (4, 0)


def test_columns_of_copies_x_columns_and_writes_ones() -> None:
    """Runs in X's order, a run out of order, a repeat and intercepts anywhere."""
    X = np.random.default_rng(3).normal(size=(30, 5))
    positions = [-1, 1, 2, 3, 0, -1, 4, 4]
    out = arrays.columns_of(X, positions)
    expected = np.column_stack([np.ones(30) if j < 0 else X[:, j] for j in positions])
    assert out.flags.c_contiguous and not np.shares_memory(out, X)
    np.testing.assert_array_equal(out, expected)
    assert arrays.columns_of(X, []).shape == (30, 0)


@pytest.mark.parametrize("rows", ["mask", "indices", "all"])
def test_column_means_over_rows_match_the_selections(rows) -> None:
    X = np.random.default_rng(4).normal(10_000, 1, size=(40, 3))
    chosen = {"mask": np.arange(40) % 3 != 0, "indices": np.arange(1, 40, 2),
              "all": np.ones(40, dtype=bool)}[rows]
    np.testing.assert_allclose(arrays.column_means(X, chosen), X[chosen].mean(axis=0),
                               rtol=1e-14)


def test_column_moments_match_numpy(small_blocks) -> None:
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.normal(3, 2, 50), np.full(50, 0.1), rng.uniform(-1, 4, 50)])
    mean, squares, spread = arrays.column_moments(X)
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(squares, ((X - X.mean(axis=0)) ** 2).sum(axis=0), rtol=1e-12,
                               atol=1e-20)
    np.testing.assert_array_equal(spread, np.ptp(X, axis=0))
    assert spread[1] == 0.0


def test_small_pages_turns_numpys_huge_pages_off_and_restores_the_setting() -> None:
    from numpy._core import multiarray

    before = multiarray._set_madvise_hugepage(True)
    try:
        with arrays.small_pages():
            assert multiarray._set_madvise_hugepage(False) is False  # it was off within
        assert multiarray._set_madvise_hugepage(True) is True  # and is on again
    finally:
        multiarray._set_madvise_hugepage(before)


def test_one_blas_thread_within_and_the_setting_restored_after() -> None:
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    with arrays.one_blas_thread():
        assert blas_threads() and set(blas_threads()) == {1}
    assert blas_threads() == before
