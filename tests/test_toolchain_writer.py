"""The launcher writes Stan CSV through its own writer (`launcher/csv_writer.hpp`, faster
than Stan's per-draw stringstream); its bytes must be Stan's writer's, to the digit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stanbhm.toolchain.paths import launcher_source_dir

pytestmark = pytest.mark.slow

CHECK = Path(__file__).resolve().parent / "cpp" / "csv_writer_check.cpp"


def test_csv_writer_writes_stans_bytes(cmdstan: Path, tmp_path: Path) -> None:
    """Headers, comments, 2000 random rows and the edge values (signed zeros, infinities,
    NaNs, subnormals, rounding ties) at every sig_figs, and Eigen rows and matrices."""
    exe = tmp_path / "check"
    subprocess.run(["g++", "-std=c++17", "-O1", "-isystem", str(cmdstan / "include"),
                    "-I", str(launcher_source_dir()), str(CHECK), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    proc = subprocess.run([str(exe), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "identical\n"
