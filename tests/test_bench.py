"""``stanbhm bench``: the harness's ratios, targets and files, the CLI, the report, the
suites run end to end (slow) at the smallest size that runs their parts, checked for
shape and for ratios that their own figures give, not for the numbers, and every
recorded run in docs/bench checked the same way (the rewrites suite, whose ten programs
cost a cold test run three minutes, is checked on its recorded runs alone)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from stanbhm import bench
from stanbhm.bench.harness import Ratio, Run, Table, Target, Timing, read, write
from stanbhm.bench.report import report
from stanbhm.bench.suites import election as election_suite
from stanbhm.cli import main
from stanbhm.datasets import election, election_formula
from stanbhm.toolchain import cache as toolchain_cache

DOCS_BENCH = Path(__file__).resolve().parent.parent / "docs" / "bench"


def test_ratio_against_baseline_row_within_groups_inverted():
    rows = [{"N": 10, "program": "plain", "ms": 4.0}, {"N": 10, "program": "fast", "ms": 1.0},
            {"N": 20, "program": "plain", "ms": 9.0}, {"N": 20, "program": "fast", "ms": 3.0}]
    Ratio("plain / this", "ms", "plain", invert=True, group="N").compute(rows)
    assert [r["plain / this"] for r in rows] == [1.0, 4.0, 1.0, 3.0]


def test_ratio_first_baseline_only_named_rows_and_own_column():
    rows = [{"program": "fast", "ms": 2.0, "other": 8.0}, {"program": "plain", "ms": 6.0},
            {"program": "fast", "ms": 3.0, "other": 0.0}]
    Ratio("vs first", "ms", "fast", of="fast").compute(rows)
    assert [r["vs first"] for r in rows] == [1.0, None, 1.5]
    Ratio("own", "other", over="ms").compute(rows)
    assert [r["own"] for r in rows] == [4.0, None, 0.0]


def test_ratio_of_timings_uses_medians_and_missing_gives_none():
    rows = [{"program": "a", "s": Timing([1.0, 3.0, 2.0]).as_json()}, {"program": "b", "s": None},
            {"program": "c", "s": 0.5}]
    Ratio("x a", "s", "a").compute(rows)
    assert [r["x a"] for r in rows] == [1.0, None, 0.25]


def test_target_reads_the_last_matching_row():
    rows = [{"program": "fast", "r": 0.5}, {"program": "fast", "r": 1.5}]
    target = Target("fast within 1.2", "fast", "r", "<=", 1.2)
    target.check(rows)
    assert (target.value, target.met) == (1.5, False)
    missing = Target("absent", "slow", "r", ">=", 1)
    missing.check(rows)
    assert (missing.value, missing.met) == (None, None)


def test_table_markdown_is_exact():
    table = Table("t", "Title", {"program": "program", "s": "seconds"},
                  ratios=[Ratio("x a", "s", "a")],
                  targets=[Target("b at least 2x a", "b", "x a", ">=", 2.0)])
    table.add(program="a", s=Timing([2.0, 1.0, 4.0]))
    table.add(program="b", s=5.0)
    table.finish()
    assert table.markdown() == (
        "**Title**\n\n| program | seconds | x a |\n| --- | ---: | ---: |\n"
        "| a | 2.00 (1.00 to 4.00) | 1.00 |\n| b | 5.00 | 2.50 |\n\n"
        "Target: b at least 2x a: met (2.50).")


def test_write_and_read_round_trip(tmp_path):
    run = Run("toolchain", quick=True, repeat=1, command="stanbhm bench toolchain --quick")
    table = run.table("t", "T", {"program": "p", "v": "v"}, ratios=[Ratio("r", "v", "a")])
    table.add(program="a", v=2.0)
    table.add(program="b", v=3.0)
    table.finish()
    json_path, md_path = write(run, tmp_path)
    assert (json_path.name, md_path.name) == ("toolchain-quick.json", "toolchain-quick.md")
    data = read(json_path)
    assert data["tables"][0]["rows"][1]["r"] == 1.5
    assert data["machine"]["cores"] >= 1 and "stanbhm" in data["machine"]["versions"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toolchain-quick.json",
                                                         "toolchain-quick.md"]
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"schema": 99}))
    with pytest.raises(ValueError, match="not a stanbhm bench file of schema 1"):
        read(bad)


def test_options_defaults_quick_and_typed_overrides():
    options = bench.options_for("scale", True, {"rows": "5000", "full": "yes"})
    assert options["rows"] == 5000 and options["full"] is True and options["stores"] == 20
    assert bench.options_for("scale", False, {})["rows"] == 100_000
    with pytest.raises(ValueError, match="suite 'scale' has no option 'row'; its options: "
                                         "sections, rows, stores"):
        bench.options_for("scale", False, {"row": "1"})
    with pytest.raises(ValueError, match="option 'rows' takes a int, not 'many'"):
        bench.options_for("scale", False, {"rows": "many"})
    with pytest.raises(ValueError, match="option 'full' takes true or false, not 'maybe'"):
        bench.options_for("scale", False, {"full": "maybe"})


def test_cli_refuses_bad_suite_option_and_set(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "everything"])
    assert "invalid choice: 'everything'" in capsys.readouterr().err
    assert main(["bench", "scale", "--set", "rows"]) == 2
    assert "--set takes key=value, not 'rows'" in capsys.readouterr().err
    assert main(["bench", "scale", "--set", "sections=gpu"]) == 2
    assert ("unknown scale section(s) gpu; known: predictor, retail, marginal, counts, block, "
            "data") in \
        capsys.readouterr().err
    assert main(["bench", "scale", "extra"]) == 2
    assert main(["bench", "election", "--set", "chains=0"]) == 2
    assert "option 'chains' takes a positive count, not 0" in capsys.readouterr().err
    assert main(["bench", "election", "--set", "scale_b=auto,sometimes"]) == 2
    assert "option 'scale_b' takes auto or never (or both, comma-separated), not " \
        "auto,sometimes" in capsys.readouterr().err
    assert main(["bench", "election", "--set", "initial_metric=guess"]) == 2
    assert "option 'initial_metric' takes auto or unit (or both, comma-separated), not " \
        "guess" in capsys.readouterr().err


def test_election_fits_each_quadrature_point_count_and_compares_with_the_first_fit() -> None:
    """``respondent=none,quadrature`` with ``quadrature_points=7,1`` fits the exact program
    and one quadrature program per Q; the accuracy table's z are mean differences over
    the MCSEs combined, the largest named."""
    options = {**election_suite.DEFAULTS, "respondent": "none,quadrature",
               "quadrature_points": "7,1"}
    assert election_suite.variants(options) == [
        {"scale_b": "auto", "initial_metric": "auto", "respondent": "none"},
        {"scale_b": "auto", "initial_metric": "auto", "respondent": "quadrature",
         "quadrature_points": 7},
        {"scale_b": "auto", "initial_metric": "auto", "respondent": "quadrature",
         "quadrature_points": 1}]
    # a coordinate without Monte Carlo error (a constant) has no z
    exact = {"sd_respondent": (0.70, 0.003), "sd_state": (0.50, 0.004), "b[3]": (0.1, 0.001),
             "fixed": (1.0, 0.0)}
    laplace = {"sd_respondent": (0.66, 0.004), "sd_state": (0.50, 0.003), "b[3]": (0.1, 0.002),
               "fixed": (2.0, 0.0)}
    found = election_suite.agreement(laplace, exact)
    assert found["z_sd_respondent"] == pytest.approx(-0.04 / 0.005)
    assert found["z_sd_state"] == pytest.approx(0.0, abs=1e-9)
    assert found["z_sd_state_age"] is None
    assert (found["z_largest"], found["largest_at"]) == (pytest.approx(8.0), "sd_respondent")
    assert (found["sd_respondent"], found["reference_sd_respondent"]) == (0.66, 0.70)


def test_report_builds_the_page_and_plots(tmp_path):
    results = tmp_path / "results"
    run = Run("rewrites", quick=False, repeat=1, command="stanbhm bench rewrites")
    table = run.table("statistics", "grad", {"N": "N", "program": "program", "grad_ms": "ms"},
                      ratios=[Ratio("plain / this", "grad_ms", "plain", invert=True, group="N")])
    for n, plain, fast in ((10, 1.0, 0.5), (100, 10.0, 0.5)):
        table.add(N=n, program="plain", grad_ms=plain)
        table.add(N=n, program="fast", grad_ms=fast)
    run.load_after, run.seconds = 0.5, 12.0
    table.finish()
    write(run, results)
    quick = Run("rewrites", quick=True, repeat=1, command="stanbhm bench rewrites --quick")
    quick.load_after, quick.seconds = 0.5, 1.0
    write(quick, results)  # a quick run does not replace the full one
    # a later run with another table joins the page; its file needs its own name
    later = Run("rewrites", quick=False, repeat=1, command="stanbhm bench rewrites later")
    later.started = "2999-01-01T00:00:00+0000"
    cells = later.table("collapse", "cells", {"program": "program", "grad_ms": "ms"})
    cells.add(program="plain", grad_ms=3.0)
    later.load_after, later.seconds = 0.5, 2.0
    cells.finish()
    later_json, _ = write(later, tmp_path / "later")
    later_json.rename(results / "rewrites-later.json")
    docs = report([results], tmp_path / "docs" / "benchmarks.md")
    text = docs.read_text()
    assert "## rewrites\n" in text and "| 100 | fast | 0.5 | 20.0 |" in text
    assert text.count("## rewrites") == 1 and text.count("Command: `stanbhm bench rewrites") == 2
    assert text.index("| 100 | fast |") < text.index("**cells**") < text.index("## scale")
    assert "![grad](bench/rewrites_statistics.png)" in text
    assert (tmp_path / "docs" / "bench" / "rewrites_statistics.png").stat().st_size > 1000
    assert "## peers\n\nNot run yet: `stanbhm bench peers`." in text


def _check_ratios(table: dict) -> int:
    """Recompute every ratio of a written table from its figures; return how many."""
    checked = 0
    for spec in table["ratios"]:
        stored = [row[spec["name"]] for row in table["rows"]]
        rows = [{k: v for k, v in row.items() if k != spec["name"]} for row in table["rows"]]
        Ratio(**spec).compute(rows)
        for row, value in zip(rows, stored, strict=True):
            again = row[spec["name"]]
            assert (value is None) == (again is None)
            if value is not None:
                assert math.isclose(value, again, rel_tol=1e-12)
                checked += 1
    return checked


#: The suites run end to end: their --quick options with these ``--set`` overrides, the
#: smallest sizes and draw budgets that still run their programs, their tables and their
#: targets (the harness is tested, not the numbers; users' ``--quick`` keeps its sizes).
#: The scale suite runs its data section (no program) and its quadrature section, whose
#: program with the effects sampled is the election suite's; the others' programs are
#: checked by the tests of what they measure, and their tables on the recorded runs.
SMALL: dict[str, dict[str, str]] = {
    "toolchain": {"draws": "20"},
    "parameterization": {"cases": "eight_schools", "draws": "100"},
    "scale": {"sections": "data,quadrature", "stores": "4", "days": "30",
              "quadrature_rows": "600"},
    "peers": {"draws": "100"},
    "election": {"sizes": "600", "sizes_bernoulli": "600", "warmup": "100", "draws": "100"},
}
#: Suites checked on their recorded runs alone (`test_recorded_runs_recompute`).
#: The retail suite runs end to end in tests/test_bench_retail.py.
RECORDED_ONLY = ("rewrites", "retail")


def test_small_test_runs_are_options_of_every_suite_and_smaller_than_quick():
    """Every suite is run end to end or has a recorded run, the overrides are options of
    the suite's own (a renamed option fails here, not after a compile), and --quick is
    still the users' profile."""
    assert sorted([*SMALL, *RECORDED_ONLY]) == sorted(bench.SUITES)
    for suite in RECORDED_ONLY:
        assert (DOCS_BENCH / f"{suite}.json").exists(), suite
    for suite, overrides in SMALL.items():
        quick, small = bench.options_for(suite, True, {}), bench.options_for(suite, True,
                                                                            overrides)
        assert small != quick, suite
        for key in overrides:
            if isinstance(quick[key], int) and not isinstance(quick[key], bool):
                assert small[key] <= quick[key], (suite, key)


