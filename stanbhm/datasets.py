"""Seeded data generators for examples, tests and benchmarks.

Each generator returns a DataFrame and the true values it was drawn from, so a fit can be
checked against the truth; `eight_schools` is the classic public data set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["eight_schools", "election", "election_formula", "retail", "retail_formula",
           "survey", "survey_formula", "varying_slopes", "wide_regression"]


def eight_schools() -> pd.DataFrame:
    """The eight schools of Rubin (1981): the estimated effect ``y`` of coaching on SAT
    scores in each ``school`` (A to H) and its standard error ``sigma``. Public data,
    shipped so that examples run from a bare clone."""
    return pd.DataFrame({"school": list("ABCDEFGH"),
                         "y": [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
                         "sigma": [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]})


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


def retail(
    seed: int | np.random.Generator = 1,
    stores: int = 1000,
    days: int = 942,
    features: int = 22,
    short_stores: int | None = None,
    short_days: int = 7,
    closed_share: float = 0.15,
    phi: float = 8.0,
    stockouts: float = 0.0,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Daily sales of `stores` stores over `days` days for a negative-binomial demand model
    with every coefficient varying by store (``retail_formula``).

    Columns: ``store`` (``s0000`` ...), ``day`` (0 ...), ``x1 ... x<features>`` and
    ``sales``. The features, each standardized over all rows: ``x1`` the log price
    (store-day), ``x2`` a promotion flag (store-day, 20% of days), ``x3`` a holiday flag
    (day, 3% of days), ``x4 ... x9`` Tuesday to Sunday, ``x10 ...`` yearly seasonality
    as sine/cosine pairs of 1, 2, ... cycles per 365 days, and any further ones standard
    normal store-day covariates (weather, competitors' prices). Sales are NB2 with mean
    exp(a_s + x · b_s) and precision `phi`: the store intercepts a_s around log(20) with sd
    0.5, and each store's slopes b_s around population slopes drawn from normal(0, 0.15),
    with sd 0.1. A share `closed_share` of each store's days are closed: ``sales`` is NaN
    there (stanbhm predicts those rows rather than fitting them). The last
    `short_stores` stores (default: 1 in 100, at least 1) are new: they have only their
    last `short_days` days, the cold-start case. Returns the data and the truth:
    ``intercept`` (per store), ``slopes`` (stores x features), ``population`` (the
    intercept's and slopes' population values), ``sd`` (per coefficient) and ``phi``.

    With ``stockouts > 0`` the shelves run out: each store-day is stocked to the
    ``1 - stockouts`` quantile of its demand distribution plus one unit (as a retailer
    stocks to a service level, from the true mean), so about a share `stockouts` of the
    days, at most, sell out. The sales are then ``min(demand, stock)``, with columns
    ``stock`` and ``stocked_out`` (True where demand reached the stock: the day's demand
    is only known to be at least its sales), and the truth holds ``demand``, every
    day's demand, closed days included. In brms's convention a right-censored count is
    known to be above its value, so a stocked-out day is right-censored at
    ``sales - 1``: ``at_least = sales - stocked_out`` with
    ``at_least | cens(stocked_out) ~ ...`` (True is 'right'). The default (0) makes the
    same data as before the parameter existed.
    """
    if features < 1 or stores < 1 or days < 1:
        raise ValueError("retail needs at least one store, one day and one feature")
    if not 0 <= closed_share < 1:
        raise ValueError(f"closed_share must be in [0, 1), not {closed_share}")
    if not 0 <= stockouts < 1:
        raise ValueError(f"stockouts must be in [0, 1), not {stockouts}")
    rng = np.random.default_rng(seed)
    short = max(1, stores // 100) if short_stores is None else short_stores
    store = np.repeat(np.arange(stores), days)
    day = np.tile(np.arange(days), stores)
    keep = (store < stores - short) | (day >= days - short_days)
    store, day = store[keep], day[keep]
    n = len(store)
    X = np.empty((n, features))
    columns = [
        lambda: rng.normal(0, 0.1, size=n),  # log price
        lambda: (rng.uniform(size=n) < 0.2).astype(float),  # promotion
        lambda: (rng.uniform(size=days) < 0.03).astype(float)[day],  # holiday
        *[lambda k=k: (day % 7 == k).astype(float) for k in range(1, 7)],  # Tue ... Sun
    ]
    for j in range(features):
        if j < len(columns):
            X[:, j] = columns[j]()
        elif j - len(columns) < 2 * 6:
            cycle, phase = divmod(j - len(columns), 2)
            angle = 2 * np.pi * (cycle + 1) * day / 365.0
            X[:, j] = np.sin(angle) if phase == 0 else np.cos(angle)
        else:
            X[:, j] = rng.normal(size=n)
    X -= X.mean(axis=0)
    spread = X.std(axis=0)
    X /= np.where(spread > 0, spread, 1.0)
    population = np.concatenate([[np.log(20.0)], rng.normal(0, 0.15, size=features)])
    sd = np.concatenate([[0.5], np.full(features, 0.1)])
    coef = population + rng.normal(size=(stores, features + 1)) * sd
    eta = coef[store, 0] + np.einsum("ij,ij->i", X, coef[store, 1:])
    mu = np.exp(eta)
    sales = rng.negative_binomial(phi, phi / (phi + mu)).astype(float)
    demand = sales.copy()
    closed = rng.uniform(size=n) < closed_share
    if stockouts > 0:
        from scipy import stats  # only here: importing scipy.stats takes a second

        stock = stats.nbinom.ppf(1 - stockouts, phi, phi / (phi + mu)) + 1
        stocked_out = demand >= stock
        sales = np.minimum(demand, stock)
    sales[closed] = np.nan
    width = len(str(stores - 1))
    labels = np.array([f"s{j:0{width}d}" for j in range(stores)])
    df = pd.DataFrame(X, columns=[f"x{j + 1}" for j in range(features)])
    df.insert(0, "day", day)
    df.insert(0, "store", labels[store])
    df["sales"] = sales
    truth = {"intercept": coef[:, 0], "slopes": coef[:, 1:], "population": population,
             "sd": sd, "phi": np.float64(phi)}
    if stockouts > 0:
        df["stock"] = stock.astype(np.int64)
        df["stocked_out"] = stocked_out & ~closed
        truth["demand"] = demand
    return df, truth


def retail_formula(features: int = 22) -> str:
    """The formula `retail` data are made for: every feature with a store-varying slope,
    uncorrelated (``||``), since 23 correlated effects would need a 23 x 23 correlation
    matrix per model that a thousand stores barely inform."""
    xs = [f"x{j + 1}" for j in range(features)]
    return f"sales ~ {' + '.join(xs)} + (1 + {' + '.join(xs)} || store)"


def survey(
    seed: int | np.random.Generator = 1,
    rows: int = 2000,
    states: int = 20,
    categories: int = 5,
    categorical: bool = False,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """A survey with an ordinal answer, for ``cumulative`` models (`survey_formula`):
    each respondent answers 1 to `categories` (a Likert item), by a cumulative logit
    with cutpoints ``cutpoints`` (evenly spread, -1.5 to 1.5 for five categories) less
    ``0.6 age - 0.4 female + 0.8 college`` and their state's effect (sd 0.5, one of
    `states`). ``age`` is standardized, ``female`` and ``college`` are 0 or 1, ``w`` is a
    sampling weight (mean 1, more weight for younger respondents, as for a sample that
    reached too few of them). ``categorical=True`` gives the answer as an ordered pandas
    Categorical of labels ``"c1"`` ... instead of integers. Returns the data and the
    truth (``cutpoints``, ``b`` for age, female, college, and ``state``)."""
    if categories < 2:
        raise ValueError(f"categories must be at least 2, not {categories}")
    rng = np.random.default_rng(seed)
    age = rng.normal(size=rows)
    female = rng.integers(0, 2, size=rows)
    college = (rng.uniform(size=rows) < 0.35).astype(int)
    state = rng.integers(0, states, size=rows)
    u_state = rng.normal(0, 0.5, size=states)
    b = np.array([0.6, -0.4, 0.8])
    cutpoints = np.linspace(-1.5, 1.5, categories - 1) * (categories - 1) / 4
    eta = b[0] * age + b[1] * female + b[2] * college + u_state[state]
    latent = eta + rng.logistic(size=rows)  # P(answer <= k) = inv_logit(cutpoint_k - eta)
    answer = 1 + np.searchsorted(cutpoints, latent)
    w = np.exp(-0.3 * age)
    df = pd.DataFrame({
        "age": age, "female": female, "college": college,
        "state": np.array([f"st{k:02d}" for k in range(states)])[state],
        "w": w / w.mean(),
    })
    if categorical:
        labels = [f"c{k}" for k in range(1, categories + 1)]
        df["answer"] = pd.Categorical.from_codes(answer - 1, categories=labels, ordered=True)
    else:
        df["answer"] = answer
    return df, {"cutpoints": cutpoints, "b": b, "state": u_state}


def survey_formula() -> str:
    """The formula `survey` data are made for (family ``cumulative``)."""
    return "answer ~ age + female + college + (1 | state)"
