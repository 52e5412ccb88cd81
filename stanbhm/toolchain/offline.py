"""Builds a CmdStan-compatible installation from the httpstan wheel.

CmdStan's installer downloads from GitHub, which these machines cannot reach,
while PyPI serves httpstan's wheel with stanc, every Stan/Math/Eigen/Boost/
SUNDIALS/TBB header and libtbb. Only those data files are used, so the wheel's
Python tag does not matter. The folder gets a makefile and a launcher written in
this project, so CmdStanPy drives it exactly like a real CmdStan.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import ToolchainError
from .locking import file_lock, publish, staging_dir
from .paths import (
    HTTPSTAN_VERSION,
    STAN_VERSION,
    launcher_source_dir,
    offline_dir,
    stanbhm_home,
)

Progress = Callable[[str], None]
MARKER = ".stanbhm-toolchain.json"
#: Launcher variants built with the toolchain: only the one the first fit needs
#: (stanbhm compiles every model with STAN_THREADS). The makefile builds any other
#: variant (default options, OpenCL, no range checks) the first time a model asks.
DEFAULT_VARIANTS: tuple[dict[str, object], ...] = ({"STAN_THREADS": "TRUE"},)
#: CmdStan's summary tools. Each is a small script that compiles the one program
#: behind all three (``make tools``) on first use, so installing costs nothing
#: for them and ``fit.summary()`` / ``fit.diagnose()`` work the first time asked.
TOOL_NAMES = ("stansummary", "diagnose", "print")
TOOL_SCRIPT = """#!/bin/sh
# stanbhm's offline CmdStan: bin/{name}. One program serves stansummary,
# diagnose and print; the toolchain's makefile compiles it on first use.
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$root/build/tools/{name}" ]; then
  mkdir -p "$root/build"
  log="$root/build/tools-build.$$.log"
  if ! make -C "$root" --no-print-directory tools >"$log" 2>&1; then
    echo "stanbhm: building bin/{name} failed:" >&2
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi
exec "$root/build/tools/{name}" "$@"
"""


def _say(progress: Progress | None, msg: str) -> None:
    if progress is not None:
        progress(msg)


def launcher_hash() -> str:
    """Content hash of the shipped launcher sources and makefile."""
    h = hashlib.sha256()
    for path in sorted(launcher_source_dir().iterdir()):
        if path.suffix in {".cpp", ".hpp"} or path.name == "makefile":
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def marker_contents() -> dict[str, str]:
    return {"httpstan": HTTPSTAN_VERSION, "stan": STAN_VERSION, "launcher": launcher_hash()}


def _marker(path: Path) -> dict[str, str] | None:
    try:
        return json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None


def is_built(path: Path) -> bool:
    """True when ``path`` holds a finished offline build of the pinned versions."""
    return _marker(path) == marker_contents()


def refresh_launcher(path: Path, progress: Progress | None = None) -> bool:
    """Bring an existing build's launcher up to date with this package's sources.

    Upgrading stanbhm should not cost a fresh download: when only the launcher
    changed, its sources are replaced and every variant already built is remade.
    Returns False when the folder is not an offline build of the pinned Stan.
    """
    marker = _marker(path)
    want = marker_contents()
    if marker is None or {k: marker.get(k) for k in ("httpstan", "stan")} != {
        k: want[k] for k in ("httpstan", "stan")
    }:
        return False
    if marker.get("launcher") == want["launcher"]:
        return True
    _say(progress, "stanbhm's launcher changed; rebuilding it")
    install_launcher(path)
    for variant_dir in sorted((path / "build").glob("*")):
        shutil.rmtree(variant_dir, ignore_errors=True)
    build_variants(path, DEFAULT_VARIANTS, progress)
    (path / MARKER).write_text(json.dumps(want, indent=1))
    return True


def download_wheel(dest: Path) -> Path:
    """Fetch the pinned httpstan wheel (or take ``$STANBHM_HTTPSTAN_WHEEL``)."""
    local = os.environ.get("STANBHM_HTTPSTAN_WHEEL")
    if local:
        path = Path(local)
        if not path.is_file():
            raise ToolchainError(f"STANBHM_HTTPSTAN_WHEEL={local} is not a file")
        return path
    machine = platform.machine()
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--python-version", "3.12", "--implementation", "cp",
        "--platform", f"manylinux2014_{machine}",
        f"httpstan=={HTTPSTAN_VERSION}", "-d", str(dest),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob(f"httpstan-{HTTPSTAN_VERSION}-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise ToolchainError(
            f"could not download httpstan=={HTTPSTAN_VERSION} from the package index "
            f"(pip exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}"
        )
    return wheels[0]


def unpack_wheel(wheel: Path, dest: Path) -> None:
    """Lay the wheel's stanc, headers and libraries out as CmdStan does."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if name.startswith("httpstan/include/"):
                target = dest / "include" / name[len("httpstan/include/") :]
            elif name.startswith("httpstan/lib/"):
                target = dest / "lib" / name[len("httpstan/lib/") :]
            elif name == "httpstan/stanc":
                target = dest / "bin" / "stanc"
            else:
                continue
            if info.is_dir():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    stanc = dest / "bin" / "stanc"
    if not stanc.exists():
        raise ToolchainError(f"{wheel.name} holds no stanc binary")
    stanc.chmod(stanc.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def install_launcher(dest: Path) -> None:
    """Copy the launcher sources and the makefile in; write the tool scripts."""
    src = launcher_source_dir()
    target = dest / "src" / "stanbhm"
    target.mkdir(parents=True, exist_ok=True)
    for path in src.iterdir():
        if path.suffix in {".cpp", ".hpp"}:
            shutil.copy2(path, target / path.name)
    shutil.copy2(src / "makefile", dest / "makefile")
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    for name in TOOL_NAMES:
        script = dest / "bin" / name
        tmp = script.with_name(f".{name}.tmp")
        tmp.write_text(TOOL_SCRIPT.format(name=name))
        tmp.chmod(0o755)
        tmp.replace(script)


def run_make(root: Path, args: list[str], progress: Progress | None, what: str) -> None:
    """Run ``make`` in ``root``; raise with the compiler's output on failure."""
    _say(progress, f"{what} (one-time, a few minutes)...")
    proc = subprocess.run(
        ["make", *args], cwd=root, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise ToolchainError(f"{what} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")


def build_launcher(root: Path, cpp_options: dict[str, object], progress: Progress | None) -> None:
    """Compile the launcher and precompiled header for one build variant.

    They are two independent single-threaded compiles of about the same length,
    so ``make -j2`` (where two cores exist) halves the wait.
    """
    opts = [f"{k}={v}" for k, v in sorted(cpp_options.items())]
    label = ", ".join(opts) or "default options"
    jobs = f"-j{max(1, min(2, os.cpu_count() or 1))}"
    run_make(root, [jobs, *opts, "launcher"], progress,
             f"building the Stan launcher ({label})")


def build_variants(
    root: Path, variants: tuple[dict[str, object], ...], progress: Progress | None
) -> None:
    """Variants are independent compiles: run them side by side (each uses ``-j2``)."""
    workers = max(1, min(len(variants), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as ex:
        for fut in [ex.submit(build_launcher, root, v, progress) for v in variants]:
            fut.result()


def build_offline(
    home: Path | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
    variants: tuple[dict[str, object], ...] | None = None,
) -> Path:
    """Build (or reuse) the offline installation and return its path.

    Safe when several processes call it at once: one builds, the others wait and
    reuse its result; the folder appears whole or not at all.
    """
    home = home or stanbhm_home()
    final = offline_dir(home)
    with file_lock(home / ".toolchain.lock"):
        if not force and refresh_launcher(final, progress):
            return final
        with staging_dir(final) as tmp, tempfile.TemporaryDirectory() as dl:
            _say(progress, f"building the Stan toolchain into {final}: once per machine, "
                           "about 3 minutes on 2 cores (`stanbhm toolchain install` "
                           "does it ahead of the first fit)")
            _say(progress, f"fetching httpstan {HTTPSTAN_VERSION} wheel (Stan {STAN_VERSION})")
            wheel = download_wheel(Path(dl))
            _say(progress, f"unpacking {wheel.name}")
            unpack_wheel(wheel, tmp)
            install_launcher(tmp)
            build_variants(tmp, variants or DEFAULT_VARIANTS, progress)
            # Object files record absolute include paths only for dependency
            # tracking; nothing in them refers to the staging folder at run time.
            (tmp / MARKER).write_text(json.dumps(marker_contents(), indent=1))
            publish(tmp, final)
    _say(progress, f"toolchain ready at {final}")
    return final
