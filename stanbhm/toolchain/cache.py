"""Compiled models cached by content.

A model executable is keyed by the hash of (Stan code, compiler options,
toolchain identity), so asking again for the same program costs a lookup and
no compiler process. Builds run in a staging folder and are published by one
rename under a per-key lock: concurrent requests for one program both succeed
and leave a single intact executable.

``STANBHM_TEST_BUILD=1`` selects the test build (`test_build_options`): programs are
compiled at ``-O1`` rather than the makefile's ``-O3``, a quarter less compiler time,
and the options are part of the cache key, so a test build and a user build never share
an executable. The test suite sets it; timings are only meaningful without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import cmdstanpy

from .. import atomic
from .errors import StanCompileError, ToolchainError
from .locate import ensure_cmdstan, read_version
from .locking import file_lock, publish, staging_dir
from .offline import MARKER, build_launcher
from .opencl import opencl_missing
from .paths import models_dir

MODEL_NAME = "model"
#: stanc options of stanbhm's own programs: stanc's first optimization level (dead code,
#: and autodiff kept to what needs it, vectors of parameters as one node rather than one
#: per element). Measured here, gradients 1.2x to 1.5x faster on the election, varying
#: slopes and retail programs. Callers that want stanc's default pass their own options.
OPTIMIZED: dict[str, Any] = {"O1": True}
_TRUE = {"true", "1", "yes", "on"}
#: The environment variable that selects the test build (module docstring).
TEST_BUILD_ENV = "STANBHM_TEST_BUILD"
#: The test build's C++ optimization level. Eight schools here: the model's C++ compile
#: took 15.5 s of CPU at -O3 (the makefile's level), 11.7 s at -O1 and 10.4 s at -O0,
#: most of it template instantiation, which no level changes; its sampling took 1.2x
#: -O3's time at -O1 and 20x at -O0, so -O1 is the cheapest for a compile-and-sample test.
TEST_BUILD_LEVEL = 1
#: The environment variable that sets another level for the test build (0 to 3). With
#: clang, whose precompiled header holds the template instantiations, the optimizer is
#: most of what is left: a 150-line joint-statistics program took 11.7 s of CPU at -O0
#: against 22.9 s at -O1. Tests that compare log densities at a few points and sample
#: little take -O0 (the test suite's ``log_density`` marker).
TEST_BUILD_LEVEL_ENV = "STANBHM_TEST_BUILD_LEVEL"
#: The environment variable that names the test build's compiler (`test_build_compiler`).
TEST_BUILD_CXX_ENV = "STANBHM_TEST_CXX"
#: clang's names, newest first; 11 is the first version with -fpch-instantiate-templates.
_CLANG_VERSIONS = range(20, 10, -1)
#: When set, every compile (a cache miss) appends a JSON line to this file: its cache key,
#: wall and compiler CPU seconds, and the test that asked (``$PYTEST_CURRENT_TEST``,
#: inherited by subprocesses), for the test suite's count of programs per file; so does
#: every cache hit (``{"hit": key, "test": ...}``), so a warm run counts the programs
#: each file asks for.
COMPILE_LOG_ENV = "STANBHM_COMPILE_LOG"


def _is_on(value: object) -> bool:
    return str(value).strip().lower() in _TRUE


def in_test_build() -> bool:
    """True when ``$STANBHM_TEST_BUILD`` asks for the test build."""
    return _is_on(os.environ.get(TEST_BUILD_ENV, ""))


def test_build_level() -> int:
    """The test build's -O level: ``$STANBHM_TEST_BUILD_LEVEL`` or `TEST_BUILD_LEVEL`."""
    named = os.environ.get(TEST_BUILD_LEVEL_ENV, "").strip()
    if not named:
        return TEST_BUILD_LEVEL
    if named not in ("0", "1", "2", "3"):
        raise ToolchainError(f"{TEST_BUILD_LEVEL_ENV}={named!r}: use 0, 1, 2 or 3")
    return int(named)


def build_options_of_tests() -> dict[str, str]:
    """The make variables of the test build, added to a program's C++ options when
    `in_test_build`, else nothing: the optimization level, and a launcher variant folder
    of its own (``build/<variant>-O1``: launcher and precompiled header built at that
    level on first use, about two minutes once). GCC takes the ``-O3`` precompiled
    header into an ``-O1`` compile too, but that compile took longer (14 s of CPU for
    eight schools against 12 s). ``$(VARIANT)`` is expanded by the makefile."""
    if not in_test_build():
        return {}
    level = test_build_level()
    options = {"BUILD": f"$(TOOLCHAIN)/build/$(VARIANT)-O{level}", "O": str(level)}
    compiler = test_build_compiler()
    if compiler is not None:
        options["CXX"] = compiler
        options["BUILD"] += f"-{compiler}"
    return options


def test_build_compiler() -> str | None:
    """The test build's C++ compiler when it is not the makefile's g++: the name in
    ``$STANBHM_TEST_CXX`` (``g++`` for the makefile's), else the first clang++ of
    version 11 or later on the PATH, else None. Debian's OpenCL runtime (pocl), which
    the Quickstart installs, brings clang-15 with it.

    clang's precompiled header holds the Stan headers' template instantiations
    (``-fpch-instantiate-templates``), which GCC makes again in every compile: an empty
    program cost 8.0 s of CPU with g++ -O1 against 3.5 s with clang++-15 -O1, and a
    153-line varying-slopes program 38 s against 25 s."""
    named = os.environ.get(TEST_BUILD_CXX_ENV, "").strip()
    if named:
        return None if named == "g++" else named
    for name in ("clang++", *(f"clang++-{v}" for v in _CLANG_VERSIONS)):
        if shutil.which(name) and _clang_major(name) >= min(_CLANG_VERSIONS):
            return name
    return None


