"""Files appear whole or not at all: the old contents survive a failed write, and no
scratch file is left behind either way."""

from __future__ import annotations

import os

import pytest

from stanbhm import atomic


def test_write_replaces_text_and_bytes(tmp_path) -> None:
    target = tmp_path / "sub" / "model.stan"
    assert atomic.write(target, "data { }\n") == target
    assert target.read_text() == "data { }\n"
    atomic.write(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert [p.name for p in target.parent.iterdir()] == ["model.stan"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failed_write_keeps_the_old_file(tmp_path) -> None:
    target = tmp_path / "draws.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk full"), atomic.replacing(target) as scratch:
        assert scratch.parent == tmp_path and scratch.suffix == ".csv"
        scratch.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["draws.csv"]
