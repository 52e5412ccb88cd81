"""The ``stanbhm`` console script."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from . import toolchain


def _progress() -> toolchain.offline.Progress:
    start = time.monotonic()

    def report(msg: str) -> None:
        print(f"[{time.monotonic() - start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    return report


def cmd_toolchain(args: argparse.Namespace) -> int:
    if args.rebuild:
        toolchain.build_offline(force=True, progress=_progress())
    try:
        inst = toolchain.find_installation(
            args.path, build=args.build or args.rebuild, progress=_progress()
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stanbhm", description="Hierarchical Bayesian models as readable Stan programs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    tc = sub.add_parser("toolchain", help="show, build or rebuild the Stan toolchain")
    tc.add_argument("--path", help="use this CmdStan folder")
    tc.add_argument("--build", action="store_true", help="build the offline toolchain if needed")
    tc.add_argument("--rebuild", action="store_true", help="rebuild the offline toolchain")
    tc.set_defaults(func=cmd_toolchain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
