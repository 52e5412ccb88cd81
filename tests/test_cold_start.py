"""Cold start: a store with a week of data borrows strength from the others.

In the retail data the last stores are new (7 days each). With an intercept and six
slopes (price, promotion, holiday, three weekdays) a week says little about each, so the
hierarchical fit, which borrows the other stores' slopes, lands nearer the true
coefficients than a fit of the store's week alone.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import stanbhm as sb
from stanbhm.datasets import retail, retail_formula


@pytest.mark.slow
def test_a_new_store_borrows_strength_from_the_others() -> None:
    # 60 days of the 36 old stores and 2 x (300 + 200) iterations halve the pooled fit's
    # CPU against 120 days and 2 x (500 + 300) (its first warmup iterations, at tree depth
    # up to 10, cost the same), and the test passes at least as often: over data seeds
    # 1-10 the hierarchical error was 0.06-0.09 and its ratio to the own week's 0.26-0.55
    # (at 120 days 0.07-0.12 and 0.32-0.73, seed 2 failing). Seed 5 is that sweep's
    # median (0.38-0.40 over fit seeds; seed 8, used at 120 days, gives 0.55-0.58 at 60).
    df, truth = retail(seed=5, stores=40, days=60, features=6, short_stores=4,
                       closed_share=0.0)
    new = [f"s{j}" for j in range(36, 40)]
    pooled = sb.Model(retail_formula(6), df, family="negbinomial")
    fit = pooled.fit(chains=2, iter_warmup=300, iter_sampling=200, seed=2, show_progress=False,
                     advice=False)
    coef = fit.to_arviz().posterior["coef_store"]
    alone = {}
    for store in new:
        rows = df[df["store"] == store]
        with warnings.catch_warnings():  # in a week, a flag may never change, and its
            warnings.simplefilter("ignore", UserWarning)  # column is dropped as aliased
            own = sb.Model(retail_formula(6).split(" + (")[0], rows, family="negbinomial")
        post = own.fit(chains=2, iter_warmup=500, iter_sampling=300, seed=2,
                       show_progress=False, advice=False).to_arviz().posterior
        # a dropped column's coefficient is taken at 0, where its prior was centered
        b = dict(zip(own.spec.fixed.names, post["b"].mean(("chain", "draw")).values,
                     strict=True))
        alone[store] = np.array([float(post["b_Intercept"].mean()),
                                 *(b.get(name, 0.0) for name in pooled.spec.fixed.names)])
    # coef_store's intercept is at the means of x; the generator's x have mean 0 over all
    # rows, and so, nearly, over the pooled fit's rows.
    errors = {"hierarchical": [], "own week": []}
    for store in new:
        j = int(store[1:])
        true = np.array([truth["intercept"][j], *truth["slopes"][j]])
        hier = coef.sel(store=store).mean(("chain", "draw")).values
        errors["hierarchical"].append(np.abs(hier - true).mean())
        errors["own week"].append(np.abs(alone[store] - true).mean())
    mean = {k: float(np.mean(v)) for k, v in errors.items()}
    print(f"mean absolute error of the new stores' coefficients: {mean}")
    assert mean["hierarchical"] < 0.6 * mean["own week"]
    assert mean["hierarchical"] < 0.2
