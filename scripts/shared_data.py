"""Where the project's shared data lives, seen from a checkout or a clone of one.

The data sits in ``shared/data`` beside the repository, not inside it. A clone made
elsewhere (``git clone . /tmp/x``) finds it through ``$STANBHM_SHARED`` or through the
checkout it was cloned from, so the README's commands work from either.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _origin_checkout() -> Path | None:
    """The local repository this clone came from, if it came from one."""
    try:
        url = subprocess.run(["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
                             capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return None
    path = Path(url.removeprefix("file://")) if url else None
    return path if path is not None and path.is_dir() else None


def shared_data_dir() -> Path:
    """``shared/data``: beside this checkout, at ``$STANBHM_SHARED``, or beside its origin."""
    candidates = [ROOT.parent / "shared"]
    if os.environ.get("STANBHM_SHARED"):
        candidates.append(Path(os.environ["STANBHM_SHARED"]))
    origin = _origin_checkout()
    if origin is not None:
        candidates.append(origin.resolve().parent / "shared")
    for cand in candidates:
        if (cand / "data" / "eight_schools.csv").exists():
            return cand / "data"
    tried = ", ".join(str(c / "data") for c in candidates)
    raise FileNotFoundError(
        f"eight_schools.csv not found (looked in {tried}); put the project's shared/ "
        "folder beside the checkout or set STANBHM_SHARED=/path/to/shared"
    )
