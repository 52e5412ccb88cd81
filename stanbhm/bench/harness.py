"""What every benchmark suite shares: repeated timings, the machine's description, tables
whose ratios are computed from the figures measured in the same run, and the files a
run leaves behind (JSON with every figure, markdown with the tables).

Ratios are computed here, never by a suite, so that a table cannot show a ratio that
its own figures do not give; the test suite recomputes them from the JSON.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .. import atomic
from ..toolchain import OPTIMIZED
from ..toolchain.cache import in_test_build

SCHEMA = 1


@dataclass
class Timing:
    """Seconds of each repeat; tables show the median and the range."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def as_json(self) -> dict[str, Any]:
        return {"median": self.median, "min": min(self.values), "max": max(self.values),
                "values": self.values}


def repeat(fn: Callable[[], Any], times: int) -> Timing:
    """Wall seconds of ``times`` calls of ``fn``."""
    values = []
    for _ in range(times):
        start = time.perf_counter()
        fn()
        values.append(time.perf_counter() - start)
    return Timing(values)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cmdstan_version() -> str | None:
    from .. import toolchain

    try:
        return toolchain.find_installation().version
    except toolchain.ToolchainError:
        return None


def _compiler() -> str | None:
    try:
        out = subprocess.run(["g++", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout else None


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare this run's numbers with another's."""
    packages = ("stanbhm", "cmdstanpy", "numpy", "arviz", "numpyro", "jax", "pymc", "pytensor")
    return {
        "host": platform.node(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "compiler": _compiler(),
        "cmdstan": _cmdstan_version(),
        "stanc": " ".join(f"--{k}" for k in OPTIMIZED) or "default",
        # STANBHM_TEST_BUILD: programs compiled at C++ -O1, not as users build them
        "test_build": in_test_build(),
        "versions": {p: v for p in packages if (v := _version(p)) is not None},
    }


def stanc_options(machine_facts: dict[str, Any]) -> str:
    """The stanc options a run's programs were compiled with; runs written before the
    field existed (commit ec2bdcc) all used stanc's default."""
    return machine_facts.get("stanc", "default, from before O1")


@dataclass
class Ratio:
    """Column ``name`` holds ``value`` of each row divided by ``value`` of the baseline
    row (the first row whose ``key`` column equals ``baseline``, within the row's
    ``group`` when one is named) or by the row's own ``over`` column; ``invert`` turns it
    over, so that larger is better (e.g. "plain / this" of a time). With ``of`` only the
    rows whose ``key`` equals it get the ratio."""

    name: str
    value: str
    baseline: str | None = None
    over: str | None = None
    key: str = "program"
    invert: bool = False
    group: str | None = None
    of: str | None = None

    def compute(self, rows: list[dict[str, Any]]) -> None:
        bases: dict[Any, dict[str, Any]] = {}
        for row in rows:
            if self.baseline is not None and row.get(self.key) == self.baseline:
                bases.setdefault(row.get(self.group) if self.group else None, row)
        for row in rows:
            if self.of is not None and row.get(self.key) != self.of:
                row[self.name] = None
                continue
            if self.over is not None:
                other = row.get(self.over)
            else:
                base = bases.get(row.get(self.group) if self.group else None)
                other = None if base is None else base.get(self.value)
            row[self.name] = divide(number(row.get(self.value)), number(other), self.invert)


def divide(mine: float | None, theirs: float | None, invert: bool = False) -> float | None:
    """mine / theirs (theirs / mine with ``invert``); None when either is missing or the
    divisor is 0."""
    top, bottom = (theirs, mine) if invert else (mine, theirs)
    if top is None or bottom is None or bottom == 0:
        return None
    return top / bottom


@dataclass
class Target:
    """A goal the issue tracker set, read off one cell: ``row[column] op threshold``."""

    text: str
    row: str
    column: str
    op: str
    threshold: float
    key: str = "program"
    value: float | None = None
    met: bool | None = None

    def check(self, rows: list[dict[str, Any]]) -> None:
        found = [r for r in rows if r.get(self.key) == self.row]
        self.value = number(found[-1].get(self.column)) if found else None
        if self.value is None:
            self.met = None
        else:
            self.met = self.value >= self.threshold if self.op == ">=" else \
                self.value <= self.threshold


def number(value: Any) -> float | None:
    """A figure as a float: a timing's median, a number, or None for anything else."""
    if isinstance(value, dict) and "median" in value:
        return float(value["median"])
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return None


@dataclass
class Table:
    """One side-by-side comparison. ``columns`` maps a row key to its heading."""

    name: str
    title: str
    columns: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, **row: Any) -> dict[str, Any]:
        clean = {k: (v.as_json() if isinstance(v, Timing) else _plain(v)) for k, v in row.items()}
        self.rows.append(clean)
        return clean

    def finish(self) -> None:
        for ratio in self.ratios:
            ratio.compute(self.rows)
        for target in self.targets:
            target.check(self.rows)

    def markdown(self) -> str:
        heads = {**self.columns, **{r.name: r.name for r in self.ratios}}
        lines = [f"**{self.title}**", "",
                 "| " + " | ".join(heads.values()) + " |",
                 "| " + " | ".join("---" if _textual(self.rows, k) else "---:"
                                   for k in heads) + " |"]
        for row in self.rows:
            lines.append("| " + " | ".join(_cell(row.get(k)) for k in heads) + " |")
        for target in self.targets:
            verdict = {True: "met", False: "not met", None: "not measured"}[target.met]
            value = "" if target.value is None else f" ({_cell(target.value)})"
            lines.append(f"\nTarget: {target.text}: {verdict}{value}.")
        lines += [f"\n{note}" for note in self.notes]
        return "\n".join(lines)


def _textual(rows: list[dict[str, Any]], key: str) -> bool:
    return any(isinstance(r.get(key), str) for r in rows)


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and "median" in value:
        text = _cell(value["median"])
        if len(value.get("values", [])) > 1:
            text += f" ({_cell(value['min'])} to {_cell(value['max'])})"
        return text
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        size = abs(value)
        if size < 1:
            return f"{value:.3g}"
        digits = 0 if size >= 100 else 1 if size >= 10 else 2
        return f"{value:.{digits}f}"
    # a bar inside a cell would end it (R's "max|grad|" in a convergence warning)
    return str(value).replace("|", "\\|")


@dataclass
class Run:
    """One ``stanbhm bench SUITE`` invocation: its options, machine and tables."""

    suite: str
    quick: bool
    repeat: int
    command: str
    seed: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine)
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    load_before: float = field(default_factory=lambda: os.getloadavg()[0])
    load_after: float | None = None
    seconds: float | None = None

    def table(self, name: str, title: str, columns: dict[str, str], **kwargs: Any) -> Table:
        table = Table(name, title, columns, **kwargs)
        self.tables.append(table)
        return table

    def skip(self, why: str) -> None:
        """A part of the suite that could not run here, and why (printed and recorded)."""
        self.skipped.append(why)
        print(f"skipped: {why}", file=sys.stderr, flush=True)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = SCHEMA
        return data

    def markdown(self) -> str:
        m = self.machine
        head = [f"## {self.suite}{' (quick)' if self.quick else ''}", "",
                f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}, "
                f"Python {m['python']}, CmdStan {m['cmdstan']} (stanc {stanc_options(m)}), "
                f"stanbhm {m['versions'].get('stanbhm')}; {self.started}; load "
                f"{self.load_before:.2f} before, {_cell(self.load_after)} after; "
                f"{_cell(self.seconds)} s in all. Command: `{self.command}`."]
        if m.get("test_build"):
            head[-1] += (" Test build (STANBHM_TEST_BUILD, C++ -O1): not the timings of a "
                         "user's programs.")
        if self.skipped:
            head += ["", *(f"Skipped: {why}" for why in self.skipped)]
        return "\n".join(head + [""] + [t.markdown() + "\n" for t in self.tables])


def write(run: Run, out: Path) -> tuple[Path, Path]:
    """``SUITE.json`` and ``SUITE.md`` in ``out``, each written whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{run.suite}{'-quick' if run.quick else ''}"
    paths = out / f"{stem}.json", out / f"{stem}.md"
    texts = json.dumps(run.as_json(), indent=1, default=_plain) + "\n", run.markdown()
    for path, text in zip(paths, texts, strict=True):
        atomic.write(path, text)
    return paths


def run_sections(bench: Run, options: dict[str, Any],
                 known: dict[str, Callable[[Run, dict[str, Any]], None]]) -> None:
    """Run the sections named in ``options["sections"]``, in that order."""
    names = str(options["sections"]).split(",")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {bench.suite} section(s) {', '.join(unknown)}; "
                         f"known: {', '.join(known)}")
    for name in names:
        known[name](bench, options)


def read(path: Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a stanbhm bench file of schema {SCHEMA}")
    return data