@pytest.mark.parametrize("path", sorted(DOCS_BENCH.glob("*.json")), ids=lambda p: p.stem)
def test_recorded_runs_recompute(path):
    """A recorded run (docs/bench, from `stanbhm bench`) reads as its schema, names its
    suite and machine, and every ratio and target it stored follows from its figures."""
    data = read(path)
    assert data["suite"] in bench.SUITES and data["tables"] and data["machine"]["cores"] >= 1
    checked = 0
    for table in data["tables"]:
        named = set(table["columns"]) | {r["name"] for r in table["ratios"]}
        assert table["rows"] and {t["column"] for t in table["targets"]} <= named
        checked += _check_ratios(table)
        for stored in table["targets"]:
            target = Target(**{k: stored[k] for k in ("text", "row", "column", "op",
                                                      "threshold", "key")})
            target.check(table["rows"])
            assert (target.value, target.met) == (stored["value"], stored["met"]), stored
    assert checked > 0 or data["skipped"]


@pytest.mark.slow
@pytest.mark.parametrize("suite", sorted(SMALL))
def test_suite_runs_end_to_end_and_writes_figures_and_computed_ratios(suite, tmp_path,
                                                                      monkeypatch, capsys):
    sets = [arg for key, value in SMALL[suite].items() for arg in ("--set", f"{key}={value}")]
    argv = ["bench", suite, "--quick", "--repeat", "1", *sets]
    monkeypatch.setattr(sys, "argv", ["stanbhm", *argv])
    assert main([*argv, "--out", str(tmp_path)]) == 0
    data = read(tmp_path / f"{suite}-quick.json")
    assert data["suite"] == suite and data["quick"] is True and data["repeat"] == 1
    assert data["seconds"] > 0 and data["load_after"] is not None
    assert data["options"] == bench.options_for(suite, True, SMALL[suite])
    assert data["command"] == "stanbhm " + " ".join(argv)
    # the run says whether its programs were the test build's (conftest.py turns it on)
    assert data["machine"]["test_build"] is toolchain_cache.in_test_build()
    assert data["tables"], "a suite must leave at least one table"
    ratios = sum(_check_ratios(t) for t in data["tables"])
    # without its comparison partner (lme4 not installed) a suite says so instead
    assert ratios > 0 or data["skipped"], "no ratio was computed and nothing was skipped"
    for table in data["tables"]:
        assert table["rows"]
        for target in table["targets"]:
            assert target["met"] in (True, False, None)
    if suite == "toolchain":  # its cold compile compiles (a cache hit once passed for it)
        seconds = {row["program"]: row["seconds"]["median"] for row in data["tables"][0]["rows"]}
        assert seconds["cold compile"] > max(1.0, 100 * seconds["cached compile"]), seconds
    markdown = (tmp_path / f"{suite}-quick.md").read_text()
    assert markdown.startswith(f"## {suite} (quick)\n\nMachine: ")
    assert markdown in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(election_suite.lme4_missing() is not None, reason="R with lme4 is not here")
