"""Data and helpers shared by the tests of the rewrites (`passes.marginalize`,
`passes.statistics`, `passes.collapse`, the marginal kinds of `stanbhm.marginals`,
`passes.fold` and `passes.joint`): the data sets they fit, the decision a plan states
about a subject, the blocks of a generated program, and checks of a likelihood against
an independent value and of two posteriors against each other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from exact import log_density

import stanbhm as sb
from stanbhm.datasets import election


def grouped(seed: int = 0, n: int = 60, missing: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(list("abcdefg"), size=n),
                       "h": rng.choice(list("pqr"), size=n), "s": rng.uniform(0.5, 2, n)})
    u = rng.normal(0, 0.8, size=7)
    df["y"] = 1 + 0.5 * df["x"] + u[df["g"].map("abcdefg".index)] + rng.normal(size=n)
    if missing:
        df.loc[np.arange(n) % 7 == 2, "y"] = np.nan
    return df


def decision(model: sb.Model, subject: str) -> str:
    return next(str(d) for d in model.plan.decisions if d.subject == subject)


def assert_likelihood_is(model: sb.Model, point, seed: int) -> None:
    """The program's likelihood (its log density less the prior-only one) equals an
    independent value up to a constant at 20 points; ``point(rng)`` gives the parameters
    and that value."""
    rng = np.random.default_rng(seed)
    gaps, scale = [], 0.0
    for _ in range(20):
        p, exact = point(rng)
        likelihood = log_density(model, p, False) - log_density(model, p, True)
        gaps.append(likelihood - exact)
        scale = max(scale, abs(exact))
    assert max(gaps) - min(gaps) < 1e-8 * scale, (gaps, scale)


def model_block(code: str) -> str:
    return code.split("\nmodel {\n", 1)[1].split("\ngenerated quantities {\n", 1)[0]


def transformed_data(code: str) -> str:
    return code.split("\ntransformed data {\n", 1)[1].split("\n}\n", 1)[0]


def _agree(a: np.ndarray, b: np.ndarray, name: str) -> None:
    """Posterior means agree within 4 Monte Carlo standard errors (from ArviZ's ESS)."""
    import arviz as az

    def mcse(v: np.ndarray) -> np.ndarray:
        per_chain = v.reshape(4, v.shape[0] // 4, -1)
        return np.array([az.mcse(per_chain[:, :, k], method="mean")
                         for k in range(per_chain.shape[2])]).reshape(v.shape[1:])

    gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
    bound = 4 * np.hypot(mcse(a), mcse(b))
    assert (gap < bound).all(), (name, gap, bound)


def statistics_data(n: int = 400, missing: bool = False) -> pd.DataFrame:
    df = grouped(seed=5, n=n, missing=missing)
    df["z"] = np.random.default_rng(6).normal(size=n)
    df["w"] = np.random.default_rng(7).normal(size=n)
    df["v"] = np.random.default_rng(8).normal(size=n)
    return df


def count_data(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(8)
    df = pd.DataFrame({"a": rng.choice(list("xyz"), size=n),
                       "c": rng.integers(0, 3, size=n).astype(float),
                       "g": rng.choice(list("abcde"), size=n),
                       "expo": rng.choice([1.0, 2.0, 3.0], size=n),
                       "t": rng.integers(1, 5, size=n)})
    df["yb"] = (rng.uniform(size=n) < 0.4).astype(int)
    df["yc"] = rng.poisson(2 * df["expo"])
    df["ys"] = rng.binomial(df["t"], 0.3)
    df["ybm"] = df["yb"].where(np.arange(n) % 9 != 1)
    df["ycm"] = rng.negative_binomial(3, 3 / (3 + 2 * df["expo"])).astype(float)
    df["ycm"] = df["ycm"].where(np.arange(n) % 7 != 2)  # overdispersed counts, some missing
    return df


def nested_data(missing: bool = False) -> pd.DataFrame:
    """Respondents nested in states (each lives in one), a few rows each."""
    df, _ = election(seed=4, rows=1500, states=12, covariates=3)
    if missing:
        df.loc[::37, "y"] = np.nan
    return df


def crossed_data() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    n = 600
    df = pd.DataFrame({"a": rng.choice(list("pqr"), n), "g": rng.choice(list("ABCDEF"), n),
                       "h": rng.choice(list("uvwxyz"), n)})
    df["y"] = rng.normal(size=n) + (df["a"] == "p") * 1.0 + 1e4
    df.loc[::17, "y"] = np.nan
    return df


CROSSED = "y ~ C(a) + offset(0.5 * (a == 'q')) + (1 | g) + (1 | h)"


WEIGHTED_CROSSED = CROSSED.replace("y ~", "y | weights(wt) ~")


def weighted_crossed_data() -> pd.DataFrame:
    """crossed_data with row weights, every row of one cell weighing 0."""
    df = crossed_data()
    df["wt"] = np.random.default_rng(12).uniform(0.1, 3.0, size=len(df))
    df.loc[(df["a"] == "r") & (df["g"] == "A") & (df["h"] == "u"), "wt"] = 0.0
    return df
