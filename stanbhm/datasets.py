"""Seeded data generators for examples, tests and benchmarks.

Each returns a DataFrame and the true values it was drawn from, so a fit can be checked
against the truth. (The issue on results adds eight schools and the retail and
election-like generators here.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["wide_regression"]


def wide_regression(
    seed: int | np.random.Generator = 3,
    rows: int = 100,
    columns: int = 500,
    signals: tuple[float, ...] = (3.0, -3.0, 2.5),
) -> tuple[pd.DataFrame, np.ndarray]:
    """A sparse regression for the horseshoe: `rows` x `columns` standard normal
    predictors ``x0 ...``, the first ``len(signals)`` with those coefficients and the rest
    0, intercept 1 and unit noise. Returns the data (outcome ``y``) and the coefficients.
    `seed` may be a Generator, which is then advanced (to draw further data after)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, columns))
    beta = np.zeros(columns)
    beta[: len(signals)] = signals
    df = pd.DataFrame(x, columns=[f"x{j}" for j in range(columns)])
    df["y"] = 1.0 + x @ beta + rng.normal(size=rows)
    return df, beta
