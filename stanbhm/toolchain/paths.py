"""Where stanbhm keeps what it builds, and the versions it pins."""

from __future__ import annotations

import os
from pathlib import Path

#: httpstan release whose wheel supplies stanc and the Stan headers.
HTTPSTAN_VERSION = "4.17.0"
#: The Stan release inside that wheel; the offline CmdStan reports this version.
STAN_VERSION = "2.39.0"


def stanbhm_home() -> Path:
    """The cache root: ``$STANBHM_HOME`` or ``~/.cache/stanbhm``."""
    env = os.environ.get("STANBHM_HOME")
    root = Path(env) if env else Path.home() / ".cache" / "stanbhm"
    return root.expanduser().resolve()


def offline_dir(home: Path | None = None) -> Path:
    """Folder of the offline CmdStan-compatible installation."""
    home = home or stanbhm_home()
    return home / f"cmdstan-{STAN_VERSION}-httpstan-{HTTPSTAN_VERSION}"


def models_dir(home: Path | None = None) -> Path:
    """Folder of compiled models, one subfolder per content hash."""
    return (home or stanbhm_home()) / "models"


def launcher_source_dir() -> Path:
    """The launcher's C++ sources and makefile, shipped inside the package."""
    return Path(__file__).resolve().parent / "launcher"
