"""Compiled models cached by content.

A model executable is keyed by the hash of (Stan code, compiler options,
toolchain identity), so asking again for the same program costs a lookup and
no compiler process. Builds run in a staging folder and are published by one
rename under a per-key lock: concurrent requests for one program both succeed
and leave a single intact executable.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cmdstanpy

from .. import atomic
from .errors import StanCompileError, ToolchainError
from .locate import ensure_cmdstan, read_version
from .locking import file_lock, publish, staging_dir
from .opencl import opencl_missing
from .paths import models_dir

MODEL_NAME = "model"
#: stanc options of stanbhm's own programs: stanc's first optimization level (dead code,
#: and autodiff kept to what needs it, vectors of parameters as one node rather than one
#: per element). Measured here, gradients 1.2x to 1.5x faster on the election, varying
#: slopes and retail programs. Callers that want stanc's default pass their own options.
OPTIMIZED: dict[str, Any] = {"O1": True}
_TRUE = {"true", "1", "yes", "on"}


def _is_on(value: object) -> bool:
    return str(value).strip().lower() in _TRUE


def normalize_cpp_options(cpp_options: dict[str, Any] | None) -> dict[str, Any]:
    """Canonical form, so equivalent spellings share one cache entry."""
    out: dict[str, Any] = {}
    for key, value in (cpp_options or {}).items():
        if key in {"STAN_THREADS", "STAN_OPENCL", "STAN_NO_RANGE_CHECKS"}:
            if _is_on(value):
                out[key] = "TRUE"
        elif key in {"OPENCL_PLATFORM_ID", "OPENCL_DEVICE_ID"}:
            out[key] = int(value)  # CmdStanPy checks these are integers
        else:
            out[key] = str(value)
    return dict(sorted(out.items()))


#: A string literal (kept), a line comment or a block comment (dropped).
_COMMENT_OR_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*|/\*.*?\*/', re.DOTALL)


def program_text(code: str) -> str:
    """`code` less its comments and trailing spaces: what stanc compiles. A generated
    header states the data's numbers for the reader, and a new data set must not make
    a new executable for that."""
    bare = _COMMENT_OR_STRING.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "",
                                  code)
    return "\n".join(line.rstrip() for line in bare.splitlines() if line.strip())


def cache_key(code: str, cpp: dict[str, Any], stanc: dict[str, Any], toolchain: Path) -> str:
    """Hash of everything that can change the executable (comments cannot)."""
    payload = json.dumps(
        {
            "code": program_text(code),
            "cpp_options": cpp,
            "stanc_options": stanc,
            "toolchain": str(toolchain),
            "toolchain_version": read_version(toolchain),
            "toolchain_stamp": _toolchain_stamp(toolchain),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _toolchain_stamp(toolchain: Path) -> str:
    """Changes whenever the toolchain folder is rebuilt in place."""
    marker = toolchain / ".stanbhm-toolchain.json"
    target = marker if marker.exists() else toolchain / "makefile"
    return str(target.stat().st_mtime_ns)


def check_syntax(stan_file: Path, stanc: Path, stanc_options: dict[str, Any]) -> None:
    """Run stanc alone (fast) so a program error surfaces with stanc's message."""
    args = [str(stanc)]
    for key, val in stanc_options.items():
        if key == "include-paths":
            args.append("--include-paths=" + ",".join(str(p) for p in val))
        elif val is True:
            args.append(f"--{key}")
        else:
            args.append(f"--{key}={val}")
    out = stan_file.with_suffix(".check.hpp")
    proc = subprocess.run(
        [*args, f"--o={out}", str(stan_file)], capture_output=True, text=True, check=False
    )
    out.unlink(missing_ok=True)
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip()
        raise StanCompileError(message, stage="stanc", output=message)


def compile_model(
    code: str,
    *,
    cpp_options: dict[str, Any] | None = None,
    stanc_options: dict[str, Any] | None = None,
    toolchain: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> cmdstanpy.CmdStanModel:
    """Return a CmdStanModel for ``code``, compiling it only on a cache miss; a compile
    (seconds, not the instant of a hit) and a first-use toolchain build (minutes) are
    announced through `progress`."""
    toolchain = toolchain or ensure_cmdstan(progress=progress)
    cpp = normalize_cpp_options(cpp_options)
    stanc = dict(stanc_options or {})
    if "STAN_OPENCL" in cpp:
        missing = opencl_missing()
        if missing:
            raise ToolchainError(f"OpenCL was requested but {missing}")
    key = cache_key(code, cpp, stanc, toolchain)
    final = models_dir() / key[:24]
    exe = final / MODEL_NAME
    failed = final.with_name(final.name + ".failed")
    if not exe.exists():
        with file_lock(final.with_name(final.name + ".lock")):
            _known_failure(failed)
            if not exe.exists():
                start = time.perf_counter()
                if progress is not None:
                    progress("compiling model (first time, ~15 s)...")
                try:
                    _build(code, cpp, stanc, toolchain, final)
                except StanCompileError as exc:
                    # a compiler diagnostic: the same inputs fail the same way, so keep
                    # it (a killed compiler, out of memory say, is not kept)
                    if exc.stage == "c++" and "error:" in exc.output:
                        atomic.write(failed, exc.output)
                    raise
                if progress is not None:
                    progress(f"compiled in {time.perf_counter() - start:.0f} s")
    return cmdstanpy.CmdStanModel(
        stan_file=str(final / f"{MODEL_NAME}.stan"),
        exe_file=str(exe),
    )


def _known_failure(failed: Path) -> None:
    """Raise the C++ error a program failed with before: a compile that the compiler
    rejected is cached like a good one (as ``<key>.failed``), so a caller that falls back
    to other options (`Model.compile`) does not pay for the failing compile again."""
    if failed.exists():
        output = failed.read_text()
        raise StanCompileError(f"C++ compilation failed for the Stan program (cached):\n"
                               f"{output}", stage="c++", output=output)


def _build(code: str, cpp: dict[str, Any], stanc: dict[str, Any], toolchain: Path,
           final: Path) -> None:
    with staging_dir(final) as tmp:
        stan_file = tmp / f"{MODEL_NAME}.stan"
        stan_file.write_text(code)
        check_syntax(stan_file, toolchain / "bin" / "stanc", stanc)
        try:
            cmdstanpy.CmdStanModel(
                stan_file=str(stan_file),
                cpp_options=dict(cpp) or None,
                stanc_options=stanc or None,
                force_compile=True,
            )
        except (ValueError, RuntimeError) as exc:
            raise StanCompileError(
                f"C++ compilation failed for the Stan program:\n{exc}",
                stage="c++",
                output=str(exc),
            ) from exc
        if not (tmp / MODEL_NAME).exists():
            raise ToolchainError(f"compilation produced no executable in {tmp}")
        (tmp / "options.json").write_text(
            json.dumps({"cpp_options": cpp, "stanc_options": stanc}, indent=1, default=str)
        )
        publish(tmp, final)
