"""The retail suite: the NumPyro model it times is stanbhm's program (log densities a
constant apart, gradients equal, in both parameterizations), and the suite runs end to
end on a few stores and days, leaving its tables (the numbers are not checked). NumPyro
is an optional extra (``peers``): without it the NumPyro model's tests are skipped and
the suite runs its stanbhm rows and says it left NumPyro's out."""

from __future__ import annotations

import numpy as np
import pytest

from stanbhm import bench
from stanbhm.bench.harness import read
from stanbhm.bench.suites import retail as suite
from stanbhm.datasets import retail

#: Whether NumPyro's rows run here (the ``peers`` extra installed).
PEERS = suite.numpyro_missing() is None
needs_numpyro = pytest.mark.skipif(not PEERS, reason="NumPyro is not installed (peers extra)")

#: A few stores and days: lme4's rule drops collinear seasonal columns of X here, which
#: the NumPyro model must follow too.
STORES, DAYS = 4, 40
#: --quick with every size shrunk to the tiny data and short runs.
TINY = {"stores": str(STORES), "days": str(DAYS), "ref_stores": str(STORES),
        "ref_days": str(DAYS), "warmup": "150", "draws": "150", "svi_steps": "1500",
        "svi_window": "250", "parameterization": "noncentered"}


@pytest.fixture(scope="module")
def data():
    df, _ = retail(seed=1, stores=STORES, days=DAYS)
    return df


def points(model, static: dict, arrays: dict, count: int = 4) -> list[dict]:
    """Constrained parameter values near the posterior's scale, as Stan's log_prob takes
    them (nested lists in the declared shapes)."""
    rng = np.random.default_rng(7)
    columns = arrays["Xc"].shape[1]
    found = []
    for _ in range(count):
        sd = np.exp(rng.normal(-1.5, 0.5, suite.EFFECTS))
        point = {"Intercept": float(arrays["location_Intercept"] + rng.normal(0, 0.3)),
                 "b": rng.normal(0, 0.1, columns), "sd_store": sd,
                 "phi": float(np.exp(rng.normal(2, 0.3)))}
        if static["centered"]:
            point["centered_store"] = rng.normal(0, 1, (static["stores"], suite.EFFECTS)) * sd
        else:
            point["z_store"] = rng.normal(0, 1, (suite.EFFECTS, static["stores"]))
        found.append(point)
    return found


def stan_log_prob(model, point: dict, jacobian: bool):
    params = {k: np.asarray(v).tolist() for k, v in point.items()}
    return model.compile().log_prob(params=params, data=model.stan_data(), jacobian=jacobian,
                                    sig_figs=18).iloc[0]


