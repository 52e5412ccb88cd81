"""Per test file: seconds, programs compiled and requested, compile and CmdStan seconds.

    python scripts/test_programs.py --cold --out after.json -- tests/test_bench.py -n 1
    python scripts/test_programs.py --show before.json after.json
    python scripts/test_programs.py --programs after.json [--file tests/test_parts.py]

The first form runs pytest (the arguments after ``--``) with ``STANBHM_TEST_TABLE`` set,
so that ``tests/conftest.py`` writes its end-of-run table as JSON, and prints the table
as markdown; with ``--cold`` in a new ``STANBHM_HOME`` holding only a link to the built
toolchain, so every program is compiled (a cold run without the toolchain build).
``--show`` prints saved tables, two side by side (before and after). A program is
counted as compiled in the file whose test compiled it first, and as requested in the
file whose test asked for it first (compiled or served by the cache: a warm run's
requested total is what a cold run compiles); ``--programs`` lists each program of a
saved table with its formula, family and build options (from the header of the program
in the model cache) and the tests that asked for it, to find near-duplicates. Compile
seconds are wall seconds (the first compile of a run also builds the test build's
launcher variant when it is missing); CmdStan seconds are those of the CmdStan
processes the test processes started (summed over chains running at once; a notebook
kernel's or a subprocess's are not counted, their compiles are).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = ("seconds", "programs", "requested", "compile_s", "compile_cpu_s", "cmdstan_s")
HEADS = ("s", "programs", "requested", "compile s", "compile CPU s", "CmdStan s")
#: The lines of a generated program's header that say what the program is.
HEADER_LINES = ("// formula:", "// family:")


def run(pytest_args: list[str], out: Path, cold: bool) -> dict:
    env = dict(os.environ, STANBHM_TEST_TABLE=str(out))
    home = None
    if cold:
        from stanbhm.toolchain import ensure_cmdstan
        from stanbhm.toolchain.paths import offline_dir

        home = Path(tempfile.mkdtemp(prefix="stanbhm-cold-"))
        offline_dir(home).symlink_to(ensure_cmdstan())
        env["STANBHM_HOME"] = str(home)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", *pytest_args], env=env,
                          check=False)
    wall = time.perf_counter() - start
    print(f"pytest exited {proc.returncode} after {wall:.0f} s", file=sys.stderr)
    if home is not None:
        shutil.rmtree(home)  # the link goes, not the toolchain
    return json.loads(out.read_text())


def cell(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.0f}"


def markdown(tables: list[dict], labels: list[str]) -> str:
    files = sorted({f for t in tables for f in t["files"]},
                   key=lambda f: -max(t["files"].get(f, {}).get("seconds", 0) for t in tables))
    heads = [f"{h} ({label})" if len(tables) > 1 else h for h in HEADS for label in labels]
    lines = ["| file | " + " | ".join(heads) + " |",
             "| --- |" + " ---: |" * len(heads)]
    empty = dict.fromkeys(COLUMNS, 0)
    for name in [*files, "total"]:
        cells = []
        for column in COLUMNS:
            for table in tables:
                if name == "total":
                    value = sum(r.get(column, 0) for r in table["files"].values())
                else:
                    value = table["files"].get(name, empty).get(column, 0)
                cells.append(cell(value))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe(key: str) -> str:
    """What the cached program `key` is: the formula and family lines of its header (a
    hand-written program: its first line) and its build options."""
    from stanbhm.toolchain.paths import models_dir

    folder = models_dir() / key
    if not (folder / "model.stan").exists():
        return "(not in this model cache)"
    lines = (folder / "model.stan").read_text().splitlines()
    said = [line[3:].strip() for line in lines if line.startswith(HEADER_LINES)]
    if not said:
        said = [next((line.strip() for line in lines if line.strip()), "")[:70]]
    options = folder / "options.json"
    if options.exists():
        built = json.loads(options.read_text())
        cpp = {k: v for k, v in built.get("cpp_options", {}).items() if k not in {"BUILD", "O"}}
        said.append(f"cpp {cpp}" + ("" if "O" in built.get("cpp_options", {}) else
                                       ", user build"))
        said.append(f"stanc {built.get('stanc_options', {})}")
    return "; ".join(said)


def programs(table: dict, only: str | None) -> str:
    """Each requested program of a saved table with what it is and the tests that asked
    for it, grouped by the file that asked first."""
    rows: list[tuple[str, str, list[str]]] = []
    for key, tests in table.get("programs", {}).items():
        first = tests[0].split("::")[0]
        if only and not any(t.split("::")[0].endswith(only) for t in tests):
            continue
        rows.append((first, key, tests))
    out = []
    for first, key, tests in sorted(rows):
        out.append(f"{first}  {key}  {describe(key)}")
        out.extend(f"    {t.split(' (')[0]}" for t in tests)
    out.append(f"{len(rows)} programs")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", nargs="+", type=Path, help="saved tables to print")
    parser.add_argument("--out", type=Path, help="where to save this run's table")
    parser.add_argument("--cold", action="store_true", help="an empty model cache")
    parser.add_argument("--programs", type=Path,
                        help="list the programs of a saved table and the tests that asked")
    parser.add_argument("--file", help="with --programs: only those a test file asked for")
    parser.add_argument("pytest_args", nargs="*", help="pytest's arguments, after --")
    args = parser.parse_args()
    if args.programs:
        print(programs(json.loads(args.programs.read_text()), args.file))
        return
    if args.show:
        tables = [json.loads(p.read_text()) for p in args.show]
        print(markdown(tables, [p.stem for p in args.show]))
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="stanbhm-table-")) / "table.json"
    print(markdown([run(args.pytest_args, out, args.cold)], ["run"]))


if __name__ == "__main__":
    main()
