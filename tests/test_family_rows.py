"""The family table's rows without compiling: links and their errors, the outcome checks
of the beta and cumulative families, the ordinal outcome's categories, the default
priors and bounds of the new auxiliary parameters, and what each rewrite says of the
new families. (Their log densities and recovery: tests/test_families.py.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
from stanbhm.errors import PlanError, SpecError
from stanbhm.families import LINKS, family


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 40
    out = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(list("abcd"), size=n)})
    out["yb"] = rng.integers(0, 2, size=n)
    out["yc"] = rng.poisson(1.0, size=n)
    out["p"] = rng.uniform(0.1, 0.9, size=n)
    out["o"] = rng.integers(1, 4, size=n)
    return out


def message(fn) -> str:
    with pytest.raises(SpecError) as info:
        fn()
    return str(info.value)


def test_a_wrong_link_names_the_family_and_its_links(df) -> None:
    assert message(lambda: sb.Model("yb ~ x", df, family="bernoulli", link="identity")) == (
        "link 'identity' is not available for the bernoulli family; its links: logit, "
        "probit, cloglog")
    assert message(lambda: sb.Model("yc ~ x", df, family="poisson", link="probit")) == (
        "link 'probit' is not available for the poisson family; its links: log")
    assert message(lambda: family("bernoulli", 3)) == (
        "link must be a string such as 'probit', not int")


def test_a_link_rewrites_the_row_through_its_inverse() -> None:
    probit = family("bernoulli", "probit")
    assert (probit.dist, probit.args, probit.rng, probit.mean) == (
        "bernoulli", ("Phi({eta})",), "bernoulli_rng(Phi({eta}))", "Phi({eta})")
    cloglog = family("binomial", "cloglog")
    assert cloglog.args == ("{trials}", "inv_cloglog({eta})")
    assert cloglog.mean == "to_vector({trials}) .* inv_cloglog({eta})"
    # Stan's kernels, the collapse and the conjugate marginals are the logit link's
    assert (cloglog.glm, cloglog.collapse, cloglog.conjugate_intercept) == (None, None, None)
    assert family("bernoulli", "logit") is sb.FAMILIES["bernoulli"]
    assert cloglog.title == "binomial (cloglog link)"
    # numpy's links invert each other
    p = np.linspace(0.05, 0.95, 7)
    for name in ("logit", "probit", "cloglog"):
        np.testing.assert_allclose(LINKS[name].mean(LINKS[name].link(p)), p)


def test_the_beta_outcome_lies_strictly_between_0_and_1(df) -> None:
    df.loc[[0, 1], "p"] = [0.0, 1.0]
    assert message(lambda: sb.Model("p ~ x", df, family="beta")) == (
        "response 'p' must hold values strictly between 0 and 1 for the beta family, but "
        "2 rows do not")


def test_an_ordinal_outcome_holds_integer_categories(df) -> None:
    df["o"] = df["o"].astype(float)
    df.loc[3, "o"] = 2.5
    assert message(lambda: sb.Model("o ~ x", df, family="cumulative")) == (
        "response 'o' must hold integer categories 1, 2, 3, ... for the cumulative family, "
        "but 1 row do not")
    df["o"] = pd.Categorical(df["x"] > 0)
    assert message(lambda: sb.Model("o ~ x", df, family="cumulative")) == (
        "response 'o' is an unordered pandas Categorical; the cumulative family needs its "
        "categories in order: make it ordered (series.cat.as_ordered(), or "
        "pd.Categorical(..., ordered=True)) or give integer categories 1, 2, 3, ...")
    df["o"] = np.where(df["x"] > 0, "high", "low")
    assert message(lambda: sb.Model("o ~ x", df, family="cumulative")) == (
        f"response 'o' has dtype {df['o'].dtype}; the cumulative family needs integer "
        "categories 1, 2, 3, ... or an ordered pandas Categorical")
    df["o"] = 1
    assert message(lambda: sb.Model("o ~ x", df, family="cumulative")) == (
        "response 'o' has one category; the cumulative family needs at least 2")


def test_the_cutpoints_are_the_intercepts(df) -> None:
    assert message(lambda: sb.Model("o ~ 0 + x", df, family="cumulative")) == (
        "the cumulative family's cutpoints are its intercepts: keep the intercept in the "
        "formula (no '0 +' or '- 1')")
    assert message(lambda: sb.Model("o ~ x", df, family="cumulative",
                                    priors={"Intercept": "uniform(-5, 5)"})).startswith(
        "prior 'Intercept' = 'uniform(-5, 5)' has support [-5, 5], but Intercept is unbounded")


def test_an_ordered_categorical_is_categories_1_to_k(df) -> None:
    labels = ["never", "sometimes", "often", "always"]  # "always" is never answered
    df["o"] = pd.Categorical.from_codes(df["o"] - 1, categories=labels, ordered=True)
    model = sb.Model("o ~ x + (1 | g)", df, family="cumulative")
    np.testing.assert_array_equal(model.stan_data()["y"], df["o"].cat.codes + 1)
    assert model.stan_data()["N_cat"] == 4
    assert model.program.schema.coords["cutpoint"] == [
        "never|sometimes", "sometimes|often", "often|always"]
    code = model.stan_code()
    assert "ordered[N_cat - 1] Intercept; // cutpoints" in code
    assert "  Intercept ~ student_t(3, 0, 2.5);" in code
    assert "y ~ ordered_logistic(eta, Intercept);" in code
    # integers: 1 to the largest
    plain = sb.Model("o ~ x", df.assign(o=df["o"].cat.codes + 1), family="cumulative")
    assert plain.stan_data()["N_cat"] == 3


def test_new_aux_parameters_have_brms_default_priors_and_their_bounds(df) -> None:
    zip_code = sb.Model("yc ~ x", df, family="zero_inflated_poisson").stan_code()
    assert "real<lower=0, upper=1> zi; // probability of an excess zero" in zip_code
    assert "  zi ~ beta(1, 1);" in zip_code
    hurdle = sb.Model("yc ~ x", df, family="hurdle_negbinomial").stan_code()
    assert "real<lower=0, upper=1> hu;" in hurdle and "  hu ~ beta(1, 1);" in hurdle
    assert "  phi ~ gamma(2, 0.1);" in hurdle
    beta = sb.Model("p ~ x", df, family="beta").stan_code()
    assert "real<lower=0> phi; // beta precision" in beta
    assert "  phi ~ gamma(0.01, 0.01);" in beta
    assert "y ~ beta_proportion(inv_logit(eta), phi);" in beta
    # a user's prior on the whole line keeps zi a probability
    given = sb.Model("yc ~ x", df, family="zero_inflated_poisson", priors={"zi": "normal(0, 1)"})
    assert "real<lower=0, upper=1> zi;" in given.stan_code()
    with pytest.raises(SpecError, match=r"puts no mass where zi can be \(between 0 and 1\)"):
        sb.Model("yc ~ x", df, family="zero_inflated_poisson", priors={"zi": "uniform(2, 3)"})


def test_the_rewrites_say_why_they_skip_the_new_families(df) -> None:
    code = sb.Model("yb ~ x + (1 | g)", df, family="bernoulli", link="probit").stan_code()
    assert ("collapse: not applied; the bernoulli (probit link) family has no exact collapse "
            "of counts") in code
    assert "glm: not used; the bernoulli (probit link) family has no GLM kernel in Stan" in code
    assert "y ~ bernoulli(Phi(eta));" in code
    cumulative = sb.Model("o ~ x + (1 | g)", df, family="cumulative").stan_code()
    assert "no centered term takes them over" in cumulative
    for fam, y in (("cumulative", "o"), ("zero_inflated_poisson", "yc")):
        with pytest.raises(PlanError, match=f"the {fam} family's density is not one of "
                                            "Stan's own"):
            sb.Model(f"{y} ~ x + (1 | g)", df, family=fam, rewrites={"g": "laplace"})
    # beta-binomial is the logit link's
    with pytest.raises(PlanError, match=r"not to the bernoulli \(probit link\) family"):
        sb.Model("yb ~ 1 + (1 | g)", df, family="bernoulli", link="probit",
                 rewrites={"g": "beta_binomial"})


def test_an_ordinal_model_is_relative_to_its_cutpoints_everywhere(df) -> None:
    """eta has no intercept: the fitted rows, generated quantities and new rows all
    measure it against the cutpoints at the predictors' means."""
    df["o"] = df["o"].astype(float)
    df.loc[5, "o"] = np.nan
    model = sb.Model("o ~ x + (1 | g)", df, family="cumulative", parameterization="centered")
    code = model.stan_code()
    assert "vector[N_obs] eta = Xc * b; // linear predictor" in code
    assert "vector[N] eta = X * b - dot_product(means_X, b); // linear predictor" in code
    assert "vector[N_new] eta = X_new * b - dot_product(means_X, b);" in code
    assert "vector[N_cat - 1] b_Intercept = Intercept + dot_product(means_X, b);" in code
    assert "r_g ~ normal(0, sd_g);" in code  # a group intercept is centered at 0
    assert "coef_g" not in code
    assert "mu_new = ordered_logistic_mean(eta, Intercept);" in code
