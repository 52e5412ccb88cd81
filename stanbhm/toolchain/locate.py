"""Finding the CmdStan that stanbhm uses, in a fixed order of preference."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import cmdstanpy

from .errors import ToolchainError
from .offline import Progress, build_offline, is_built
from .paths import offline_dir


@dataclass(frozen=True)
class Installation:
    """A usable CmdStan folder and how it was found."""

    path: Path
    source: str  # "argument", "CMDSTAN", "cmdstanpy", "offline"
    version: str


def read_version(path: Path) -> str:
    """CmdStan's version from its makefile (the place CmdStanPy reads it too)."""
    try:
        text = (path / "makefile").read_text()
    except OSError as exc:
        raise ToolchainError(f"{path} is not a CmdStan installation: no makefile") from exc
    match = re.search(r"^CMDSTAN_VERSION\s*:=\s*(\S+)", text, re.MULTILINE)
    if not match:
        raise ToolchainError(f"{path}/makefile does not state CMDSTAN_VERSION")
    return match.group(1)


def validate(path: Path) -> str:
    """Check that ``path`` looks like a working CmdStan; return its version."""
    if not path.is_dir():
        raise ToolchainError(f"CmdStan folder {path} does not exist")
    stanc = path / "bin" / "stanc"
    if not os.access(stanc, os.X_OK):
        raise ToolchainError(f"{path} has no executable bin/stanc")
    return read_version(path)


def _default_cmdstanpy_install() -> Path | None:
    """CmdStanPy's own default (``~/.cmdstan/cmdstan-*``), if one is installed."""
    root = Path.home() / ".cmdstan"
    if not root.is_dir():
        return None
    latest = cmdstanpy.utils.cmdstan.get_latest_cmdstan(str(root))
    return root / latest if latest else None


def find_installation(
    path: str | os.PathLike[str] | None = None,
    *,
    build: bool = True,
    progress: Progress | None = None,
) -> Installation:
    """Resolve the installation without changing any global state."""
    if path is not None:
        p = Path(path).expanduser().resolve()
        return Installation(p, "argument", validate(p))
    env = os.environ.get("CMDSTAN")
    if env:
        p = Path(env).expanduser().resolve()
        return Installation(p, "CMDSTAN", validate(p))
    default = _default_cmdstanpy_install()
    if default is not None:
        try:
            return Installation(default, "cmdstanpy", validate(default))
        except ToolchainError:
            pass  # a broken default install is skipped, not fatal
    offline = offline_dir()
    if not is_built(offline):
        if not build:
            raise ToolchainError(
                "no CmdStan found and the offline toolchain is not built; "
                "run `stanbhm toolchain install`"
            )
        build_offline(progress=progress)
    # resolved like $CMDSTAN above (CmdStanPy sets it to this path once a model is
    # compiled), so a home whose toolchain is a link keys its programs by one path
    return Installation(offline.resolve(), "offline", validate(offline))


def ensure_cmdstan(
    path: str | os.PathLike[str] | None = None,
    *,
    build: bool = True,
    progress: Progress | None = None,
) -> Path:
    """Return a working CmdStan folder and point CmdStanPy at it.

    Order: the ``path`` argument; ``$CMDSTAN``; CmdStanPy's default install;
    otherwise the offline build from the httpstan wheel (built once, reused).
    """
    inst = find_installation(path, build=build, progress=progress)
    cmdstanpy.set_cmdstan_path(str(inst.path))
    return inst.path
