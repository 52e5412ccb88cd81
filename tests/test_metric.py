"""The inverse metric warmup starts from (`stanbhm.metric`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_render import ALL, GOLDEN, _flags, _stanc, build

import stanbhm as sb
from stanbhm import metric
from stanbhm.datasets import election, election_formula
from stanbhm.information import level_information
from stanbhm.plan import PlanError


@pytest.mark.parametrize("name", ALL)
def test_the_guess_names_every_parameter_in_the_programs_order(name, cmdstan,
                                                               eight_schools_df):
    """CmdStan reads the metric by position, so its entries follow the parameters block
    (the sizes are checked by CmdStan itself in every sampling test: a metric of the
    wrong length is refused)."""
    model = build(name, eight_schools_df)
    info = json.loads(_stanc(cmdstan, *_flags(name), "--info",
                             str(GOLDEN / f"{name}.stan")).stdout)
    assert model.initial_metric.names == tuple(info["parameters"])
    assert np.all(np.isfinite(model.initial_metric.vector))
    assert np.all(model.initial_metric.vector > 0)


def by_name(model: sb.Model) -> dict[str, np.ndarray]:
    """The guessed variances per parameter."""
    m = model.initial_metric
    return dict(zip(m.names, m.variances, strict=True))


def balanced(levels: int = 40, per_level: int = 25, tau: float = 0.5, sigma: float = 1.0,
             seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(levels), per_level)
    y = 2.0 + rng.normal(0, tau, levels)[g] + rng.normal(0, sigma, len(g))
    return pd.DataFrame({"y": y, "g": [f"g{i}" for i in g]})


def test_a_balanced_gaussian_term_gets_the_normal_models_variances() -> None:
    """Balanced levels, tau^2 and sigma^2 known to the estimate: each level's posterior
    variance 1 / (n / sigma^2 + 1 / tau^2), the log of tau's 1 / (2 J w^2), log sigma's
    1 / (2 N) and the intercept's tau^2 / J + sigma^2 / N, in the units each is sampled."""
    df = balanced()
    model = sb.Model("y ~ 1 + (1 | g)", df, parameterization="centered",
                     rewrites="none")
    guess = by_name(model)
    tau2 = level_information(model.spec, model.spec.groups[0])[0].tau2
    assert tau2 > 0
    n, J = 25, 40
    resid = df.y - df.groupby("g").y.transform("mean")
    sigma2 = float((resid**2).sum() / (len(df) - J))
    precision = n / sigma2
    np.testing.assert_allclose(guess["centered_g"], 1 / (precision + 1 / tau2), rtol=0.02)
    w = precision * tau2 / (1 + precision * tau2)
    assert guess["sd_g"][0] == pytest.approx(1 / (2 * J * w**2), rel=0.02)
    assert guess["sigma"][0] == pytest.approx(1 / (2 * len(df)))
    assert guess["Intercept"][0] == pytest.approx((tau2 + 1 / precision) / J, rel=0.02)


def test_noncentered_effects_are_guessed_in_standard_units() -> None:
    df = balanced(levels=8, per_level=2, tau=0.3, sigma=2.0)
    model = sb.Model("y ~ 1 + (1 | g)", df, parameterization="noncentered",
                     rewrites="none")
    info = level_information(model.spec, model.spec.groups[0])
    tau2 = info[0].tau2
    guess = by_name(model)
    np.testing.assert_allclose(guess["z_g"], 1 / (1 + info[0].precision * tau2))
    assert guess["sd_g"][0] <= 1.0  # few, weakly informed levels: the prior's scale


def test_terms_without_a_rule_keep_the_unit_metric() -> None:
    """Correlations, the horseshoe and a term whose tau^2 estimate is 0 keep CmdStan's 1."""
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"x": rng.normal(size=200), "g": rng.integers(0, 10, 200).astype(str)})
    df["y"] = df.x + rng.normal(size=200)  # no level effects: tau^2 estimate 0
    model = sb.Model("y ~ x + (1 + x | g)", df, parameterization="noncentered",
                     rewrites="none")
    guess = by_name(model)
    assert list(guess) == ["Intercept", "b", "sd_g", "L_g", "z_g", "sigma"]
    assert len(guess["L_g"]) == 1 and guess["L_g"][0] == 1.0
    assert len(guess["z_g"]) == 20
    horseshoe = sb.Model("y ~ x", df, priors={"b": "horseshoe()"})
    names = horseshoe.initial_metric.names
    assert names == ("Intercept", "hs_z", "hs_global", "hs_local", "hs_slab", "sigma")
    assert np.all(horseshoe.initial_metric.vector[1:-1] == 1.0)


