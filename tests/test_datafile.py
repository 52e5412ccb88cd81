"""The data file: what CmdStanPy's writer would write, faster, and never half-written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cmdstanpy.utils import write_stan_json

from stanbhm.datafile import data_file, write_data


def sample_data() -> dict:
    rng = np.random.default_rng(2)
    return {
        "N": 5, "flag": True, "scale": np.float64(0.1), "count": np.int64(7),
        "y": rng.normal(size=5) * 1e-7, "J": rng.integers(1, 4, size=5),
        "X": rng.normal(size=(5, 3)), "Xf": np.asfortranarray(rng.normal(size=(5, 3))),
        "R": rng.normal(size=(2, 4, 3)), "empty": np.zeros((0, 3)), "mask": np.array([1, 0]) > 0,
        "small": np.float32(0.25),
    }


def test_the_file_reads_back_as_cmdstanpy_writes_it(tmp_path: Path) -> None:
    data = sample_data()
    ours = json.loads(write_data(tmp_path / "ours.json", data).read_text())
    write_stan_json(str(tmp_path / "theirs.json"), data)
    theirs = json.loads((tmp_path / "theirs.json").read_text())
    assert ours == theirs
    assert ours["X"] == data["X"].tolist() and ours["Xf"] == data["Xf"].tolist()
    assert ours["flag"] == 1 and ours["mask"] == [1, 0]


def test_non_finite_values_are_written_as_cmdstan_spells_them(tmp_path: Path) -> None:
    data = {"N": 3, "y": np.array([1.5, np.inf, np.nan])}
    text = write_data(tmp_path / "d.json", data).read_text()
    write_stan_json(str(tmp_path / "theirs.json"), data)
    assert text == (tmp_path / "theirs.json").read_text()
    assert text == '{"N": 3, "y": [1.5, Infinity, NaN]}'


def test_a_bad_value_names_the_entry_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"^data .labels.: data value of dtype <U1 is not numeric$"):
        write_data(tmp_path / "d.json", {"N": 2, "labels": np.array(["a", "b"])})
    assert list(tmp_path.iterdir()) == []


def test_the_run_file_is_removed_afterwards() -> None:
    with data_file({"N": 1, "y": np.ones(1)}) as path:
        assert json.loads(Path(path).read_text()) == {"N": 1, "y": [1.0]}
    assert not Path(path).exists()


@pytest.mark.parametrize("wait", [60.0, 0.0])
def test_large_arrays_encoded_in_halves_give_the_same_bytes(tmp_path: Path, monkeypatch,
                                                            wait: float) -> None:
    """Arrays from `HALVED_NUMBERS` numbers on are encoded half by a forked child; the
    file is byte for byte orjson's of the whole, also when the child's halves are not
    ready in time (a wait of 0: the process encodes them itself), and no side file is
    left."""
    import orjson

    import stanbhm.datafile as datafile

    monkeypatch.setattr(datafile, "HALVED_NUMBERS", 10)
    monkeypatch.setattr(datafile, "HALVES_WAIT", wait)
    rng = np.random.default_rng(4)
    data = {"N": 7, "X": rng.normal(size=(7, 3)), "J": rng.integers(1, 9, size=11),
            "y": rng.normal(size=3), "Z": rng.normal(size=(5, 2, 2))}
    path = write_data(tmp_path / "d.json", data)
    whole = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)
    assert path.read_bytes() == whole
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]


def test_a_runs_data_file_goes_to_memory_where_there_is_room(tmp_path: Path,
                                                             monkeypatch) -> None:
    """The run's file is written under the memory folder when it has twice the room the
    file could take, and under the system's temporary folder when it has not or is
    missing; it is gone afterwards either way."""
    import tempfile

    import stanbhm.datafile as datafile

    memory = tmp_path / "shm"
    memory.mkdir()
    monkeypatch.setattr(datafile, "MEMORY_FOLDER", memory)
    data = {"N": 3, "y": np.ones(3)}
    with data_file(data) as path:
        assert Path(path).parent.parent == memory
        assert json.loads(Path(path).read_text()) == {"N": 3, "y": [1.0, 1.0, 1.0]}
    assert list(memory.iterdir()) == []
    monkeypatch.setattr(datafile, "BYTES_PER_NUMBER", 10**15)  # no room for it
    with data_file(data) as path:
        assert Path(path).parent.parent == Path(tempfile.gettempdir())
    monkeypatch.setattr(datafile, "MEMORY_FOLDER", tmp_path / "missing")
    assert datafile.scratch_folder(data) is None
