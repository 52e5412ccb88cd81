"""Execute the notebooks in place, keeping their outputs (plots included), so a reader
sees them without running anything. Needs the ``notebooks`` extra (nbclient, ipykernel):

    pip install -e '.[notebooks]'
    python scripts/run_notebooks.py [notebooks/name.ipynb ...]

Each notebook runs at its full size in a fresh kernel from ``notebooks/``; a notebook
is rewritten only when all its cells ran (atomically), so a failure leaves it as it was.

Saved outputs must read the same on any machine: a notebook is not written when an
output went to stderr (a warning, a log line, a progress bar) or names an absolute path
(`problems`; tests/test_notebooks.py checks the committed files the same way). The one
stderr output that is expected is stanbhm's note that a model is being compiled, on a
machine whose cache lacks it; a notebook that printed only such notes runs once more,
with every model now in the cache.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: A path of this machine in an output: its directories, the venv, installed packages.
MACHINE_PATH = re.compile(r"/(work|root|tmp|home|usr|opt)/|site-packages|\.venv")
#: What stanbhm prints on stderr while it compiles a model that is not cached.
COMPILING = re.compile(r"^(compiling model \(first time.*|compiled in \d+ s)$")
#: Output data that are text (images are base64 and say nothing of the machine).
TEXT_TYPES = ("text/", "application/json")


def output_text(output: dict) -> str:
    """The text an output shows: a stream's, an error's traceback, or its text data."""
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    data = output.get("data", {})
    return "\n".join(str(value) for kind, value in data.items() if kind.startswith(TEXT_TYPES))


def problems(nb) -> list[str]:
    """What keeps a notebook's outputs from being saved: stderr, errors, machine paths."""
    found = []
    for number, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = output_text(output)
            if output.get("name") == "stderr" or output.get("output_type") == "error":
                found.append(f"cell {number}: {output.get('name', 'error')}: {text[:300]!r}")
            elif MACHINE_PATH.search(text):
                found.append(f"cell {number}: a path of this machine: {text[:300]!r}")
    return found


def only_compiling(nb) -> bool:
    """Whether the stderr outputs, if any, are all stanbhm's compile notes."""
    lines = [line for cell in nb.cells for output in cell.get("outputs", [])
             if output.get("name") == "stderr"
             for line in output.get("text", "").splitlines() if line.strip()]
    return bool(lines) and all(COMPILING.match(line) for line in lines)


def execute(path: Path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return nb


def run(path: Path) -> float:
    """Execute `path` and save it; the seconds of the saved execution."""
    start = time.perf_counter()
    nb = execute(path)
    if only_compiling(nb):
        print(f"{path.name}: models compiled; running it again from the cache", flush=True)
        start = time.perf_counter()
        nb = execute(path)
    seconds = time.perf_counter() - start
    found = problems(nb)
    if found:
        raise SystemExit(f"{path.name} not saved:\n" + "\n".join(found))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        nbformat.write(nb, fh)
    os.chmod(tmp, 0o644)  # mkstemp's file is private; the notebook is not
    os.replace(tmp, path)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    for path in args.paths or sorted(NOTEBOOKS.glob("*.ipynb")):
        print(f"{path.name}: {run(path.resolve()):.0f} s", flush=True)


if __name__ == "__main__":
    main()
