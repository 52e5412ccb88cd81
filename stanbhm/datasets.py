"""Seeded data generators for examples, tests and benchmarks.

Each returns a DataFrame and the true values it was drawn from, so a fit can be checked
against the truth. (The issue on results adds eight schools and the retail
generator here.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["election", "election_formula", "varying_slopes", "wide_regression"]


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


def varying_slopes(
    seed: int | np.random.Generator = 1,
    rows: int = 10_000,
    groups: int = 1000,
    sd: tuple[float, float] = (0.5, 0.3),
    correlation: float = 0.3,
    sigma: float = 1.0,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """``y ~ x + (1 + x | g)`` data: `rows` rows spread evenly over `groups` levels
    ``g0000 ...``, intercept 1 and slope 0.5 varying by level with standard deviations
    `sd` and `correlation`, gaussian noise `sigma`. Returns the data and the truth
    (``coef``: each level's intercept and slope)."""
    rng = np.random.default_rng(seed)
    g = np.arange(rows) % groups
    cov = np.diag(sd) @ np.array([[1, correlation], [correlation, 1]]) @ np.diag(sd)
    coef = np.array([1.0, 0.5]) + rng.multivariate_normal(np.zeros(2), cov, size=groups)
    x = rng.normal(size=rows)
    y = coef[g, 0] + coef[g, 1] * x + rng.normal(0, sigma, size=rows)
    width = len(str(groups - 1))
    labels = np.array([f"g{j:0{width}d}" for j in range(groups)])
    return pd.DataFrame({"y": y, "x": x, "g": labels[g]}), {"coef": coef}


def election(
    seed: int | np.random.Generator = 1,
    rows: int = 30_000,
    states: int = 50,
    rows_per_respondent: int = 3,
    covariates: int = 40,
    family: str = "gaussian",
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """An election-style panel for ``y ~ V1 + ... + V<covariates> + (1 | state) +
    (1 | respondent) + (age - 1 | state)``: respondents (about `rows_per_respondent`
    rows each) live in one of `states`; covariates ``V1 ...`` are standard normal,
    ``age`` is standardized. Effects: state sd 0.5, respondent sd 0.7, age slope by state
    sd 0.2; ``family`` "gaussian" (noise sd 1) or "bernoulli" (logit link). Returns the
    data and the truth (``b``, ``state``, ``respondent``, ``age``)."""
    if family not in ("gaussian", "bernoulli"):
        raise ValueError(f"family must be 'gaussian' or 'bernoulli', not {family!r}")
    rng = np.random.default_rng(seed)
    n_resp = max(1, rows // rows_per_respondent)
    respondent = rng.integers(0, n_resp, size=rows)
    home = rng.integers(0, states, size=n_resp)
    state = home[respondent]
    X = rng.normal(size=(rows, covariates))
    b = rng.normal(0, 0.2, size=covariates)
    age = rng.normal(size=rows)
    u_state = rng.normal(0, 0.5, size=states)
    u_resp = rng.normal(0, 0.7, size=n_resp)
    u_age = rng.normal(0, 0.2, size=states)
    eta = 0.3 + X @ b + u_state[state] + u_resp[respondent] + u_age[state] * age
    if family == "gaussian":
        y = eta + rng.normal(size=rows)
    else:
        y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-eta))).astype(int)
    df = pd.DataFrame(X, columns=[f"V{j + 1}" for j in range(covariates)])
    df["age"] = age
    df["state"] = np.array([f"s{k:02d}" for k in range(states)])[state]
    df["respondent"] = respondent.astype(str)
    df["y"] = y
    truth = {"b": b, "state": u_state, "respondent": u_resp, "age": u_age}
    return df, truth


def election_formula(covariates: int = 40) -> str:
    """The formula `election` data are made for."""
    fixed = " + ".join(f"V{j + 1}" for j in range(covariates))
    return f"y ~ {fixed} + (1 | state) + (1 | respondent) + (age - 1 | state)"