@pytest.mark.slow
@needs_numpyro
@pytest.mark.parametrize("parameterization", ["noncentered", "centered"])
def test_numpyro_model_is_the_stan_program(data, parameterization):
    """At several points the NumPyro model's log joint (constrained, no Jacobian) and its
    potential (unconstrained, Jacobian included) are the Stan program's ``log_prob`` a
    constant apart, and the potential's gradient, the function the gradient section
    times, is Stan's, coordinate by coordinate (log for the sds and phi in both)."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import log_density, potential_energy

    model = suite.stanbhm_model(data, parameterization)
    suite.check_program(model)
    arrays, static = suite.numpyro_data(model)
    assert static["centered"] is (parameterization == "centered")
    assert arrays["Xc"].shape[1] < 22, "the tiny data should drop collinear columns"
    effects = "centered_store" if static["centered"] else "z_store"
    gaps, jacobian_gaps, scale = [], [], 0.0
    with jax.enable_x64(True):
        numpyro = suite.numpyro_model(**static)
        d = suite.device_arrays(arrays, x64=True)
        value_and_grad = jax.value_and_grad(
            lambda p: potential_energy(numpyro, (d,), {}, p))
        for point in points(model, static, arrays):
            constrained = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in point.items()}
            mine = float(log_density(numpyro, (d,), {}, constrained)[0])
            theirs = stan_log_prob(model, point, jacobian=False)
            gaps.append(mine - float(theirs["lp__"]))
            scale = max(scale, abs(mine))

            unconstrained = {k: (jnp.log(v) if k in ("sd_store", "phi") else v)
                             for k, v in constrained.items()}
            energy, grad = value_and_grad(unconstrained)
            row = stan_log_prob(model, point, jacobian=True)
            jacobian_gaps.append(-float(energy) - float(row["lp__"]))
            # Stan's unconstrained vector: declaration order, a matrix by columns, an
            # array of row vectors row after row
            order = ["Intercept", "b", "sd_store", effects, "phi"]
            flat = [np.ravel(np.asarray(grad[k]), order="F" if k == "z_store" else "C")
                    for k in order]
            ours = -np.concatenate([np.atleast_1d(f) for f in flat])
            stan = row[[c for c in row.index if c.startswith("g_")]].to_numpy(dtype=float)
            np.testing.assert_allclose(ours, stan, rtol=1e-7, atol=1e-7 * np.abs(stan).max())
    for found in (gaps, jacobian_gaps):
        assert max(found) - min(found) < 1e-8 * scale, (found, scale)


@pytest.mark.slow
def test_retail_suite_runs_end_to_end(tmp_path, capsys):
    """The suite at the tiny sizes: every program's row is in its table, the ratios are
    computed from the table's figures, NumPyro's rows are there in both precisions, every
    approximation has its figures or its error, ADVI's row says whether CmdStan found it
    converged (on so little data it often does not), and the agreement table pairs the
    approximations that ran."""
    run = bench.run_suite("retail", quick=True, out=tmp_path, repeat=1, overrides=TINY)
    data = read(tmp_path / "retail-quick.json")
    assert data["options"] == bench.options_for("retail", True, TINY)
    tables = {t["name"]: t for t in data["tables"]}
    assert list(tables) == ["gradient", "approximations", "approximations_full", "agreement"]
    gradient = {r["program"]: r for r in tables["gradient"]["rows"]}
    threaded = "stanbhm block products, 2 threads"
    peers = ["NumPyro float32", "NumPyro float64"] if PEERS else []
    assert list(gradient) == ["stanbhm gathers", "stanbhm block products", threaded, *peers]
    for row in gradient.values():
        assert row["grad_ms"] > 0
    assert gradient["stanbhm block products"]["speedup over gathers"] == pytest.approx(
        gradient["stanbhm gathers"]["grad_ms"] / gradient["stanbhm block products"]["grad_ms"])
    assert "block products: for store" in gradient[threaded]["passes"]
    assert "block products: not used" in gradient["stanbhm gathers"]["passes"]
    assert "block products: for store" in gradient["stanbhm block products"]["passes"]
    met = [t["met"] for t in tables["gradient"]["targets"]]
    assert met[0] in (True, False) and all(m in (True, False) for m in met[1:]) == PEERS
    reference, full = (t for t in run.tables if t.name.startswith("approximations"))
    programs = [r["program"] for r in reference.rows]
    assert programs == ["NUTS", "stanbhm pathfinder", "stanbhm variational",
                        *(["NumPyro SVI"] if PEERS else [])]
    assert bool(data["skipped"]) != PEERS  # without NumPyro, both sections say so
    if not PEERS:
        assert data["skipped"][0].startswith("numpyro is not installed (pip install "
                                             "'stanbhm[peers]')")
        return
    assert gradient[threaded]["x NumPyro float64"] == pytest.approx(
        gradient[threaded]["grad_ms"] / gradient["NumPyro float64"]["grad_ms"])
    assert [r["program"] for r in full.rows] == programs[1:]
    for row in reference.rows[1:]:
        if row.get("seconds") is None:
            assert row["notes"], row  # failed, and says why
            continue
        assert row["seconds"] > 0
        for column in suite.ACCURACY:
            assert np.isfinite(row[column]), (row, column)
    svi = reference.rows[-1]
    assert svi["seconds"] > svi["jit_s"] > 0, svi
    assert 0 < svi["steps"] <= 1500 and svi["steps"] % 250 == 0, svi
    advi = reference.rows[2]
    assert advi.get("seconds") is None or advi["notes"].startswith("meanfield; "), advi
    ran = [r["program"] for r in full.rows if r.get("seconds") is not None]
    pairs = [r["program"] for r in tables["agreement"]["rows"]]
    assert pairs == [f"{a} vs {b}" for i, a in enumerate(ran) for b in ran[i + 1:]]
    assert "## retail (quick)" in capsys.readouterr().out


def test_store_covariates_are_the_terms_own_where_the_program_builds_them_from_x():
    """Where no column is dropped, the program builds Z from X and the data file has no
    Z_store: the NumPyro model's covariates are then the ones and X's columns, the
    term's own Z row for row."""
    df, _ = retail(seed=1, stores=30, days=200)
    model = suite.stanbhm_model(df, "auto")
    assert model.plan.groups[0].z_from_x == tuple(range(23))
    assert "Z_store" not in model.stan_data()
    arrays, _ = suite.numpyro_data(model)
    fitted = model.spec.observed
    np.testing.assert_array_equal(arrays["Z"], model.spec.groups[0].Z[fitted])


def test_compare_reads_mean_differences_in_sds_and_sd_ratios():
    reference = {"Intercept": (np.array(1.0), np.array(0.5)),
                 "b": (np.array([0.0, 2.0]), np.array([1.0, 1.0])),
                 "sd_store": (np.array([1.0, 1.0, 1.0]), np.array([0.1, 0.2, 0.4])),
                 "phi": (np.array(8.0), np.array(2.0))}
    mine = {"Intercept": (np.array(1.5), np.array(0.25)),
            "b": (np.array([0.5, 2.0]), np.array([0.5, 2.0])),
            "sd_store": (np.array([1.1, 1.0, 0.6]), np.array([0.1, 0.1, 0.4])),
            "phi": (np.array(7.0), np.array(1.0))}
    found = suite.compare(mine, reference)
    assert found == pytest.approx({"coef_err": 1.0, "coef_sd": 0.5, "sd_err": 1.0,
                                   "sd_sd": 1.0, "phi_err": 0.5})
    larger = suite.compare(mine, reference, scale="larger")
    assert larger["coef_err"] == pytest.approx(1.0) and larger["phi_err"] == pytest.approx(0.5)
