"""The ``stanbhm`` console script."""

from __future__ import annotations

import pytest

import stanbhm as sb
from stanbhm import cli, toolchain


def test_toolchain_command_reports_installation(cmdstan, capsys):
    assert cli.main(["toolchain"]) == 0
    out = capsys.readouterr().out
    assert f"CmdStan:   {cmdstan}" in out
    assert "version:   2.39.0" in out
    missing = toolchain.opencl_missing()
    if missing is None:
        assert "OpenCL builds: available" in out
        for dev in toolchain.devices():
            assert dev.name in out
    else:
        assert f"OpenCL builds: unavailable: {missing}" in out


def test_toolchain_command_fails_clearly_on_a_bad_path(tmp_path, capsys):
    assert cli.main(["toolchain", "--path", str(tmp_path)]) == 1
    assert "has no executable bin/stanc" in capsys.readouterr().err


def test_code_command_prints_the_program(eight_schools_df, tmp_path, capsys):
    import stanbhm as sb

    csv = tmp_path / "es.csv"
    eight_schools_df.to_csv(csv, index=False)
    formula = "y | se(sigma) ~ 1 + (1 | school)"
    assert cli.main(["code", formula, "--data", str(csv), "--parameterization", "centered"]) == 0
    out = capsys.readouterr().out
    want = sb.Model(formula, eight_schools_df, parameterization="centered").stan_code()
    assert out == want


def test_code_command_accepts_per_factor_parameterization(eight_schools_df, tmp_path, capsys):
    csv = tmp_path / "es.csv"
    eight_schools_df.to_csv(csv, index=False)
    assert cli.main(["code", "y | se(sigma) ~ 1 + (1 | school)", "--data", str(csv),
                     "--parameterization", "school=centered"]) == 0
    assert "school: centered" in capsys.readouterr().out


@pytest.mark.slow
def test_fit_command_prints_a_summary(eight_schools_df, tmp_path, capsys):
    csv = tmp_path / "es.csv"
    eight_schools_df.to_csv(csv, index=False)
    assert cli.main(["fit", "y | se(sigma) ~ 1 + (1 | school)", "--data", str(csv),
                     "--parameterization", "noncentered", "--chains", "2",
                     "--iter-warmup", "300", "--iter-sampling", "400",
                     "--prior", "sd_school=normal(0, 5)"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(" Family: gaussian\n")
    assert "  Draws: 2 chains, each with 300 warmup and 400 draws; total draws = 800\n" in out
    assert "~school (Number of levels: 8)\n" in out and "\nsd(Intercept) " in out
    assert "r_school" not in out  # levels are ranef()'s, not the summary's
    assert "Draws were sampled using NUTS: divergent transitions " in out


def test_code_command_accepts_a_fraction_per_term(eight_schools_df, tmp_path, capsys):
    csv = tmp_path / "es.csv"
    eight_schools_df.to_csv(csv, index=False)
    assert cli.main(["code", "y | se(sigma) ~ 1 + (1 | school)", "--data", str(csv),
                     "--parameterization", "school=0.5"]) == 0
    out = capsys.readouterr().out
    assert "parameterization of school: partially centered, c = 0.5" in out
    assert "vector<offset=0.5 * Intercept, multiplier=pow(sd_school, 0.5)>" in out


def test_version_is_the_package_version(capsys):
    import stanbhm as sb

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"stanbhm {sb.__version__}\n"


def test_toolchain_install_reuses_the_built_toolchain(cmdstan, capsys):
    assert cli.main(["toolchain", "install"]) == 0
    captured = capsys.readouterr()
    assert f"CmdStan:   {cmdstan}" in captured.out
    assert "building the Stan toolchain" not in captured.err


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["code", "y ~ 1", "--data", "nope.csv"], 1,
     "stanbhm: no data file 'nope.csv' (--data takes a CSV file)\n"),
    (["code", "y ~ 1 + (1 | scool)", "--data", "es.csv"], 1,
     "stanbhm: column 'scool' (used in group term (1 | scool)) is not in the data; available "
     "columns: school, y, sigma\n"),
    (["code", "y ~ 1 + (1 | school", "--data", "es.csv"], 1,
     "stanbhm: unclosed '(' at position 9 in formula:\n  y ~ 1 + (1 | school\n"
     "          ^\n"),
    (["fit", "y ~ 1", "--data", "es.csv", "--chains", "0"], 2,
     "stanbhm: fit(method='sample'): chains=0 must be at least 1\n"),
    (["fit", "y ~ 1", "--data", "es.csv", "--prior", "b"], 2,
     "stanbhm: --prior takes KEY=DISTRIBUTION, e.g. b=normal(0,1); not 'b'\n"),
    (["fit", "y ~ 1", "--data", "es.csv", "--method", "optimize", "--chains", "2"], 2,
     "stanbhm: --chains applies to --method sample only\n"),
    (["code", "a ~ b", "--data", "bad.csv"], 1,
     "stanbhm: cannot read bad.csv as CSV: Error tokenizing data. C error: EOF inside string "
     "starting at row 1\n"),
])
def test_user_errors_are_one_message_and_an_exit_code(eight_schools_df, tmp_path, monkeypatch,
                                                      capsys, argv, code, message):
    """No traceback, and nothing compiles before the arguments are checked."""
    from stanbhm.model import Model

    monkeypatch.chdir(tmp_path)
    eight_schools_df.to_csv("es.csv", index=False)
    (tmp_path / "bad.csv").write_text('a,b\n1,"2\n')
    monkeypatch.setattr(Model, "compile", lambda self: pytest.fail("compiled"))
    assert cli.main(argv) == code
    captured = capsys.readouterr()
    assert captured.err == message
    assert captured.out == ""


def test_a_failed_cmdstan_run_is_one_message(eight_schools_df, tmp_path, monkeypatch, capsys):
    """Model.fit's CmdStanError (its message tested in test_results) prints as one line
    and CmdStan's own lines under it, exit 1."""
    from stanbhm.model import Model

    def fails(self, *args, **kwargs):
        raise sb.CmdStanError("CmdStan's sample failed:\nException: lb_free: Lower bounded "
                              "variable is -1")

    monkeypatch.setattr(Model, "fit", fails)
    monkeypatch.chdir(tmp_path)
    eight_schools_df.to_csv("es.csv", index=False)
    assert cli.main(["fit", "y ~ 1", "--data", "es.csv"]) == 1
    assert capsys.readouterr().err == ("stanbhm: CmdStan's sample failed:\n"
                                       "  Exception: lb_free: Lower bounded variable is -1\n")
