"""Files that appear whole or not at all.

A reader (a notebook, CmdStan, a second process sharing the cache) must never see half
of a program, data file, draws file or report: each is written under a private name in
its own folder and renamed over the target in one step, and removed if writing fails.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A scratch path beside ``target`` (same suffix, so tools that infer the format from
    it still do) that replaces ``target`` when the block ends without an exception."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name rather than mkstemp's file: whoever writes it creates it with the
    # umask's permissions, as the target would have had, not mkstemp's 0600
    scratch = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}{target.suffix}")
    try:
        yield scratch
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)


def write(target: Path, contents: str | bytes) -> Path:
    """Write ``contents`` (text as UTF-8) to ``target`` atomically."""
    with replacing(target) as scratch:
        if isinstance(contents, bytes):
            scratch.write_bytes(contents)
        else:
            scratch.write_text(contents, encoding="utf-8")
    return target
