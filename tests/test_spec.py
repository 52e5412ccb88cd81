"""Tests for the spec stage (stanbhm.spec): formula + data + family + priors -> ModelSpec.

This stage is where user data is checked, so most tests pin an exact error message:
the message is the user interface (it must name the column, term, family or prior at
fault). The rest checks shapes, dtypes and values of the arrays later stages rely on.
All data is small and synthetic except eight schools (the ``eight_schools_df`` fixture
of conftest.py), so the module runs in seconds.
"""

from __future__ import annotations

import re
import warnings

import formulaic
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stanbhm as sb
from stanbhm.errors import SpecError
from stanbhm.families import FAMILIES
from stanbhm.formula import Formula, FormulaError
from stanbhm.spec import (
    FixedEffects,
    GroupEffects,
    ModelSpec,
    _all_finite,
    _design_columns,
    aliased_columns,
    build_spec,
)

IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# The fixture's z is 10 x, so aliased; a z for tests that need it in the model.
Z_NOT_ALIASED = [1.5, 2.0, 4.0, 3.0, 6.5, 5.0]


@pytest.fixture
def df() -> pd.DataFrame:
    """Six rows covering numeric, text, grouping and count columns."""
    return pd.DataFrame(
        {
            "y": [1.0, 0.0, 1.0, 1.0, 0.0, 1.0],
            "x": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            "s": list("abcabc"),
            "g": list("ppqqrr"),
            "n": [2, 2, 3, 3, 4, 4],
            "z": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )


def error(formula: str, data: pd.DataFrame, **kwargs: object) -> str:
    with pytest.raises(SpecError) as info:
        build_spec(formula, data, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


AVAILABLE = "available columns: y, x, s, g, n, z"


# --------------------------------------------------------------------------- eight schools


def test_eight_schools(eight_schools_df: pd.DataFrame) -> None:
    data = eight_schools_df
    spec = build_spec("y | se(sigma) ~ 1 + (1 | school)", data)
    assert isinstance(spec, ModelSpec)
    assert spec.family == "gaussian"
    assert spec.response == "y"
    assert spec.n == spec.n_obs == 8
    np.testing.assert_array_equal(spec.y, data["y"].to_numpy(dtype=float))
    assert spec.se is not None
    np.testing.assert_array_equal(spec.se, data["sigma"].to_numpy(dtype=float))
    assert spec.se.dtype == np.float64
    assert spec.trials is None and spec.offset is None
    assert spec.fixed.intercept
    assert spec.fixed.names == () and spec.fixed.X.shape == (8, 0)
    (school,) = spec.groups
    assert isinstance(school, GroupEffects)
    assert school.name == school.stan_name == "school"
    assert school.levels == tuple("ABCDEFGH")
    assert school.index.dtype == np.int64
    np.testing.assert_array_equal(school.index, np.arange(1, 9))
    assert school.effect_names == school.effect_stan_names == ("Intercept",)
    np.testing.assert_array_equal(school.Z, np.ones((8, 1)))
    assert school.correlated
    assert spec.data_summary == pytest.approx(
        {"mean": data["y"].mean(), "sd": data["y"].std(ddof=1)}
    )
    assert spec.priors == {}


def test_eight_schools_priors_and_no_sigma(eight_schools_df: pd.DataFrame) -> None:
    data = eight_schools_df
    formula = "y | se(sigma) ~ 1 + (1 | school)"
    spec = build_spec(formula, data, priors={"Intercept": "normal(0, 5)", "sd": "cauchy(0, 5)"})
    assert str(spec.prior("Intercept")) == "normal(0, 5)"
    assert str(spec.prior("sd", "school")) == "cauchy(0, 5)"
    # se() replaces the residual scale, so there is no sigma to put a prior on.
    assert error(formula, data, priors={"sigma": "exponential(1)"}) == (
        "unknown prior 'sigma'; valid keys for this model: Intercept, sd, sd_school"
    )


# --------------------------------------------------------------------------- shapes, dtypes


def test_shapes_and_dtypes(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ x + (1 + x | g)", df)
    assert isinstance(spec.fixed, FixedEffects)
    assert spec.y.dtype == np.float64 and spec.y.shape == (6,)
    assert spec.observed.dtype == np.bool_ and spec.observed.all()
    assert spec.fixed.X.dtype == np.float64 and spec.fixed.X.shape == (6, 1)
    assert spec.fixed.names == ("x",) and spec.fixed.stan_names == ("b_x",)
    assert spec.fixed.p == 1
    (g,) = spec.groups
    assert g.Z.dtype == np.float64 and g.Z.shape == (6, 2)
    assert g.index.shape == (6,) and g.index.dtype == np.int64
    assert g.k == 2 and g.n_levels == 3
    np.testing.assert_array_equal(g.Z[:, 0], 1.0)
    np.testing.assert_array_equal(g.Z[:, 1], df["x"])
    np.testing.assert_array_equal(g.index, [1, 1, 2, 2, 3, 3])
    assert g.levels == ("p", "q", "r")


def test_arrays_are_read_only_copies(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ x + (1 | g)", df)
    for array in (spec.y, spec.observed, spec.fixed.X, spec.groups[0].index, spec.groups[0].Z):
        assert not array.flags.writeable
    df.loc[0, "y"] = 99.0
    assert spec.y[0] == 1.0


def test_formula_object_or_string(df: pd.DataFrame) -> None:
    formula = Formula("y ~ x")
    assert build_spec(formula, df).formula is formula
    assert build_spec("y ~ x", df).formula == formula


def test_bad_formula_string_raises_formula_error(df: pd.DataFrame) -> None:
    with pytest.raises(FormulaError):
        build_spec("y ~ x +", df)


def test_data_must_be_a_dataframe() -> None:
    with pytest.raises(TypeError, match="data must be a pandas DataFrame, not dict"):
        build_spec("y ~ x", {"y": [1.0], "x": [2.0]})  # type: ignore[arg-type]


def test_empty_data(df: pd.DataFrame) -> None:
    assert error("y ~ x", df.iloc[:0]) == "data has no rows"


def test_non_string_column_names_are_converted() -> None:
    data = pd.DataFrame({"y": [1.0, 2.0, 3.0], 0: [1.0, 2.0, 4.0]})
    spec = build_spec("y ~ `0`", data)
    assert spec.fixed.names == ("0",)
    assert spec.fixed.stan_names == ("b_0",)


def test_index_of_data_is_ignored(df: pd.DataFrame) -> None:
    shuffled = df.set_index(pd.Index([5, 5, 3, 2, 1, 0]))
    spec = build_spec("y ~ x + (1 | g)", shuffled)
    np.testing.assert_array_equal(spec.fixed.X[:, 0], df["x"])


# --------------------------------------------------------------------------- family


def test_unknown_family(df: pd.DataFrame) -> None:
    assert error("y ~ x", df, family="Gaussian") == (
        "unknown family 'Gaussian'; choose one of: "
        "gaussian, student_t, bernoulli, binomial, poisson, negbinomial, lognormal, gamma, "
        "zero_inflated_poisson, zero_inflated_negbinomial, hurdle_poisson, "
        "hurdle_negbinomial, beta, cumulative"
    )


@pytest.mark.parametrize("family", ["gaussian", "student_t", "bernoulli", "poisson"])
def test_families_accept_valid_data(df: pd.DataFrame, family: str) -> None:
    assert family in FAMILIES
    assert build_spec("y ~ x", df, family=family).family == family


# --------------------------------------------------------------------------- missing columns


@pytest.mark.parametrize(
    ("formula", "column", "role"),
    [
        ("y ~ w", "w", "fixed effects"),
        ("y ~ x + log(w)", "w", "fixed effects"),
        ("y ~ x * w", "w", "fixed effects"),
        ("y ~ C(w)", "w", "fixed effects"),
        ("y ~ `my w`", "my w", "fixed effects"),
        ("w ~ x", "w", "the response"),
        ("log(w) ~ x", "w", "the response"),
        ("y | se(w) ~ x", "w", "se()"),
        ("y ~ x + offset(log(w))", "w", "offset()"),
        ("y ~ x + offset(w)", "w", "offset()"),
        ("y ~ x + (1 | h)", "h", "group term (1 | h)"),
        ("y ~ x + (1 | g:h)", "h", "group term (1 | g:h)"),
        ("y ~ x + (1 + w | g)", "w", "group term (1 + w | g)"),
        ("y ~ x + (1 + log(w) || g)", "w", "group term (1 + log(w) || g)"),
    ],
)
def test_missing_column(df: pd.DataFrame, formula: str, column: str, role: str) -> None:
    assert error(formula, df) == (
        f"column '{column}' (used in {role}) is not in the data; {AVAILABLE}"
    )


def test_missing_trials_column(df: pd.DataFrame) -> None:
    assert error("y | trials(w) ~ x", df, family="binomial") == (
        f"column 'w' (used in trials()) is not in the data; {AVAILABLE}"
    )


def test_missing_column_message_of_the_issue() -> None:
    data = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "y": [0.0, 1.0]})
    assert error("y ~ x", data) == (
        "column 'x' (used in fixed effects) is not in the data; available columns: a, b, y"
    )


def test_long_column_listing_is_elided() -> None:
    data = pd.DataFrame({f"c{i}": [1.0, 2.0] for i in range(25)} | {"y": [0.0, 1.0]})
    message = error("y ~ x", data)
    assert message.endswith("c18, c19, ... (6 more)")


def test_unknown_function(df: pd.DataFrame) -> None:
    message = error("y ~ foo(x)", df)
    assert message.startswith("cannot evaluate fixed effects '1 + foo(x)': ")
    assert "foo" in message.split(": ", 1)[1]


# --------------------------------------------------------------------------- fixed effects


def test_interactions_and_transforms(df: pd.DataFrame) -> None:
    df = df.assign(z=Z_NOT_ALIASED)
    spec = build_spec("y ~ x*z + log(z) + scale(n)", df)
    assert spec.fixed.names == ("x", "z", "log(z)", "scale(n)", "x:z")
    assert spec.fixed.stan_names == ("b_x", "b_z", "b_log_z", "b_scale_n", "b_x_z")
    np.testing.assert_allclose(spec.fixed.X[:, 4], df["x"] * df["z"])
    np.testing.assert_allclose(spec.fixed.X[:, 2], np.log(df["z"]))
    np.testing.assert_allclose(spec.fixed.X[:, 3].mean(), 0.0, atol=1e-12)


def test_no_intercept(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ 0 + x", df)
    assert not spec.fixed.intercept
    assert spec.fixed.names == ("x",)
    np.testing.assert_array_equal(spec.fixed.X[:, 0], df["x"])


def test_only_group_effects(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ 0 + (1 | g)", df)
    assert not spec.fixed.intercept
    assert spec.fixed.X.shape == (6, 0)


def test_categorical_fixed_effect(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ C(g) + x", df)
    assert spec.fixed.names == ("C(g)[T.q]", "C(g)[T.r]", "x")
    assert spec.fixed.stan_names == ("b_C_g_T_q", "b_C_g_T_r", "b_x")
    np.testing.assert_array_equal(spec.fixed.X[:, 0], [0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(spec.fixed.X[:, 1], [0, 0, 0, 0, 1, 1])
    # A text column in the fixed effects is dummy-coded as well.
    assert build_spec("y ~ s", df).fixed.names == ("s[T.b]", "s[T.c]")
    # Without an intercept the factor gets one column per level.
    assert build_spec("y ~ 0 + C(g)", df).fixed.names == ("C(g)[p]", "C(g)[q]", "C(g)[r]")


def test_new_data_is_encoded_like_the_training_data(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ C(g) + scale(x)", df)
    new = pd.DataFrame({"g": ["r"], "x": [df["x"].mean()]})
    np.testing.assert_allclose(spec.fixed.design(new), [[0.0, 1.0, 0.0]], atol=1e-12)


def test_new_data_missing_a_column(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ x", df)
    with pytest.raises(SpecError, match="cannot encode new data for the fixed effects"):
        spec.fixed.design(pd.DataFrame({"z": [1.0]}))


def test_duplicate_stan_names_are_numbered() -> None:
    data = pd.DataFrame({"y": [1.0, 2.0, 3.0], "a b": [1.0, 2.0, 4.0], "a_b": [3.0, 1.0, 2.0]})
    spec = build_spec("y ~ `a b` + a_b", data)
    assert spec.fixed.stan_names == ("b_a_b", "b_a_b_2")


# --------------------------------------------------------------------------- NaN and inf


def test_nan_in_fixed_effect_column(df: pd.DataFrame) -> None:
    df.loc[[0, 2, 4], "x"] = [np.nan, np.inf, -np.inf]
    message = "column 'x' has 3 rows with NaN or infinite values; remove or impute them"
    assert error("y ~ x", df) == message
    assert error("y ~ log(x)", df) == message
    assert error("y ~ 1 + (0 + x | g)", df) == message


def test_missing_text_in_categorical_fixed_effect(df: pd.DataFrame) -> None:
    # formulaic would silently code a missing level as the reference level.
    df.loc[1, "s"] = None
    assert error("y ~ C(s)", df) == (
        "column 's' has 1 row with NaN or infinite values; remove or impute them"
    )


def test_transform_creating_infinities(df: pd.DataFrame) -> None:
    assert error("y ~ log(z - 1)", df) == (
        "column 'log(z - 1)' has 1 row with NaN or infinite values; remove or impute them"
    )


def test_nan_in_grouping_factor(df: pd.DataFrame) -> None:
    df.loc[[1, 3], "g"] = None
    assert error("y ~ x + (1 | g)", df) == (
        "column 'g' has 2 rows with NaN or infinite values; remove or impute them"
    )


def test_nan_in_se(df: pd.DataFrame) -> None:
    df.loc[0, "z"] = np.nan
    assert error("y | se(z) ~ x", df) == (
        "column 'z' has 1 row with NaN or infinite values; remove or impute them"
    )


def test_nan_in_trials(df: pd.DataFrame) -> None:
    df["n"] = df["n"].astype(float)
    df.loc[0, "n"] = np.nan
    assert error("y | trials(n) ~ x", df, family="binomial") == (
        "column 'n' has 1 row with NaN or infinite values; remove or impute them"
    )


def test_nan_in_offset(df: pd.DataFrame) -> None:
    df.loc[[0, 1], "z"] = np.nan
    assert error("y ~ x + offset(z)", df) == (
        "column 'z' has 2 rows with NaN or infinite values; remove or impute them"
    )
    assert error("y ~ x + offset(log(z))", df) == (
        "column 'z' has 2 rows with NaN or infinite values; remove or impute them"
    )


def test_offset_expression_creating_infinities(df: pd.DataFrame) -> None:
    assert error("y ~ x + offset(log(z - 1))", df) == (
        "offset 'log(z - 1)' has 1 row with NaN or infinite values; remove or impute them"
    )


def test_offset_values(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ x + offset(log(z))", df)
    assert spec.offset is not None
    np.testing.assert_allclose(spec.offset, np.log(df["z"]))


# --------------------------------------------------------------------------- outcome


def test_missing_outcome_rows_are_kept(df: pd.DataFrame) -> None:
    df.loc[[1, 4], "y"] = np.nan
    spec = build_spec("y ~ x + (1 | g)", df)
    assert spec.n == 6 and spec.n_obs == 4
    np.testing.assert_array_equal(spec.observed, [True, False, True, True, False, True])
    assert np.isnan(spec.y[[1, 4]]).all()
    assert spec.fixed.X.shape == (6, 1)
    assert spec.groups[0].index.shape == (6,)
    assert spec.data_summary == pytest.approx({"mean": 1.0, "sd": 0.0})


def test_missing_outcome_with_nullable_dtype() -> None:
    data = pd.DataFrame({"y": pd.array([1, None, 3], dtype="Int64"), "x": [1.0, 2.0, 3.0]})
    spec = build_spec("y ~ x", data, family="poisson")
    np.testing.assert_array_equal(spec.observed, [True, False, True])


def test_infinite_outcome(df: pd.DataFrame) -> None:
    df.loc[2, "y"] = np.inf
    assert error("y ~ x", df) == (
        "response 'y' has 1 row with infinite values; use NaN for outcomes to be predicted"
    )


def test_all_outcomes_missing(df: pd.DataFrame) -> None:
    assert error("y ~ x", df.assign(y=np.nan)) == ("response 'y' has no observed (non-NaN) values")


def test_text_outcome(df: pd.DataFrame) -> None:
    assert error("s ~ x", df) == "response 's' must be numeric, but column 's' has dtype str"


def test_response_expression(df: pd.DataFrame) -> None:
    spec = build_spec("log(z) ~ x", df)
    assert spec.response == "log(z)"
    np.testing.assert_allclose(spec.y, np.log(df["z"]))


def test_count_families_reject_negative_or_fractional_outcomes(df: pd.DataFrame) -> None:
    df.loc[[0, 1], "y"] = [-1.0, 0.5]
    for family in ("poisson", "negbinomial"):
        assert error("y ~ x", df, family=family) == (
            f"response 'y' must hold non-negative integer counts for the {family} family, "
            "but 2 rows do not"
        )
    assert error("y | trials(n) ~ x", df, family="binomial") == (
        "response 'y' must hold non-negative integer counts for the binomial family, "
        "but 2 rows do not"
    )


def test_count_check_ignores_missing_outcomes(df: pd.DataFrame) -> None:
    df.loc[0, "y"] = np.nan
    assert build_spec("y ~ x", df, family="poisson").n_obs == 5


def test_bernoulli_outcome(df: pd.DataFrame) -> None:
    df.loc[[0, 3], "y"] = [2.0, -1.0]
    assert error("y ~ x", df, family="bernoulli") == (
        "response 'y' must hold 0 or 1 for the bernoulli family, but 2 rows do not"
    )


def test_bernoulli_accepts_booleans(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ x", df.assign(y=df["y"] == 1), family="bernoulli")
    np.testing.assert_array_equal(spec.y, df["y"])


def test_binomial(df: pd.DataFrame) -> None:
    spec = build_spec("y | trials(n) ~ x", df, family="binomial")
    assert spec.trials is not None
    assert spec.trials.dtype == np.int64
    np.testing.assert_array_equal(spec.trials, df["n"])


def test_binomial_needs_trials(df: pd.DataFrame) -> None:
    assert error("y ~ x", df, family="binomial") == (
        "the binomial family needs the number of trials: write the response as "
        "'y | trials(n)' with n the column of trial counts"
    )


def test_trials_must_be_non_negative_integers(df: pd.DataFrame) -> None:
    df["n"] = [2.5, 2.0, -3.0, 3.0, 4.0, 4.0]
    assert error("y | trials(n) ~ x", df, family="binomial") == (
        "trials 'n' must hold non-negative integers, but 2 rows do not"
    )


def test_successes_cannot_exceed_trials(df: pd.DataFrame) -> None:
    df["y"] = [3.0, 0.0, 1.0, 4.0, 0.0, 1.0]
    assert error("y | trials(n) ~ x", df, family="binomial") == (
        "response 'y' is larger than trials 'n' in 2 rows; successes cannot exceed trials"
    )


def test_trials_only_with_binomial(df: pd.DataFrame) -> None:
    assert error("y | trials(n) ~ x", df, family="poisson") == (
        "trials() can only be used with the binomial family, not 'poisson'"
    )


def test_se_only_with_gaussian(df: pd.DataFrame) -> None:
    assert error("y | se(z) ~ x", df, family="poisson") == (
        "se() can only be used with the gaussian family, not 'poisson'"
    )


def test_se_must_be_positive(df: pd.DataFrame) -> None:
    df["z"] = [1.0, 0.0, -1.0, 1.0, 1.0, 1.0]
    assert error("y | se(z) ~ x", df) == (
        "se 'z' has 2 rows with values <= 0; standard errors must be positive"
    )


def test_text_se(df: pd.DataFrame) -> None:
    assert error("y | se(s) ~ x", df) == "se 's' must be numeric, but column 's' has dtype str"


# --------------------------------------------------------------------------- group effects


def test_text_column_as_numeric_slope(df: pd.DataFrame) -> None:
    assert error("y ~ x + (1 + s | g)", df) == (
        "column 's' is used as a numeric slope in (1 + s | g) but has dtype str; "
        "write C(s) for a categorical slope"
    )
    assert error("y ~ x + (1 + x:s | g)", df).startswith("column 's' is used as a numeric slope")


def test_explicit_categorical_slope(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ x + (1 + C(s) | g)", df)
    assert spec.groups[0].effect_names == ("Intercept", "C(s)[T.b]", "C(s)[T.c]")
    assert spec.groups[0].effect_stan_names == ("Intercept", "C_s_T_b", "C_s_T_c")


def test_boolean_slope_is_numeric(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ (1 + big | g)", df.assign(big=df["z"] > 3))
    np.testing.assert_array_equal(spec.groups[0].Z[:, 1], [0, 0, 0, 1, 1, 1])


def test_uncorrelated_and_no_intercept(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ x + (x || g) + (0 + z | s)", df)
    g, s = spec.groups
    assert not g.correlated and g.effect_names == ("Intercept", "x")
    assert s.correlated and s.effect_names == ("z",)
    np.testing.assert_array_equal(s.Z[:, 0], df["z"])


def test_interaction_slope(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ (1 + x*z | g)", df)
    (g,) = spec.groups
    assert g.effect_names == ("Intercept", "x", "z", "x:z")
    assert g.effect_stan_names == ("Intercept", "x", "z", "x_z")
    np.testing.assert_allclose(g.Z[:, 3], df["x"] * df["z"])


def test_nested_groups() -> None:
    data = pd.DataFrame(
        {
            "y": np.arange(8.0),
            "a": list("ppppqqqq"),
            "b": list("uvuvvwvw"),
        }
    )
    spec = build_spec("y ~ 1 + (1 | a/b)", data)
    a, ab = spec.groups
    assert (a.name, a.stan_name) == ("a", "a")
    assert (ab.name, ab.stan_name) == ("a:b", "a_b")
    assert a.levels == ("p", "q")
    np.testing.assert_array_equal(a.index, [1, 1, 1, 1, 2, 2, 2, 2])
    # only combinations present in the data, ordered by a then b
    assert ab.levels == ("p:u", "p:v", "q:v", "q:w")
    np.testing.assert_array_equal(ab.index, [1, 2, 1, 2, 3, 4, 3, 4])
    assert ab.term.factors == ("a", "b")


def test_crossed_groups(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ x + (1 | g) + (1 | s)", df)
    g, s = spec.groups
    assert g.levels == ("p", "q", "r") and s.levels == ("a", "b", "c")
    np.testing.assert_array_equal(g.index, [1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(s.index, [1, 2, 3, 1, 2, 3])


def test_same_factor_in_two_terms_gets_names_after_what_they_are(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ (1 | g) + (0 + x | g)", df)
    assert [g.term_name for g in spec.groups] == ["g", "g_x"]
    assert [g.name for g in spec.groups] == ["g", "g"]
    spec = build_spec("y ~ (0 + z | g) + (0 + x | g)", df.assign(z=df["x"] * 2))
    assert [g.term_name for g in spec.groups] == ["g_z", "g_x"]


def test_level_order_follows_pandas_categorical() -> None:
    data = pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, 4.0],
            "num": [10, 2, 33, 2],
            "cat": pd.Categorical(
                ["lo", "hi", "mid", "hi"], categories=["lo", "mid", "hi", "unused"]
            ),
        }
    )
    spec = build_spec("y ~ (1 | num) + (1 | cat)", data)
    num, cat = spec.groups
    assert num.levels == ("2", "10", "33")
    np.testing.assert_array_equal(num.index, [2, 1, 3, 1])
    # declared category order, unused categories dropped
    assert cat.levels == ("lo", "mid", "hi")
    np.testing.assert_array_equal(cat.index, [1, 3, 2, 3])


def test_levels_that_print_the_same() -> None:
    data = pd.DataFrame({"y": [1.0, 2.0], "g": pd.Series([1, "1"], dtype=object)})
    assert error("y ~ (1 | g)", data) == (
        "grouping factor 'g' has distinct levels that print the same ('1'); "
        "give them distinct labels"
    )


def test_single_level_factor_warns(df: pd.DataFrame) -> None:
    with pytest.warns(UserWarning) as record:
        spec = build_spec("y ~ x + (1 | g)", df.assign(g="only"))
    assert [str(w.message) for w in record] == [
        "grouping factor 'g' has only one level ('only'); "
        "its standard deviation is informed by the prior alone"
    ]
    assert spec.groups[0].levels == ("only",)


# --------------------------------------------------------------------------- aliased columns


def aliased_message(*labels: str) -> str:
    """The warning for dropped columns, as lme4's rank check gives it."""
    if len(labels) == 1:
        return (f"fixed-effect column {labels[0]} is a linear combination of the columns "
                "before it on the observed rows (rank deficient); dropped it, as lme4 does")
    return (f"fixed-effect columns {', '.join(labels)} are linear combinations of the "
            "columns before them on the observed rows (rank deficient); dropped them, as "
            "lme4 does")


def build_warned(formula: str, data: pd.DataFrame, **kwargs: object) -> tuple[ModelSpec, list[str]]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        spec = build_spec(formula, data, **kwargs)
    return spec, [str(w.message) for w in record]


@pytest.fixture
def wide() -> pd.DataFrame:
    """Twelve rows whose numeric and categorical columns are not aliased."""
    rng = np.random.default_rng(27)
    return pd.DataFrame({
        "y": rng.normal(size=12),
        "x": rng.normal(size=12),
        "z": rng.normal(size=12),
        "cat": list("abc") * 4,
        "f": "only",
    })


def test_x_and_scale_x_keeps_x_and_drops_scale_x(wide: pd.DataFrame) -> None:
    spec, said = build_warned("y ~ x*z + C(cat) + scale(x)", wide)
    assert said == [aliased_message("scale(x)")]
    assert spec.fixed.names == ("x", "z", "C(cat)[T.b]", "C(cat)[T.c]", "x:z")
    assert spec.fixed.stan_names == ("b_x", "b_z", "b_C_cat_T_b", "b_C_cat_T_c", "b_x_z")
    assert spec.fixed.X.shape == (12, 5)
    np.testing.assert_array_equal(spec.fixed.X[:, 0], wide["x"])
    np.testing.assert_allclose(spec.fixed.X[:, 4], wide["x"] * wide["z"])
    assert spec.fixed.dropped == ("scale(x)",)
    assert spec.fixed.notes == (
        "fixed-effect column scale(x) dropped, as lme4 does: a linear combination of the "
        "columns before it on the observed rows (rank deficient)",
    )


def test_the_program_header_says_which_columns_were_dropped(wide: pd.DataFrame) -> None:
    with pytest.warns(UserWarning, match="scale"):
        code = sb.Model("y ~ x*z + C(cat) + scale(x)", wide).stan_code()
    assert ("//   fixed-effect column scale(x) dropped, as lme4 does: a linear combination of "
            "the columns before it on the observed rows (rank deficient)\n") in code
    assert "b_scale_x" not in code


def test_the_units_of_a_column_do_not_make_it_aliased(wide: pd.DataFrame) -> None:
    # next to big's norm, small's is below any tolerance: only its direction counts
    data = wide.assign(big=1e9 * wide["z"], small=1e-9 * wide["x"],
                       both=1e-9 * (wide["x"] + wide["z"]))
    spec, said = build_warned("y ~ big + small", data)
    assert said == []
    assert spec.fixed.names == ("big", "small")
    spec, said = build_warned("y ~ big + small + both", data)
    assert said == [aliased_message("both")]


def test_a_nearly_aliased_column_is_kept_and_one_within_the_tolerance_dropped(
        wide: pd.DataFrame) -> None:
    # near: past the Gram matrix's screen, so the QR decides; far below lme4's 1e-7: gone
    data = wide.assign(near=wide["x"] + 1e-5 * wide["z"], same=wide["x"] + 1e-11 * wide["z"])
    spec, said = build_warned("y ~ x + near + same", data)
    assert said == [aliased_message("same")]
    assert spec.fixed.names == ("x", "near")


@pytest.mark.parametrize("seed", range(12))
def test_exactly_the_combinations_of_earlier_columns_are_aliased(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, intercept = int(rng.integers(3, 30)), seed % 2 == 1
    kept = [np.ones(n)] if intercept else []
    columns, expected = [], []
    for _ in range(int(rng.integers(1, 15))):
        if kept and (len(kept) == n or rng.random() < 0.4):
            columns.append(np.column_stack(kept) @ rng.normal(size=len(kept)))
        else:  # independent of the kept columns, almost surely; in any units
            columns.append(rng.normal(size=n) * 10.0 ** rng.integers(-6, 7))
            kept.append(columns[-1])
        expected.append(columns[-1] is not kept[-1])
    assert aliased_columns(np.column_stack(columns), intercept).tolist() == expected


def test_an_interaction_that_repeats_a_column_is_dropped(wide: pd.DataFrame) -> None:
    # formulaic orders terms by degree, as R does: I(x * z) comes before x:z
    spec, said = build_warned("y ~ x*z + I(x * z)", wide)
    assert said == [aliased_message("x:z")]
    assert spec.fixed.names == ("x", "z", "I(x * z)")
    assert spec.fixed.X.shape == (12, 3)


def test_an_empty_cell_of_two_factors_drops_its_interaction() -> None:
    data = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "a": list("ppqqpq"),
                         "b": list("uvuuvu")})  # (q, v) never occurs
    spec, said = build_warned("y ~ a*b", data)
    assert said == [aliased_message("a[T.q]:b[T.v] (zero on every observed row)")]
    assert spec.fixed.names == ("a[T.q]", "b[T.v]")


def test_an_unused_category_drops_its_zero_column() -> None:
    data = pd.DataFrame(
        {"y": [1.0, 2.0, 3.0], "g": pd.Categorical(["a", "b", "a"], categories=["a", "b", "c"])}
    )
    spec, said = build_warned("y ~ g", data)
    assert said == [aliased_message("g[T.c] (zero on every observed row)")]
    assert spec.fixed.names == ("g[T.b]",)
    assert spec.fixed.X.shape == (3, 1)


def test_a_factor_with_one_level_is_dropped_with_a_warning(wide: pd.DataFrame) -> None:
    spec, said = build_warned("y ~ x + f", wide)
    assert said == [aliased_message("f (no column: a factor with one level)")]
    assert spec.fixed.names == ("x",)
    assert spec.fixed.dropped == ("f",)
    spec, said = build_warned("y ~ x + f + f:x", wide)
    assert said == [aliased_message("f (no column: a factor with one level)",
                                    "f:x (no column: a factor with one level)")]
    assert spec.fixed.names == ("x",)
    spec, said = build_warned("y ~ 0 + x + f", wide)  # without an intercept f is the intercept
    assert said == []
    assert spec.fixed.names == ("x", "f[only]")


def test_a_full_rank_model_says_nothing(wide: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = build_spec("y ~ x*z + C(cat) + (1 + x | cat)", wide)
    assert spec.fixed.p == 5
    assert spec.fixed.dropped == ()
    assert spec.fixed.notes == ()


def test_rank_is_decided_on_the_observed_rows(wide: pd.DataFrame) -> None:
    data = wide.assign(w=2.0 * wide["x"] - wide["z"], flag=1.0)
    data.loc[[3, 7], "y"] = np.nan  # rows to predict
    data.loc[3, "w"] = 10.0  # w = 2x - z, except in a row without an outcome
    data.loc[7, "flag"] = 0.0  # flag is constant, except in a row without an outcome
    spec, said = build_warned("y ~ x + z + w + flag", data)
    assert said == [aliased_message("w", "flag")]
    assert spec.fixed.names == ("x", "z")
    assert spec.fixed.X.shape == (12, 2)
    spec, said = build_warned("y ~ x + z + w + flag", data.fillna({"y": 0.0}))
    assert said == []
    assert spec.fixed.names == ("x", "z", "w", "flag")


def test_more_columns_than_observed_rows_drops_the_last() -> None:
    data = pd.DataFrame({"y": [1.0, 2.0, 4.0], "x": [0.3, 0.1, 0.2], "z": [1.0, 3.0, 2.5],
                         "w": [0.0, 1.0, 5.0]})
    spec, said = build_warned("y ~ x + z + w", data)
    assert said == [aliased_message("w")]
    assert spec.fixed.names == ("x", "z")


def test_a_prior_for_a_dropped_column_is_refused(wide: pd.DataFrame) -> None:
    for key in ("b_scale_x", "b_scale(x)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            message = error("y ~ x + scale(x)", wide, priors={key: "normal(0, 1)"})
        assert message == (
            f"prior '{key}': fixed-effect column 'scale(x)' was dropped as aliased (a "
            "linear combination of the columns before it on the observed rows), so the "
            "model has no coefficient for it; remove the prior"
        )


def test_new_data_and_the_plan_get_the_kept_columns_only(wide: pd.DataFrame) -> None:
    from stanbhm.predict import encode

    with pytest.warns(UserWarning, match=re.escape(aliased_message("scale(x)"))):
        model = sb.Model("y ~ x + scale(x) + z", wide)
    assert model.plan.fixed.names == ("x", "z")
    new = pd.DataFrame({"x": [0.5, -1.0], "z": [2.0, 0.0]})
    np.testing.assert_array_equal(model.spec.fixed.design(new), new[["x", "z"]].to_numpy())
    np.testing.assert_array_equal(encode(model, new).X, new[["x", "z"]].to_numpy())
    np.testing.assert_array_equal(model.spec.fixed.design(wide), model.spec.fixed.X)


def test_a_constant_column_is_the_intercept_again() -> None:
    data = pd.DataFrame({"y": [1.0, 2.5, 2.0, 4.0], "x": [0.3, 0.7, 0.1, 0.5],
                         "flag": [-0.481019] * 4})
    spec, said = build_warned("y ~ x + flag", data)
    assert said == [aliased_message("flag")]
    assert spec.fixed.names == ("x",)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = build_spec("y ~ 0 + flag", data)  # without an intercept the column is the intercept
    assert spec.fixed.names == ("flag",)


def test_no_warning_with_several_levels(df: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_spec("y ~ log(x) + (1 | g)", df)


# --------------------------------------------------------------------------- hostile names


def test_hostile_column_names_are_sanitized() -> None:
    raw = ["x; target += 1e9", "for", "ñame", "1x"]
    data = pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, 5.0, 4.0, 6.0],
            "x; target += 1e9": [0.1, 0.4, 0.2, 0.3, 0.9, 0.5],
            "for": ["a", "a", "b", "b", "c", "c"],
            "ñame": [3.0, 1.0, 2.0, 5.0, 4.0, 4.5],
            "1x": [1.0, 0.0, 2.0, 1.0, 3.0, 2.0],
        }
    )
    formula = (
        "y ~ `x; target += 1e9` + `ñame` + `1x` + (1 + `x; target += 1e9` | `for`)"
        " + (1 | `ñame`:`for`)"
    )
    spec = build_spec(formula, data, priors={"b_x; target += 1e9": "normal(0, 1)"})
    assert spec.fixed.names == ("x; target += 1e9", "ñame", "1x")
    assert spec.fixed.stan_names == ("b_x_target_1e9", "b_name", "b_1x")
    first, second = spec.groups
    assert first.stan_name == "for_"
    assert first.effect_stan_names == ("Intercept", "x_target_1e9")
    assert second.name == "ñame:for" and second.stan_name == "name_for"
    names = [
        *spec.fixed.stan_names,
        *(g.stan_name for g in spec.groups),
        *(n for g in spec.groups for n in g.effect_stan_names),
    ]
    for name in names:
        assert IDENTIFIER.fullmatch(name), name
        assert name not in raw
        for hostile in ("x; target += 1e9", "ñame", ";", " ", "+", "="):
            assert hostile not in name
    assert str(spec.prior("b", "x; target += 1e9")) == "normal(0, 1)"
    assert str(spec.prior("b", "b_x_target_1e9")) == "normal(0, 1)"


# --------------------------------------------------------------------------- priors


def test_valid_priors_are_kept_as_given(df: pd.DataFrame) -> None:
    priors = {
        "b": "horseshoe(df=1, scale_global=0.1, df_slab=4, scale_slab=2)",
        "Intercept": "normal(-1.5E-2, 1e1)",
        "sd": "exponential(1)",
        "sd_g": "gamma(2, 0.5)",
        "cor": "lkj_corr_cholesky(2)",
        "cor_g": "lkj_corr_cholesky(4)",
        "sigma": "inv_gamma(1.5E-2, .5)",
    }
    spec = build_spec("y ~ x + z + (1 + x | g) + (1 | s)", df.assign(z=Z_NOT_ALIASED),
                      priors=priors)
    given = {key: str(prior) for key, prior in spec.priors.values()}
    assert given == priors


def test_prior_lookup_prefers_the_specific_key(df: pd.DataFrame) -> None:
    priors = {"b": "normal(0, 5)", "b_x": "normal(0, 1)", "sd_g": "exponential(2)"}
    spec = build_spec("y ~ x + z + (1 | g) + (1 | s)", df.assign(z=Z_NOT_ALIASED), priors=priors)
    assert str(spec.prior("b", "x")) == "normal(0, 1)"
    assert str(spec.prior("b", "b_x")) == "normal(0, 1)"
    assert str(spec.prior("b", "z")) == "normal(0, 5)"
    assert str(spec.prior("sd", "g")) == "exponential(2)"
    assert spec.prior("sd", "s") is None
    assert spec.prior("sigma") is None


def test_prior_keys_in_stan_spelling(df: pd.DataFrame) -> None:
    data = pd.DataFrame({"y": np.arange(4.0), "a": list("ppqq"), "b": list("uvuv")})
    spec = build_spec("y ~ (1 | a/b)", data, priors={"sd_a_b": "normal(0, 1)"})
    assert str(spec.prior("sd", "a:b")) == "normal(0, 1)"
    assert str(spec.prior("sd", "a_b")) == "normal(0, 1)"
    assert spec.prior("sd", "a") is None
    assert (
        error("y ~ (1 | a/b)", data, priors={"sd_a:b": "normal(0, 1)", "sd_a_b": "normal(0, 2)"})
        == "priors 'sd_a:b' and 'sd_a_b' set the same parameter; keep one"
    )


def test_unknown_prior_key_lists_valid_keys(df: pd.DataFrame) -> None:
    assert error("y ~ x + (1 | g)", df, priors={"sd_w": "normal(0, 1)"}) == (
        "unknown prior 'sd_w'; valid keys for this model: b, b_x, Intercept, sd, sd_g, sigma"
    )
    assert error("y ~ x + (1 + x | g)", df, priors={"nu": "gamma(2, 0.1)"}) == (
        "unknown prior 'nu'; valid keys for this model: "
        "b, b_x, Intercept, sd, sd_g, cor, cor_g, sigma"
    )


def test_family_specific_prior_keys(df: pd.DataFrame) -> None:
    spec = build_spec("y ~ x", df, family="student_t", priors={"nu": "gamma(2, 0.1)"})
    assert str(spec.prior("nu")) == "gamma(2, 0.1)"
    spec = build_spec("y ~ x", df, family="negbinomial", priors={"phi": "exponential(1)"})
    assert str(spec.prior("phi")) == "exponential(1)"
    assert error("y ~ x", df, family="poisson", priors={"sigma": "exponential(1)"}) == (
        "unknown prior 'sigma'; valid keys for this model: b, b_x, Intercept"
    )


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("sd", "norml(0, 1)", "unknown distribution 'norml'"),
        ("sd", "normal(0, 1); target += 1e9", "character ';' is not allowed"),
        ("sd", "normal(0, 1)\ntarget += 1", "character '\\n' is not allowed"),
        ("sd", "normal(0, {1})", "character '{' is not allowed"),
        ("sd", "normal(0, x)", "argument 'x' is not a number"),
        ("sd", "normal(0, 1 + 1)", "argument '1 + 1' is not a number"),
        ("sd", "normal(0, +1)", "argument '+1' is not a number"),
        ("sd", "normal(0)", "normal() takes 2 arguments, got 1"),
        ("sd", "exponential()", "exponential() takes 1 argument, got 0"),
        ("sd", "std_normal(1)", "std_normal() takes 0 arguments, got 1"),
        ("sd", "normal", "expected a distribution call such as 'normal(0, 2.5)'"),
        ("sd", "normal(0, 1) + normal(0, 1)", "argument '1) + normal(0' is not a number"),
        (
            "sd",
            "lkj_corr_cholesky(2)",
            "lkj_corr_cholesky() is only for correlation priors ('cor')",
        ),
        ("cor", "normal(0, 1)", "a correlation prior must be lkj_corr_cholesky(eta)"),
        ("b_x", "horseshoe(df=1)", "horseshoe() is only allowed for the whole class 'b'"),
        ("sd", "horseshoe(df=1)", "horseshoe() is only allowed for the whole class 'b'"),
        (
            "b",
            "horseshoe(df=1, foo=2)",
            "unknown horseshoe argument 'foo'; use df, scale_global, df_slab, scale_slab",
        ),
        ("b", "horseshoe(1)", "argument '1' is not of the form name=number"),
        ("b", "horseshoe(df=1, df=2)", "horseshoe argument 'df' given twice"),
        ("b", "horseshoe(df=x)", "argument 'df=x' is not of the form name=number"),
    ],
)
def test_invalid_prior_values(df: pd.DataFrame, key: str, value: str, reason: str) -> None:
    assert error("y ~ x + (1 + x | g)", df, priors={key: value}) == (
        f"prior '{key}' = '{value}': {reason}"
    )


def test_horseshoe_without_arguments(df: pd.DataFrame) -> None:
    prior = build_spec("y ~ x", df, priors={"b": "horseshoe()"}).prior("b")
    assert str(prior) == "horseshoe(df=1, scale_global=1, df_slab=4, scale_slab=2)"


def test_prior_value_must_be_a_string(df: pd.DataFrame) -> None:
    assert error("y ~ x", df, priors={"b": 3}) == (
        "prior 'b' must be a string such as 'normal(0, 2.5)', not int"
    )


def test_priors_must_be_a_mapping(df: pd.DataFrame) -> None:
    with pytest.raises(TypeError, match="priors must be a dict, not list"):
        build_spec("y ~ x", df, priors=["normal(0, 1)"])  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.text(min_size=1, max_size=12).filter(lambda s: "`" not in s and s.strip() == s))
def test_any_column_name_gives_safe_stan_names(name: str) -> None:
    data = pd.DataFrame({"y": [1.0, 2.0, 4.0, 3.0], name: [0.5, 1.5, 1.0, 2.0]})
    grouping = "grp" if name != "grp" else "grp2"
    data[grouping] = ["a", "b", "a", "b"]
    try:
        formula = Formula(f"y ~ `{name}` + (1 + `{name}` | {grouping})")
    except FormulaError:
        return  # names the formula language cannot express never reach this stage
    if name == "y":
        return
    spec = build_spec(formula, data)
    for stan_name in (*spec.fixed.stan_names, *spec.groups[0].effect_stan_names):
        assert IDENTIFIER.fullmatch(stan_name), stan_name
        assert not stan_name.endswith("__")


def test_column_called_intercept_is_refused_clearly() -> None:
    data = pd.DataFrame({"y": np.arange(6.0), "Intercept": np.arange(6.0) ** 2,
                         "g": list("aabbcc")})
    assert error("y ~ `Intercept` + (1 | g)", data) == (
        "two columns of the fixed effects are named 'Intercept': a data column called "
        "'Intercept' clashes with the intercept's name; rename the column"
    )
    assert error("y ~ (1 + `Intercept` | g)", data).startswith(
        "two columns of the group term (1 + `Intercept` | g) are named 'Intercept'")


# --------------------------------------------------------------------------- addition terms


@pytest.fixture
def counts() -> pd.DataFrame:
    """Counts with every censoring kind, weights and interval upper bounds; the fourth
    row's outcome is missing."""
    return pd.DataFrame({"y": [3.0, 0.0, 5.0, np.nan, 2.0, 7.0],
                         "x": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                         "c": ["none", "Right", "left", None, "interval", "none"],
                         "u": [0.0, 0.0, 0.0, 0.0, 4.0, 0.0],
                         "w": [1.0, 0.5, 2.0, 1.0, 0.0, 3.0]})


def test_censoring_codes_words_numbers_and_booleans(counts) -> None:
    spec = build_spec("y | cens(c, u) ~ x", counts, family="poisson")
    assert spec.cens.tolist() == [0, 1, -1, 0, 2, 0]  # 0 where the outcome is missing
    assert spec.y2.tolist() == [0, 0, 0, 0, 4, 0]
    assert not spec.cens.flags.writeable
    coded = counts.assign(c=[0, 1, -1, 5, 2, 0])  # a missing outcome's code is not read
    assert build_spec("y | cens(c, u) ~ x", coded, family="poisson").cens.tolist() == \
        [0, 1, -1, 0, 2, 0]
    flags = counts.assign(c=[False, True, False, False, True, False])
    assert build_spec("y | cens(c) ~ x", flags, family="poisson").cens.tolist() == \
        [0, 1, 0, 0, 1, 0]


def test_censoring_errors_name_the_column(counts) -> None:
    assert error("y | cens(k) ~ x", counts, family="poisson").startswith(
        "column 'k' (used in cens()) is not in the data")
    assert error("y | cens(c, u) ~ x", counts.assign(c=["none", "up", "3", None, "x", 7]),
                 family="poisson") == (
        "censoring column 'c' has values 'up', '3', 'x', 7; use 'none', 'right', 'left', "
        "'interval' or brms's codes 0, 1, -1, 2")
    assert error("y | cens(c, u) ~ x", counts.assign(c=[None, "none", None, None, "none", 0]),
                 family="poisson") == (
        "censoring column 'c' has 2 rows with a missing value where the outcome is observed; "
        "use 'none' for an exact outcome")
    assert error("y | cens(c) ~ x", counts, family="poisson") == (
        "censoring column 'c' has 1 row censored as 'interval', which need the upper bound: "
        "write cens(c, y2)")
    assert error("y | cens(c, u) ~ x", counts.assign(u=[0.0, 0, 0, 0, 2.0, 0]),
                 family="poisson") == (
        "upper bound 'u' is not above response 'y' in 1 row censored as 'interval'; the "
        "interval is (y, y2]")
    assert error("y | cens(c, u) ~ x", counts.assign(u=[0.0, 0, 0, 0, 4.5, 0]),
                 family="poisson") == (
        "upper bound 'u' must hold whole numbers for an integer outcome, but 1 row censored "
        "as 'interval' do not")
    assert error("y | cens(c, u) ~ x", counts.assign(u=[0.0, 0, 0, 0, np.nan, 0]),
                 family="poisson") == (
        "upper bound 'u' has 1 row with NaN or infinite values on interval-censored rows")
    # a real outcome's interval bound need not be whole
    assert build_spec("y | cens(c, u) ~ x", counts.assign(u=[0.0, 0, 0, 0, 4.5, 0])).y2[4] == 4.5


def test_weights_must_be_finite_and_non_negative(counts) -> None:
    spec = build_spec("y | weights(w) ~ x", counts, family="poisson")
    assert spec.weights.tolist() == [1.0, 0.5, 2.0, 1.0, 0.0, 3.0]
    assert error("y | weights(w) ~ x", counts.assign(w=[1.0, -1, 2, 1, -0.5, 3]),
                 family="poisson") == (
        "weights 'w' has 2 rows with values < 0; weights must be non-negative")
    assert error("y | weights(w) ~ x", counts.assign(w=[1.0, np.inf, 2, 1, 1, 3]),
                 family="poisson") == (
        "column 'w' has 1 row with NaN or infinite values; remove or impute them")


def test_truncation_bounds_are_checked_against_the_outcome(counts) -> None:
    assert build_spec("y | trunc(lb = 0, ub = 7) ~ x", counts, family="poisson").trunc == \
        (0.0, 7.0)
    assert error("y | trunc(lb = 1, ub = 6) ~ x", counts, family="poisson") == (
        "response 'y' is outside the truncation bounds (lb = 1, ub = 6) in 2 rows")
    assert error("y | trunc(ub = 2.5) ~ x", counts, family="poisson") == (
        "trunc() bounds must be whole numbers for the poisson family, whose outcome is an "
        "integer")
    assert error("y | trunc(lb = -1) ~ x", counts, family="negbinomial") == (
        "trunc(lb = -1) is below 0, where the negbinomial family's outcome has no values; drop "
        "lb or make it at least 0")
    # a real outcome may be truncated anywhere
    assert build_spec("y | trunc(lb = -1.5) ~ x", counts).trunc == (-1.5, None)


def test_a_family_without_a_cdf_refuses_cens_and_trunc(counts, monkeypatch) -> None:
    import dataclasses

    monkeypatch.setitem(FAMILIES, "poisson", dataclasses.replace(FAMILIES["poisson"], cdf=None))
    for term in ("cens(c, u)", "trunc(lb = 0)"):
        assert error(f"y | {term} ~ x", counts, family="poisson") == (
            f"{term.split('(')[0]}() needs the family's cumulative distribution function, "
            "which Stan does not have for the poisson family")
    assert build_spec("y | weights(w) ~ x", counts, family="poisson").weights is not None


@pytest.mark.parametrize("values", [
    np.arange(300).astype(str), np.arange(-50, 250), np.arange(300) / 2,
    np.arange(300) % 2 == 0, np.array(["é", "e", "Z", "a", "ä", "b10", "b9", ""] * 40),
    np.array([1, "1x", 2.5, "a"] * 75, dtype=object)],
    ids=["text", "integers", "floats", "booleans", "unicode", "mixed"])
def test_grouping_codes_and_labels_are_the_categorical_ones(values) -> None:
    """A grouping column's levels are sorted as pandas' Categorical sorts them, numbers
    as numbers and text by code point, whichever way the codes are computed."""
    from stanbhm.spec import _factor_codes

    series = pd.Series(np.random.default_rng(4).permutation(values))
    codes, labels = _factor_codes(series, "g")
    categorical = pd.Categorical(series)
    np.testing.assert_array_equal(codes, categorical.codes)
    assert labels == [str(v) for v in categorical.categories.to_numpy(dtype=object)]


@pytest.mark.parametrize("rhs", ["x + n", "0 + x", "x + C(a)", "I(x ** 2) + n", "x:n"])
def test_design_columns_are_formulaics_whether_taken_from_the_data_or_not(rhs) -> None:
    """Numeric columns named as they are come from the data without formulaic's copy;
    the columns and their names are formulaic's either way, also when the first rows
    hold one level of a factor."""
    df = pd.DataFrame({"x": [0.5, 1.5, -2.0, 3.25, 4.0], "n": [1, 2, 3, 4, 6],
                       "a": ["p", "p", "q", "r", "q"]})
    model_spec, columns = _design_columns(rhs, df, "fixed effects")
    matrix = formulaic.model_matrix(rhs, df)
    assert model_spec.column_names == tuple(matrix.columns)
    np.testing.assert_array_equal(np.column_stack(columns), matrix.to_numpy(dtype=float))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_value_among_huge_ones_is_found(bad) -> None:
    """The finite check's one-pass sum overflows on huge values; the values are then
    checked one by one."""
    values = np.full(6, 1e308)
    assert _all_finite(values)
    values[3] = bad
    assert not _all_finite(values)


@pytest.mark.parametrize(("formula", "effects", "positions"), [
    ("y ~ x + n + (1 + n + x | g)", "1 + n + x", (-1, 1, 0)),  # a run per column
    ("y ~ x + n + (1 + x + n | g)", "1 + x + n", (-1, 0, 1)),
    ("y ~ x + C(a) + (x | g)", "1 + x", (-1, 0)),
    ("y ~ x + (0 + x | g) + (1 | g2)", "0 + x", (0,)),
    ("y ~ n + (1 + x | g)", "1 + x", None),  # x is no fixed effect
    ("y ~ C(a) + (C(a) | g)", "1 + C(a)", None),  # formulaic's columns
])
def test_group_covariates_are_copied_from_x_when_x_holds_them(formula, effects,
                                                              positions) -> None:
    """A group term whose effects are the intercept and numeric columns that X holds
    takes Z (and its fitted rows) from X; Z is what formulaic makes either way."""
    rng = np.random.default_rng(8)
    df = pd.DataFrame({"x": rng.normal(size=30), "n": rng.integers(0, 5, 30),
                       "a": rng.choice(list("pqr"), 30), "g": rng.choice(list("ab"), 30),
                       "g2": rng.choice(list("cd"), 30), "y": rng.normal(size=30)})
    df.loc[::7, "y"] = np.nan
    spec = build_spec(formula, df)
    group = spec.groups[0]
    assert group.x_positions == positions
    np.testing.assert_array_equal(group.Z, formulaic.model_matrix(effects, df).to_numpy(float))
    np.testing.assert_array_equal(spec.fitted_Z[0], group.Z[spec.observed])
