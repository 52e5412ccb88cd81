"""Predictions for new rows: encoding as in the fit, new levels, and draws that are the
fitted draws pushed through the linear predictor."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
from stanbhm.datasets import varying_slopes
from stanbhm.errors import SpecError
from stanbhm.predict import encode, prediction_plan
from stanbhm.render import render_code


def slopes(rows: int = 300, groups: int = 10) -> pd.DataFrame:
    df, _ = varying_slopes(seed=4, rows=rows, groups=groups)
    return df.assign(shop=np.where(np.arange(rows) % 3 == 0, "big", "small"))


def counts(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"g": rng.choice(list("abcde"), size=n), "x": rng.normal(size=n),
                       "expo": rng.choice([1.0, 2.0], size=n)})
    df["y"] = rng.poisson(np.exp(0.3 + 0.4 * df["x"]) * df["expo"])
    return df


NEW = pd.DataFrame({"x": [0.5, 1.0, -1.0, 0.0], "g": ["g0", "g9", "new1", "new2"],
                    "shop": ["big", "small", "big", "small"]}, index=[10, 11, 12, 13])


def test_new_rows_are_encoded_as_the_fitted_ones() -> None:
    model = sb.Model("y ~ x + C(shop) + (1 + x | g)", slopes(), rewrites="none")
    rows = encode(model, NEW)
    assert rows.labels == ["10", "11", "12", "13"]
    np.testing.assert_array_equal(rows.X, [[0.5, 0.0], [1.0, 1.0], [-1.0, 0.0], [0.0, 1.0]])
    (term,) = rows.terms
    assert term.index.tolist() == [1, 10, 11, 12] and term.new_levels == ("new1", "new2")
    np.testing.assert_array_equal(term.Z, [[1, 0.5], [1, 1.0], [1, -1.0], [1, 0.0]])


def test_scale_uses_the_training_mean_and_sd() -> None:
    df = slopes()
    model = sb.Model("y ~ scale(x) + (1 | g)", df, rewrites="none")
    x = df["x"]
    new = pd.DataFrame({"x": [x.mean(), x.mean() + x.std(ddof=1)], "g": ["g0", "g1"]})
    np.testing.assert_allclose(encode(model, new).X[:, 0], [0.0, 1.0], atol=1e-12)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.drop(columns="x"), "cannot encode new data for the fixed effects: "),
    (lambda d: d.drop(columns="g"), "new data has no column 'g' (grouping factor of "
                                    "(1 + x | g))"),
    (lambda d: d.assign(g=[None, "g1", "g2", "g3"]), "new data: grouping factor 'g' has "
                                                     "missing values"),
    (lambda d: d.assign(shop=["big", "huge", "big", "big"]),
     "new data has categories the fit has not seen in the fixed effects: {'huge'}"),
])
def test_bad_new_data_names_what_is_wrong(change, message) -> None:
    model = sb.Model("y ~ x + C(shop) + (1 + x | g)", slopes(), rewrites="none")
    with pytest.raises(SpecError) as err:
        encode(model, change(NEW.copy()))
    assert str(err.value).startswith(message)


def test_unseen_levels_can_be_refused() -> None:
    model = sb.Model("y ~ x + (1 + x | g)", slopes(), rewrites="none")
    with pytest.raises(SpecError) as err:
        encode(model, NEW, new_levels="error")
    assert str(err.value) == ("new data has 2 level(s) of 'g' not in the fitted data "
                              "(new1, new2); pass new_levels='sample' or 'zero'")
    with pytest.raises(ValueError, match=r"^new_levels='drop' is not one of sample, zero, error$"):
        encode(model, NEW, new_levels="drop")


PROGRAMS = {
    "correlated_noncentered": ("y ~ x + (1 + x | g)", "gaussian", "noncentered", "none"),
    "uncorrelated_centered": ("y ~ x + (1 + x || g)", "gaussian", "centered", "none"),
    "marginalized": ("y ~ x + (1 | g)", "gaussian", "auto", "auto"),
    "poisson_offset": ("y ~ x + offset(log(expo)) + (1 | g)", "poisson", "centered", "none"),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_prediction_programs_pass_stanc(name, cmdstan, tmp_path) -> None:
    formula, family, param, rewrites = PROGRAMS[name]
    data = counts() if family == "poisson" else slopes()
    new = data.head(3).assign(g=["a", "zz", "b"] if family == "poisson" else ["g1", "zz", "g2"])
    model = sb.Model(formula, data, family=family, parameterization=param, rewrites=rewrites)
    code = render_code(prediction_plan(model.plan, encode(model, new)))
    assert "//   predictions: eta_new, mu_new, y_new; for the new rows" in code
    assert "log_lik" not in code.split("generated quantities {")[1]
    path = tmp_path / "p.stan"
    path.write_text(code)
    stanc = str(cmdstan / "bin" / "stanc")
    proc = subprocess.run([stanc, f"--o={tmp_path / 'p.hpp'}", str(path)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def slopes_fit():
    model = sb.Model("y ~ x + C(shop) + (1 + x | g)", slopes(), rewrites="none")
    return model, model.fit(chains=2, iter_warmup=300, iter_sampling=300, seed=1)


def population(model, post, x: float, big: bool) -> np.ndarray:
    b = post["b"].values
    return post["b_Intercept"].values + b[..., 0] * x + b[..., 1] * (0.0 if big else 1.0)


@pytest.mark.slow
def test_known_levels_use_their_fitted_effects(slopes_fit) -> None:
    model, fit = slopes_fit
    pred = fit.predict(NEW.head(2), seed=2).predictions
    assert pred["eta"].dims == ("chain", "draw", "row")
    assert pred["row"].values.tolist() == ["10", "11"]
    post = fit.to_arviz().posterior
    mean_x = model.stan_data()["X"][:, 0].mean()
    for row, (level, x, big) in enumerate([(0, 0.5, True), (9, 1.0, False)]):
        r = post["r_g"].values[..., level, :]
        expected = population(model, post, x, big) + r[..., 0] + r[..., 1] * (x - mean_x)
        np.testing.assert_allclose(pred["eta"].values[..., row], expected, atol=1e-4)
    np.testing.assert_array_equal(pred["mu"].values, pred["eta"].values)


@pytest.mark.slow
def test_new_levels_get_zero_or_a_draw_from_the_fitted_sds(slopes_fit) -> None:
    model, fit = slopes_fit
    post = fit.to_arviz().posterior
    mean_x = model.stan_data()["X"][:, 0].mean()
    new = NEW.iloc[2:].assign(x=mean_x)
    zero = fit.predict(new, new_levels="zero", seed=3).predictions
    for row, big in enumerate([True, False]):
        np.testing.assert_allclose(zero["eta"].values[..., row],
                                   population(model, post, mean_x, big), atol=1e-4)
    drawn = fit.predict(new, new_levels="sample", seed=3).predictions
    pop = population(model, post, mean_x, True)
    spread = float(np.mean((drawn["eta"].values[..., 0] - pop) ** 2))
    expected = float(np.mean(post["sd_g"].values[..., 0] ** 2))
    assert spread == pytest.approx(expected, rel=0.25)
    noise = float(np.mean((drawn["y"].values - drawn["mu"].values) ** 2))
    assert noise == pytest.approx(float(np.mean(post["sigma"].values ** 2)), rel=0.2)


@pytest.mark.slow
def test_poisson_predictions_carry_the_offset() -> None:
    df = counts()
    model = sb.Model("y ~ x + offset(log(expo)) + (1 | g)", df, family="poisson")
    fit = model.fit(chains=2, iter_warmup=300, iter_sampling=200, seed=4)
    new = pd.DataFrame({"x": [0.2, 0.2], "g": ["a", "a"], "expo": [1.0, 3.0]})
    pred = fit.predict(new, seed=5).predictions
    eta = pred["eta"].values
    np.testing.assert_allclose(eta[..., 1] - eta[..., 0], np.log(3.0), atol=1e-4)
    np.testing.assert_allclose(pred["mu"].values, np.exp(eta), rtol=1e-4)
    assert float(pred["y"].values[..., 1].mean()) == pytest.approx(
        float(pred["mu"].values[..., 1].mean()), rel=0.15)
