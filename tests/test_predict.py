"""Predictions for new rows: encoding as in the fit, new levels, draws that are the
fitted draws pushed through the linear predictor, by the fitted program itself (nothing
compiles), and brms's names for them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stanbhm as sb
from stanbhm import render
from stanbhm.datasets import varying_slopes
from stanbhm.errors import SpecError
from stanbhm.predict import encode, no_rows, outcome, predict_draws, prediction_data
from stanbhm.toolchain import cache


def slopes(rows: int = 300, groups: int = 10) -> pd.DataFrame:
    df, _ = varying_slopes(seed=4, rows=rows, groups=groups)
    return df.assign(shop=np.where(np.arange(rows) % 3 == 0, "big", "small"))


def counts(n: int = 300, missing: int = 0) -> pd.DataFrame:
    """Poisson counts with exposure; the first `missing` rows have no outcome."""
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"g": rng.choice(list("abcde"), size=n), "x": rng.normal(size=n),
                       "expo": rng.choice([1.0, 2.0], size=n)})
    df["y"] = rng.poisson(np.exp(0.3 + 0.4 * df["x"]) * df["expo"]).astype(float)
    df.loc[df.index[:missing], "y"] = np.nan
    return df


NEW = pd.DataFrame({"x": [0.5, 1.0, -1.0, 0.0], "g": ["g0", "g9", "new1", "new2"],
                    "shop": ["big", "small", "big", "small"]}, index=[10, 11, 12, 13])


def test_new_rows_are_encoded_as_the_fitted_ones() -> None:
    model = sb.Model("y ~ x + C(shop) + (1 + x | g)", slopes(), rewrites="none")
    rows = encode(model, NEW)
    assert rows.labels.tolist() == [10, 11, 12, 13] and rows.labels.dtype == np.int64
    assert encode(model, NEW.set_index(NEW["g"])).labels.tolist() == ["g0", "g9", "new1", "new2"]
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
def test_the_fitted_program_reads_new_rows(name, cmdstan, tmp_path) -> None:
    """One program fits and predicts: it declares the new rows, the fit passes none, and
    the rows `predict` passes fill exactly those declarations."""
    formula, family, param, rewrites = PROGRAMS[name]
    data = counts() if family == "poisson" else slopes()
    new = data.head(3).assign(g=["a", "zz", "b"] if family == "poisson" else ["g1", "zz", "g2"])
    model = sb.Model(formula, data, family=family, parameterization=param, rewrites=rewrites)
    code = model.stan_code()
    assert ("//   predictions: eta_new, mu_new, y_new; for new rows passed as data (none while "
            "fitting)") in code
    assert "log_lik" in code.split("generated quantities {")[1]  # still the fitted program
    fitting = model.stan_data()
    given = prediction_data(model.plan, encode(model, new), sample_new_levels=True)
    assert set(given) == set(no_rows(model.plan)) and set(given) <= set(fitting)
    assert fitting["N_new"] == 0 and given["N_new"] == 3
    for key, value in given.items():
        if isinstance(value, np.ndarray):
            empty = fitting[key]
            assert empty.shape == (0, *value.shape[1:]) and empty.dtype.kind == value.dtype.kind
    path = tmp_path / "p.stan"
    path.write_text(code)
    stanc = str(cmdstan / "bin" / "stanc")
    info = json.loads(subprocess.run([stanc, "--info", str(path)], capture_output=True,
                                     text=True, check=True).stdout)
    assert set(info["inputs"]) == set(fitting)
    assert {"eta_new", "mu_new", "y_new"} <= set(info["generated quantities"])
    proc = subprocess.run([stanc, f"--o={tmp_path / 'p.hpp'}", str(path)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_effects_left_undrawn_leave_the_new_rows_out() -> None:
    """Nothing to predict from: no new-row block, and predict says what to do."""
    model = sb.Model("y ~ x + (1 | g)", slopes(), effects=False, log_lik=False, y_rep=False)
    code = model.stan_code()
    assert "N_new" not in code and no_rows(model.plan) == {}
    assert "//   predictions: none; the effects of g are integrated out and not drawn back" in code
    with pytest.raises(ValueError, match=r"^this fit has no draws of the effects of g: "):
        predict_draws(model, None, NEW, "sample", None)


def test_outcome_of_new_rows_is_read_as_the_fit_read_it() -> None:
    model = sb.Model("y ~ x + (1 | g)", counts(missing=2), family="poisson", rewrites="none")
    fitted = outcome(model, None)
    assert np.isnan(fitted[:2]).all() and fitted[2:].tolist() == counts()["y"][2:].tolist()
    new = pd.DataFrame({"x": [0.0, 1.0], "g": ["a", "b"], "y": [3, 4]}, index=[7, 9])
    assert outcome(model, new).tolist() == [3.0, 4.0]
    with pytest.raises(SpecError, match=r"^new data has no column 'y' \(the outcome\): "
                       r"residuals need the observed outcome of each row$"):
        outcome(model, new.drop(columns="y"))


@pytest.fixture(scope="module")
def slopes_fit():
    # the program of tests/test_summary.py's fit (per-level statistics, non-centered)
    model = sb.Model("y ~ x + C(shop) + (1 + x | g)", slopes(), parameterization="noncentered")
    # 12 significant figures: predictions then match sums of the draws to 1e-6
    return model, model.fit(chains=2, iter_warmup=300, iter_sampling=300, seed=1, sig_figs=12)


def population(model, post, x: float, big: bool) -> np.ndarray:
    b = post["b"].values
    return post["b_Intercept"].values + b[..., 0] * x + b[..., 1] * (0.0 if big else 1.0)


@pytest.mark.slow
def test_known_levels_use_their_fitted_effects(slopes_fit) -> None:
    model, fit = slopes_fit
    pred = fit.predict(NEW.head(2), seed=2).predictions
    assert pred["eta"].dims == ("chain", "draw", "row")
    assert pred["row"].values.tolist() == [10, 11]
    post = fit.to_arviz().posterior
    for row, (level, x, big) in enumerate([(0, 0.5, True), (9, 1.0, False)]):
        r = post["r_g"].values[..., level, :]  # deviations at x = 0: x as given
        expected = population(model, post, x, big) + r[..., 0] + r[..., 1] * x
        np.testing.assert_allclose(pred["eta"].values[..., row], expected, atol=1e-4)
    np.testing.assert_array_equal(pred["mu"].values, pred["eta"].values)


@pytest.mark.slow
def test_new_levels_get_zero_or_a_draw_from_the_fitted_sds(slopes_fit) -> None:
    model, fit = slopes_fit
    post = fit.to_arviz().posterior
    new = NEW.iloc[2:].assign(x=0.0)  # at x = 0 a new level adds its intercept alone
    zero = fit.predict(new, new_levels="zero", seed=3).predictions
    for row, big in enumerate([True, False]):
        np.testing.assert_allclose(zero["eta"].values[..., row],
                                   population(model, post, 0.0, big), atol=1e-4)
    drawn = fit.predict(new, new_levels="sample", seed=3).predictions
    pop = population(model, post, 0.0, True)
    spread = float(np.mean((drawn["eta"].values[..., 0] - pop) ** 2))
    expected = float(np.mean(post["sd_g"].values[..., 0] ** 2))
    assert spread == pytest.approx(expected, rel=0.25)
    noise = float(np.mean((drawn["y"].values - drawn["mu"].values) ** 2))
    assert noise == pytest.approx(float(np.mean(post["sigma"].values ** 2)), rel=0.2)


@pytest.mark.slow
def test_predicting_compiles_nothing(slopes_fit, monkeypatch, started_processes) -> None:
    """predict() runs the executable the fit ran: no stanc, make or C++ compiler, for the
    fitted rows and for new rows with unseen levels alike."""
    model, fit = slopes_fit
    model.compile()  # the fit's executable, from the cache
    builds: list[str] = []
    started = started_processes

    def no_build(code, *args, **kwargs):
        builds.append(code)
        raise AssertionError("predict compiled a program")

    monkeypatch.setattr(cache, "_build", no_build)
    new = fit.predict(NEW, seed=1).predictions
    fitted = fit.posterior_epred()
    assert builds == []
    tools = {Path(cmd[0]).name for cmd in started}
    assert not tools & {"make", "stanc", "g++", "c++", "cc1plus"}, started
    assert tools == {"model"}  # CmdStan's standalone generated quantities, per chain
    assert new["y"].shape == (2, 300, 4) and fitted.shape == (2, 300, len(slopes()))


def by_hand(model, post) -> np.ndarray:
    """Each fitted row's linear predictor per draw, from the posterior draws as the
    program defines it: Intercept + centered X b + the level's intercept and its slope
    times x as given."""
    X = model.spec.fixed.X
    b = post["b"].values
    J = model.spec.groups[0].index - 1
    r = post["r_g"].values
    x = model.spec.groups[0].Z[:, 1]
    return (post["Intercept"].values[..., None] + np.einsum("cdk,nk->cdn", b, X - X.mean(0))
            + r[..., J, 0] + r[..., J, 1] * x)


@pytest.mark.slow
def test_epred_of_the_fitted_rows_is_their_mean_by_hand(slopes_fit) -> None:
    model, fit = slopes_fit
    epred = fit.posterior_epred()
    assert epred.dims == ("chain", "draw", "row")
    assert epred["row"].values.tolist() == list(range(model.spec.n))
    assert epred["row"].dtype == np.int64
    np.testing.assert_allclose(epred.values, by_hand(model, fit.to_arviz().posterior),
                               rtol=0, atol=1e-6)
    np.testing.assert_array_equal(fit.posterior_linpred().values, epred.values)  # identity
    # the same rows passed as data: the same numbers, labelled by their index
    frame = slopes().set_index(np.arange(model.spec.n) * 2)
    again = fit.posterior_epred(frame)
    assert again["row"].values.tolist() == (np.arange(model.spec.n) * 2).tolist()
    np.testing.assert_allclose(again.values, epred.values, rtol=0, atol=1e-9)


@pytest.mark.slow
def test_posterior_predict_scatters_around_epred(slopes_fit) -> None:
    _, fit = slopes_fit
    draws = fit.posterior_predict(NEW.head(2), seed=7)
    epred = fit.posterior_epred(NEW.head(2))
    assert draws.dims == ("chain", "draw", "row") and draws["row"].values.tolist() == [10, 11]
    sigma = fit.to_arviz().posterior["sigma"].values
    noise = float(np.mean((draws.values - epred.values) ** 2))
    assert noise == pytest.approx(float(np.mean(sigma**2)), rel=0.2)
    same = fit.posterior_predict(NEW.head(2), seed=7)
    np.testing.assert_array_equal(same.values, draws.values)  # the seed fixes them


@pytest.mark.slow
def test_residuals_are_the_outcome_less_epred(slopes_fit) -> None:
    model, fit = slopes_fit
    residuals = fit.residuals()
    assert residuals.dims == ("chain", "draw", "row")
    np.testing.assert_allclose(residuals.values, model.spec.y - fit.posterior_epred().values,
                               rtol=0, atol=1e-12)
    new = slopes().iloc[[5, 6, 7]].set_index(pd.Index([30, 10, 20]))
    on_new = fit.residuals(new)
    assert on_new["row"].values.tolist() == [30, 10, 20]
    np.testing.assert_allclose(on_new.values,
                               new["y"].to_numpy() - fit.posterior_epred(new).values,
                               rtol=0, atol=1e-12)
    with pytest.raises(SpecError, match=r"^new data has no column 'y' \(the outcome\)"):
        fit.residuals(new.drop(columns="y"))


@pytest.fixture(scope="module")
def poisson_fit():
    """Counts with exposure; three rows have no outcome: they are predicted, not fitted."""
    model = sb.Model("y ~ x + offset(log(expo)) + (1 | g)", counts(missing=3), family="poisson")
    return model, model.fit(chains=2, iter_warmup=300, iter_sampling=200, seed=4)


@pytest.mark.slow
def test_poisson_predictions_carry_the_offset(poisson_fit) -> None:
    _, fit = poisson_fit
    new = pd.DataFrame({"x": [0.2, 0.2], "g": ["a", "a"], "expo": [1.0, 3.0]})
    pred = fit.predict(new, seed=5).predictions
    eta = pred["eta"].values
    np.testing.assert_allclose(eta[..., 1] - eta[..., 0], np.log(3.0), atol=1e-4)
    np.testing.assert_allclose(pred["mu"].values, np.exp(eta), rtol=1e-4)
    assert float(pred["y"].values[..., 1].mean()) == pytest.approx(
        float(pred["mu"].values[..., 1].mean()), rel=0.15)


@pytest.mark.slow
def test_linpred_and_epred_differ_by_the_inverse_link(poisson_fit) -> None:
    model, fit = poisson_fit
    linpred, epred = fit.posterior_linpred(), fit.posterior_epred()
    assert linpred.shape == epred.shape == (2, 200, model.spec.n)
    np.testing.assert_allclose(epred.values, np.exp(linpred.values), rtol=2e-5)
    assert np.isfinite(epred.values).all()  # rows with no outcome are predicted too
    post = fit.to_arviz().posterior
    J = model.spec.groups[0].index - 1
    by_hand = (post["b_Intercept"].values[..., None] + post["b"].values[..., :1]
               * model.spec.fixed.X[:, 0] + post["r_g"].values[..., J]
               + np.log(counts()["expo"].to_numpy()))
    np.testing.assert_allclose(linpred.values, by_hand, rtol=0, atol=1e-4)
    draws = fit.posterior_predict(seed=3)
    assert (draws.values == np.round(draws.values)).all() and (draws.values >= 0).all()
    residuals = fit.residuals()
    assert np.isnan(residuals.values[..., :3]).all()  # no outcome, no residual
    np.testing.assert_allclose(residuals.values[..., 3:],
                               model.spec.y[3:] - epred.values[..., 3:], rtol=0, atol=1e-9)


def test_the_new_rows_are_a_part_like_the_others() -> None:
    """The prediction block is a part: its data, outputs and coords come from it, and the
    program skeleton renders it through the same per-part loop as every other part."""
    model = sb.Model("y ~ x + (1 | g)", slopes())
    part = model.plan.prediction
    assert part in model.plan.parts and part.kind == "prediction"
    assert {o.name: o.dims for o in part.outputs()} == {
        "eta_new": ("new_row",), "mu_new": ("new_row",), "y_new": ("new_row",)}
    assert model.program.schema.dims["y_new"] == ["new_row"]
    assert model.program.schema.coords["new_row"] == []
    assert set(no_rows(model.plan)) == set(part.data()) and model.stan_data()["N_new"] == 0
    skeleton = (render.template_dir() / "program.stan.j2").read_text()
    assert re.findall(r"prediction\.\w+\(", skeleton) == []  # no macro called by name