def test_lme4_reference_reports_its_fit_and_stops_at_the_limit():
    """The lme4 reference gives its time, sds and R's peak memory, and a fit that runs
    past the limit (glmer's Laplace fit takes minutes on these rows) is stopped, its
    time then the limit."""
    df, _ = election(seed=1, rows=3000)
    found = election_suite.lme4_fit(df, election_formula(), "gaussian", limit=120.0)
    assert found["stopped"] is False and 0 < found["seconds"] < 120
    assert abs(found["sd respondent (Intercept)"] - 0.7) < 0.1  # the generator's 0.7
    assert 0.05 < found["memory_gb"] < 4
    df, _ = election(seed=1, rows=3000, family="bernoulli")
    stopped = election_suite.lme4_fit(df, election_formula(), "bernoulli", 1, limit=2.0)
    assert stopped["stopped"] is True and stopped["seconds"] == 2.0
    assert stopped["warnings"] == "stopped at the 2 s limit: the fit takes longer"


def test_peers_refuses_an_unknown_system():
    from stanbhm.bench.suites import peers

    run = Run("peers", quick=True, repeat=1, command="stanbhm bench peers --quick")
    with pytest.raises(ValueError, match=r"^unknown peer system\(s\) Stan; known: NumPyro, PyMC$"):
        peers.run(run, bench.options_for("peers", True, {"systems": "NumPyro,Stan"}))
    assert run.tables == []


