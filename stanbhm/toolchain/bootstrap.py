"""Build the offline toolchain before stanbhm's dependencies are installed.

Run as a file, ``python stanbhm/toolchain/bootstrap.py``, from a checkout. The
build (download the httpstan wheel, unpack it, compile the launcher) needs only
the standard library, g++ and make, while importing ``stanbhm`` pulls in
CmdStanPy, pandas and ArviZ. ``scripts/install.sh`` therefore starts this while
pip is still installing those, and the C++ compile, the longest step of a fresh
install, overlaps the download instead of following it. The modules used here
(``offline``, ``locking``, ``paths``, ``errors``) are loaded without running the
package ``__init__`` files that need the third-party packages.
"""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Callable
from pathlib import Path


def _load_build_offline() -> Callable[..., Path]:
    """Import ``stanbhm.toolchain.offline`` without the package ``__init__``s."""
    here = Path(__file__).resolve().parent
    # Run as a file, this folder is sys.path[0]; its modules are only meant to be
    # imported as stanbhm.toolchain.*, never by their bare names.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    for name, path in (("stanbhm", here.parent), ("stanbhm.toolchain", here)):
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(path)]
            sys.modules[name] = pkg
    from stanbhm.toolchain.offline import build_offline

    return build_offline


def main() -> int:
    """Build (or reuse) the toolchain in ``$STANBHM_HOME``; print progress."""
    build_offline = _load_build_offline()
    from stanbhm.toolchain.errors import ToolchainError

    start = time.monotonic()

    def progress(msg: str) -> None:
        print(f"[{time.monotonic() - start:6.1f}s] {msg}", flush=True)

    try:
        build_offline(progress=progress)
    except ToolchainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