def test_the_table_shows_sds_per_parameter() -> None:
    table = sb.Model("y ~ 1 + (1 | g)", balanced(), parameterization="centered",
                     rewrites="none").initial_metric.table()
    assert list(table.index) == ["Intercept", "sd_g", "centered_g", "sigma"]
    assert table["sigma"] == f"{np.sqrt(1 / 2000):.3g}"


def test_other_settings_are_refused_by_name() -> None:
    with pytest.raises(PlanError) as err:
        sb.Model("y ~ 1 + (1 | g)", balanced(), initial_metric="identity")
    assert str(err.value) == ("initial_metric='identity': use 'auto' (warmup starts from "
                              "each parameter's approximate posterior variance) or 'unit' "
                              "(CmdStan's default)")


def test_warmup_from_the_guess_has_a_shorter_initial_buffer() -> None:
    """Started from the guess, the metric windows begin after `metric.INIT_BUFFER`
    iterations; a buffer the caller passes, or CmdStan's unit start, keeps its own."""
    model = sb.Model("y ~ 1 + (1 | g)", balanced())
    guessed = model.sample_arguments({})
    assert guessed["adapt_init_phase"] == metric.INIT_BUFFER == 25
    np.testing.assert_array_equal(guessed["inv_metric"], model.initial_metric.vector)
    assert model.sample_arguments({"adapt_init_phase": 75})["adapt_init_phase"] == 75
    unit = sb.Model("y ~ 1 + (1 | g)", balanced(), initial_metric="unit")
    assert "adapt_init_phase" not in unit.sample_arguments({})
    assert "adapt_init_phase" not in model.sample_arguments({}, prior_only=True)


def _metric_file(fit) -> bool:
    return any("metric_file" in arg for arg in fit.cmdstan.runset.cmd(0))


@pytest.mark.slow
def test_warmup_starts_from_the_guess_and_takes_fewer_steps(cmdstan) -> None:
    """The bernoulli election model at 3000 rows, 2 chains x 200 warmup iterations:
    started from the guess, warmup took about half the leapfrog steps of the unit start
    (10.6k against 22.4k over both chains when this was written). Only the start
    differs, so the guess is also close to what adaptation ends with."""
    df, _ = election(rows=3000, family="bernoulli", covariates=10)
    steps = {}
    for start in ("auto", "unit"):
        model = sb.Model(election_formula(10), df, family="bernoulli", log_lik=False,
                         y_rep=False, initial_metric=start)
        # only warmup is checked: 10 draws after it (100 cost a quarter of the steps)
        fit = model.fit(chains=2, iter_warmup=200, iter_sampling=10, save_warmup=True,
                        seed=4, show_progress=False, advice=False)
        assert _metric_file(fit) == (start == "auto")
        assert any("init_buffer=25" in arg for arg in fit.cmdstan.runset.cmd(0)) == \
            (start == "auto")
        run = fit.cmdstan
        draws = run.draws(inc_warmup=True)[:200, :, run.column_names.index("n_leapfrog__")]
        steps[start] = draws.sum()
        if start == "auto":
            adapted = np.asarray(run.inv_metric[0])
            ratio = np.sqrt(model.initial_metric.vector / adapted)
            assert 0.67 < np.median(ratio) < 1.5
            assert np.percentile(ratio, 5) > 0.4 and np.percentile(ratio, 95) < 2.5
            prior = model.fit(chains=1, iter_warmup=50, iter_sampling=20, prior_only=True,
                              seed=4, show_progress=False)
            assert not _metric_file(prior)  # the guess is the posterior's, not the prior's
    assert steps["auto"] < 0.75 * steps["unit"]


def test_a_level_without_observed_rows_does_not_inform_the_intercept() -> None:
    df = balanced()
    unseen = pd.DataFrame({"y": [np.nan] * 3, "g": ["unseen"] * 3})
    both = sb.Model("y ~ 1 + (1 | g)", pd.concat([df, unseen], ignore_index=True),
                    parameterization="centered", rewrites="none")
    alone = sb.Model("y ~ 1 + (1 | g)", df, parameterization="centered", rewrites="none")
    assert both.initial_metric.variances[0][0] == pytest.approx(
        alone.initial_metric.variances[0][0], rel=1e-6)
    tau2 = level_information(both.spec, both.spec.groups[0])[0].tau2
    assert both.initial_metric.variances[2][-1] == pytest.approx(tau2)  # its prior, centered