def test_a_bar_in_a_cell_stays_in_its_cell():
    table = Table("t", "Title", {"program": "program", "warnings": "warnings"})
    table.add(program="lme4", warnings="failed with max|grad| = 0.5")
    table.finish()
    assert table.markdown().splitlines()[-1] == "| lme4 | failed with max\\|grad\\| = 0.5 |"


# the horseshoe case has more columns than rows: lme4's rank warning is its design
@pytest.mark.filterwarnings("ignore:fixed-effect columns")
def test_parameterization_suite_runs_the_peer_prior_cases_with_choices_they_take(capsys):
    """Auto once seemed to follow the sds' prior (issue 27, item 18), so the suite fits
    the 30-group regressions under the peers' priors beside the fixed choices. Plans
    only: a choice a case cannot take (half-centering a two-effect term) fails here
    rather than an hour into a full run."""
    from stanbhm import Model
    from stanbhm.bench.suites import parameterization as suite
    from stanbhm.bench.suites import peers

    every = suite.cases()
    assert str(bench.options_for("parameterization", False, {})["cases"]).split(",") == \
        list(every)
    assert every["regression_30_peer_priors"]["priors"] == peers.PRIORS
    assert every["regression_30_peer_priors"]["data"] is every["regression_30"]["data"]
    peer = every["peers_regression_30"]
    assert (peer["formula"], peer["priors"]) == ("y ~ 1 + x + (1 + x || g)", peers.PRIORS)
    assert peer["data"].equals(peers.case_data("regression_30")["df"])
    assert suite.choices(peer) == ("centered", "noncentered", "auto")
    assert suite.choices(every["regression_30_peer_priors"]) == suite.CHOICES
    for case in every.values():
        for choice in suite.choices(case):
            Model(case["formula"], case["data"], family=case.get("family", "gaussian"),
                  priors=case.get("priors"), parameterization=choice, log_lik=False,
                  y_rep=False, rewrites="none")
    assert main(["bench", "parameterization", "--set", "cases=regression_31"]) == 2
    assert "known: eight_schools, intercept_20x500, mixed_5x1000_50x3, regression_30, " \
        "regression_30_peer_priors, peers_regression_30, bernoulli_40" in capsys.readouterr().err
