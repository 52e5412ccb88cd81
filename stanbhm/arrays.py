"""Large arrays without needless copies: rows of the data where a selection keeps every
row, columns side by side, and column moments a block of rows at a time; and the
settings the build computes under (`small_pages`, `one_blas_thread`).

At millions of rows a copy of the design (3M rows x 41 columns is 1 GB) costs a second
and a gigabyte, and most models fit every row: `at_rows` returns the array itself then,
an array the caller must not write to either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["BLOCK_ROWS", "at_rows", "column_means", "column_moments", "columns_of",
           "keeps_all", "one_blas_thread", "side_by_side", "small_pages"]

#: Rows copied or reduced at a time: a block of a 41-column design is a few MB.
BLOCK_ROWS = 1 << 13


def keeps_all(rows: np.ndarray, n: int) -> bool:
    """Whether `rows` (a boolean mask, or indices ascending without repeats, as the
    fitted rows' are) selects all `n` rows."""
    if rows.dtype == bool:
        return len(rows) == n and bool(rows.all())
    return len(rows) == n and (n == 0 or int(rows[-1]) == n - 1)


def at_rows(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`values[rows]`, or `values` itself when `rows` keeps every row (`keeps_all`)."""
    return values if keeps_all(rows, len(values)) else values[rows]


def side_by_side(columns: Sequence[np.ndarray], n: int) -> np.ndarray:
    """The `n`-long `columns` as one C-ordered float64 matrix, filled a block of rows at a
    time: pandas' own conversion of a wide frame goes through a transposed copy, which
    took seconds at 3M rows x 40 columns."""
    out = np.empty((n, len(columns)))
    for start in range(0, n, BLOCK_ROWS):
        block = out[start:start + BLOCK_ROWS]
        for j, column in enumerate(columns):
            block[:, j] = column[start:start + BLOCK_ROWS]
    return out


def columns_of(X: np.ndarray, positions: Sequence[int]) -> np.ndarray:
    """A new matrix whose column k is X's column ``positions[k]``, or ones where that is
    -1 (an intercept): a group term's covariates are often the population columns
    again. Each run of columns in X's order is one slice copy (0.09 s for 932k rows x 22
    columns, against 0.4 s gathering them by index a block at a time)."""
    out = np.empty((len(X), len(positions)))
    k = 0
    while k < len(positions):
        if positions[k] < 0:
            out[:, k] = 1.0
            k += 1
            continue
        end = k + 1
        while end < len(positions) and positions[end] == positions[end - 1] + 1:
            end += 1
        out[:, k:end] = X[:, positions[k]:positions[k] + end - k]
        k = end
    return out


def column_means(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The mean of each column of X over `rows` (a boolean mask or indices), as one
    matrix-vector product with the rows' indicator: no copy of the rows."""
    if keeps_all(rows, len(X)):
        return X.mean(axis=0)
    chosen = np.zeros(len(X))
    chosen[rows] = 1.0
    count = chosen.sum()
    return chosen @ X / count if count else np.full(X.shape[1], np.nan)


def column_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each column's mean, sum of squared deviations from it, and range, in one pass
    over X a block of rows at a time: numpy's std of the whole matrix makes a copy of
    it."""
    n, k = X.shape
    if n == 0:
        return np.zeros(k), np.zeros(k), np.zeros(k)
    mean, squares, seen = np.zeros(k), np.zeros(k), 0
    low, high = X[0].copy(), X[0].copy()
    for start in range(0, n, BLOCK_ROWS):
        rows = X[start:start + BLOCK_ROWS]
        np.minimum(low, rows.min(axis=0), out=low)
        np.maximum(high, rows.max(axis=0), out=high)
        # the block's own mean and squares, merged into the running ones (Chan et al.):
        # one pass over X, each block read while it is in cache
        block_mean = rows.mean(axis=0)
        deviations = rows - block_mean
        block_squares = np.einsum("ij,ij->j", deviations, deviations)
        total = seen + len(rows)
        delta = block_mean - mean
        squares += block_squares + delta**2 * (seen * len(rows) / total)
        mean += delta * (len(rows) / total)
        seen = total
    return mean, squares, high - low


@contextlib.contextmanager
def small_pages() -> Iterator[None]:
    """Within: numpy does not ask Linux for huge pages for new arrays; the user's setting
    is restored after.

    numpy asks for them (``madvise(MADV_HUGEPAGE)``) for every array of 4 MB or more. Where
    the kernel then compacts memory to find each 2 MB page (transparent huge pages with
    ``defrag = madvise``, a common default) and memory is fragmented, every first touch
    waits for it: filling a new 1 GB array took 6.7 s on the development VM, against
    0.95 s with ordinary pages. The build allocates a few such arrays and reads each a
    few times, so the pages' TLB savings never repay that.
    """
    setter = getattr(getattr(np, "_core", None), "multiarray", None)
    setter = getattr(setter, "_set_madvise_hugepage", None)
    if setter is None:  # a numpy without the switch: its own behaviour
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Within: BLAS and LAPACK on one thread (restored after).

    The build's products are of tall, narrow matrices (3M rows x 41 columns), where
    OpenBLAS's second thread gains little, and where any other process wants a core its
    waiting threads lose much: building the election model took 10.2 s at 300k rows
    and 44 s at 1M with two BLAS threads on the development VM while one core ran a
    test, against 1.2 s and 4.1 s with one. Where the build has independent work (the
    joint statistics' blocks), it runs it on threads of its own.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield
