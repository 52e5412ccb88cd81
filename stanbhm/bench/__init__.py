"""``stanbhm bench``: the project's performance claims as suites anyone can rerun.

Each suite (a module in `stanbhm.bench.suites`) has ``DEFAULTS`` (the sizes the issue
tracker's targets name), ``QUICK`` (overrides that finish in a few minutes on 2 cores)
and ``run(bench, options)``, which adds side-by-side tables to the `Run`. `run_suite`
warms nothing itself: each suite compiles its programs before it times them.
"""

from __future__ import annotations

import importlib
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from cmdstanpy.utils import get_logger as cmdstanpy_logger

from ..toolchain.cache import in_test_build
from .harness import Run, write

SUITES = ("toolchain", "parameterization", "rewrites", "scale", "peers", "election", "retail")


def options_for(suite: str, quick: bool, overrides: dict[str, str]) -> dict[str, Any]:
    """The suite's options: defaults, then the quick ones, then ``key=value`` overrides
    (converted to the default's type)."""
    module = importlib.import_module(f"{__name__}.suites.{suite}")
    options = dict(module.DEFAULTS)
    if quick:
        options.update(module.QUICK)
    for key, text in overrides.items():
        if key not in options:
            raise ValueError(f"suite {suite!r} has no option {key!r}; its options: "
                             f"{', '.join(options)}")
        default = module.DEFAULTS[key]
        if isinstance(default, bool):
            if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(f"option {key!r} takes true or false, not {text!r}")
            options[key] = text.lower() in ("1", "true", "yes")
        else:
            try:
                options[key] = type(default)(text)
            except ValueError:
                raise ValueError(f"option {key!r} takes a {type(default).__name__}, "
                                 f"not {text!r}") from None
    return options


def run_suite(suite: str, *, quick: bool = False, out: Path | str = "bench-results",
              repeat: int = 3, seed: int = 1, overrides: dict[str, str] | None = None,
              command: str | None = None) -> Run:
    """Run one suite, print its tables and write ``SUITE[-quick].json`` and ``.md``."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; suites: {', '.join(SUITES)}")
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, not {repeat}")
    options = options_for(suite, quick, overrides or {})
    if in_test_build():
        print("STANBHM_TEST_BUILD is on: programs are compiled at C++ -O1, so the timings "
              "are not those of a user's programs", file=sys.stderr)
    # CmdStanPy's per-run INFO lines would bury the tables; warnings still show.
    cmdstanpy_logger().setLevel(logging.WARNING)
    module = importlib.import_module(f"{__name__}.suites.{suite}")
    bench = Run(suite, quick, repeat, command or "stanbhm bench " + shlex.join(
        [suite, *(["--quick"] if quick else [])]), seed=seed, options=options)
    start = time.perf_counter()
    module.run(bench, options)
    bench.seconds = time.perf_counter() - start
    bench.load_after = os.getloadavg()[0]
    for table in bench.tables:
        table.finish()
    paths = write(bench, Path(out))
    print(bench.markdown())
    print(f"wrote {paths[0]} and {paths[1]}", file=sys.stderr)
    return bench
