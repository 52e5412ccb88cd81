"""The ``stanbhm`` console script."""

from __future__ import annotations

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
