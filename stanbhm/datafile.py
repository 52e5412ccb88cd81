"""The data file CmdStan reads, written from numpy arrays without Python lists.

CmdStanPy's writer turns every array into nested Python lists before encoding them:
for a 1M-row, 23-column design that took 32 s here, against 1.7 s for orjson, which
encodes numpy arrays in C (shortest round-trip floats, so CmdStan reads the same
doubles). CmdStan's JSON wants matrices as arrays of rows, which is how orjson writes
a C-ordered 2-D array. Values orjson cannot write as CmdStan expects (NaN and infinity,
which CmdStan reads as the bare words NaN and Infinity) go through CmdStanPy's writer.

orjson holds the GIL, so threads cannot share the encoding of a large array. On Linux
a forked copy of the process, which sees the arrays without copying them, encodes the
second half of each large one while the process encodes the first: at the retail
model's 930k rows x 22 columns that takes the file's 1.1 s of encoding to about half.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from cmdstanpy.utils import write_stan_json

from . import atomic
from .arrays import small_pages

__all__ = ["data_file", "write_data"]


#: How every part of a data file is encoded: numpy arrays as JSON arrays.
ENCODING = orjson.OPT_SERIALIZE_NUMPY


def _encodable(value: Any) -> Any:
    """`value` as orjson writes it for CmdStan, or None when it cannot (non-finite)."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    array = np.asarray(value)
    if array.dtype == bool:
        array = array.astype(np.int64)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return None
    if array.dtype.kind not in "iuf":
        raise TypeError(f"data value of dtype {array.dtype} is not numeric")
    return np.ascontiguousarray(array)


def write_data(path: str | os.PathLike[str], data: Mapping[str, Any]) -> Path:
    """Write `data` as CmdStan JSON to `path`, atomically (whole or not at all)."""
    with small_pages():
        return _write_data(Path(path), data)


def _write_data(target: Path, data: Mapping[str, Any]) -> Path:
    encoded = {}
    for name, value in data.items():
        try:
            item = _encodable(value)
        except TypeError as exc:
            raise TypeError(f"data '{name}': {exc}") from None
        encoded[name] = item
    if not any(v is None for v in encoded.values()):
        large = [name for name, v in encoded.items()
                 if isinstance(v, np.ndarray) and v.size >= HALVED_NUMBERS and len(v) > 1]
        if not large or not hasattr(os, "fork") or not sys.platform.startswith("linux"):
            return atomic.write(target, orjson.dumps(encoded, option=ENCODING))
        with atomic.replacing(target) as scratch:
            _write_in_halves(scratch, encoded, large)
        return target
    with atomic.replacing(target) as scratch:
        write_stan_json(str(scratch), data)
    return target


#: Arrays of at least this many numbers are encoded in two halves at once (Linux).
HALVED_NUMBERS = 2_000_000
#: Seconds the second halves may take beyond the first before they are encoded here.
HALVES_WAIT = 60.0


def _write_in_halves(path: Path, encoded: dict[str, Any], large: list[str]) -> None:
    """Write `encoded` to `path` as `orjson` would, the second half of each `large`
    array (its rows from the middle on) encoded by a forked child into a side file
    meanwhile. Should the child fail or not finish in time, its halves are encoded
    here."""
    sides = [path.with_name(f"{path.name}.{i}.half") for i in range(len(large))]
    second = [encoded[name][len(encoded[name]) // 2:] for name in large]
    pid = os.fork()
    if pid == 0:  # the child: encode, write, leave without running the parent's exits
        status = 1
        try:
            _write_halves(sides, second)
            status = 0
        finally:
            os._exit(status)
    try:
        first = [orjson.dumps(encoded[name][:len(encoded[name]) // 2], option=ENCODING)
                 for name in large]
        if not _child_done(pid, HALVES_WAIT):
            _write_halves(sides, second)
        marks = {name: f"stanbhm-half-{uuid.uuid4().hex}" for name in large}
        rest = orjson.dumps({k: marks.get(k, v) for k, v in encoded.items()}, option=ENCODING)
        with open(path, "wb") as out:
            for name, head, side in zip(large, first, sides, strict=True):
                before, rest = rest.split(f'"{marks[name]}"'.encode(), 1)
                out.write(before)
                out.write(memoryview(head)[:-1])  # "[a, b" of "[a, b]", not copied
                out.write(b",")
                out.flush()
                with open(side, "rb") as tail:  # "c]" of "[c]", copied by the kernel
                    size = os.fstat(tail.fileno()).st_size
                    at = 1
                    while at < size:
                        sent = os.sendfile(out.fileno(), tail.fileno(), at, size - at)
                        if sent == 0:
                            raise OSError(f"{side} ended {size - at} bytes early")
                        at += sent
            out.write(rest)
    finally:
        for side in sides:
            side.unlink(missing_ok=True)


def _write_halves(sides: list[Path], halves: list[np.ndarray]) -> None:
    """Each half's encoding into its side file (the child's work, or the fallback's)."""
    for side, half in zip(sides, halves, strict=True):
        side.write_bytes(orjson.dumps(half, option=ENCODING))


def _child_done(pid: int, wait: float) -> bool:
    """Whether child `pid` exits successfully within `wait` seconds (killed if not)."""
    deadline = time.monotonic() + wait
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return False
        time.sleep(0.005)


#: A folder in memory for a run's data file where the system has one (Linux).
MEMORY_FOLDER = Path("/dev/shm")
#: Bytes of the data file per number, at most: orjson's longest float and a comma.
BYTES_PER_NUMBER = 26


def scratch_folder(data: Mapping[str, Any]) -> str | None:
    """Where a run's data file goes: `MEMORY_FOLDER` when it is there, writable and has
    twice the room the file could take, else None (the system's temporary folder).
    The file lives for one run, and on a disk its hundreds of megabytes wait for the
    disk once the write cache fills: on the development VM a second 400 MB file in a
    row took 2-3.5 s to write against 0.14 s for the first."""
    try:
        if not (MEMORY_FOLDER.is_dir() and os.access(MEMORY_FOLDER, os.W_OK)):
            return None
        free = shutil.disk_usage(MEMORY_FOLDER).free
    except OSError:
        return None
    numbers = sum(int(np.size(value)) for value in data.values())
    return str(MEMORY_FOLDER) if free > 2 * BYTES_PER_NUMBER * numbers + (1 << 20) else None


@contextlib.contextmanager
def data_file(data: Mapping[str, Any]) -> Iterator[str]:
    """A temporary CmdStan data file for one run (in memory where `scratch_folder` finds
    room), removed afterwards: CmdStanPy's results do not read it again, and at a
    million rows it is hundreds of megabytes."""
    with tempfile.TemporaryDirectory(prefix="stanbhm-data-", dir=scratch_folder(data)) as folder:
        yield str(write_data(Path(folder) / "data.json", data))
