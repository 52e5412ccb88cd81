"""The ``stanbhm`` console script."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import toolchain
from .version import __version__


def _progress() -> toolchain.offline.Progress:
    start = time.monotonic()

    def report(msg: str) -> None:
        print(f"[{time.monotonic() - start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    return report


def cmd_toolchain(args: argparse.Namespace) -> int:
    rebuild = args.action == "rebuild" or args.rebuild
    if rebuild:
        toolchain.build_offline(force=True, progress=_progress())
    try:
        inst = toolchain.find_installation(
            args.path, build=args.action == "install" or args.build or rebuild,
            progress=_progress()
        )
    except toolchain.ToolchainError as exc:
        print(f"stanbhm: {exc}", file=sys.stderr)
        return 1
    print(f"CmdStan:   {inst.path}")
    print(f"found via: {inst.source}")
    print(f"version:   {inst.version}")
    devs = toolchain.devices()
    missing = toolchain.opencl_missing()
    if devs:
        print("OpenCL devices (platform, device):")
        for d in devs:
            print(f"  ({d.platform_id}, {d.device_id})  {d.kind:<11} {d.name}  [{d.platform}]")
    print(f"OpenCL builds: {'available' if missing is None else 'unavailable: ' + missing}")
    return 0


def _parameterization(text: str) -> object:
    """'centered' | 'noncentered' | 'auto' | a float | 'school=centered,store_x=noncentered'."""
    if "=" in text:
        return {key: _parameterization(value)
                for key, value in (part.split("=", 1) for part in text.split(","))}
    try:
        return float(text)
    except ValueError:
        return text


class UsageError(Exception):
    """A command line the parser accepted but stanbhm cannot run: exit 2."""


class DataError(Exception):
    """The data file cannot be read: exit 1."""


def _priors(items: list[str]) -> dict[str, str] | None:
    """--prior KEY=DIST, repeated: {"b": "normal(0, 1)", ...}."""
    out = {}
    for item in items:
        key, sep, dist = item.partition("=")
        if not sep or not key.strip() or not dist.strip():
            raise UsageError(f"--prior takes KEY=DISTRIBUTION, e.g. b=normal(0,1); not {item!r}")
        out[key.strip()] = dist.strip()
    return out or None


def _model(args: argparse.Namespace):
    import pandas as pd

    from .model import Model

    path = Path(args.data)
    if not path.is_file():
        raise FileNotFoundError(f"no data file {args.data!r} (--data takes a CSV file)")
    try:
        data = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {args.data} as CSV: {exc}") from exc
    return Model(args.formula, data, family=args.family, priors=_priors(args.prior),
                 parameterization=_parameterization(args.parameterization), link=args.link)


def cmd_code(args: argparse.Namespace) -> int:
    print(_model(args).stan_code(), end="")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    sampler = {"iter_warmup": args.iter_warmup, "iter_sampling": args.iter_sampling,
               "chains": args.chains, "adapt_delta": args.adapt_delta}
    options = {k: v for k, v in sampler.items() if v is not None}
    if args.method != "sample" and options:
        raise UsageError(f"--{next(iter(options)).replace('_', '-')} applies to "
                         "--method sample only")
    from . import arguments

    arguments.check(args.method, options)  # before the model compiles
    fit = _model(args).fit(method=args.method, seed=args.seed, **options)
    print(fit.summary(), end="")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    if args.suite == "report":
        from .bench.report import report

        written = report([Path(p) for p in args.paths] or [Path("docs/bench")],
                         Path(args.docs))
        print(f"wrote {written}")
        return 0
    if args.paths:
        print(f"stanbhm: unexpected arguments {' '.join(args.paths)} "
              "(only 'report' takes folders)", file=sys.stderr)
        return 2
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"stanbhm: --set takes key=value, not {item!r}", file=sys.stderr)
            return 2
        overrides[key] = value
    command = "stanbhm bench " + " ".join(sys.argv[2:])
    try:
        bench.run_suite(args.suite, quick=args.quick, out=args.out, repeat=args.repeat,
                        seed=args.seed, overrides=overrides, command=command)
    except ValueError as exc:
        print(f"stanbhm: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from .families import FAMILIES

    p.add_argument("formula", help="e.g. 'y | se(sigma) ~ 1 + (1 | school)'")
    p.add_argument("--data", required=True, help="CSV file with the columns the formula uses")
    p.add_argument("--family", default="gaussian", choices=sorted(FAMILIES))
    p.add_argument("--link", default=None,
                   help="another of the family's links, e.g. probit or cloglog for bernoulli")
    p.add_argument("--prior", action="append", default=[], metavar="KEY=DIST",
                   help="a prior, e.g. --prior 'sd_school=normal(0, 5)' (repeat for more)")
    p.add_argument("--parameterization", default="auto",
                   help="centered, noncentered, auto, or term=choice,... "
                        "(term names as in the program header)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stanbhm", description="Hierarchical Bayesian models as readable Stan programs."
    )
    parser.add_argument("--version", action="version", version=f"stanbhm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    tc = sub.add_parser(
        "toolchain", help="show, install or rebuild the Stan toolchain",
        description="show: the CmdStan in use and the OpenCL devices; install: build the "
                    "offline toolchain from the httpstan wheel if it is not built (once per "
                    "machine, about 3 minutes on 2 cores; the first fit does it otherwise); "
                    "rebuild: build it again.")
    tc.add_argument("action", nargs="?", default="show", choices=["show", "install", "rebuild"])
    tc.add_argument("--path", help="use this CmdStan folder")
    tc.add_argument("--build", action="store_true", help="the same as 'install'")
    tc.add_argument("--rebuild", action="store_true", help="the same as 'rebuild'")
    tc.set_defaults(func=cmd_toolchain)
    code = sub.add_parser("code", help="print the Stan program for a formula and data")
    _add_model_args(code)
    code.set_defaults(func=cmd_code)
    fit = sub.add_parser("fit", help="fit a formula to data and print a summary")
    _add_model_args(fit)
    fit.add_argument("--method", default="sample",
                     choices=["sample", "pathfinder", "variational", "laplace", "optimize"])
    fit.add_argument("--chains", type=int, help="chains (sample; default 4)")
    fit.add_argument("--iter-warmup", type=int, help="warmup iterations per chain (default 1000)")
    fit.add_argument("--iter-sampling", type=int, help="draws per chain (default 1000)")
    fit.add_argument("--adapt-delta", type=float, help="target acceptance rate (default 0.8)")
    fit.add_argument("--seed", type=int, default=1)
    fit.set_defaults(func=cmd_fit)
    from .bench import SUITES

    bench = sub.add_parser(
        "bench", help="run a benchmark suite, or build docs/benchmarks.md from results",
        description="Run SUITE, print its side-by-side tables and write SUITE.json and "
                    "SUITE.md to --out; 'report [FOLDER ...]' builds --docs from the JSON "
                    "files in those folders (default docs/bench).")
    bench.add_argument("suite", choices=[*SUITES, "report"])
    bench.add_argument("paths", nargs="*", help="report: folders of SUITE.json files")
    bench.add_argument("--quick", action="store_true",
                       help="small sizes that finish in a few minutes on 2 cores")
    bench.add_argument("--out", default="bench-results", help="folder for SUITE.json/.md")
    bench.add_argument("--repeat", type=int, default=3, help="repeats of repeated timings")
    bench.add_argument("--seed", type=int, default=1)
    bench.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a suite option, e.g. --set sizes=10000,100000 (see docs)")
    bench.add_argument("--docs", default="docs/benchmarks.md", help="report: file to write")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command. A user's error is one line on stderr naming the fault, never a
    traceback: exit 2 for the command line (argparse's convention), 1 for the model, the
    data or a CmdStan run."""
    from .errors import StanbhmError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (UsageError, TypeError, ValueError) as exc:
        if isinstance(exc, StanbhmError):  # SpecError, PlanError: the model or its data
            return _fail(exc, 1)
        return _fail(exc, 2)
    except (StanbhmError, FileNotFoundError, DataError) as exc:
        return _fail(exc, 1)
    except BrokenPipeError:  # `stanbhm code ... | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


def _fail(exc: BaseException, code: int) -> int:
    message = str(exc.args[0]) if isinstance(exc, FileNotFoundError) and exc.args else str(exc)
    first, *rest = message.strip().splitlines() or [type(exc).__name__]
    print(f"stanbhm: {first}", file=sys.stderr)
    for line in rest:  # a formula error's caret line (indented already), CmdStan's message
        print(line if line[:1].isspace() else f"  {line}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
