"""The ``stanbhm`` console script."""

from __future__ import annotations

import pytest

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
                     "--parameterization", "noncentered", "--chains", "2"]) == 0
    out = capsys.readouterr().out
    assert "sd_school" in out and "r_school[A]" in out and "rhat_max:" in out


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
