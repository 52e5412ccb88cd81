"""Priors: parsed objects, bounds against the parameter, data-scaled defaults, statements."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
from stanbhm.declarations import Declaration
from stanbhm.errors import SpecError
from stanbhm.priors import Bounds, Prior, parse_prior, prior_statement


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 40
    return pd.DataFrame({
        "y": rng.normal(5, 2, size=n),
        "x": rng.normal(10, 3, size=n),
        "z": rng.normal(0, 0.5, size=n),
        "c": rng.poisson(3, size=n),
        "g": rng.choice(list("abcd"), size=n),
    })


def code(formula: str, data: pd.DataFrame, **kw) -> str:
    return sb.Model(formula, data, **kw).stan_code()


def test_parsed_prior_keeps_the_users_numbers_and_knows_its_support() -> None:
    prior = parse_prior("sd", " uniform( 0 , 10 ) ", "sd")
    assert prior == Prior("uniform", ("0", "10"))
    assert str(prior) == "uniform(0, 10)" and prior.support == (0.0, 10.0)
    assert parse_prior("b", "lognormal(0, 1)", "b").support == (0.0, np.inf)
    assert str(Bounds(0.0, 10.0)) == "<lower=0, upper=10>" and str(Bounds()) == ""


def test_uniform_prior_on_sd_gives_matching_bounds(df) -> None:
    text = code("y ~ x + (1 | g)", df, priors={"sd": "uniform(0, 10)"})
    assert "  real<lower=0, upper=10> sd_g; // sd of the effects of g\n" in text
    assert "  sd_g ~ uniform(0, 10);\n" in text
    text = code("y ~ x + (1 + x | g)", df, priors={"sd_g": "uniform(0, 10)"})
    assert "  vector<lower=0, upper=10>[2] sd_g; // sds of the effects of g\n" in text


def test_positive_prior_on_intercept_declares_the_bound(df) -> None:
    text = code("y ~ x", df, priors={"Intercept": "lognormal(0, 1)"})
    assert "  real<lower=0> Intercept; // intercept at the means of the predictors\n" in text


def test_bounded_prior_on_a_coefficient_is_refused(df) -> None:
    with pytest.raises(SpecError) as err:
        sb.Model("y ~ x", df, priors={"b_x": "lognormal(0, 1)"})
    assert str(err.value) == (
        "prior 'b_x' = 'lognormal(0, 1)' has support [0, inf], but a coefficient is unbounded "
        "and stanbhm does not bound it; use a prior on the whole real line such as normal()"
    )


def test_prior_outside_the_parameters_support_is_refused(df) -> None:
    with pytest.raises(SpecError) as err:
        sb.Model("y ~ x", df, family="student_t", priors={"nu": "uniform(0, 0.5)"})
    assert str(err.value) == (
        "prior 'nu' = 'uniform(0, 0.5)' puts no mass where nu can be (at or above 1)"
    )


def test_horseshoe_with_a_coefficient_prior_is_refused(df) -> None:
    with pytest.raises(SpecError) as err:
        sb.Model("y ~ x + z", df, priors={"b": "horseshoe()", "b_x": "normal(0, 1)"})
    assert str(err.value) == (
        "prior 'b_x' cannot be combined with the horseshoe on 'b', which sets every "
        "coefficient's prior; drop 'b_x' or the horseshoe"
    )


def test_slope_sd_is_scaled_like_its_coefficient(df) -> None:
    # sd(y) ~ 2, sd(x) ~ 3: b_x and the slope's sd share the scale 2.5 sd(y) / sd(x).
    model = sb.Model("y ~ x + (1 + x | g)", df)
    sy, sx = df["y"].std(), df["x"].std()
    assert "  b ~ normal(0, prior_scale_b);\n" in model.stan_code()
    assert "  sd_g ~ student_t(3, 0, prior_scale_sd_g);\n" in model.stan_code()
    data = model.stan_data()
    assert data["prior_scale_b"] == [float(f"{2.5 * sy / sx:.3g}")]
    assert data["prior_scale_sd_g"] == [float(f"{2.5 * sy:.3g}"), float(f"{2.5 * sy / sx:.3g}")]
    assert f"//   b_x ~ normal(0, {2.5 * sy / sx:.3g})\n" in model.stan_code()  # the header


def test_count_intercept_prior_sits_at_the_link_of_the_mean(df) -> None:
    data = sb.Model("c ~ z", df, family="poisson").stan_data()
    assert data["prior_location_Intercept"] == float(f"{np.log(df['c'].mean()):.3g}")
    assert data["prior_scale_Intercept"] == 2.5
    yb = (df["c"] > 2).astype(int)
    p = yb.mean()
    model = sb.Model("yb ~ z", df.assign(yb=yb), family="bernoulli")
    assert model.stan_data()["prior_location_Intercept"] == float(f"{np.log(p / (1 - p)):.3g}")
    assert ("  Intercept ~ student_t(3, prior_location_Intercept, prior_scale_Intercept);\n"
            in model.stan_code())


def test_default_aux_priors_are_not_flat_gammas(df) -> None:
    text = code("c ~ z", df, family="negbinomial")
    assert "  phi ~ gamma(2, 0.1);\n" in text and "0.01" not in text


def test_coefficient_priors_are_one_vectorized_statement(df) -> None:
    model = sb.Model("y ~ x + z", df)
    text = model.stan_code()
    sy = df["y"].std()
    scales = [2.5 * sy / df[c].std() for c in ("x", "z")]
    assert "  b ~ normal(0, prior_scale_b);\n" in text
    assert model.stan_data()["prior_scale_b"] == [float(f"{s:.3g}") for s in scales]
    assert "b[1] ~" not in text and "b[2] ~" not in text
    assert "  vector<lower=0>[K] prior_scale_b; // scale of b's prior, from the data\n" in text


def test_mixed_distributions_make_one_prior_function(df) -> None:
    text = code("y ~ x + z", df, priors={"b": "normal(0, 2)", "b_z": "student_t(3, 0, 1)"})
    assert (
        "functions {\n"
        "  // The prior of b, one line per element: their priors differ.\n"
        "  real b_prior_lpdf(vector b) {\n"
        "    real lp = normal_lpdf(b[1] | 0, 2); // b_x\n"
        "    lp += student_t_lpdf(b[2] | 3, 0, 1); // b_z\n"
        "    return lp;\n"
        "  }\n"
        "}\n"
    ) in text
    assert "  b ~ b_prior();\n" in text


def test_long_vector_literal_becomes_a_function() -> None:
    priors = [Prior("normal", ("0", f"{1.2345 + k:.5g}")) for k in range(10)]
    statement = prior_statement("b", priors, [f"b_x{k}" for k in range(10)])
    assert statement.rhs is None and len(statement.lines) == 10
    short = prior_statement("b", priors[:2], ["b_x0", "b_x1"])
    assert short.rhs == "normal(0, [1.2345, 2.2345]')"


def test_data_derived_arguments_are_data() -> None:
    """Defaults set from the data name data entries; the user's numbers stay literal,
    and one vectorized statement covers a vector whose elements share a distribution."""
    scale = [Prior("normal", ("0", "2.5"), from_data=(1,)), Prior("normal", ("0", "1"))]
    statement = prior_statement("b", scale, ["b_x", "b_z"], "K")
    assert statement.rhs == "normal(0, prior_scale_b)"
    assert statement.data_values() == {"prior_scale_b": [2.5, 1.0]}
    assert [d.declaration for d in statement.data] == [Declaration(
        "data", "vector<lower=0>[K]", "prior_scale_b", "scale of b's prior, from the data")]
    scalar = prior_statement("Intercept", [Prior("student_t", ("3", "7.5", "26.1"),
                                                  from_data=(1, 2))])
    assert scalar.rhs == "student_t(3, prior_location_Intercept, prior_scale_Intercept)"
    assert scalar.data_values() == {"prior_location_Intercept": 7.5,
                                    "prior_scale_Intercept": 26.1}
    mixed = prior_statement("b", [Prior("cauchy", ("0", "1")), scale[0]], ["b_x", "b_z"], "K")
    assert mixed.lines == (("cauchy_lpdf(b[1] | 0, 1)", "b_x"),
                           ("normal_lpdf(b[2] | 0, prior_scale_b[1])", "b_z"))
    assert mixed.data_values() == {"prior_scale_b": [2.5]}


def test_two_terms_on_one_factor_have_their_own_prior_keys() -> None:
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"y": rng.normal(size=50), "age": rng.normal(40, 10, size=50),
                         "state": rng.choice(list("abcde"), size=50)})
    model = sb.Model("y ~ age + (1 | state) + (age - 1 | state)", data,
                     priors={"sd_state_age": "exponential(3)"})
    text = model.stan_code()
    assert "  sd_state_age ~ exponential(3);\n" in text
    assert "  sd_state ~ student_t(3, 0, " in text
    with pytest.raises(SpecError, match="valid keys for this model: b, b_age, Intercept, sd, "
                                        "sd_state, sd_state_age, sigma"):
        sb.Model("y ~ age + (1 | state) + (age - 1 | state)", data,
                 priors={"sd_state_2": "exponential(3)"})


def test_a_coefficient_has_one_spelling_and_brms_names_are_understood():
    """The header, the prior keys and the fit's labels say ``b_trt[T.b]``; brms's
    ``b_trtb`` and ``b_scaleage`` set the same coefficients."""
    df = pd.DataFrame({"y": np.arange(10.0), "trt": list("ab") * 5, "age": np.arange(10)})
    model = sb.Model("y ~ trt + scale(age)", df,
                     priors={"b_trtb": "normal(0, 1)", "b_scaleage": "normal(0, 2)"})
    code = model.stan_code()
    assert "//   b_trt[T.b] ~ normal(0, 1)\n//   b_scale(age) ~ normal(0, 2)\n" in code
    assert model.program.schema.coords["coef"] == ["trt[T.b]", "scale(age)"]
    same = sb.Model("y ~ trt + scale(age)", df,
                    priors={"b_trt[T.b]": "normal(0, 1)", "b_scale(age)": "normal(0, 2)"})
    assert same.stan_code() == code
    with pytest.raises(sb.SpecError, match=r"priors 'b_trt\[T.b\]' and 'b_trtb' set the same "):
        sb.Model("y ~ trt", df, priors={"b_trt[T.b]": "normal(0, 1)", "b_trtb": "normal(0, 2)"})


@pytest.mark.parametrize(("key", "value", "message"), [
    ("b", "normal(0, -1)", "prior 'b' = 'normal(0, -1)': normal's sigma (argument 2) must be "
                           "positive, not -1"),
    ("sigma", "exponential(-1)", "prior 'sigma' = 'exponential(-1)': exponential's beta "
                                 "(argument 1) must be positive, not -1"),
    ("sd", "student_t(0, 0, 2.5)", "prior 'sd' = 'student_t(0, 0, 2.5)': student_t's nu "
                                   "(argument 1) must be positive, not 0"),
    ("cor", "lkj_corr_cholesky(0)", "prior 'cor' = 'lkj_corr_cholesky(0)': "
                                    "lkj_corr_cholesky's eta (argument 1) must be positive, "
                                    "not 0"),
])
def test_a_prior_argument_out_of_its_range_is_refused(key, value, message):
    cls = key if key in ("b", "sd", "cor") else "sigma"
    with pytest.raises(SpecError) as error:
        parse_prior(key, value, cls)
    assert str(error.value) == message


def test_the_horseshoe_explains_its_slab_and_its_global_scale(df) -> None:
    text = code("y ~ x + z", df, priors={"b": "horseshoe(scale_slab=3)"})
    assert ("//     its global scale is scale_global times sigma (hs_global ~ student_t(1, 0, "
            "1 * sigma)), as in brms\n") in text
    assert ("    // the slab's variance c^2 is scale_slab^2 (9) times hs_slab\n"
            "    hs_scale ./= sqrt(1 + square(hs_scale) / (9 * hs_slab));\n") in text
    bernoulli = code("yb ~ x + z", df.assign(yb=(df["y"] > 0).astype(int)),
                     family="bernoulli", priors={"b": "horseshoe()"})
    assert "times sigma" not in bernoulli