@cache
def _clang_major(name: str) -> int:
    try:
        out = subprocess.run([name, "-dumpversion"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
        return int(out.strip().split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


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
    """Hash of everything that can change the executable (comments cannot), the C++
    compiled with the program (USER_HEADER) included."""
    header = cpp.get("USER_HEADER")
    payload = json.dumps(
        {
            "code": program_text(code),
            **({"user_header": Path(header).read_text()} if header else {}),
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
    cpp = dict(sorted({**cpp, **build_options_of_tests()}.items()))
    stanc = dict(stanc_options or {})
    if "STAN_OPENCL" in cpp:
        missing = opencl_missing()
        if missing:
            raise ToolchainError(f"OpenCL was requested but {missing}")
    key = cache_key(code, cpp, stanc, toolchain)
    final = models_dir() / key[:24]
    exe = final / MODEL_NAME
    failed = final.with_name(final.name + ".failed")
    hit = exe.exists()
    if not hit:
        with file_lock(final.with_name(final.name + ".lock")):
            _known_failure(failed)
            hit = exe.exists()
            if not hit:
                start, cpu = time.perf_counter(), _children_cpu()
                if progress is not None:
                    progress("compiling model (first time, ~15 s)...")
                try:
                    _build(code, cpp, stanc, toolchain, final, progress)
                except StanCompileError as exc:
                    # a compiler diagnostic: the same inputs fail the same way, so keep
                    # it (a killed compiler, out of memory say, is not kept)
                    if exc.stage == "c++" and "error:" in exc.output:
                        atomic.write(failed, exc.output)
                    if exc.stage == "c++":
                        _log_compile(key, start, cpu, failed=True)
                    raise
                _log_compile(key, start, cpu)
                if progress is not None:
                    progress(f"compiled in {time.perf_counter() - start:.0f} s")
    if hit:
        _log_hit(key)
    # stanc's options come along for what CmdStanPy runs stanc for itself (src_info: a
    # program whose functions are C++ needs --allow-undefined there too)
    return cmdstanpy.CmdStanModel(
        stan_file=str(final / f"{MODEL_NAME}.stan"),
        exe_file=str(exe),
        stanc_options=stanc or None,
    )


def _ensure_variant(toolchain: Path, cpp: dict[str, Any],
                    progress: Callable[[str], None] | None) -> None:
    """Build the launcher and precompiled header of the test build's variant when they
    are missing, one process at a time (two test workers would otherwise both build
    them), so that the model's own make finds them built."""
    if not (toolchain / MARKER).exists():
        return  # a real CmdStan: no launcher variants of stanbhm's
    args = [f"{k}={v}" for k, v in sorted(cpp.items())]
    with file_lock(toolchain / "build" / ".variants.lock"):
        up_to_date = subprocess.run(["make", "-q", *args, "launcher"], cwd=toolchain,
                                    capture_output=True, check=False).returncode == 0
        if not up_to_date:
            build_launcher(toolchain, cpp, progress)


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _log_compile(key: str, start: float, cpu: float, failed: bool = False) -> None:
    """One line in ``$STANBHM_COMPILE_LOG`` (when set) for a compile just finished (a
    single short append, whole even with several writers)."""
    log = os.environ.get(COMPILE_LOG_ENV)
    if not log:
        return
    line = json.dumps({"key": key[:24], "seconds": round(time.perf_counter() - start, 3),
                       "cpu_s": round(_children_cpu() - cpu, 3),
                       "test": os.environ.get("PYTEST_CURRENT_TEST"),
                       "test_build": in_test_build(), "failed": failed,
                       "pid": os.getpid()})
    with open(log, "a") as fh:
        fh.write(line + "\n")


def _log_hit(key: str) -> None:
    """One line in ``$STANBHM_COMPILE_LOG`` (when set) for a program served by the cache,
    so that a warm run counts the programs each test file asks for."""
    log = os.environ.get(COMPILE_LOG_ENV)
    if log:
        with open(log, "a") as fh:
            fh.write(json.dumps({"hit": key[:24], "test": os.environ.get("PYTEST_CURRENT_TEST"),
                                 "test_build": in_test_build()}) + "\n")


def _known_failure(failed: Path) -> None:
    """Raise the C++ error a program failed with before: a compile that the compiler
    rejected is cached like a good one (as ``<key>.failed``), so a caller that falls back
    to other options (`Model.compile`) does not pay for the failing compile again."""
    if failed.exists():
        output = failed.read_text()
        raise StanCompileError(f"C++ compilation failed for the Stan program (cached):\n"
                               f"{output}", stage="c++", output=output)


def _build(code: str, cpp: dict[str, Any], stanc: dict[str, Any], toolchain: Path,
           final: Path, progress: Callable[[str], None] | None = None) -> None:
    with staging_dir(final) as tmp:
        stan_file = tmp / f"{MODEL_NAME}.stan"
        stan_file.write_text(code)
        check_syntax(stan_file, toolchain / "bin" / "stanc", stanc)
        if "BUILD" in cpp:
            _ensure_variant(toolchain, cpp, progress)
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
